"""``/servers/{id}/os-volume_attachments``: list, show, attach (200 below 2.101, 202 from it) and detach (202).

As Nova: the attachment (with its device name) is recorded at once, and the server's host
connects the volume afterwards; a failed connection removes the attachment again.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.routing import BaseRoute

from herald.api.deps import ComputeDeps, caller, limit_and_marker, publish, server_for
from herald.api.edge import ApiRequest, ApiResponse, Edge
from herald.api.faults import ApiFault
from herald.api.microversion import APIVersion
from herald.api.schemas import attachments as schemas
from herald.api.validation import VersionedValidator
from herald.domain.errors import NotFound
from herald.domain.model import Server, VmState, VolumeAttachment
from herald.service import attachments

VOLUMES = "os_compute_api:os-volumes-attachments:"
TAG_VERSION = APIVersion(2, 70)
DELETE_ON_TERMINATION_VERSION = APIVersion(2, 79)
ATTACHMENT_ID_VERSION = APIVersion(2, 89)
NO_BODY_VERSION = APIVersion(2, 101)
SHELVED_VERSION = APIVersion(2, 20)


def attachment_view(req: ApiRequest, server: Server, volume: VolumeAttachment) -> dict[str, Any]:
    """Nova's volumeAttachment: ``id`` until 2.88, then ``attachment_id`` and ``bdm_uuid``."""
    view: dict[str, Any] = {}
    if req.version < ATTACHMENT_ID_VERSION:
        view["id"] = volume.volume_id
    view["volumeId"] = volume.volume_id
    view["serverId"] = server.uuid
    if volume.device_name:
        view["device"] = volume.device_name
    if req.version >= TAG_VERSION:
        view["tag"] = volume.tag
    if req.version >= DELETE_ON_TERMINATION_VERSION:
        view["delete_on_termination"] = volume.delete_on_termination
    if req.version >= ATTACHMENT_ID_VERSION:
        view["attachment_id"] = volume.attachment_id
        view["bdm_uuid"] = volume.bdm_uuid
    return view


def _truthy(value: object) -> bool:
    return value is True or (isinstance(value, str) and value.lower() in ("true", "1", "on", "yes"))


class VolumeAttachmentsController:
    def __init__(self, deps: ComputeDeps) -> None:
        self._deps = deps
        self._create = VersionedValidator(
            (
                (APIVersion(2, 0), schemas.volume_create),
                (APIVersion(2, 49), schemas.volume_create_v249),
                (APIVersion(2, 79), schemas.volume_create_v279),
            )
        )

    async def index(self, req: ApiRequest) -> ApiResponse:
        server = await server_for(self._deps, req, VOLUMES + "index")
        limit, _ = limit_and_marker(req)
        offset = _offset(req)
        listed = server.volumes[offset : offset + limit]
        if req.version >= ATTACHMENT_ID_VERSION:
            listed = [v for v in listed if v.attachment_id is not None]
        return ApiResponse(200, {"volumeAttachments": [attachment_view(req, server, v) for v in listed]})

    async def show(self, req: ApiRequest) -> ApiResponse:
        server = await server_for(self._deps, req, VOLUMES + "show")
        volume_id = req.path_params["volume_id"]
        volume = next((v for v in server.volumes if v.volume_id == volume_id), None)
        if volume is None or (req.version >= ATTACHMENT_ID_VERSION and volume.attachment_id is None):
            raise ApiFault(404, f"Instance {server.uuid} is not attached to volume {volume_id}")
        return ApiResponse(200, {"volumeAttachment": attachment_view(req, server, volume)})

    async def create(self, req: ApiRequest) -> ApiResponse:
        self._create.validate(req.version, req.body)
        server = await server_for(self._deps, req, VOLUMES + "create")
        assert isinstance(req.body, dict)
        body: dict[str, Any] = req.body["volumeAttachment"]
        _check_shelved(req, server, "attach_volume")
        deps = self._deps
        volume_id = str(body["volumeId"])
        # NOTE: the embedded block storage makes a volume it does not know (1 GiB), as a test's Cinder would have.
        size_gb = await asyncio.to_thread(deps.volumes.reserve, volume_id)
        outcome, attachment = await deps.run(
            attachments.attach_volume,
            deps.uow_factory(),
            caller(req),
            req.request_id,
            server.uuid,
            volume_id=volume_id,
            size_gb=size_gb,
            device=body.get("device"),
            tag=body.get("tag"),
            delete_on_termination=_truthy(body.get("delete_on_termination", False)),
            now=deps.clock.now(),
        )
        await publish(deps, outcome)
        if req.version >= NO_BODY_VERSION:
            return ApiResponse(202)
        view: dict[str, Any] = {
            "id": volume_id,
            "serverId": server.uuid,
            "volumeId": volume_id,
            "device": attachment.device_name,
        }
        if req.version >= TAG_VERSION:
            view["tag"] = attachment.tag
        if req.version >= DELETE_ON_TERMINATION_VERSION:
            view["delete_on_termination"] = attachment.delete_on_termination
        return ApiResponse(200, {"volumeAttachment": view})

    async def delete(self, req: ApiRequest) -> ApiResponse:
        server = await server_for(self._deps, req, VOLUMES + "delete")
        _check_shelved(req, server, "detach_volume")
        deps = self._deps
        volume_id = req.path_params["volume_id"]
        attached = any(v.volume_id == volume_id for v in server.volumes)
        if not attached:
            try:
                await asyncio.to_thread(deps.volumes.get_size_gb, volume_id)
            except NotFound:
                raise ApiFault(404, f"Volume {volume_id} could not be found.") from None
        outcome = await deps.run(
            attachments.detach_volume,
            deps.uow_factory(),
            caller(req),
            req.request_id,
            server.uuid,
            volume_id=volume_id,
            now=deps.clock.now(),
        )
        await publish(deps, outcome)
        return ApiResponse(202)


def _offset(req: ApiRequest) -> int:
    raw = req.query.get("offset")
    if raw is None:
        return 0
    if not raw.isdigit():
        raise ApiFault(400, "Invalid input received: offset must be an integer.")
    return int(raw)


def _check_shelved(req: ApiRequest, server: Server, action: str) -> None:
    """Nova: a shelved server's volumes change only from 2.20."""
    if server.vm_state in (VmState.SHELVED, VmState.SHELVED_OFFLOADED) and req.version < SHELVED_VERSION:
        raise ApiFault(409, f"Cannot '{action}' instance {server.uuid} while it is in vm_state {server.vm_state}")


def volume_attachment_routes(edge: Edge, deps: ComputeDeps) -> list[BaseRoute]:
    api = VolumeAttachmentsController(deps)
    path = "/servers/{server_id}/os-volume_attachments"
    return [
        *edge.routes(path, api.index, methods=["GET"]),
        *edge.routes(path, api.create, methods=["POST"]),
        *edge.routes(path + "/{volume_id}", api.show, methods=["GET"]),
        *edge.routes(path + "/{volume_id}", api.delete, methods=["DELETE"]),
    ]
