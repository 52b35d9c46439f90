"""Server actions ``reboot``, ``rebuild``, ``restore``, ``forceDelete``, ``addSecurityGroup``, ``removeSecurityGroup``.

Each is an entry of the action table of :class:`herald.api.server_actions.ServerActionsController`
(which finds the server, validates the body and checks the policy first). ``rebuild`` is
the only action that answers with a body: the server as Nova shows it after a rebuild,
with ``adminPass``.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from herald.api.deps import ComputeDeps, caller, can
from herald.api.edge import ApiRequest, ApiResponse
from herald.api.faults import ApiFault
from herald.api.ip_addresses import normal_ip
from herald.api.microversion import APIVersion
from herald.api.schemas import server_lifecycle as schemas
from herald.api.validation import VersionedValidator
from herald.api.views import servers as views
from herald.domain.model import Server
from herald.service import deferred_delete, server_queries, server_reboot, server_security_groups
from herald.service.common import Outcome
from herald.service.server_actions import ActionPolicy

SERVERS = "os_compute_api:servers:"
DEFERRED_DELETE = "os_compute_api:os-deferred-delete:"
SECURITY_GROUPS = "os_compute_api:os-security-groups:"
EXTENDED_ATTRIBUTES = "os_compute_api:os-extended-server-attributes"
_PASSWORD_CHARS = string.ascii_letters + string.digits


@dataclass(frozen=True, slots=True)
class ActionReply:
    """An action's outcome plus the reply it answers with (instead of an empty 202)."""

    outcome: Outcome
    response: ApiResponse


Handler = Callable[[ApiRequest, Server, Any], Awaitable["Outcome | ActionReply"]]


def _always(schema: dict[str, Any]) -> VersionedValidator:
    return VersionedValidator(((APIVersion(2, 0), schema),))


class LifecycleActions:
    """The handlers, with their policy rule and validator (see :meth:`table`)."""

    def __init__(self, deps: ComputeDeps) -> None:
        self._deps = deps
        self._policy = ActionPolicy(deps.settings.service_down_time, deps.settings.shelved_offload_time)

    def table(self) -> dict[str, tuple[str, VersionedValidator, Handler]]:
        return {
            "reboot": (SERVERS + "reboot", _always(schemas.reboot), self._reboot),
            "rebuild": (SERVERS + "rebuild", VersionedValidator(schemas.REBUILD_SCHEMAS), self._rebuild),
            "restore": (DEFERRED_DELETE + "restore", _always(schemas.restore), self._restore),
            "forceDelete": (DEFERRED_DELETE + "force", _always(schemas.force_delete), self._force_delete),
            "addSecurityGroup": (SECURITY_GROUPS + "add", _always(schemas.add_security_group), self._add_group),
            "removeSecurityGroup": (
                SECURITY_GROUPS + "remove",
                _always(schemas.remove_security_group),
                self._remove_group,
            ),
        }

    # Nova checks these actions' policies against the project alone.
    PROJECT_TARGET = frozenset({"reboot", "restore", "addSecurityGroup", "removeSecurityGroup"})

    async def _reboot(self, req: ApiRequest, server: Server, args: Any) -> Outcome:
        hard = str(args["type"]).upper() == "HARD"
        return await self._deps.run(
            server_reboot.reboot_server,
            self._deps.uow_factory(),
            caller(req),
            req.request_id,
            server.uuid,
            now=self._deps.clock.now(),
            hard=hard,
        )

    async def _restore(self, req: ApiRequest, server: Server, _: Any) -> Outcome:
        return await self._deps.run(
            deferred_delete.restore_server,
            self._deps.uow_factory(),
            caller(req),
            req.request_id,
            server.uuid,
            now=self._deps.clock.now(),
        )

    async def _force_delete(self, req: ApiRequest, server: Server, _: Any) -> Outcome:
        deps = self._deps
        return await deps.run(
            deferred_delete.force_delete_server,
            deps.uow_factory(),
            deps.network,
            caller(req),
            req.request_id,
            server.uuid,
            now=deps.clock.now(),
            policy=self._policy,
        )

    async def _add_group(self, req: ApiRequest, server: Server, args: Any) -> Outcome:
        return await self._group(req, server, args, server_security_groups.add_security_group)

    async def _remove_group(self, req: ApiRequest, server: Server, args: Any) -> Outcome:
        return await self._group(req, server, args, server_security_groups.remove_security_group)

    async def _group(self, req: ApiRequest, server: Server, args: Any, use_case: Callable[..., Outcome]) -> Outcome:
        name = str(args["name"])
        if not name.strip():
            raise ApiFault(400, "Security group name cannot be empty")
        return await self._deps.run(
            use_case, self._deps.uow_factory(), caller(req), server.uuid, name, now=self._deps.clock.now()
        )

    async def _rebuild(self, req: ApiRequest, server: Server, args: Any) -> ActionReply:
        password = args["adminPass"] if "adminPass" in args else _new_password()
        request = rebuild_request(req, args)
        if request.sets_certificates:
            req.authorize(
                SERVERS + "rebuild:trusted_certs", {"user_id": server.user_id, "project_id": server.project_id}
            )
        deps = self._deps
        outcome = await deps.run(
            server_reboot.rebuild_server,
            deps.uow_factory(),
            caller(req),
            req.request_id,
            server.uuid,
            request,
            now=deps.clock.now(),
        )
        detail = await deps.run(
            server_queries.get_server,
            deps.uow_factory(),
            caller(req),
            server.uuid,
            now=deps.clock.now(),
            service_down_time=deps.settings.service_down_time,
        )
        body = rebuilt_view(req, detail)
        body["adminPass"] = password
        if req.version >= APIVersion(2, 57):
            body["user_data"] = detail.server.user_data
        return ActionReply(outcome, ApiResponse(202, {"server": body}))


