"""Hand-written SQL for the journal's hot statements, run straight through the DB-API driver.

SQLAlchemy's per-row parameter processing costs more than SQLite's own work for the
thousands of journal rows a second the accept path writes; these statements skip it.
They are written once with ``?`` placeholders and adapted to the driver's style.
"""

from __future__ import annotations

import functools
from datetime import datetime

from sqlalchemy import Connection

# SQLAlchemy's SQLite DATETIME storage format: values written here read back as datetimes.
_SQLITE_DATETIME = "%Y-%m-%d %H:%M:%S.%f"


@functools.cache
def _adapt(sql: str, paramstyle: str) -> str:
    return sql if paramstyle == "qmark" else sql.replace("?", "%s")


def statement(conn: Connection, sql: str) -> str:
    """``sql`` with the placeholders of ``conn``'s driver."""
    return _adapt(sql, conn.dialect.paramstyle)


def timestamp(conn: Connection, value: datetime | None) -> datetime | str | None:
    """A datetime as ``conn``'s driver should receive it for a DateTime column."""
    if value is None or conn.dialect.name != "sqlite":
        return value
    return value.strftime(_SQLITE_DATETIME)
