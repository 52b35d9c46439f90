"""Compute hosts (the ``services`` table) on SQL."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Insert, RowMapping, Select, bindparam, select

from herald.adapters.sql.dialect_insert import dialect_insert
from herald.adapters.sql.tables import services
from herald.domain.model import ComputeHost

COMPUTE_BINARY = "herald-compute"


@functools.cache
def _heartbeat(dialect_name: str) -> Insert:
    """INSERT a service row, or on (host, binary) conflict just mark it seen."""
    stmt = dialect_insert(dialect_name)(services)
    seen = stmt.excluded.last_seen_up
    result: Insert = stmt.on_conflict_do_update(
        index_elements=[services.c.host, services.c.binary],
        set_={"last_seen_up": seen, "updated_at": seen},
    )
    return result


def _host(row: RowMapping) -> ComputeHost:
    return ComputeHost(
        id=row["id"],
        host=row["host"],
        disabled=row["disabled"],
        disabled_reason=row["disabled_reason"],
        last_seen_up=row["last_seen_up"],
        forced_down=row["forced_down"],
    )


class SqlHostRepository:
    """Compute hosts: one ``services`` row per host (binary ``herald-compute``).

    :param connection: an open connection inside the unit of work's transaction.
    """

    _LIST: Select[Any] = select(services).where(services.c.binary == COMPUTE_BINARY).order_by(services.c.host)
    _GET: Select[Any] = _LIST.where(services.c.host == bindparam("host"))

    def __init__(self, connection: Connection) -> None:
        self._conn = connection

    def list(self) -> list[ComputeHost]:
        """:returns: every compute host, by name."""
        return [_host(row) for row in self._conn.execute(self._LIST).mappings()]

    def get(self, host: str) -> ComputeHost | None:
        """:returns: the named compute host, or None if it never reported."""
        row = self._conn.execute(self._GET, {"host": host}).mappings().first()
        return None if row is None else _host(row)

    def heartbeat(self, host: str, now: datetime) -> None:
        """Create the host's record if missing (enabled) and mark it seen at ``now``, in one statement.

        :param host: the compute host's name.
        :param now: naive UTC.
        :raises KeyError: the database is neither SQLite nor PostgreSQL.
        """
        params = {
            "host": host,
            "binary": COMPUTE_BINARY,
            "disabled": False,
            "forced_down": False,
            "last_seen_up": now,
            "created_at": now,
        }
        self._conn.execute(_heartbeat(self._conn.dialect.name), params)
