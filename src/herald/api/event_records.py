"""``GET /os-server-external-events`` (Herald extension): what happened to each accepted event.

``state=waiting`` lists instead the events operations wait for right now (``name``, ``tag``,
``host``, ``since``, ``until``: the wait's deadline), as every agent records them.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from herald.api.deps import limit_and_marker
from herald.api.edge import ApiRequest, ApiResponse
from herald.api.faults import ApiFault
from herald.api.policies import EXTERNAL_EVENTS_LIST
from herald.api.views.common import next_link
from herald.domain.errors import MarkerNotFound
from herald.domain.events import DeliveryState
from herald.domain.records import EventRecord, EventWaitRecord
from herald.domain.uuids import is_uuid_like
from herald.service.ports import UnitOfWorkFactory

Runner = Callable[..., Awaitable[Any]]


def _iso(value: object) -> str | None:
    return None if value is None else value.isoformat()  # type: ignore[attr-defined]


def record_view(record: EventRecord) -> dict[str, Any]:
    return {
        "id": record.uuid,
        "request_id": record.request_id,
        "server_uuid": record.server_uuid,
        "name": record.name,
        "tag": record.tag,
        "status": record.status,
        "host": record.host,
        "state": record.state,
        "accepted_at": _iso(record.accepted_at),
        "dispatched_at": _iso(record.dispatched_at),
        "handled_at": _iso(record.handled_at),
        "outcome": record.outcome,
    }


WAITING = "waiting"


def wait_view(wait: EventWaitRecord) -> dict[str, Any]:
    return {
        "server_uuid": wait.server_uuid,
        "name": wait.name,
        "tag": wait.tag,
        "host": wait.host,
        "state": WAITING,
        "since": _iso(wait.since),
        "until": _iso(wait.until),
    }


@dataclass(frozen=True, slots=True)
class _Filters:
    server_uuid: str | None
    request_id: str | None
    state: str | None
    limit: int
    marker: str | None


class EventRecordsController:
    """Newest first, paged as Nova's lists are: ``limit`` (capped), ``marker`` (an event id), a next link."""

    def __init__(self, uow_factory: UnitOfWorkFactory, run: Runner) -> None:
        """:param run: runs the query on a worker thread (:meth:`herald.api.deps.ComputeDeps.run`)."""
        self._uow_factory = uow_factory
        self._run = run

    async def index(self, req: ApiRequest) -> ApiResponse:
        req.authorize(EXTERNAL_EVENTS_LIST)
        filters = _filters(req)
        if filters.state == WAITING:
            waits = await self._run(self._waits, filters)
            return ApiResponse(200, {"events": [wait_view(w) for w in waits]})
        records = await self._run(self._query, filters)
        body: dict[str, Any] = {"events": [record_view(r) for r in records]}
        if records and len(records) >= filters.limit:
            body["events_links"] = next_link(req, "os-server-external-events", records[-1].uuid)
        return ApiResponse(200, body)

    def _waits(self, filters: _Filters) -> list[EventWaitRecord]:
        with self._uow_factory() as uow:
            return uow.event_waits.list(server_uuid=filters.server_uuid, limit=filters.limit)

    def _query(self, filters: _Filters) -> list[EventRecord]:
        with self._uow_factory() as uow:
            return uow.events.query(
                server_uuid=filters.server_uuid,
                request_id=filters.request_id,
                state=filters.state,
                limit=filters.limit,
                marker=filters.marker,
            )


def _filters(req: ApiRequest) -> _Filters:
    query = req.query
    state = query.get("state")
    states = [*(s.value for s in DeliveryState), WAITING]
    if state is not None and state not in states:
        raise ApiFault(400, f"Invalid state {state!r}; one of {', '.join(states)}.")
    if state == WAITING and ("marker" in query or "request_id" in query):
        raise ApiFault(400, "The current waits (state=waiting) are filtered by server_uuid and limit only.")
    server_uuid = query.get("server_uuid")
    if server_uuid is not None:
        if not is_uuid_like(server_uuid):
            raise ApiFault(
                400,
                f"Invalid input for field/attribute server_uuid. Value: {server_uuid}. {server_uuid!r} is not a 'uuid'",
            )
        server_uuid = str(uuid.UUID(server_uuid))
    request_id = query.get("request_id")
    limit, marker = limit_and_marker(req)
    if marker is not None:
        if not is_uuid_like(marker):
            raise MarkerNotFound(marker)
        marker = str(uuid.UUID(marker))
    return _Filters(server_uuid, request_id, state, limit, marker)
