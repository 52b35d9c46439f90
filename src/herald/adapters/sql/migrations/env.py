"""Alembic environment: runs the revisions in one transaction on the given connection.

:func:`herald.adapters.sql.migrate.upgrade` passes an open connection in
``config.attributes["connection"]``; the ``alembic`` command line passes ``sqlalchemy.url`` instead.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from herald.adapters.sql.engine import make_engine
from herald.adapters.sql.tables import metadata

# NOTE: an arbitrary constant; concurrent upgrades of one PostgreSQL database wait on it.
PG_UPGRADE_LOCK = 0x4E524C44


def run_on(connection: Connection) -> None:
    """Run the pending revisions, all in one transaction (SQLite's DDL is transactional too)."""
    context.configure(
        connection=connection,
        target_metadata=metadata,
        transactional_ddl=True,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({PG_UPGRADE_LOCK})")
        context.run_migrations()


def run_offline() -> None:
    context.configure(
        url=context.config.get_main_option("sqlalchemy.url"), target_metadata=metadata, literal_binds=True
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        run_on(connection)
        return
    engine = make_engine(context.config.get_main_option("sqlalchemy.url") or "")
    try:
        with engine.connect() as conn:
            run_on(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
