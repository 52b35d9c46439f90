"""The alembic migrations build exactly the schema in tables.py, on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import threading

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect

from herald.adapters.sql import migrate
from herald.adapters.sql.engine import make_engine
from herald.adapters.sql.tables import metadata


def test_migrations_match_metadata(engine: Engine) -> None:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
        assert compare_metadata(context, metadata) == []


def test_upgrade_creates_every_table_and_records_head(db_url: str) -> None:
    assert migrate.current(db_url) is None
    migrate.upgrade(db_url)
    assert migrate.current(db_url) == migrate.head() == "0004"
    engine = make_engine(db_url)
    try:
        assert set(inspect(engine).get_table_names()) == {*metadata.tables, "alembic_version"}
    finally:
        engine.dispose()


def test_upgrade_twice_is_a_no_op(db_url: str) -> None:
    migrate.upgrade(db_url)
    migrate.upgrade(db_url)
    assert migrate.current(db_url) == "0004"


def test_concurrent_upgrades_from_several_processes(db_url: str) -> None:
    code = "import sys; from herald.adapters.sql import migrate; migrate.upgrade(sys.argv[1])"
    procs = [
        subprocess.Popen([sys.executable, "-c", code, db_url], stderr=subprocess.PIPE, text=True) for _ in range(3)
    ]
    outcomes = [(proc.communicate(timeout=60)[1], proc.returncode) for proc in procs]
    assert [stderr for stderr, code in outcomes if code != 0] == []
    assert migrate.current(db_url) == "0004"


def test_concurrent_upgrades_from_threads(db_url: str) -> None:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            migrate.upgrade(db_url)
        except BaseException as exc:  # NOTE: collected and asserted on below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert migrate.current(db_url) == "0004"


def test_downgrade_drops_everything(db_url: str) -> None:
    from alembic import command

    migrate.upgrade(db_url)
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            config = migrate.alembic_config(db_url)
            config.attributes["connection"] = conn
            command.downgrade(config, "base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    finally:
        engine.dispose()


def test_schema_version_knows_the_newest_migration(engine: Engine) -> None:
    from herald.adapters.sql import migrate
    from herald.adapters.sql.schema_version import HEAD_REVISION, is_current

    assert migrate.head() == HEAD_REVISION
    assert is_current(engine)


def test_a_new_database_is_not_current(db_url: str) -> None:
    from herald.adapters.sql.engine import make_engine
    from herald.adapters.sql.schema_version import is_current

    fresh = make_engine(db_url)
    try:
        assert not is_current(fresh)
    finally:
        fresh.dispose()


def test_upgrade_from_0001_keeps_the_journal(db_url: str) -> None:
    """A database created by the first release upgrades in place, its recorded events kept."""
    from sqlalchemy import text

    migrate.upgrade(db_url, "0001")
    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO external_events (uuid, request_id, server_uuid, name, status, host, state,"
                    " accepted_at) VALUES ('e1', 'req-1', 's1', 'network-changed', 'completed', 'c1', 'accepted', :at)"
                ),
                {"at": "2026-01-01 00:00:00.000000"},
            )
        migrate.upgrade(db_url)
        assert migrate.current(db_url) == "0004"
        with engine.connect() as conn:
            assert conn.execute(text("SELECT uuid, state FROM external_events")).all() == [("e1", "accepted")]
            assert not [c for c in inspect(conn).get_unique_constraints("external_events")]
    finally:
        engine.dispose()
