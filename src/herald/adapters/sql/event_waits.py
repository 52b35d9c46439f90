"""The events operations wait for right now (the ``event_waits`` table)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, delete, select, tuple_

from herald.adapters.sql.tables import event_waits
from herald.domain.records import EventWaitRecord


class SqlEventWaitRepository:
    """:param connection: an open connection inside the unit of work's transaction."""

    def __init__(self, connection: Connection) -> None:
        self._conn = connection

    def put(self, waits: Sequence[EventWaitRecord]) -> None:
        """Record these waits, replacing any row for the same (server, host, event key)."""
        if not waits:
            return
        self.remove(waits)
        self._conn.execute(
            event_waits.insert(),
            [
                {
                    "server_uuid": w.server_uuid,
                    "host": w.host,
                    "event_key": w.key,
                    "name": w.name,
                    "tag": w.tag,
                    "since": w.since,
                    "until": w.until,
                }
                for w in waits
            ],
        )

    def remove(self, waits: Sequence[EventWaitRecord]) -> None:
        if not waits:
            return
        columns = tuple_(event_waits.c.server_uuid, event_waits.c.host, event_waits.c.event_key)
        self._conn.execute(delete(event_waits).where(columns.in_([(w.server_uuid, w.host, w.key) for w in waits])))

    def clear_host(self, host: str) -> None:
        """Forget every wait of ``host`` (its agent starts again: none of them is running)."""
        self._conn.execute(delete(event_waits).where(event_waits.c.host == host))

    def list(self, *, server_uuid: str | None = None, limit: int | None = None) -> list[EventWaitRecord]:
        """Current waits, oldest first."""
        stmt = select(event_waits).order_by(event_waits.c.since, event_waits.c.event_key)
        if server_uuid is not None:
            stmt = stmt.where(event_waits.c.server_uuid == server_uuid)
        if limit is not None:
            stmt = stmt.limit(limit)
        return [
            EventWaitRecord(
                server_uuid=row["server_uuid"],
                host=row["host"],
                name=row["name"],
                tag=row["tag"],
                since=row["since"],
                until=row["until"],
            )
            for row in self._conn.execute(stmt).mappings()
        ]
