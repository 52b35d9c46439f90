"""Servers keep what the create request asked for: description, access IPs and disk config.

Revision ID: 0005
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("servers") as batch:
        batch.add_column(sa.Column("description", sa.Text(), nullable=True))
        batch.add_column(sa.Column("access_ip_v4", sa.String(39), nullable=True))
        batch.add_column(sa.Column("access_ip_v6", sa.String(39), nullable=True))
        batch.add_column(sa.Column("auto_disk_config", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("servers") as batch:
        for column in ("auto_disk_config", "access_ip_v6", "access_ip_v4", "description"):
            batch.drop_column(column)
