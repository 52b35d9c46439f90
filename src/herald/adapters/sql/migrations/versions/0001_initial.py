"""Initial schema: services, servers, migrations, server actions and their events, external events.

Revision ID: 0001
Revises:
Create Date: 2025-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

# SQLite only auto-increments an INTEGER PRIMARY KEY.
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "services",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("binary", sa.String(255), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("disabled_reason", sa.String(255)),
        sa.Column("forced_down", sa.Boolean(), nullable=False),
        sa.Column("last_seen_up", sa.DateTime()),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime()),
        sa.PrimaryKeyConstraint("id", name="pk_services"),
        sa.UniqueConstraint("host", "binary", name="uq_services_host_binary"),
    )
    op.create_table(
        "servers",
        sa.Column("uuid", sa.String(36), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("project_id", sa.String(255), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("flavor_id", sa.String(255), nullable=False),
        sa.Column("image_ref", sa.String(255), nullable=False),
        sa.Column("vm_state", sa.String(255), nullable=False),
        sa.Column("power_state", sa.Integer(), nullable=False),
        sa.Column("task_state", sa.String(255)),
        sa.Column("host", sa.String(255)),
        sa.Column("node", sa.String(255)),
        sa.Column("vifs", sa.JSON(), nullable=False),
        sa.Column("volumes", sa.JSON(), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("fault", sa.JSON()),
        sa.Column("migration_id", Id),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime()),
        sa.Column("launched_at", sa.DateTime()),
        sa.Column("terminated_at", sa.DateTime()),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("uuid", name="pk_servers"),
    )
    op.create_index("ix_servers_host_deleted", "servers", ["host", "deleted"])
    op.create_index("ix_servers_project_id", "servers", ["project_id"])
    op.create_table(
        "migrations",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("server_uuid", sa.String(36), nullable=False),
        sa.Column("source_compute", sa.String(255), nullable=False),
        sa.Column("dest_compute", sa.String(255), nullable=False),
        sa.Column("migration_type", sa.String(255), nullable=False),
        sa.Column("status", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime()),
        sa.PrimaryKeyConstraint("id", name="pk_migrations"),
    )
    op.create_index("ix_migrations_server_uuid", "migrations", ["server_uuid"])
    op.create_table(
        "server_actions",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("server_uuid", sa.String(36), nullable=False),
        sa.Column("action", sa.String(255), nullable=False),
        sa.Column("request_id", sa.String(255), nullable=False),
        sa.Column("user_id", sa.String(255)),
        sa.Column("project_id", sa.String(255)),
        sa.Column("start_time", sa.DateTime(), nullable=False),
        sa.Column("finish_time", sa.DateTime()),
        sa.Column("message", sa.String(255)),
        sa.Column("updated_at", sa.DateTime()),
        sa.PrimaryKeyConstraint("id", name="pk_server_actions"),
    )
    op.create_index("ix_server_actions_server_request", "server_actions", ["server_uuid", "request_id"])
    _create_action_events()
    _create_external_events()


def _create_action_events() -> None:
    op.create_table(
        "server_action_events",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("action_id", Id, nullable=False),
        sa.Column("event", sa.String(255), nullable=False),
        sa.Column("start_time", sa.DateTime(), nullable=False),
        sa.Column("finish_time", sa.DateTime()),
        sa.Column("result", sa.String(255)),
        sa.Column("traceback", sa.Text()),
        sa.Column("host", sa.String(255)),
        sa.Column("details", sa.Text()),
        sa.PrimaryKeyConstraint("id", name="pk_server_action_events"),
        sa.ForeignKeyConstraint(
            ["action_id"],
            ["server_actions.id"],
            name="fk_server_action_events_action_id_server_actions",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_server_action_events_action_id", "server_action_events", ["action_id"])


def _create_external_events() -> None:
    op.create_table(
        "external_events",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("uuid", sa.String(36), nullable=False),
        sa.Column("request_id", sa.String(255), nullable=False),
        sa.Column("server_uuid", sa.String(36), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("tag", sa.String(255)),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("accepted_at", sa.DateTime(), nullable=False),
        sa.Column("dispatched_at", sa.DateTime()),
        sa.Column("handled_at", sa.DateTime()),
        sa.Column("outcome", sa.Text()),
        sa.PrimaryKeyConstraint("id", name="pk_external_events"),
        sa.UniqueConstraint("uuid", "host", name="uq_external_events_uuid_host"),
    )
    op.create_index("ix_external_events_state_host", "external_events", ["state", "host"])
    op.create_index("ix_external_events_server_uuid", "external_events", ["server_uuid"])


def downgrade() -> None:
    for table in ("external_events", "server_action_events", "server_actions", "migrations", "servers", "services"):
        op.drop_table(table)
