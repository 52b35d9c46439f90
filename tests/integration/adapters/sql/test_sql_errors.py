"""is_transient: a locked or unreachable database is "later", a wrong statement is not."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine
from sqlalchemy.exc import DBAPIError

from herald.adapters.sql.engine import make_engine
from herald.adapters.sql.errors import is_transient


def _error_of(url: str, sql: str, connect_args: dict[str, object] | None = None) -> BaseException:
    engine = create_engine(url, connect_args=connect_args or {})
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(sql)
    except DBAPIError as exc:
        return exc
    finally:
        engine.dispose()
    raise AssertionError(f"{sql!r} did not fail")


def test_sqlite_locked_is_transient_and_a_bad_statement_is_not(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("CREATE TABLE t (n INTEGER)")
        holder.execute("BEGIN IMMEDIATE")
        locked = _error_of(f"sqlite:///{path}", "INSERT INTO t VALUES (1)", {"timeout": 0.01})
    finally:
        holder.close()
    assert is_transient(locked)
    assert not is_transient(_error_of(f"sqlite:///{path}", "SELECT * FROM no_such_table"))
    assert not is_transient(ValueError("not a database error"))


@pytest.mark.postgres
def test_postgresql_unreachable_is_transient_and_a_bad_statement_is_not(pg_admin_engine: Engine) -> None:
    db_url = pg_admin_engine.url.render_as_string(hide_password=False)
    # NOTE: nothing listens on this port of the loopback interface (a port of this test's own range).
    unreachable = make_engine("postgresql+psycopg://herald:herald@127.0.0.1:18299/herald")
    try:
        with pytest.raises(DBAPIError) as refused:
            unreachable.connect()
    finally:
        unreachable.dispose()
    assert is_transient(refused.value)
    assert not is_transient(_error_of(db_url, "SELECT * FROM no_such_table"))
