"""What the compute API controllers need (:class:`ComputeDeps`) and the helpers they share."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

from herald.api.edge import ApiRequest
from herald.api.faults import ApiFault
from herald.config import Settings
from herald.domain.model import Server
from herald.service import server_queries
from herald.service.command_relay import CommandRelay
from herald.service.common import Caller, Outcome
from herald.service.ports import (
    AcceleratorBackend,
    Bus,
    Clock,
    NetworkBackend,
    QueuedCommand,
    UnitOfWorkFactory,
    VolumeBackend,
)
from herald.service.writer import Unavailable

P = ParamSpec("P")
T = TypeVar("T")

# Nova's [api] max_limit: the most items one list answer holds.
MAX_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class ComputeDeps:
    """The collaborators of the servers, flavors, instance actions and services APIs.

    :param uow_factory: a new unit of work per use case.
    :param read_uow_factory: a new read-only unit of work per query (it never blocks writers).
    :param bus: where the agents' messages go, after each use case commits.
    :param clock: "now" for state changes and for host liveness.
    :param network: ports for new servers and local deletes.
    :param volumes: sizes of the volumes a new server boots from.
    :param settings: ``service_down_time`` and ``shelved_offload_time``.
    :param commands: publishes the server commands a use case committed in its outbox.
    :param executor: the API's worker threads (None: the loop's default executor).
    :param transient: whether a use case's exception means the database is unavailable for now
        (the request is then answered 503 with Retry-After).
    :param accelerators: the accelerator requests of flavors with a device profile (None: no such service).
    """

    uow_factory: UnitOfWorkFactory
    read_uow_factory: UnitOfWorkFactory
    bus: Bus
    clock: Clock
    network: NetworkBackend
    volumes: VolumeBackend
    settings: Settings
    commands: CommandRelay
    executor: Executor | None = None
    transient: Callable[[BaseException], bool] = lambda exc: False
    accelerators: AcceleratorBackend | None = None

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a synchronous use case (one transaction) on one of the API's worker threads.

        :raises Unavailable: the database was unavailable (its transaction did not commit).
        """
        call = functools.partial(fn, *args, **kwargs)
        try:
            return await asyncio.get_running_loop().run_in_executor(self.executor, call)
        except Exception as exc:
            if self.transient(exc):
                raise Unavailable(f"The database is unavailable ({type(exc).__name__}); try again later.") from exc
            raise


def caller(req: ApiRequest) -> Caller:
    ctx = req.context
    return Caller(user_id=ctx.user_id, project_id=ctx.project_id, is_admin=ctx.is_admin)


def can(req: ApiRequest, rule: str, target: Mapping[str, object] | None = None) -> bool:
    """Nova's ``context.can(rule, fatal=False)``."""
    try:
        req.authorize(rule, target)
    except ApiFault:
        return False
    return True


def own_target(req: ApiRequest) -> dict[str, object]:
    """The target Nova uses when it passes none: the caller's own project and user."""
    return {"project_id": req.context.project_id, "user_id": req.context.user_id}


async def publish(deps: ComputeDeps, outcome: Outcome) -> None:
    """Send the committed use case's commands to their hosts' agents (through the command outbox).

    Never fails: a command the transport did not take waits in the outbox for the relay's next pass.
    """
    queued: list[QueuedCommand] = []
    for dispatch in outcome.dispatch:
        if dispatch.id is None:
            raise RuntimeError(f"a command for host {dispatch.host} was not recorded in the command outbox")
        queued.append(QueuedCommand(dispatch.id, dispatch.host, dispatch.message))
    if queued:
        await deps.commands.send(queued)


async def server_for(deps: ComputeDeps, req: ApiRequest, rule: str) -> Server:
    """The path's server (404 unless the caller may see it), once ``rule`` allows acting on it (403)."""
    detail = await deps.run(
        server_queries.get_server,
        deps.read_uow_factory(),
        caller(req),
        req.path_params["server_id"],
        now=deps.clock.now(),
        service_down_time=deps.settings.service_down_time,
    )
    req.authorize(rule, {"project_id": detail.server.project_id})
    return detail.server


def _int_param(req: ApiRequest, name: str) -> int | None:
    raw = req.query.get(name)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ApiFault(400, f"Invalid input received: {name} must be an integer.") from None
    if value < 0:
        raise ApiFault(400, f"Invalid input received: {name} must be >= 0.")
    return value


def limit_and_marker(req: ApiRequest) -> tuple[int, str | None]:
    """Nova's ``get_limit_and_marker``: ``limit`` capped at :data:`MAX_LIMIT` (absent: the cap; 0: nothing)."""
    limit = _int_param(req, "limit")
    return min(MAX_LIMIT, MAX_LIMIT if limit is None else limit), req.query.get("marker")


def bool_param(value: str) -> bool:
    """oslo's ``bool_from_string(strict=True)``; an empty value counts as true (Nova's all_tenants rule)."""
    lowered = value.strip().lower()
    if lowered in ("", "1", "t", "true", "on", "y", "yes"):
        return True
    if lowered in ("0", "f", "false", "off", "n", "no"):
        return False
    raise ApiFault(
        400,
        f"Invalid input received: Unrecognized value '{value}', acceptable values are: "
        "'0', '1', 'f', 'false', 'n', 'no', 'off', 'on', 't', 'true', 'y', 'yes'",
    )
