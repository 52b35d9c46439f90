"""The external event journal (``external_events``) on SQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import (
    Connection,
    RowMapping,
    func,
    select,
)

from herald.adapters.sql.driver_sql import (
    RecordColumns,
    execute,
    execute_rows,
    executemany,
    fetchall,
    json_recordset,
    membership_tests,
    timestamp,
)
from herald.adapters.sql.servers import MAX_IN_LIST
from herald.adapters.sql.tables import external_events
from herald.domain.errors import MarkerNotFound
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
        id=row["id"],
    )


_FINISHED_STATES = frozenset(
    state.value for state in (DeliveryState.HANDLED, DeliveryState.FAILED, DeliveryState.EXPIRED)
)


class SqlEventJournal:
    """One ``external_events`` row per accepted event and target host, known by its integer id.

    States move ``accepted`` -> ``dispatched`` -> ``handled`` / ``failed`` / ``expired``; see
    :class:`herald.domain.events.DeliveryState`.

    :param connection: an open connection inside the unit of work's transaction.
    """

    def __init__(self, connection: Connection) -> None:
        self._conn = connection

    _INSERT_SQL = (
        "INSERT INTO external_events (id, uuid, request_id, server_uuid, name, tag, status, host, state,"
        " accepted_at, dispatched_at, handled_at, outcome, claimed_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )
    _RECORD_COLUMNS: RecordColumns = (
        ("id", "bigint"),
        ("uuid", "text"),
        ("request_id", "text"),
        ("server_uuid", "text"),
        ("name", "text"),
        ("tag", "text"),
        ("status", "text"),
        ("host", "text"),
        ("state", "text"),
        ("accepted_at", "timestamp"),
        ("dispatched_at", "timestamp"),
        ("handled_at", "timestamp"),
        ("outcome", "text"),
        ("claimed_at", "timestamp"),
    )
    _INSERT_ROWS_SQL = (
        "INSERT INTO external_events (id, uuid, request_id, server_uuid, name, tag, status, host, state,"
        " accepted_at, dispatched_at, handled_at, outcome, claimed_at)"
        f" SELECT * FROM {json_recordset('u', _RECORD_COLUMNS)}"
    )
    # NOTE: the agent may finish a delivery before the relay records its hand-off: the time is
    # still written once, and the state only moves forward.
    _DISPATCHED_SQL = (
        "UPDATE external_events SET dispatched_at = ?,"
        " state = CASE WHEN state = 'accepted' THEN 'dispatched' ELSE state END"
        " WHERE id {} AND dispatched_at IS NULL"
    )
    # NOTE: PostgreSQL: a row locked now is being finished by its agent, whose finish writes the
    # hand-off time too: skipped, so that the relay's writer (the API's) never waits for an agent.
    _DISPATCHED_UNLOCKED_SQL = (
        "UPDATE external_events SET dispatched_at = ?,"
        " state = CASE WHEN state = 'accepted' THEN 'dispatched' ELSE state END"
        " WHERE id IN (SELECT id FROM external_events WHERE id = ANY(?::bigint[]) AND dispatched_at IS NULL"
        " FOR UPDATE SKIP LOCKED)"
    )
    # NOTE: keyset pages by id: a pass reaches every unfinished row however many there are.
    _CLAIMABLE_SQL = (
        "SELECT id, uuid, request_id, server_uuid, name, tag, status, host FROM external_events"
        " WHERE state IN ('accepted', 'dispatched') AND id > ? AND (claimed_at IS NULL OR claimed_at < ?)"
        " ORDER BY id LIMIT ?"
    )
    _CLAIM_SQL = "UPDATE external_events SET claimed_at = ? WHERE id {}"
    _RELEASE_SQL = "UPDATE external_events SET claimed_at = NULL WHERE id {}"
    # A finished delivery was necessarily handed off: if the relay's mark has not landed yet,
    # the finish time stands in for it.
    _FINISHED_SQL = (
        "UPDATE external_events SET state = ?, outcome = ?, handled_at = ?, dispatched_at = COALESCE(dispatched_at, ?)"
        " WHERE id = ?"
    )
    _FINISH_COLUMNS: RecordColumns = (("id", "bigint"), ("state", "text"), ("outcome", "text"))
    _FINISHED_ROWS_SQL = (
        "UPDATE external_events AS e SET state = u.state, outcome = u.outcome, handled_at = ?,"
        " dispatched_at = COALESCE(e.dispatched_at, ?)"
        f" FROM {json_recordset('u', _FINISH_COLUMNS)} WHERE e.id = u.id"
    )
    # NOTE: the states are tested here, not in SQL: a test on state tempts PostgreSQL's planner into
    # the state index (most rows are finished) while its statistics lag behind a fast-growing table.
    _STATES_SQL = "SELECT id, state FROM external_events WHERE id {}"
    _MAX_ID_SQL = "SELECT COALESCE(MAX(id), 0) FROM external_events"
    _NEXT_IDS_SQL = "SELECT nextval(pg_get_serial_sequence('external_events', 'id')) FROM generate_series(1, ?)"

    def reserve_ids(self, count: int) -> list[int]:
        """Ids for ``count`` new rows.

        SQLite: above the current maximum (the transaction holds the database's write lock, so
        no other writer can take the same ones). PostgreSQL: from the id column's sequence.
        """
        if count <= 0:
            return []
        if self._conn.dialect.name == "sqlite":
            ((top,),) = fetchall(self._conn, self._MAX_ID_SQL, [])
            return list(range(top + 1, top + 1 + count))
        return [row[0] for row in fetchall(self._conn, self._NEXT_IDS_SQL, [count])]

    def record(self, records: Sequence[EventRecord]) -> None:
        """Insert accepted deliveries in one statement; each carries an id from :meth:`reserve_ids`.

        :raises sqlalchemy.exc.IntegrityError: an id is already taken.
        """
        if not records:
            return
        conn = self._conn
        stamps: dict[datetime | None, datetime | str | None] = {None: None}

        def stamp(value: datetime | None) -> datetime | str | None:
            # NOTE: a batch shares one accept time; format it once.
            if value not in stamps:
                stamps[value] = timestamp(conn, value)
            return stamps[value]

        rows = [
            (
                r.id,
                r.uuid,
                r.request_id,
                r.server_uuid,
                r.name,
                r.tag,
                r.status,
                r.host,
                r.state,
                stamp(r.accepted_at),
                stamp(r.dispatched_at),
                stamp(r.handled_at),
                r.outcome,
                # NOTE: the accepting process's relay publishes its rows itself: claimed from the start.
                stamp(r.accepted_at),
            )
            for r in records
        ]
        if conn.dialect.name == "postgresql":
            execute_rows(conn, self._INSERT_ROWS_SQL, self._RECORD_COLUMNS, rows)
        else:
            executemany(conn, self._INSERT_SQL, rows)

    def mark_dispatched(self, ids: Sequence[int], now: datetime) -> None:
        """Move these deliveries from ``accepted`` to ``dispatched``; others stay as they are.

        PostgreSQL: a delivery whose row another transaction holds (its agent finishing it) is left
        to that transaction, whose finish records the hand-off time as well.
        """
        if ids:
            at = timestamp(self._conn, now)
            if self._conn.dialect.name == "postgresql":
                execute(self._conn, self._DISPATCHED_UNLOCKED_SQL, [at, list(ids)])
                return
            # NOTE: one statement for the batch (its rows are many, on the relay's hot path).
            for test, values in membership_tests(self._conn, ids, "bigint", MAX_IN_LIST):
                execute(self._conn, self._DISPATCHED_SQL.format(test), [at, *values])

    def claim(self, *, after_id: int, claimed_before: datetime, now: datetime, limit: int) -> list[EventEnvelope]:
        """Take for publishing up to ``limit`` unfinished deliveries with an id above ``after_id``, by id.

        A delivery is free when nobody claimed it, or its claim is older than ``claimed_before``
        (its relay died, or its hand-off was never finished). On PostgreSQL the rows another
        relay is claiming right now are skipped (``FOR UPDATE SKIP LOCKED``); SQLite has a single
        writer, so the claim is whole at once.
        """
        sql = self._CLAIMABLE_SQL
        if self._conn.dialect.name == "postgresql":
            sql += " FOR UPDATE SKIP LOCKED"
        conn = self._conn
        rows = fetchall(conn, sql, [after_id, timestamp(conn, claimed_before), limit])
        if rows:
            at = timestamp(conn, now)
            for test, values in membership_tests(conn, [row[0] for row in rows], "bigint", MAX_IN_LIST):
                execute(conn, self._CLAIM_SQL.format(test), [at, *values])
        return [
            EventEnvelope(uuid, request_id, server_uuid, name, tag, status, host, id=row_id)
            for row_id, uuid, request_id, server_uuid, name, tag, status, host in rows
        ]

    def release(self, ids: Sequence[int]) -> None:
        """Deliveries whose publish failed are free again for the next pass of any relay."""
        for test, values in membership_tests(self._conn, ids, "bigint", MAX_IN_LIST):
            execute(self._conn, self._RELEASE_SQL.format(test), values)

    def finished(self, ids: Sequence[int]) -> set[int]:
        """:returns: those of the deliveries that are handled, failed or expired."""
        wanted = list(dict.fromkeys(ids))
        done: set[int] = set()
        for test, values in membership_tests(self._conn, wanted, "bigint", MAX_IN_LIST):
            rows = fetchall(self._conn, self._STATES_SQL.format(test), values)
            done.update(row_id for row_id, state in rows if state in _FINISHED_STATES)
        return done

    def mark_finished(self, results: Sequence[tuple[int, str, str | None]], now: datetime) -> None:
        """Set (id, state, outcome) in one statement; the last outcome written wins.

        A delivery that failed can be finished again when a durable bus redelivers it.
        """
        if not results:
            return
        at = timestamp(self._conn, now)
        if self._conn.dialect.name == "postgresql":
            # NOTE: one row per id (an UPDATE ... FROM would apply just one of several, at random).
            last = {row_id: (row_id, state, outcome) for row_id, state, outcome in results}
            execute_rows(self._conn, self._FINISHED_ROWS_SQL, self._FINISH_COLUMNS, list(last.values()), at, at)
        else:
            params = [(state, outcome, at, at, row_id) for row_id, state, outcome in results]
            executemany(self._conn, self._FINISHED_SQL, params)

    _UNFINISHED_ON_SQL = (
        "SELECT id, uuid, request_id, server_uuid, name, tag, status, host FROM external_events"
        " WHERE host = ? AND id > ? AND state IN ('accepted', 'dispatched') ORDER BY id LIMIT ?"
    )

    def unfinished_on(self, host: str, *, after_id: int, limit: int) -> list[EventEnvelope]:
        """Up to ``limit`` unfinished deliveries to ``host`` with an id above ``after_id``, by id (a page)."""
        rows = fetchall(self._conn, self._UNFINISHED_ON_SQL, [host, after_id, limit])
        return [
            EventEnvelope(uuid, request_id, server_uuid, name, tag, status, to_host, id=row_id)
            for row_id, uuid, request_id, server_uuid, name, tag, status, to_host in rows
        ]

    _UNFINISHED_BEFORE_SQL = (
        "SELECT id, uuid, request_id, server_uuid, name, tag, status, host FROM external_events"
        " WHERE host = ? AND id < ? AND state IN ('accepted', 'dispatched') AND server_uuid {} ORDER BY id"
    )

    def unfinished_before(self, host: str, server_uuids: Sequence[str], before_id: int) -> list[EventEnvelope]:
        """Unfinished deliveries to ``host`` for these servers with an id below ``before_id``, by id."""
        wanted = list(dict.fromkeys(server_uuids))
        found: list[EventEnvelope] = []
        for test, values in membership_tests(self._conn, wanted, "text", MAX_IN_LIST):
            sql = self._UNFINISHED_BEFORE_SQL.format(test)
            for row_id, uuid, request_id, server_uuid, name, tag, status, to_host in fetchall(
                self._conn, sql, [host, before_id, *values]
            ):
                found.append(EventEnvelope(uuid, request_id, server_uuid, name, tag, status, to_host, id=row_id))
        return sorted(found, key=lambda envelope: envelope.id)

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

    def pending_servers(self, name: str, host: str) -> set[str]:
        """The servers with such an event accepted or dispatched to ``host`` but not finished (one query)."""
        stmt = (
            select(_ev.c.server_uuid)
            .distinct()
            .where(
                _ev.c.name == name,
                _ev.c.host == host,
                _ev.c.state.in_((DeliveryState.ACCEPTED.value, DeliveryState.DISPATCHED.value)),
            )
        )
        return set(self._conn.execute(stmt).scalars())

    def query(
        self,
        *,
        server_uuid: str | None = None,
        request_id: str | None = None,
        state: str | None = None,
        limit: int = 1000,
        marker: str | None = None,
    ) -> list[EventRecord]:
        """Deliveries matching every given filter, newest first, after the event ``marker``.

        A page never splits an event: when its last event went to several hosts, the rows of
        the other hosts come with it (an event's rows have adjacent ids, reserved together).

        :raises MarkerNotFound: no event has the id ``marker``.
        """
        stmt = select(_ev)
        if server_uuid is not None:
            stmt = stmt.where(_ev.c.server_uuid == server_uuid)
        if request_id is not None:
            stmt = stmt.where(_ev.c.request_id == request_id)
        if state is not None:
            stmt = stmt.where(_ev.c.state == state)
        newest_first = stmt.order_by(_ev.c.id.desc())
        page = newest_first if marker is None else newest_first.where(_ev.c.id < self._first_row(marker))
        rows = list(self._conn.execute(page.limit(limit)).mappings())
        if rows and len(rows) == limit:
            last = rows[-1]
            rows.extend(
                self._conn.execute(newest_first.where(_ev.c.uuid == last["uuid"], _ev.c.id < last["id"])).mappings()
            )
        return [_record(row) for row in rows]

    def _first_row(self, event_uuid: str) -> int:
        first: int | None = self._conn.execute(select(func.min(_ev.c.id)).where(_ev.c.uuid == event_uuid)).scalar()
        if first is None:
            raise MarkerNotFound(event_uuid)
        return first
