"""``/servers/{id}/os-instance-actions``: a server's actions and their events (Nova's ``instance_actions.py``).

Per microversion: 2.21 reads a deleted server's actions; 2.51 shows events (without
traceback) to those who may not see all of them; 2.58 adds ``updated_at`` and paging;
2.62 adds ``hostId`` for everyone and ``host`` for admins; 2.84 adds ``details``.
"""

from __future__ import annotations

from typing import Any

from starlette.routing import BaseRoute

from herald.api.deps import ComputeDeps, caller, can, limit_and_marker
from herald.api.edge import ApiRequest, ApiResponse, Edge
from herald.api.faults import ApiFault
from herald.api.microversion import APIVersion
from herald.api.views.common import next_link, strtime
from herald.api.views.servers import host_id
from herald.domain.errors import ActionNotFound
from herald.domain.records import ActionEvent, ServerAction
from herald.service import server_queries

RULE = "os_compute_api:os-instance-actions:"


def _updated_at(action: ServerAction) -> str | None:
    # NOTE: Nova sets updated_at when the action starts and whenever one of its events does.
    stamps = [action.start_time, *(e.start_time for e in action.events), *(e.finish_time for e in action.events)]
    return strtime(max(s for s in stamps if s is not None))


def format_action(req: ApiRequest, action: ServerAction) -> dict[str, Any]:
    body: dict[str, Any] = {
        "action": action.action,
        "instance_uuid": action.server_uuid,
        "request_id": action.request_id,
        "user_id": action.user_id,
        "project_id": action.project_id,
        "start_time": strtime(action.start_time),
        "message": action.message,
    }
    if req.version >= APIVersion(2, 58):
        body["updated_at"] = _updated_at(action)
    return body


def format_event(
    event: ActionEvent, project_id: str, *, traceback: bool, host: bool, hostid: bool, details: bool
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "event": event.event,
        "start_time": strtime(event.start_time),
        "finish_time": strtime(event.finish_time),
        "result": event.result,
    }
    if traceback:
        body["traceback"] = event.traceback
    if host:
        body["host"] = event.host
    if hostid:
        body["hostId"] = host_id(project_id, event.host)
    if details:
        body["details"] = event.details
    return body


class InstanceActionsController:
    def __init__(self, deps: ComputeDeps) -> None:
        self._deps = deps

    async def index(self, req: ApiRequest) -> ApiResponse:
        server, actions = await self._deps.run(
            server_queries.list_actions,
            self._deps.read_uow_factory(),
            caller(req),
            req.path_params["server_id"],
            include_deleted=req.version >= APIVersion(2, 21),
        )
        req.authorize(RULE + "list", {"project_id": server.project_id})
        body: dict[str, Any] = {}
        if req.version >= APIVersion(2, 58):
            actions, body["links"] = _page(req, actions)
            if not body["links"]:
                del body["links"]
        return ApiResponse(200, {"instanceActions": [format_action(req, a) for a in actions], **body})

    async def show(self, req: ApiRequest) -> ApiResponse:
        request_id = req.path_params["request_id"]
        try:
            server, action = await self._deps.run(
                server_queries.get_action,
                self._deps.read_uow_factory(),
                caller(req),
                req.path_params["server_id"],
                request_id,
                include_deleted=req.version >= APIVersion(2, 21),
            )
        except ActionNotFound:
            raise ApiFault(404, f"Action {request_id} not found") from None
        target = {"project_id": server.project_id}
        req.authorize(RULE + "show", target)
        body = format_action(req, action)
        all_events = can(req, RULE + "events", target)
        if all_events or req.version >= APIVersion(2, 51):
            details = req.version >= APIVersion(2, 84) and can(req, RULE + "events:details", target)
            body["events"] = [
                format_event(
                    event,
                    action.project_id or server.project_id,
                    traceback=all_events,
                    host=all_events and req.version >= APIVersion(2, 62),
                    hostid=req.version >= APIVersion(2, 62),
                    details=details,
                )
                for event in action.events
            ]
        return ApiResponse(200, {"instanceAction": body})


def _page(req: ApiRequest, actions: list[ServerAction]) -> tuple[list[ServerAction], list[dict[str, str]]]:
    """2.58 paging by ``limit`` and ``marker`` (a request id), with a ``next`` link when a page is full."""
    limit, marker = limit_and_marker(req)
    if marker is not None:
        index = next((i for i, a in enumerate(actions) if a.request_id == marker), None)
        if index is None:
            raise ApiFault(400, f"Marker {marker} could not be found.")
        actions = actions[index + 1 :]
    actions = actions[:limit]
    if "limit" in req.query and actions and len(actions) == limit:
        server_id = req.path_params["server_id"]
        return actions, next_link(req, f"servers/{server_id}/os-instance-actions", actions[-1].request_id)
    return actions, []


def instance_action_routes(edge: Edge, deps: ComputeDeps) -> list[BaseRoute]:
    api = InstanceActionsController(deps)
    return [
        *edge.routes("/servers/{server_id}/os-instance-actions", api.index, methods=["GET"]),
        *edge.routes("/servers/{server_id}/os-instance-actions/{request_id}", api.show, methods=["GET"]),
    ]
