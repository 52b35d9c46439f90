"""``GET /os-services``: the compute hosts as Nova's ``nova-compute`` services, up or down."""

from __future__ import annotations

import uuid as uuidlib
from typing import Any

from starlette.routing import BaseRoute

from herald.api.deps import ComputeDeps
from herald.api.edge import ApiRequest, ApiResponse, Edge
from herald.api.microversion import APIVersion
from herald.api.views.common import strtime
from herald.service import server_queries
from herald.service.scheduler import HostStatus

RULE = "os_compute_api:os-services:list"
# NOTE: clients filter on Nova's binary name (``openstack compute service list --service nova-compute``).
COMPUTE_BINARY = "nova-compute"
ZONE = "nova"
_SERVICE_NAMESPACE = uuidlib.UUID("6f3a1c52-2f0c-4a57-9a3e-8d0b0a7f4e11")


def service_uuid(host: str) -> str:
    """A stable uuid per compute host, for the 2.53+ ``id`` (the services table keys by integer)."""
    return str(uuidlib.uuid5(_SERVICE_NAMESPACE, f"{host}/{COMPUTE_BINARY}"))


def service_view(req: ApiRequest, status: HostStatus) -> dict[str, Any]:
    host = status.host
    body: dict[str, Any] = {
        "id": service_uuid(host.host) if req.version >= APIVersion(2, 53) else host.id,
        "binary": COMPUTE_BINARY,
        "host": host.host,
        "zone": ZONE,
        "status": "disabled" if host.disabled else "enabled",
        "state": "up" if status.up else "down",
        "updated_at": strtime(host.last_seen_up),
        "disabled_reason": host.disabled_reason,
    }
    if req.version >= APIVersion(2, 11):
        body["forced_down"] = host.forced_down
    return body


class ServicesController:
    def __init__(self, deps: ComputeDeps) -> None:
        self._deps = deps

    async def index(self, req: ApiRequest) -> ApiResponse:
        req.authorize(RULE, {})
        deps = self._deps
        statuses = await self._deps.run(
            server_queries.list_hosts,
            deps.read_uow_factory(),
            now=deps.clock.now(),
            service_down_time=deps.settings.service_down_time,
        )
        host = req.query.get("host")
        binary = req.query.get("binary")
        services = [
            service_view(req, status)
            for status in statuses
            if (not host or status.host.host == host) and (not binary or binary == COMPUTE_BINARY)
        ]
        return ApiResponse(200, {"services": services})


def service_routes(edge: Edge, deps: ComputeDeps) -> list[BaseRoute]:
    return [*edge.routes("/os-services", ServicesController(deps).index, methods=["GET"])]
