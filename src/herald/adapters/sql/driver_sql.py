"""Hand-written SQL for the journal's hot statements, run straight through the DB-API driver.

SQLAlchemy's per-row parameter processing costs more than SQLite's own work for the
thousands of journal rows a second the accept path writes; these statements skip it.
They are written once with ``?`` placeholders and adapted to the driver's style.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

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


@contextmanager
def _driver_cursor(conn: Connection, sql: str, params: Sequence[Any]) -> Iterator[Any]:
    """The driver's own cursor, inside ``conn``'s transaction; its errors raised as SQLAlchemy's."""
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        yield cursor
    except conn.dialect.loaded_dbapi.Error as error:
        raise _as_sqlalchemy_error(conn, sql, params, error) from error
    finally:
        cursor.close()


def executemany(conn: Connection, sql: str, rows: Sequence[Sequence[object]]) -> None:
    """Run ``sql`` once per row on the driver's own cursor, inside ``conn``'s transaction.

    Even ``exec_driver_sql`` costs tens of microseconds a call; on the accept path that is
    as much as SQLite's work for the statement.
    """
    sql = statement(conn, sql)
    with _driver_cursor(conn, sql, rows) as cursor:
        cursor.executemany(sql, rows)


# (name, PostgreSQL type) of each column of rows passed as one JSON parameter.
RecordColumns = tuple[tuple[str, str], ...]


def json_recordset(alias: str, columns: RecordColumns) -> str:
    """PostgreSQL: the rows of one JSON parameter (see :func:`execute_rows`) as a table ``alias``."""
    return f"json_to_recordset(?::json) AS {alias}({', '.join(f'{name} {kind}' for name, kind in columns)})"


def execute_rows(
    conn: Connection, sql: str, columns: RecordColumns, rows: Sequence[Sequence[object]], *before: object
) -> None:
    """PostgreSQL: run ``sql`` once for all ``rows``, passed (after the ``before`` parameters) as one
    JSON array of objects that the statement reads with :func:`json_recordset`.

    One statement costs the server one parse, plan and executor start-up, where a pipelined
    ``executemany`` costs one per row, and the driver one message instead of one per row; a JSON
    document is encoded in C, where the driver builds array parameters in Python. It runs through
    SQLAlchemy (once per batch, its cost does not matter), whose events see it.
    """
    names = [name for name, _ in columns]
    document = orjson.dumps([dict(zip(names, row, strict=True)) for row in rows]).decode()
    conn.exec_driver_sql(statement(conn, sql), (*before, document))


def execute(conn: Connection, sql: str, params: Sequence[object]) -> None:
    """Run one statement on the driver's own cursor, inside ``conn``'s transaction (not
    ``executemany``: psycopg pipelines that, which costs more than the statement for one row)."""
    sql = statement(conn, sql)
    with _driver_cursor(conn, sql, params) as cursor:
        cursor.execute(sql, params)


def membership_tests(
    conn: Connection, values: Sequence[object], array_type: str, chunk: int
) -> list[tuple[str, list[object]]]:
    """How to test a column against ``values``: (SQL, parameters) per statement to run.

    PostgreSQL: one ``= ANY(array)``, so that every count of values is one prepared statement;
    SQLite: ``IN (?, ...)`` lists of at most ``chunk`` values (its limit on parameters). No values:
    nothing to run.
    """
    if not values:
        return []
    if conn.dialect.name == "postgresql":
        return [(f"= ANY(?::{array_type}[])", [list(values)])]
    return [
        (f"IN ({placeholders(len(part))})", list(part))
        for part in (values[start : start + chunk] for start in range(0, len(values), chunk))
    ]


def fetchall(conn: Connection, sql: str, params: Sequence[object]) -> list[tuple[Any, ...]]:
    """Rows of one query on the driver's own cursor, inside ``conn``'s transaction."""
    sql = statement(conn, sql)
    with _driver_cursor(conn, sql, params) as cursor:
        cursor.execute(sql, params)
        rows: list[tuple[Any, ...]] = cursor.fetchall()
    return rows


def _as_sqlalchemy_error(conn: Connection, sql: str, params: Sequence[Any], error: Exception) -> BaseException:
    """The SQLAlchemy exception the same failure raises through ``Connection.execute``."""
    dbapi_error: type[Exception] = conn.dialect.loaded_dbapi.Error
    return DBAPIError.instance(sql, params, error, dbapi_error)


@functools.cache
def placeholders(count: int) -> str:
    """``?, ?, ...`` for an IN list of ``count`` values."""
    return ", ".join("?" * count)
