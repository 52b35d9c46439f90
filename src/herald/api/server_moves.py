"""The cold-move actions of ``POST /servers/{id}/action``: migrate, resize, confirmResize, revertResize.

As Nova: the server (404), then the action's policy (403), then the use case's checks: a
locked server or a wrong state is 409, the server's own host, an unknown host, an unknown
or the same flavor is 400. ``confirmResize`` answers 204, the others 202.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from herald.api.deps import ComputeDeps, caller
from herald.api.edge import ApiRequest
from herald.api.faults import ApiFault
from herald.api.microversion import APIVersion
from herald.api.schemas import servers as schemas
from herald.api.validation import VersionedValidator
from herald.domain.errors import FlavorNotFound
from herald.domain.model import Server
from herald.service import moves
from herald.service.common import Outcome
from herald.service.server_actions import ActionPolicy

SERVERS = "os_compute_api:servers:"
MIGRATE_SERVER = "os_compute_api:os-migrate-server:"

MoveHandler = Callable[[ApiRequest, Server, Any], Awaitable[Outcome]]
_ANY_BODY: dict[str, Any] = {"type": "object", "required": ["migrate"]}


def move_actions(deps: ComputeDeps, policy: ActionPolicy) -> dict[str, tuple[str, VersionedValidator, MoveHandler]]:
    """``{action: (policy rule, body validator, handler)}``; migrate's rule ("") is checked by its handler."""
    moves_api = _Moves(deps, policy)
    return {
        "migrate": (
            "",
            VersionedValidator(((APIVersion(2, 0), _ANY_BODY), (APIVersion(2, 56), schemas.migrate_v256))),
            moves_api.migrate,
        ),
        "resize": (SERVERS + "resize", VersionedValidator(((APIVersion(2, 0), schemas.resize),)), moves_api.resize),
        "confirmResize": (
            SERVERS + "confirm_resize",
            VersionedValidator(((APIVersion(2, 0), schemas.confirm_resize),)),
            moves_api.confirm,
        ),
        "revertResize": (
            SERVERS + "revert_resize",
            VersionedValidator(((APIVersion(2, 0), schemas.revert_resize),)),
            moves_api.revert,
        ),
    }


class _Moves:
    def __init__(self, deps: ComputeDeps, policy: ActionPolicy) -> None:
        self._deps = deps
        self._policy = policy

    async def migrate(self, req: ApiRequest, server: Server, args: Any) -> Outcome:
        host: str | None = None
        if req.version >= APIVersion(2, 56) and isinstance(args, dict):
            host = args.get("host")
        rule = "migrate:host" if host else "migrate"
        req.authorize(MIGRATE_SERVER + rule, {"project_id": server.project_id})
        return await self._move(req, server, host=host or None)

    async def resize(self, req: ApiRequest, server: Server, args: Any) -> Outcome:
        disk_config = args.get("OS-DCF:diskConfig")
        try:
            return await self._move(
                req, server, flavor_id=str(args["flavorRef"]), auto_disk_config=disk_config == "AUTO"
            )
        except FlavorNotFound as exc:
            # NOTE: Nova answers a resize to an unknown flavor with 400, not 404.
            raise ApiFault(400, exc.text) from None

    async def _run(self, use_case: Callable[..., Outcome], req: ApiRequest, server: Server, **options: Any) -> Outcome:
        return await self._deps.run(
            use_case,
            self._deps.uow_factory(),
            caller(req),
            req.request_id,
            server.uuid,
            now=self._deps.clock.now(),
            **options,
        )

    async def _move(self, req: ApiRequest, server: Server, **options: Any) -> Outcome:
        return await self._run(moves.move_server, req, server, policy=self._policy, **options)

    async def confirm(self, req: ApiRequest, server: Server, args: Any) -> Outcome:
        return await self._run(moves.confirm_resize, req, server, policy=self._policy)

    async def revert(self, req: ApiRequest, server: Server, args: Any) -> Outcome:
        return await self._run(moves.revert_resize, req, server)
