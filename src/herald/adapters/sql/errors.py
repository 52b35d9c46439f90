"""Which database errors are worth trying again: the database, not the statement, was in the way."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, OperationalError


def is_transient(exc: BaseException) -> bool:
    """True for a lock or busy timeout (SQLite), a serialization failure or deadlock (PostgreSQL,
    both raised as OperationalError by the driver) and a lost connection."""
    if isinstance(exc, OperationalError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated
