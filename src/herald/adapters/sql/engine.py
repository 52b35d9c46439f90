"""Engine factory: SQLite (embedded, one file) or PostgreSQL (psycopg 3).

SQLite connections are tuned on every connect (WAL, ``synchronous``, foreign keys, a
10 s busy timeout) and take the write lock when a transaction begins (``BEGIN IMMEDIATE``),
so concurrent writers queue on the busy timeout instead of failing with "database is
locked" when a reader later tries to upgrade its lock.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.pool import ConnectionPoolEntry, StaticPool

SQLITE_BUSY_TIMEOUT_S = 10
SQLITE_SYNCHRONOUS_MODES = ("OFF", "NORMAL", "FULL", "EXTRA")
SQLITE_WAL_SIZE_LIMIT = 4 * 1024 * 1024
PG_POOL_SIZE = 10
PG_MAX_OVERFLOW = 10
# Like SQLite's busy timeout: a statement waits this long for a lock, a checkout for a pooled
# connection, then fails (the writer retries; an API request gets its 503 sooner anyway).
PG_LOCK_TIMEOUT_S = 10
PG_POOL_TIMEOUT_S = 10
# A pooled connection idle for longer than this is checked (one round trip) before it is handed
# out: PostgreSQL may have restarted, or a proxy dropped it, while it sat in the pool.
PG_IDLE_PING_S = 1.0
_CHECKED_IN_AT = "herald_checked_in_at"


def _json_text(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


# NOTE: a server row has about ten JSON columns, parsed at every read of the row: orjson's
# parser is several times faster than the standard library's, on the agents' hot path.
JSON_CODEC: dict[str, Any] = {"json_serializer": _json_text, "json_deserializer": orjson.loads}


def make_engine(
    url: str, *, sqlite_synchronous: str = "FULL", manual_checkpoints: bool = False, idle_ping_s: float = PG_IDLE_PING_S
) -> Engine:
    """Build an engine for ``url``; nothing is connected yet.

    :param url: ``sqlite:///PATH``, ``sqlite:///:memory:`` or ``postgresql+psycopg://USER:PASS@HOST/DB``.
    :param sqlite_synchronous: SQLite ``PRAGMA synchronous`` (FULL makes every commit survive power loss).
    :param manual_checkpoints: SQLite: no automatic WAL checkpoints in commits; run a
        :class:`~herald.adapters.sql.checkpointer.Checkpointer` instead.
    :param idle_ping_s: PostgreSQL: check a pooled connection idle for longer than this before use.
    :returns: a new engine; the caller disposes of it.
    :raises ValueError: ``sqlite_synchronous`` is not a SQLite synchronous mode.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, sqlite_synchronous.upper(), manual_checkpoints)
    engine = create_engine(
        parsed,
        pool_size=PG_POOL_SIZE,
        max_overflow=PG_MAX_OVERFLOW,
        pool_timeout=PG_POOL_TIMEOUT_S,
        pool_recycle=3600,
        **JSON_CODEC,
    )
    lock_timeout_ms = PG_LOCK_TIMEOUT_S * 1000

    def on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute(f"SET lock_timeout = {lock_timeout_ms}")
        dbapi_connection.commit()

    event.listen(engine, "connect", on_connect)
    _ping_when_idle(engine, idle_ping_s)
    return engine


def _ping_when_idle(engine: Engine, idle_s: float) -> None:
    """Check a pooled connection before use only when it sat idle: SQLAlchemy's ``pool_pre_ping``
    checks every checkout, a round trip per unit of work on the hot path. A connection that broke
    while in use is caught anyway: its error invalidates it and the pool's older connections."""

    def on_checkin(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info[_CHECKED_IN_AT] = time.monotonic()

    def on_checkout(dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        checked_in_at = record.info.get(_CHECKED_IN_AT)
        if checked_in_at is None or time.monotonic() - checked_in_at <= idle_s:
            return  # NOTE: new (just connected) or busy: nothing to check
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            # NOTE: the pool drops this connection and checks out another (a new one if need be).
            raise DisconnectionError(f"pooled connection lost: {error}") from error

    event.listen(engine, "checkin", on_checkin)
    event.listen(engine, "checkout", on_checkout)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def is_sqlite_memory(url: URL) -> bool:
    database = url.database or ""
    return database in ("", ":memory:") or (database.startswith("file:") and "mode=memory" in database)


# Connection execution option of a unit of work that only reads.
READ_ONLY_OPTION = "herald_read_only"


def create_private_file(path: Path) -> None:
    """Create the database file (and its directory) readable by its owner only, unless it exists.

    SQLite gives its -wal and -shm files the database file's permissions, so they are private too.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _sqlite_engine(url: URL, synchronous: str, manual_checkpoints: bool) -> Engine:
    if synchronous not in SQLITE_SYNCHRONOUS_MODES:
        raise ValueError(f"sqlite_synchronous must be one of {SQLITE_SYNCHRONOUS_MODES}, not {synchronous!r}")
    connect_args: dict[str, Any] = {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S}
    if is_sqlite_memory(url):
        # NOTE: every connection to ":memory:" is a new, empty database; share one across threads.
        engine = create_engine(url, connect_args=connect_args, poolclass=StaticPool, **JSON_CODEC)
    else:
        if not (url.database or "").startswith("file:"):
            create_private_file(Path(url.database or "").expanduser().resolve())
        engine = create_engine(url, connect_args=connect_args, **JSON_CODEC)

    def on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # NOTE: take transaction control away from pysqlite so that our BEGIN below is the only one.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA synchronous={synchronous}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
            if manual_checkpoints:
                cursor.execute("PRAGMA wal_autocheckpoint=0")
                # NOTE: a WAL that a checkpoint has emptied is cut back to this size when reused.
                cursor.execute(f"PRAGMA journal_size_limit={SQLITE_WAL_SIZE_LIMIT}")
        finally:
            cursor.close()

    def on_begin(connection: Connection) -> None:
        # NOTE: a reader must not take the write lock: in WAL mode it then never blocks the writer.
        if connection.get_execution_options().get(READ_ONLY_OPTION):
            connection.exec_driver_sql("BEGIN")
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    event.listen(engine, "connect", on_connect)
    event.listen(engine, "begin", on_begin)
    return engine
