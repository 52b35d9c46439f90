"""Servers keep what their requests asked for (description, access IPs, disk config, tags, hostname,
key name, lock, reservation, user data, config drive, trusted certificates, scheduler hints), and users their
key pairs.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None

_ADDED = (
    "description",
    "access_ip_v4",
    "access_ip_v6",
    "auto_disk_config",
    "tags",
    "hostname",
    "key_name",
    "locked",
    "locked_by",
    "locked_reason",
    "reservation_id",
    "launch_index",
    "user_data",
    "config_drive",
    "trusted_image_certificates",
    "scheduler_hints",
)

# SQLite only auto-increments an INTEGER PRIMARY KEY.
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("servers") as batch:
        batch.add_column(sa.Column("description", sa.Text(), nullable=True))
        batch.add_column(sa.Column("access_ip_v4", sa.String(39), nullable=True))
        batch.add_column(sa.Column("access_ip_v6", sa.String(39), nullable=True))
        batch.add_column(sa.Column("auto_disk_config", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("tags", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("hostname", sa.String(255), nullable=True))
        batch.add_column(sa.Column("key_name", sa.String(255), nullable=True))
        batch.add_column(sa.Column("locked", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("locked_by", sa.String(255), nullable=True))
        batch.add_column(sa.Column("locked_reason", sa.String(255), nullable=True))
        batch.add_column(sa.Column("reservation_id", sa.String(255), nullable=True))
        batch.add_column(sa.Column("launch_index", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("user_data", sa.Text(), nullable=True))
        batch.add_column(sa.Column("config_drive", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("trusted_image_certificates", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("scheduler_hints", sa.JSON(), nullable=True))
    op.create_table(
        "key_pairs",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("type", sa.String(8), nullable=False),
        sa.Column("fingerprint", sa.String(255), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_key_pairs"),
        sa.UniqueConstraint("user_id", "name", name="uq_key_pairs_user_id_name"),
    )


def downgrade() -> None:
    op.drop_table("key_pairs")
    with op.batch_alter_table("servers") as batch:
        for column in reversed(_ADDED):
            batch.drop_column(column)
