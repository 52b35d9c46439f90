"""The external event journal (``external_events``) on SQL."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Integer,
    RowMapping,
    Select,
    bindparam,
    select,
    tuple_,
)

from herald.adapters.sql.driver_sql import executemany, timestamp
from herald.adapters.sql.servers import MAX_IN_LIST
from herald.adapters.sql.tables import external_events
from herald.domain.events import DeliveryState
from herald.domain.records import EventEnvelope, EventRecord

_ev = external_events
FINISHED_STATES = (DeliveryState.HANDLED.value, DeliveryState.FAILED.value, DeliveryState.EXPIRED.value)


def _record(row: RowMapping) -> EventRecord:
    return EventRecord(
        uuid=row["uuid"],
        request_id=row["request_id"],
        server_uuid=row["server_uuid"],
        name=row["name"],
        tag=row["tag"],
        status=row["status"],
        host=row["host"],
        state=row["state"],
        accepted_at=row["accepted_at"],
        dispatched_at=row["dispatched_at"],
        handled_at=row["handled_at"],
        outcome=row["outcome"],
    )


@functools.cache
def _undelivered_statement(include_dispatched: bool, has_older_than: bool) -> Select[Any]:
    states = [DeliveryState.ACCEPTED.value]
    if include_dispatched:
        states.append(DeliveryState.DISPATCHED.value)
    stmt = select(_ev).where(_ev.c.state.in_(states))
    if has_older_than:
        stmt = stmt.where(_ev.c.accepted_at < bindparam("older_than"))
    return stmt.order_by(_ev.c.accepted_at, _ev.c.id).limit(bindparam("limit", type_=Integer()))


class SqlEventJournal:
    """One ``external_events`` row per accepted event and target host, keyed by (uuid, host).

    States move ``accepted`` -> ``dispatched`` -> ``handled`` / ``failed`` / ``expired``; see
    :class:`herald.domain.events.DeliveryState`.

    :param connection: an open connection inside the unit of work's transaction.
    """

    _ARE_FINISHED: Select[Any] = select(_ev.c.uuid, _ev.c.host).where(
        tuple_(_ev.c.uuid, _ev.c.host).in_(bindparam("keys", expanding=True)),
        _ev.c.state.in_(FINISHED_STATES),
    )

    def __init__(self, connection: Connection) -> None:
        self._conn = connection

    _INSERT_SQL = (
        "INSERT INTO external_events (uuid, request_id, server_uuid, name, tag, status, host, state, accepted_at,"
        " dispatched_at, handled_at, outcome) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )
    # NOTE: the agent may finish a delivery before the relay records its hand-off: the time is
    # still written once, and the state only moves forward.
    _DISPATCHED_SQL = (
        "UPDATE external_events SET dispatched_at = ?,"
        " state = CASE WHEN state = 'accepted' THEN 'dispatched' ELSE state END"
        " WHERE uuid = ? AND host = ? AND dispatched_at IS NULL"
    )
    # A finished delivery was necessarily handed off: if the relay's mark has not landed yet,
    # the finish time stands in for it.
    _FINISHED_SQL = (
        "UPDATE external_events SET state = ?, outcome = ?, handled_at = ?, dispatched_at = COALESCE(dispatched_at, ?)"
        " WHERE uuid = ? AND host = ?"
    )

    def record(self, records: Sequence[EventRecord]) -> None:
        """Insert accepted deliveries in one statement.

        :raises sqlalchemy.exc.IntegrityError: a (uuid, host) pair is already recorded.
        """
        if not records:
            return
        conn = self._conn
        rows = [
            (
                r.uuid,
                r.request_id,
                r.server_uuid,
                r.name,
                r.tag,
                r.status,
                r.host,
                r.state,
                timestamp(conn, r.accepted_at),
                timestamp(conn, r.dispatched_at),
                timestamp(conn, r.handled_at),
                r.outcome,
            )
            for r in records
        ]
        executemany(conn, self._INSERT_SQL, rows)

    def mark_dispatched(self, keys: Sequence[tuple[str, str]], now: datetime) -> None:
        """Move these (uuid, host) deliveries from ``accepted`` to ``dispatched``; others stay as they are."""
        if keys:
            at = timestamp(self._conn, now)
            executemany(self._conn, self._DISPATCHED_SQL, [(at, u, h) for u, h in keys])

    _UNDISPATCHED_SQL = (
        "UPDATE external_events SET state = 'accepted', dispatched_at = NULL"
        " WHERE uuid = ? AND host = ? AND state = 'dispatched'"
    )

    def mark_undispatched(self, keys: Sequence[tuple[str, str]]) -> None:
        """Deliveries recorded ``dispatched`` whose hand-off failed go back to ``accepted``."""
        if keys:
            executemany(self._conn, self._UNDISPATCHED_SQL, list(keys))

    def finished(self, keys: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        """:returns: those of the (uuid, host) pairs that are handled, failed or expired."""
        wanted = list(dict.fromkeys(keys))
        done: set[tuple[str, str]] = set()
        for start in range(0, len(wanted), MAX_IN_LIST):
            rows = self._conn.execute(self._ARE_FINISHED, {"keys": wanted[start : start + MAX_IN_LIST]})
            done.update((uuid, host) for uuid, host in rows)
        return done

    def mark_finished(self, results: Sequence[tuple[str, str, str, str | None]], now: datetime) -> None:
        """Set (uuid, host, state, outcome) in one statement; the last outcome written wins.

        A delivery that failed can be finished again when a durable bus redelivers it.
        """
        if results:
            at = timestamp(self._conn, now)
            params = [(state, outcome, at, at, u, h) for u, h, state, outcome in results]
            executemany(self._conn, self._FINISHED_SQL, params)

    def undelivered(self, *, include_dispatched: bool, older_than: datetime | None, limit: int) -> list[EventEnvelope]:
        """Deliveries still ``accepted`` (and ``dispatched`` too, if asked), oldest first.

        :param include_dispatched: also return deliveries handed to the bus but not finished.
        :param older_than: only those accepted before this time (naive UTC), if given.
        :param limit: at most this many.
        :returns: envelopes to publish again (without user and project, which the journal does not keep).
        """
        stmt = _undelivered_statement(include_dispatched, older_than is not None)
        params: dict[str, Any] = {"limit": limit}
        if older_than is not None:
            params["older_than"] = older_than
        return [
            EventEnvelope(
                uuid=row["uuid"],
                request_id=row["request_id"],
                server_uuid=row["server_uuid"],
                name=row["name"],
                tag=row["tag"],
                status=row["status"],
                host=row["host"],
            )
            for row in self._conn.execute(stmt, params).mappings()
        ]

    def pending(self, server_uuid: str, name: str, host: str) -> bool:
        """Whether such an event is accepted or dispatched to ``host`` but not finished yet."""
        stmt = (
            select(_ev.c.id)
            .where(
                _ev.c.server_uuid == server_uuid,
                _ev.c.name == name,
                _ev.c.host == host,
                _ev.c.state.in_((DeliveryState.ACCEPTED.value, DeliveryState.DISPATCHED.value)),
            )
            .limit(1)
        )
        return self._conn.execute(stmt).first() is not None

    def query(
        self,
        *,
        server_uuid: str | None = None,
        request_id: str | None = None,
        state: str | None = None,
        limit: int = 1000,
    ) -> list[EventRecord]:
        """:returns: deliveries matching every given filter, in the order they were recorded."""
        stmt = select(_ev).order_by(_ev.c.id).limit(limit)
        if server_uuid is not None:
            stmt = stmt.where(_ev.c.server_uuid == server_uuid)
        if request_id is not None:
            stmt = stmt.where(_ev.c.request_id == request_id)
        if state is not None:
            stmt = stmt.where(_ev.c.state == state)
        return [_record(row) for row in self._conn.execute(stmt).mappings()]
