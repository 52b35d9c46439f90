"""The power sync's watched disagreements, so that the grace survives an agent restart.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "power_observations",
        sa.Column("server_uuid", sa.String(36), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("request_id", sa.String(255), nullable=False),
        sa.Column("vm_state", sa.String(255), nullable=False),
        sa.Column("power_class", sa.String(16), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("server_uuid", name="pk_power_observations"),
    )
    op.create_index("ix_power_observations_host", "power_observations", ["host"])


def downgrade() -> None:
    op.drop_index("ix_power_observations_host", table_name="power_observations")
    op.drop_table("power_observations")
