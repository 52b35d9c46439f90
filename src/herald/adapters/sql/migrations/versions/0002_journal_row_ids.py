"""The event journal's rows are found by id: drop the (uuid, host) unique constraint.

Every accepted event's delivery row is updated two or three times; by integer id that is the
cheapest lookup there is, and one text index less to maintain on every insert.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("external_events") as batch:
        batch.drop_constraint("uq_external_events_uuid_host", type_="unique")


def downgrade() -> None:
    with op.batch_alter_table("external_events") as batch:
        batch.create_unique_constraint("uq_external_events_uuid_host", ["uuid", "host"])
