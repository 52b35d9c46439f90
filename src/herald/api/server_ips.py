"""``/servers/{id}/ips`` and ``/servers/{id}/ips/{network}``: a server's addresses by network."""

from __future__ import annotations

from starlette.routing import BaseRoute

from herald.api.deps import ComputeDeps, server_for
from herald.api.edge import ApiRequest, ApiResponse, Edge
from herald.api.faults import ApiFault
from herald.api.views.servers import basic_addresses
from herald.domain.model import Server

IPS = "os_compute_api:ips:"


class ServerIpsController:
    def __init__(self, deps: ComputeDeps) -> None:
        self._deps = deps

    async def _server(self, req: ApiRequest, rule: str) -> Server:
        return await server_for(self._deps, req, IPS + rule)

    async def index(self, req: ApiRequest) -> ApiResponse:
        server = await self._server(req, "index")
        return ApiResponse(200, {"addresses": basic_addresses(server)})

    async def show(self, req: ApiRequest) -> ApiResponse:
        server = await self._server(req, "show")
        network = req.path_params["network"]
        by_network = basic_addresses(server)
        if network not in by_network:
            raise ApiFault(404, "Instance is not a member of specified network")
        return ApiResponse(200, {network: by_network[network]})


def server_ip_routes(edge: Edge, deps: ComputeDeps) -> list[BaseRoute]:
    api = ServerIpsController(deps)
    return [
        *edge.routes("/servers/{server_id}/ips", api.index, methods=["GET"]),
        *edge.routes("/servers/{server_id}/ips/{network}", api.show, methods=["GET"]),
    ]
