"""Flavors and their extra specs in the database (the m1.* set seeded), each server's copy of its
flavor and its accelerator requests, and the events operations wait for right now.

Revision ID: 0007
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from herald.domain.flavors import FLAVORS, flavor_to_dict

revision: str = "0007"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None

# SQLite only auto-increments an INTEGER PRIMARY KEY.
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("servers") as batch:
        batch.add_column(sa.Column("flavor", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("accelerator_requests", sa.JSON(), nullable=True))
    flavors = op.create_table(
        "flavors",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("flavorid", sa.String(255), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("memory_mb", sa.Integer(), nullable=False),
        sa.Column("vcpus", sa.Integer(), nullable=False),
        sa.Column("root_gb", sa.Integer(), nullable=False),
        sa.Column("ephemeral_gb", sa.Integer(), nullable=False),
        sa.Column("swap", sa.Integer(), nullable=False),
        sa.Column("rxtx_factor", sa.Float(), nullable=False),
        sa.Column("is_public", sa.Boolean(), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_flavors"),
        sa.UniqueConstraint("flavorid", name="uq_flavors_flavorid"),
        sa.UniqueConstraint("name", name="uq_flavors_name"),
    )
    op.create_table(
        "flavor_extra_specs",
        sa.Column("flavor_id", Id, nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("value", sa.String(255), nullable=False),
        sa.ForeignKeyConstraint(
            ["flavor_id"], ["flavors.id"], name="fk_flavor_extra_specs_flavor_id_flavors", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("flavor_id", "key", name="pk_flavor_extra_specs"),
    )
    op.create_table(
        "event_waits",
        sa.Column("server_uuid", sa.String(36), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("event_key", sa.String(320), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("tag", sa.String(255), nullable=True),
        sa.Column("since", sa.DateTime(), nullable=False),
        sa.Column("until", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("server_uuid", "host", "event_key", name="pk_event_waits"),
    )
    op.create_index("ix_event_waits_host", "event_waits", ["host"])
    _seed(flavors)


def _seed(flavors: sa.Table) -> None:
    """The built-in flavors keep their ids, and existing servers get their copy of theirs."""
    now = datetime.now(UTC).replace(tzinfo=None)
    rows = []
    for flavor in FLAVORS:
        row = flavor_to_dict(flavor)
        del row["extra_specs"]
        rows.append(row | {"created_at": now})
    op.bulk_insert(flavors, rows)
    servers = sa.table("servers", sa.column("flavor_id", sa.String()), sa.column("flavor", sa.JSON()))
    for flavor in FLAVORS:
        op.execute(servers.update().where(servers.c.flavor_id == flavor.flavorid).values(flavor=flavor_to_dict(flavor)))


def downgrade() -> None:
    op.drop_index("ix_event_waits_host", table_name="event_waits")
    op.drop_table("event_waits")
    op.drop_table("flavor_extra_specs")
    op.drop_table("flavors")
    with op.batch_alter_table("servers") as batch:
        batch.drop_column("accelerator_requests")
        batch.drop_column("flavor")
