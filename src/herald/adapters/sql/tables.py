"""The SQL schema (SQLAlchemy Core). Alembic migrations under ``migrations/`` must match it."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# SQLite only auto-increments an INTEGER PRIMARY KEY.
Id = BigInteger().with_variant(Integer(), "sqlite")

services = Table(
    "services",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("host", String(255), nullable=False),
    Column("binary", String(255), nullable=False, default="herald-compute"),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("disabled_reason", String(255)),
    Column("forced_down", Boolean, nullable=False, default=False),
    Column("last_seen_up", DateTime),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime),
    UniqueConstraint("host", "binary", name="uq_services_host_binary"),
)

servers = Table(
    "servers",
    metadata,
    Column("uuid", String(36), primary_key=True),
    Column("name", String(255), nullable=False),
    Column("project_id", String(255), nullable=False),
    Column("user_id", String(255), nullable=False),
    Column("flavor_id", String(255), nullable=False),
    Column("image_ref", String(255), nullable=False),
    Column("vm_state", String(255), nullable=False),
    Column("power_state", Integer, nullable=False),
    Column("task_state", String(255)),
    Column("host", String(255)),
    Column("node", String(255)),
    Column("vifs", JSON, nullable=False),
    Column("volumes", JSON, nullable=False),
    Column("metadata", JSON, nullable=False),
    Column("fault", JSON),
    Column("migration_id", BigInteger().with_variant(Integer(), "sqlite")),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime),
    Column("launched_at", DateTime),
    Column("terminated_at", DateTime),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("description", Text),
    Column("access_ip_v4", String(39)),
    Column("access_ip_v6", String(39)),
    Column("auto_disk_config", Boolean, nullable=False, default=False, server_default=false()),
    Column("tags", JSON),
    Column("hostname", String(255)),
    Column("key_name", String(255)),
    Column("locked", Boolean, nullable=False, default=False, server_default=false()),
    Column("locked_by", String(255)),
    Column("locked_reason", String(255)),
    Column("reservation_id", String(255)),
    Column("launch_index", Integer, nullable=False, default=0, server_default="0"),
    Column("user_data", Text),
    Column("config_drive", Boolean, nullable=False, default=False, server_default=false()),
    Column("trusted_image_certificates", JSON),
    Column("scheduler_hints", JSON),
    Column("deleted_at", DateTime),
    Column("security_groups", JSON),
    Column("flavor", JSON),
    Column("accelerator_requests", JSON),
    Index("ix_servers_host_deleted", "host", "deleted"),
    Index("ix_servers_project_id", "project_id"),
)

key_pairs = Table(
    "key_pairs",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("user_id", String(255), nullable=False),
    Column("name", String(255), nullable=False),
    Column("type", String(8), nullable=False),
    Column("fingerprint", String(255), nullable=False),
    Column("public_key", Text, nullable=False),
    Column("created_at", DateTime, nullable=False),
    UniqueConstraint("user_id", "name", name="uq_key_pairs_user_id_name"),
)

migrations = Table(
    "migrations",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("server_uuid", String(36), nullable=False, index=True),
    Column("source_compute", String(255), nullable=False),
    Column("dest_compute", String(255), nullable=False),
    Column("migration_type", String(255), nullable=False),
    Column("status", String(255), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime),
    Column("uuid", String(36)),
    Column("source_node", String(255)),
    Column("dest_node", String(255)),
    Column("old_flavor_id", String(255)),
    Column("new_flavor_id", String(255)),
    Column("old_vm_state", String(255)),
    Column("user_id", String(255)),
    Column("project_id", String(255)),
    Index("ix_migrations_uuid", "uuid", unique=True),
    Index("ix_migrations_created_at", "created_at"),
)

server_actions = Table(
    "server_actions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("server_uuid", String(36), nullable=False),
    Column("action", String(255), nullable=False),
    Column("request_id", String(255), nullable=False),
    Column("user_id", String(255)),
    Column("project_id", String(255)),
    Column("start_time", DateTime, nullable=False),
    Column("finish_time", DateTime),
    Column("message", String(255)),
    Column("updated_at", DateTime),
    Index("ix_server_actions_server_request", "server_uuid", "request_id"),
)

server_action_events = Table(
    "server_action_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("action_id", Id, ForeignKey("server_actions.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("event", String(255), nullable=False),
    Column("start_time", DateTime, nullable=False),
    Column("finish_time", DateTime),
    Column("result", String(255)),
    Column("traceback", Text),
    Column("host", String(255)),
    Column("details", Text),
)

# One row per accepted event and target host: the durable record behind every 200.
external_events = Table(
    "external_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("uuid", String(36), nullable=False),
    Column("request_id", String(255), nullable=False),
    Column("server_uuid", String(36), nullable=False),
    Column("name", String(64), nullable=False),
    Column("tag", String(255)),
    Column("status", String(32), nullable=False),
    Column("host", String(255), nullable=False),
    Column("state", String(32), nullable=False),
    Column("accepted_at", DateTime, nullable=False),
    Column("dispatched_at", DateTime),
    Column("handled_at", DateTime),
    Column("outcome", Text),
    # When a relay last took the row to publish it; a claim older than the resend delay has lapsed.
    Column("claimed_at", DateTime),
    Index("ix_external_events_state_host", "state", "host"),
    Index("ix_external_events_server_uuid", "server_uuid"),
)

# The power sync's watched disagreements: one row per server whose stop waits for the grace.
power_observations = Table(
    "power_observations",
    metadata,
    Column("server_uuid", String(36), primary_key=True),
    Column("host", String(255), nullable=False),
    Column("request_id", String(255), nullable=False),
    Column("vm_state", String(255), nullable=False),
    Column("power_class", String(16), nullable=False),
    Column("first_seen_at", DateTime, nullable=False),
    Index("ix_power_observations_host", "host"),
)

# The fake virt driver's machines, per compute host: what its "hypervisor" keeps across restarts.
fake_machines = Table(
    "fake_machines",
    metadata,
    Column("host", String(255), primary_key=True),
    Column("server_uuid", String(36), primary_key=True),
    Column("power_state", Integer, nullable=False),
)

# Flavors (the seeded m1.* set and those made through the API) and their extra specs.
flavors = Table(
    "flavors",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("flavorid", String(255), nullable=False),
    Column("name", String(255), nullable=False),
    Column("memory_mb", Integer, nullable=False),
    Column("vcpus", Integer, nullable=False),
    Column("root_gb", Integer, nullable=False),
    Column("ephemeral_gb", Integer, nullable=False),
    Column("swap", Integer, nullable=False),
    Column("rxtx_factor", Float, nullable=False),
    Column("is_public", Boolean, nullable=False),
    Column("disabled", Boolean, nullable=False),
    Column("description", Text),
    Column("created_at", DateTime, nullable=False),
    UniqueConstraint("flavorid", name="uq_flavors_flavorid"),
    UniqueConstraint("name", name="uq_flavors_name"),
)

flavor_extra_specs = Table(
    "flavor_extra_specs",
    metadata,
    Column("flavor_id", Id, ForeignKey("flavors.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("value", String(255), nullable=False),
)

# The events an operation waits for right now, one row per (server, host, event key): written when
# an agent registers the wait, removed when it ends, so any API process can list them.
event_waits = Table(
    "event_waits",
    metadata,
    Column("server_uuid", String(36), primary_key=True),
    Column("host", String(255), primary_key=True),
    Column("event_key", String(320), primary_key=True),
    Column("name", String(64), nullable=False),
    Column("tag", String(255)),
    Column("since", DateTime, nullable=False),
    Column("until", DateTime, nullable=False),
    Index("ix_event_waits_host", "host"),
)

# Server commands committed with their task state and not yet taken by their host's transport
# (the row goes once the transport confirmed it), claimed by the relay publishing them.
command_outbox = Table(
    "command_outbox",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("host", String(255), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("claimed_at", DateTime),
)
