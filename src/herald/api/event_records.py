"""``GET /os-server-external-events`` (Herald extension): what happened to each accepted event."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from herald.api.edge import ApiRequest, ApiResponse
from herald.api.faults import ApiFault
from herald.api.policies import EXTERNAL_EVENTS_LIST
from herald.domain.events import DeliveryState
from herald.domain.records import EventRecord
from herald.service.ports import UnitOfWorkFactory

MAX_LIMIT = 1000

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


class EventRecordsController:
    def __init__(self, uow_factory: UnitOfWorkFactory, run: Runner) -> None:
        """:param run: runs the query on a worker thread (:meth:`herald.api.deps.ComputeDeps.run`)."""
        self._uow_factory = uow_factory
        self._run = run

    async def index(self, req: ApiRequest) -> ApiResponse:
        req.authorize(EXTERNAL_EVENTS_LIST)
        query = req.query
        state = query.get("state")
        if state is not None and state not in {s.value for s in DeliveryState}:
            raise ApiFault(400, f"Invalid state {state!r}; one of {', '.join(s.value for s in DeliveryState)}.")
        try:
            limit = min(int(query.get("limit", MAX_LIMIT)), MAX_LIMIT)
        except ValueError:
            raise ApiFault(400, "limit must be an integer.") from None
        records = await self._run(self._query, query.get("server_uuid"), query.get("request_id"), state, limit)
        return ApiResponse(200, {"events": [record_view(r) for r in records]})

    def _query(
        self, server_uuid: str | None, request_id: str | None, state: str | None, limit: int
    ) -> list[EventRecord]:
        with self._uow_factory() as uow:
            return uow.events.query(server_uuid=server_uuid, request_id=request_id, state=state, limit=limit)
