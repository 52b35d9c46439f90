"""make_engine: SQLite pragmas and locking, in-memory databases, PostgreSQL pooling."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest
from sqlalchemy import Engine, exc, text
from sqlalchemy.pool import QueuePool, StaticPool

from herald.adapters.sql.engine import make_engine


def _pragma(engine: Engine, name: str) -> object:
    with engine.connect() as conn:
        return conn.exec_driver_sql(f"PRAGMA {name}").scalar()


def test_sqlite_file_pragmas_and_parent_directories(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "herald.sqlite"
    engine = make_engine(f"sqlite:///{path}", sqlite_synchronous="NORMAL")
    try:
        assert _pragma(engine, "journal_mode") == "wal"
        assert _pragma(engine, "synchronous") == 1  # NORMAL
        assert _pragma(engine, "foreign_keys") == 1
        assert _pragma(engine, "busy_timeout") == 10000
        assert path.exists()
    finally:
        engine.dispose()


def test_sqlite_files_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    old_umask = os.umask(0o022)  # the usual umask: files would be world-readable
    try:
        path = tmp_path / "herald.sqlite"
        engine = make_engine(f"sqlite:///{path}")
        try:
            with engine.begin() as conn:
                conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
                conn.exec_driver_sql("INSERT INTO t VALUES (1)")
            files = [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]
            assert {f.name: stat.S_IMODE(f.stat().st_mode) for f in files} == {f.name: 0o600 for f in files}
        finally:
            engine.dispose()
    finally:
        os.umask(old_umask)


def test_sqlite_synchronous_defaults_to_full(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'h.sqlite'}")
    try:
        assert _pragma(engine, "synchronous") == 2  # FULL
    finally:
        engine.dispose()


def test_sqlite_rejects_unknown_synchronous_mode(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="sqlite_synchronous"):
        make_engine(f"sqlite:///{tmp_path / 'h.sqlite'}", sqlite_synchronous="SOMETIMES")


def test_sqlite_transactions_begin_immediate(tmp_path: Path) -> None:
    """A second writer waits for the first instead of failing on lock upgrade."""
    engine = make_engine(f"sqlite:///{tmp_path / 'h.sqlite'}")
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE t (n INTEGER)")
        first_has_lock = threading.Event()
        release = threading.Event()

        def first_writer() -> None:
            with engine.begin() as conn:
                conn.exec_driver_sql("SELECT count(*) FROM t").scalar()
                first_has_lock.set()
                release.wait(5)
                conn.exec_driver_sql("INSERT INTO t VALUES (1)")

        thread = threading.Thread(target=first_writer)
        thread.start()
        assert first_has_lock.wait(5)
        threading.Timer(0.2, release.set).start()
        with engine.begin() as conn:  # blocks on BEGIN IMMEDIATE until the first commits
            count = conn.exec_driver_sql("SELECT count(*) FROM t").scalar()
            conn.exec_driver_sql("INSERT INTO t VALUES (2)")
        thread.join(5)
        assert count == 1
    finally:
        engine.dispose()


@pytest.mark.parametrize("url", ["sqlite:///:memory:", "sqlite://"])
def test_sqlite_memory_is_one_database_across_threads(url: str) -> None:
    engine = make_engine(url)
    try:
        assert isinstance(engine.pool, StaticPool)
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE t (n INTEGER)")
            conn.exec_driver_sql("INSERT INTO t VALUES (7)")
        seen: list[object] = []

        def read() -> None:
            with engine.connect() as conn:
                seen.append(conn.execute(text("SELECT n FROM t")).scalar())

        thread = threading.Thread(target=read)
        thread.start()
        thread.join(5)
        assert seen == [7]
    finally:
        engine.dispose()


def test_postgresql_pool() -> None:
    engine = make_engine("postgresql+psycopg://u:p@127.0.0.1:1/db")
    try:
        assert isinstance(engine.pool, QueuePool)
        assert engine.pool.size() == 10
    finally:
        engine.dispose()


def test_engine_connects(engine: Engine) -> None:
    with engine.connect() as conn:
        assert conn.execute(text("SELECT 1")).scalar() == 1


def _lose_the_pooled_connection(db_url: str, idle_ping_s: float) -> tuple[Engine, int]:
    """An engine whose one pooled connection PostgreSQL ended while it sat in the pool."""
    engine = make_engine(db_url, idle_ping_s=idle_ping_s)
    with engine.connect() as conn:
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
    admin = make_engine(db_url)
    try:
        with admin.connect() as conn:
            assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar() is True
    finally:
        admin.dispose()
    return engine, pid


@pytest.mark.parametrize("idle_ping_s", [0.0, 3600.0])
def test_a_pooled_connection_lost_while_idle_is_replaced_once_it_was_idle_long_enough(
    db_url: str, idle_ping_s: float
) -> None:
    """Checked before use only after sitting idle: replaced then; a busy one's loss surfaces (and the
    pool's connections are replaced after that error)."""
    if not db_url.startswith("postgresql"):
        pytest.skip("PostgreSQL's pool")
    engine, lost = _lose_the_pooled_connection(db_url, idle_ping_s)
    try:
        if idle_ping_s == 0.0:
            with engine.connect() as conn:
                assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() != lost
        else:
            with pytest.raises(exc.OperationalError), engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            with engine.connect() as conn:
                assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() != lost
    finally:
        engine.dispose()