def _new_password() -> str:
    return "".join(secrets.choice(_PASSWORD_CHARS) for _ in range(12))


def rebuild_request(req: ApiRequest, args: dict[str, Any]) -> server_reboot.RebuildRequest:
    """What the validated ``rebuild`` body asks for, by microversion."""
    version = req.version
    disk_config = args.get("OS-DCF:diskConfig")
    return server_reboot.RebuildRequest(
        image_ref=str(args["imageRef"]),
        name=args["name"].strip() if "name" in args else None,
        metadata=dict(args["metadata"]) if "metadata" in args else None,
        description=args.get("description"),
        sets_description="description" in args,
        access_ip_v4=args.get("accessIPv4"),
        access_ip_v6=normal_ip(args.get("accessIPv6")),
        auto_disk_config=None if disk_config is None else disk_config == "AUTO",
        sets_key_name=version >= APIVersion(2, 54) and "key_name" in args,
        key_name=args.get("key_name"),
        sets_user_data=version >= APIVersion(2, 57) and "user_data" in args,
        user_data=args.get("user_data"),
        sets_certificates=version >= APIVersion(2, 63) and "trusted_image_certificates" in args,
        certificates=_certificates(args.get("trusted_image_certificates")),
        hostname=args.get("hostname") if version >= APIVersion(2, 90) else None,
        reimage_boot_volume=version >= APIVersion(2, 93),
    )


def _certificates(value: object) -> tuple[str, ...] | None:
    return tuple(str(item) for item in value) if isinstance(value, list) else None


def rebuilt_view(req: ApiRequest, detail: server_queries.ServerDetail) -> dict[str, Any]:
    """Nova's rebuild reply: as ``PUT /servers/{id}``'s, plus ``key_name`` from 2.54."""
    target = {"project_id": detail.server.project_id}
    options = views.ViewOptions(
        extended_attributes=can(req, EXTENDED_ATTRIBUTES, target),
        host_status=can(req, SERVERS + "show:host_status", target),
        host_status_unknown_only=can(req, SERVERS + "show:host_status:unknown-only", target),
        flavor_extra_specs=req.version >= APIVersion(2, 47) and can(req, SERVERS + "show:flavor-extra-specs", target),
        server_groups=req.version >= APIVersion(2, 71),
        is_admin=req.context.is_admin,
    )
    body = views.updated(req, detail, options)
    # NOTE: Nova's rebuild view leaves the user data out of the extended attributes; from 2.57 the
    # reply carries it as ``user_data`` instead.
    body.pop("OS-EXT-SRV-ATTR:user_data", None)
    if req.version >= APIVersion(2, 54):
        body["key_name"] = detail.server.key_name
    return body
