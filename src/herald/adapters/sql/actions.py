"""Server actions and their events (Nova's instance actions) on SQL."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Insert, RowMapping, Select, Update, bindparam, func, select, tuple_

from herald.adapters.sql.driver_sql import RecordColumns, execute_rows, executemany, json_recordset, timestamp
from herald.adapters.sql.tables import server_action_events, server_actions
from herald.domain.records import ActionEvent, ActionStep, ServerAction

_actions = server_actions
_events = server_action_events
_e = server_action_events.alias("e")
# (server, request id) pairs per query: two bound parameters each, well under SQLite's limit.
MAX_PAIRS = 400


def _action(row: RowMapping) -> ServerAction:
    return ServerAction(
        id=row["id"],
        server_uuid=row["server_uuid"],
        action=row["action"],
        request_id=row["request_id"],
        user_id=row["user_id"],
        project_id=row["project_id"],
        start_time=row["start_time"],
        finish_time=row["finish_time"],
        message=row["message"],
    )


def _event(row: RowMapping) -> ActionEvent:
    return ActionEvent(
        event=row["event"],
        start_time=row["start_time"],
        finish_time=row["finish_time"],
        result=row["result"],
        traceback=row["traceback"],
        host=row["host"],
        details=row["details"],
    )


def _event_values(action_id: int, event: ActionEvent) -> dict[str, Any]:
    return {
        "action_id": action_id,
        "event": event.event,
        "start_time": event.start_time,
        "finish_time": event.finish_time,
        "result": event.result,
        "traceback": event.traceback,
        "host": event.host,
        "details": event.details,
    }


class SqlActionRepository:
    """Server actions (``server_actions``) and their events (``server_action_events``).

    When a server has several actions with one request id, the newest (highest id) is "the" action.

    :param connection: an open connection inside the unit of work's transaction.
    """

    _START: Insert = _actions.insert().returning(_actions.c.id, sort_by_parameter_order=True)
    _START_SQL = (
        "INSERT INTO server_actions (server_uuid, action, request_id, user_id, project_id, start_time,"
        " finish_time, message) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    )
    _START_COLUMNS: RecordColumns = (
        ("server_uuid", "text"),
        ("action", "text"),
        ("request_id", "text"),
        ("user_id", "text"),
        ("project_id", "text"),
        ("start_time", "timestamp"),
        ("finish_time", "timestamp"),
        ("message", "text"),
    )
    _START_ROWS_SQL = (
        "INSERT INTO server_actions (server_uuid, action, request_id, user_id, project_id, start_time,"
        f" finish_time, message) SELECT * FROM {json_recordset('u', _START_COLUMNS)}"
    )
    _INSERT_EVENT: Insert = _events.insert()
    # PostgreSQL: the newest action of each (server, request), its new events (in the steps' order)
    # and its updated_at (the last step's start) in one statement.
    _STEP_COLUMNS: RecordColumns = (
        ("server_uuid", "text"),
        ("request_id", "text"),
        ("event", "text"),
        ("start_time", "timestamp"),
        ("finish_time", "timestamp"),
        ("result", "text"),
        ("traceback", "text"),
        ("host", "text"),
        ("details", "text"),
        ("n", "integer"),
    )
    _ADD_EVENTS_ROWS_SQL = (
        f"WITH steps AS (SELECT * FROM {json_recordset('s', _STEP_COLUMNS)}"
        "), newest AS ("
        " SELECT a.server_uuid, a.request_id, max(a.id) AS id FROM server_actions AS a"
        " WHERE (a.server_uuid, a.request_id) IN (SELECT server_uuid, request_id FROM steps)"
        " GROUP BY a.server_uuid, a.request_id"
        "), added AS ("
        " INSERT INTO server_action_events (action_id, event, start_time, finish_time, result, traceback,"
        " host, details)"
        " SELECT newest.id, s.event, s.start_time, s.finish_time, s.result, s.traceback, s.host, s.details"
        " FROM steps AS s JOIN newest USING (server_uuid, request_id) ORDER BY s.n"
        ")"
        " UPDATE server_actions AS a SET updated_at = last.start_time"
        " FROM (SELECT DISTINCT ON (newest.id) newest.id, s.start_time"
        " FROM steps AS s JOIN newest USING (server_uuid, request_id) ORDER BY newest.id, s.n DESC) AS last"
        " WHERE a.id = last.id"
    )
    _NEWEST_ID: Select[Any] = (
        select(_actions.c.id)
        .where(_actions.c.server_uuid == bindparam("server_uuid"), _actions.c.request_id == bindparam("request_id"))
        .order_by(_actions.c.id.desc())
        .limit(1)
    )
    _NEWEST_IDS: Select[Any] = (
        select(_actions.c.server_uuid, _actions.c.request_id, func.max(_actions.c.id))
        .where(tuple_(_actions.c.server_uuid, _actions.c.request_id).in_(bindparam("pairs", expanding=True)))
        .group_by(_actions.c.server_uuid, _actions.c.request_id)
    )
    _NEWEST: Select[Any] = select(_actions).where(_actions.c.id == _NEWEST_ID.scalar_subquery())
    _LIST: Select[Any] = (
        select(_actions)
        .where(_actions.c.server_uuid == bindparam("server_uuid"))
        .order_by(_actions.c.start_time.desc(), _actions.c.id.desc())
    )
    _EVENTS: Select[Any] = (
        select(_events)
        .where(_events.c.action_id == bindparam("action_id"))
        .order_by(_events.c.start_time.desc(), _events.c.id.desc())
    )
    _TOUCH: Update = _actions.update().where(_actions.c.id == bindparam("b_id"))
    _FINISH_EVENT: Update = (
        _events.update()
        .where(
            _events.c.id
            == select(_e.c.id)
            .where(_e.c.action_id == bindparam("b_action_id"), _e.c.event == bindparam("b_event"))
            .order_by(_e.c.id.desc())
            .limit(1)
            .scalar_subquery()
        )
        .values(details=func.coalesce(bindparam("b_details", type_=_events.c.details.type), _events.c.details))
    )

    def __init__(self, connection: Connection) -> None:
        self._conn = connection

    def start(self, actions: Sequence[ServerAction]) -> None:
        """Insert new actions in one statement, setting each one's ``id`` when some have ``events`` (they go
        in a second).

        :param actions: actions not stored yet.
        """
        if not actions:
            return
        rows = [
            {
                "server_uuid": a.server_uuid,
                "action": a.action,
                "request_id": a.request_id,
                "user_id": a.user_id,
                "project_id": a.project_id,
                "start_time": a.start_time,
                "finish_time": a.finish_time,
                "message": a.message,
                "updated_at": None,
            }
            for a in actions
        ]
        if not any(action.events for action in actions):
            # NOTE: no ids wanted (nothing to attach to them): a plain multi-row INSERT, much
            # cheaper than one that returns ids in parameter order (the accept path's case).
            conn = self._conn
            values = [
                (
                    a.server_uuid,
                    a.action,
                    a.request_id,
                    a.user_id,
                    a.project_id,
                    timestamp(conn, a.start_time),
                    timestamp(conn, a.finish_time),
                    a.message,
                )
                for a in actions
            ]
            if conn.dialect.name == "postgresql":
                execute_rows(conn, self._START_ROWS_SQL, self._START_COLUMNS, values)
            else:
                executemany(conn, self._START_SQL, values)
            return
        ids = self._conn.execute(self._START, rows).scalars().all()
        events: list[dict[str, Any]] = []
        for action, action_id in zip(actions, ids, strict=True):
            action.id = action_id
            events.extend(_event_values(action_id, event) for event in action.events)
        if events:
            self._conn.execute(self._INSERT_EVENT, events)

    def add_event(self, server_uuid: str, request_id: str, event: ActionEvent) -> None:
        """Attach ``event`` to the server's action for ``request_id`` and touch the action's ``updated_at``.

        :returns: nothing; an unknown action makes this a no-op.
        """
        self.add_events([(server_uuid, request_id, event)])

    def add_events(self, steps: Sequence[ActionStep]) -> None:
        """:meth:`add_event` for several (server uuid, request id, event) in three statements."""
        if not steps:
            return
        if self._conn.dialect.name == "postgresql":
            values = [
                (
                    server_uuid,
                    request_id,
                    event.event,
                    event.start_time,
                    event.finish_time,
                    event.result,
                    event.traceback,
                    event.host,
                    event.details,
                    position,
                )
                for position, (server_uuid, request_id, event) in enumerate(steps)
            ]
            execute_rows(self._conn, self._ADD_EVENTS_ROWS_SQL, self._STEP_COLUMNS, values)
            return
        pairs = list(dict.fromkeys((server_uuid, request_id) for server_uuid, request_id, _ in steps))
        newest: dict[tuple[str, str], int] = {}
        for start in range(0, len(pairs), MAX_PAIRS):
            rows = self._conn.execute(self._NEWEST_IDS, {"pairs": pairs[start : start + MAX_PAIRS]})
            newest.update({(server_uuid, request_id): action_id for server_uuid, request_id, action_id in rows})
        inserts: list[dict[str, Any]] = []
        touches: dict[int, Any] = {}
        for server_uuid, request_id, event in steps:
            action_id = newest.get((server_uuid, request_id))
            if action_id is None:
                continue
            inserts.append(_event_values(action_id, event))
            touches[action_id] = event.start_time
        if inserts:
            self._conn.execute(self._INSERT_EVENT, inserts)
            self._conn.execute(self._TOUCH, [{"b_id": key, "updated_at": at} for key, at in touches.items()])

    def finish_event(self, server_uuid: str, request_id: str, event: ActionEvent) -> None:
        """Finish the newest event named ``event.event`` under that action.

        Sets its finish_time, result and traceback (and details, when given). As in Nova, an
        ``Error`` result also sets the action's message to ``Error``.

        :returns: nothing; an unknown action or event makes this a no-op.
        """
        action_id = self._newest_id(server_uuid, request_id)
        if action_id is None:
            return
        params = {
            "b_action_id": action_id,
            "b_event": event.event,
            "b_details": event.details,
            "finish_time": event.finish_time,
            "result": event.result,
            "traceback": event.traceback,
        }
        if self._conn.execute(self._FINISH_EVENT, params).rowcount == 0:
            return
        touch: dict[str, Any] = {"b_id": action_id, "updated_at": event.finish_time}
        if (event.result or "").lower() == "error":
            touch["message"] = "Error"
        self._conn.execute(self._TOUCH, touch)

    def list_for_server(self, server_uuid: str) -> list[ServerAction]:
        """:returns: the server's actions, newest first, without their events."""
        return [_action(row) for row in self._conn.execute(self._LIST, {"server_uuid": server_uuid}).mappings()]

    def get(self, server_uuid: str, request_id: str) -> ServerAction | None:
        """:returns: the action with its events (newest first, as Nova lists them), or None."""
        params = {"server_uuid": server_uuid, "request_id": request_id}
        row = self._conn.execute(self._NEWEST, params).mappings().first()
        if row is None:
            return None
        action = _action(row)
        action.events = [_event(e) for e in self._conn.execute(self._EVENTS, {"action_id": action.id}).mappings()]
        return action

    def _newest_id(self, server_uuid: str, request_id: str) -> int | None:
        params = {"server_uuid": server_uuid, "request_id": request_id}
        found: int | None = self._conn.execute(self._NEWEST_ID, params).scalar()
        return found
