"""The fake virt driver keeps its machines in the database, per host, across restarts.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "fake_machines",
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("server_uuid", sa.String(36), nullable=False),
        sa.Column("power_state", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("host", "server_uuid", name="pk_fake_machines"),
    )


def downgrade() -> None:
    op.drop_table("fake_machines")
