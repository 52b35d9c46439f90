"""``/servers/{id}/os-interface``: list, show, attach (200, once the host attached it) and detach (202).

As Nova: the attach is a call to the server's host, answered when the host is done; the
detach is a cast. Herald's host answers through the ``compute_attach_interface`` step it
records under the request's instance action, which the API reads back (bounded wait).
"""

from __future__ import annotations

import asyncio
import time
import uuid as uuidlib
from typing import Any

from starlette.routing import BaseRoute

from herald.api.deps import ComputeDeps, caller, publish, server_for
from herald.api.edge import ApiRequest, ApiResponse, Edge
from herald.api.faults import ApiFault
from herald.api.microversion import APIVersion
from herald.api.schemas import attachments as schemas
from herald.api.validation import VersionedValidator
from herald.domain.errors import PortInUse
from herald.domain.model import Server, Vif
from herald.domain.naming import fixed_ip
from herald.service import attachments

INTERFACES = "os_compute_api:os-attach-interfaces:"
# Nova's attach is an RPC call: [DEFAULT] rpc_response_timeout (60 s) bounds it.
ATTACH_TIMEOUT = 60.0
POLL_INTERVAL = 0.02
TAG_VERSION = APIVersion(2, 70)
PORT_IN_USE_SUFFIX = PortInUse("").text.removeprefix("Port ")


def interface_view(req: ApiRequest, vif: Vif) -> dict[str, Any]:
    """Nova's interfaceAttachment: the port as the network shows it, with the device tag from 2.70."""
    ip = fixed_ip(vif.port_id)
    view: dict[str, Any] = {
        "net_id": vif.network_id,
        "port_id": vif.port_id,
        "mac_addr": ip.mac,
        "port_state": "ACTIVE" if vif.active else "DOWN",
        "fixed_ips": [{"subnet_id": vif.network_id, "ip_address": ip.address}],
    }
    if req.version >= TAG_VERSION:
        view["tag"] = vif.tag
    return view


class ServerInterfacesController:
    def __init__(self, deps: ComputeDeps) -> None:
        self._deps = deps
        self._create = VersionedValidator(
            ((APIVersion(2, 0), schemas.interface_create), (APIVersion(2, 49), schemas.interface_create_v249))
        )

    async def index(self, req: ApiRequest) -> ApiResponse:
        server = await server_for(self._deps, req, INTERFACES + "list")
        return ApiResponse(200, {"interfaceAttachments": [interface_view(req, vif) for vif in server.vifs]})

    async def show(self, req: ApiRequest) -> ApiResponse:
        server = await server_for(self._deps, req, INTERFACES + "show")
        return ApiResponse(200, {"interfaceAttachment": interface_view(req, _vif(server, req.path_params["port_id"]))})

    async def create(self, req: ApiRequest) -> ApiResponse:
        self._create.validate(req.version, req.body)
        server = await server_for(self._deps, req, INTERFACES + "create")
        port_id, network_id, tag = _requested(req.body)
        deps = self._deps
        owner = None
        if network_id is None:
            owner = await asyncio.to_thread(deps.network.port_owner, port_id)
        outcome = await deps.run(
            attachments.attach_interface,
            deps.uow_factory(),
            caller(req),
            req.request_id,
            server.uuid,
            port_id=port_id,
            network_id=network_id,
            tag=tag,
            port_owner=owner,
            now=deps.clock.now(),
        )
        await publish(deps, outcome)
        await self._attached(server.uuid, req.request_id)
        attached = await server_for(deps, req, INTERFACES + "show")
        return ApiResponse(200, {"interfaceAttachment": interface_view(req, _vif(attached, port_id))})

    async def _attached(self, server_uuid: str, request_id: str) -> None:
        """Wait for the host's ``compute_attach_interface`` step; its failure is the answer's."""
        deps = self._deps
        deadline = time.monotonic() + ATTACH_TIMEOUT
        while True:
            step = await deps.run(
                attachments.step_result,
                deps.read_uow_factory,
                server_uuid,
                request_id,
                attachments.ATTACH_INTERFACE_STEP,
            )
            if step is not None:
                break
            if time.monotonic() >= deadline:
                raise ApiFault(500, f"Timed out waiting for the compute host to attach the interface to {server_uuid}")
            await asyncio.sleep(POLL_INTERVAL)
        if step.result == "Success":
            return
        details = step.details or ""
        if details.endswith(PORT_IN_USE_SUFFIX):  # the host found the port bound meanwhile
            raise ApiFault(409, details)
        raise ApiFault(500, details or f"Failed to attach network adapter device to {server_uuid}")

    async def delete(self, req: ApiRequest) -> ApiResponse:
        server = await server_for(self._deps, req, INTERFACES + "delete")
        deps = self._deps
        outcome = await deps.run(
            attachments.detach_interface,
            deps.uow_factory(),
            caller(req),
            req.request_id,
            server.uuid,
            port_id=req.path_params["port_id"],
            now=deps.clock.now(),
        )
        await publish(deps, outcome)
        return ApiResponse(202)


def _requested(body: object) -> tuple[str, str | None, str | None]:
    """The port to attach (a new one's id when a network is named), its network and its tag."""
    attachment: dict[str, Any] = body.get("interfaceAttachment", {}) if isinstance(body, dict) else {}
    network_id = attachment.get("net_id")
    port_id = attachment.get("port_id")
    if network_id and port_id:
        raise ApiFault(400, "Must not input both network_id and port_id")
    if attachment.get("fixed_ips"):
        if not network_id:
            raise ApiFault(400, "Must input network_id when request IP address")
        # NOTE: the embedded network derives each port's address from its id; none can be chosen.
        raise ApiFault(400, "Requesting a fixed IP address is not supported by this network backend")
    if not network_id and not port_id:
        raise ApiFault(400, "Must input network_id or port_id: there is no default network to choose from")
    if network_id:
        return str(uuidlib.uuid4()), network_id, attachment.get("tag")
    return str(port_id), None, attachment.get("tag")


def _vif(server: Server, port_id: str) -> Vif:
    vif = next((v for v in server.vifs if v.port_id == port_id), None)
    if vif is None:
        raise ApiFault(404, f"Instance {server.uuid} does not have a port with id {port_id}")
    return vif


def server_interface_routes(edge: Edge, deps: ComputeDeps) -> list[BaseRoute]:
    api = ServerInterfacesController(deps)
    return [
        *edge.routes("/servers/{server_id}/os-interface", api.index, methods=["GET"]),
        *edge.routes("/servers/{server_id}/os-interface", api.create, methods=["POST"]),
        *edge.routes("/servers/{server_id}/os-interface/{port_id}", api.show, methods=["GET"]),
        *edge.routes("/servers/{server_id}/os-interface/{port_id}", api.delete, methods=["DELETE"]),
    ]
