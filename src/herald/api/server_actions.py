"""``POST /servers/{id}/action``: os-start, os-stop, shelve, shelveOffload, unshelve, lock, unlock,
os-resetState (202, no body) and the actions of :mod:`herald.api.server_lifecycle`.

As Nova: find the server (404), check the action's policy on it (403), then the use case
decides whether the server's state allows it (409).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from herald.api.deps import ComputeDeps, caller, publish
from herald.api.edge import ApiRequest, ApiResponse
from herald.api.faults import ApiFault
from herald.api.microversion import APIVersion
from herald.api.schemas import servers as schemas
from herald.api.server_lifecycle import ActionReply, LifecycleActions
from herald.api.server_moves import move_actions
from herald.api.validation import VersionedValidator
from herald.domain.model import Server, VmState
from herald.service import server_actions, server_locks, server_queries
from herald.service.common import Outcome

SHELVE = "os_compute_api:os-shelve:"
SERVERS = "os_compute_api:servers:"
LOCK = "os_compute_api:os-lock-server:"
ADMIN_ACTIONS = "os_compute_api:os-admin-actions:"
DEFAULT_ZONE = "nova"

ActionHandler = Callable[[ApiRequest, Server, Any], Awaitable[Outcome | ActionReply]]
# Actions whose policy Nova checks against the project alone (no user_id in the target).
_PROJECT_TARGET = frozenset({"unshelve", "confirmResize", "revertResize", "migrate"}) | LifecycleActions.PROJECT_TARGET


def _always(schema: dict[str, Any]) -> VersionedValidator:
    """One schema for every version."""
    return VersionedValidator(((APIVersion(2, 0), schema),))


class ServerActionsController:
    def __init__(self, deps: ComputeDeps) -> None:
        self._deps = deps
        self._policy = server_actions.ActionPolicy(deps.settings.service_down_time, deps.settings.shelved_offload_time)
        self._actions: dict[str, tuple[str, VersionedValidator, ActionHandler]] = {
            "os-start": (SERVERS + "start", _always(schemas.start), self._simple(server_actions.start_server)),
            "os-stop": (SERVERS + "stop", _always(schemas.stop), self._simple(server_actions.stop_server)),
            "shelve": (
                SHELVE + "shelve",
                _always(schemas.shelve),
                self._simple(server_actions.shelve_server, policy=self._policy),
            ),
            "shelveOffload": (
                SHELVE + "shelve_offload",
                _always(schemas.shelve_offload),
                self._simple(server_actions.shelve_offload_server),
            ),
            "unshelve": (SHELVE + "unshelve", VersionedValidator(schemas.UNSHELVE_SCHEMAS), self._unshelve),
            "lock": (
                LOCK + "lock",
                VersionedValidator(((APIVersion(2, 0), schemas.lock), (APIVersion(2, 73), schemas.lock_v273))),
                self._lock,
            ),
            "unlock": (LOCK + "unlock", _always(schemas.unlock), self._unlock),
            "os-resetState": (ADMIN_ACTIONS + "reset_state", _always(schemas.reset_state), self._reset_state),
            **LifecycleActions(deps).table(),
            **move_actions(self._deps, self._policy),
        }

    async def action(self, req: ApiRequest) -> ApiResponse:
        body = req.body
        if not isinstance(body, dict) or len(body) != 1:
            raise ApiFault(400, "Malformed request body")
        (name,) = body
        entry = self._actions.get(name)
        if entry is None:
            raise ApiFault(400, f"There is no such action: {name}")
        rule, validator, handler = entry
        validator.validate(req.version, body)
        deps = self._deps
        detail = await self._deps.run(
            server_queries.get_server,
            deps.uow_factory(),
            caller(req),
            req.path_params["server_id"],
            now=deps.clock.now(),
            service_down_time=self._policy.service_down_time,
        )
        server = detail.server
        target: dict[str, object] = {"project_id": server.project_id}
        if name not in _PROJECT_TARGET:
            target["user_id"] = server.user_id
        if rule:
            req.authorize(rule, target)
        result = await handler(req, server, body[name])
        if isinstance(result, ActionReply):
            await publish(deps, result.outcome)
            return result.response
        await publish(deps, result)
        return ApiResponse(204 if name == "confirmResize" else 202)

    async def _lock(self, req: ApiRequest, server: Server, args: Any) -> Outcome | ActionReply:
        reason = args.get("locked_reason") if req.version >= APIVersion(2, 73) and isinstance(args, dict) else None
        return await self._simple(server_locks.lock_server, reason=reason)(req, server, args)

    async def _unlock(self, req: ApiRequest, server: Server, args: Any) -> Outcome | ActionReply:
        if not server_locks.may_unlock_without_override(caller(req), server):
            req.authorize(LOCK + "unlock:unlock_override", {"project_id": server.project_id})
        return await self._simple(server_locks.unlock_server)(req, server, args)

    async def _reset_state(self, req: ApiRequest, server: Server, args: Any) -> Outcome | ActionReply:
        state = VmState.ACTIVE if args["state"] == "active" else VmState.ERROR
        return await self._simple(server_actions.reset_state, vm_state=state)(req, server, args)

    def _simple(self, use_case: Callable[..., Outcome], **options: Any) -> ActionHandler:
        """A handler for an action whose body carries nothing: the use case on the server, now."""

        async def handle(req: ApiRequest, server: Server, _: Any) -> Outcome:
            return await self._deps.run(
                use_case,
                self._deps.uow_factory(),
                caller(req),
                req.request_id,
                server.uuid,
                now=self._deps.clock.now(),
                **options,
            )

        return handle

    async def _unshelve(self, req: ApiRequest, server: Server, args: Any) -> Outcome:
        host: str | None = None
        zone_given = False
        if isinstance(args, dict):
            if req.version >= APIVersion(2, 77) and "availability_zone" in args:
                zone = args["availability_zone"]
                zone_given = True
                if zone is not None and zone != DEFAULT_ZONE:
                    raise ApiFault(400, "The requested availability zone is not available")
            if req.version >= APIVersion(2, 91):
                host = args.get("host")
        if host:
            req.authorize(SHELVE + "unshelve_to_host", {"project_id": server.project_id, "user_id": server.user_id})
        return await self._deps.run(
            server_actions.unshelve_server,
            self._deps.uow_factory(),
            caller(req),
            req.request_id,
            server.uuid,
            now=self._deps.clock.now(),
            policy=self._policy,
            host=host or None,
            zone_given=zone_given,
        )
