"""Which database errors mean "unavailable for now" rather than "this statement is wrong"."""

from __future__ import annotations

from sqlalchemy import exc as sa_exc

# SQLite's messages for another connection holding the lock past the busy timeout.
_SQLITE_BUSY = ("database is locked", "database table is locked", "database is busy")


def is_transient(error: BaseException) -> bool:
    """True when trying the same work again later may succeed: SQLite locked or busy, a
    PostgreSQL server unreachable, a connection lost, a lock or serialization conflict, or no
    free connection in the pool before its timeout."""
    if isinstance(error, sa_exc.TimeoutError):
        return True
    if not isinstance(error, sa_exc.DBAPIError):
        return False
    if error.connection_invalidated:
        return True
    if not isinstance(error, sa_exc.OperationalError):
        return False
    if type(error.orig).__module__.startswith("sqlite3"):
        message = str(error.orig).lower()
        return any(busy in message for busy in _SQLITE_BUSY)
    # NOTE: psycopg's OperationalError covers connection failures, lock timeouts, deadlocks and
    # serialization failures; the statement-shaped errors are ProgrammingError or DataError.
    return True
