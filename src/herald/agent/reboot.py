"""Rebooting a server on its host, with Nova's task states (pending, started) and its hard-reboot plug wait.

A hard reboot restarts the guest the way a boot starts it: it waits for
``network-vif-plugged`` of the ports still inactive (those whose plug event never came),
or of every port when ``[workarounds] wait_for_vif_plugged_event_during_hard_reboot``
lists ``normal`` (every port of the embedded network is of that vnic type). A fatal
timeout or failure powers the guest off and leaves the server in ERROR with Nova's
"Virtual Interface creation failed" fault; a non-fatal one goes on to ACTIVE.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from herald.agent.operation import OperationTools
from herald.agent.plug_wait import (
    PlugPolicy,
    PlugResult,
    inactive_ports,
    mark_plugged,
    power_off_after_failure,
    start_waiting_for_plugs,
)
from herald.agent.transitions import Step, Transition
from herald.agent.waiters import WaiterRegistry
from herald.domain.errors import DriverError
from herald.domain.messages import RebootServer
from herald.domain.model import PowerState, Server, TaskState, VmState
from herald.service.ports import UnitOfWork

logger = logging.getLogger(__name__)

STEP = "compute_reboot_instance"
VIF_FAILURE = "Virtual Interface creation failed"
# The vnic type of every port the embedded network makes.
PORT_VNIC_TYPE = "normal"


@dataclass(frozen=True, slots=True)
class _Kind:
    states: tuple[str, ...]  # the task states the API may have left (Nova's soft/hard_reboot_states)
    pending: str
    started: str


SOFT = _Kind(
    (TaskState.REBOOTING.value, TaskState.REBOOT_PENDING.value, TaskState.REBOOT_STARTED.value),
    TaskState.REBOOT_PENDING.value,
    TaskState.REBOOT_STARTED.value,
)
HARD = _Kind(
    (TaskState.REBOOTING_HARD.value, TaskState.REBOOT_PENDING_HARD.value, TaskState.REBOOT_STARTED_HARD.value),
    TaskState.REBOOT_PENDING_HARD.value,
    TaskState.REBOOT_STARTED_HARD.value,
)


def set_task(task: str) -> Callable[[UnitOfWork, Server], None]:
    def change(uow: UnitOfWork, server: Server) -> None:
        server.task_state = task

    return change


class Reboot:
    """The reboot operation of one host."""

    def __init__(
        self,
        tools: OperationTools,
        waiters: WaiterRegistry,
        policy: PlugPolicy,
        *,
        hard_reboot_vnic_types: tuple[str, ...] = (),
    ) -> None:
        self._tools = tools
        self._waiters = waiters
        self._policy = policy
        self._wait_for_all = PORT_VNIC_TYPE in hard_reboot_vnic_types

    async def __call__(self, command: RebootServer) -> None:
        kind = HARD if command.hard else SOFT
        try:
            await self._reboot(command, kind)
        except Exception as exc:
            message = f"The compute host could not complete {STEP}."
            await self._tools.failed(command, STEP, (kind.pending, kind.started), exc, message)

    def _ports(self, server: Server) -> list[str]:
        if self._wait_for_all:
            return [vif.port_id for vif in server.vifs]
        return inactive_ports(server)

    async def _reboot(self, command: RebootServer, kind: _Kind) -> None:
        uuid, tools = command.server_uuid, self._tools
        start = tools.clock.now()
        applied = await tools.record(Transition(uuid, kind.states, set_task(kind.pending)), "Reboot")
        if not applied.done or applied.server is None:
            return
        errors: list[str] = []

        async def work() -> bool:
            moved = await tools.record(Transition(uuid, (kind.pending,), set_task(kind.started)), "Reboot")
            if not moved.done or moved.server is None:
                return False
            try:
                await asyncio.to_thread(self._restart, moved.server)
            except DriverError as exc:
                logger.warning("Reboot of instance %s failed: %s", uuid, exc)
                errors.append(exc.text)
                return False
            return True

        ports = self._ports(applied.server) if command.hard else []
        result = await start_waiting_for_plugs(
            tools=tools, waiters=self._waiters, policy=self._policy, server_uuid=uuid, ports=ports, work=work
        )
        async with tools.hold(uuid):
            if errors:
                await self._end(command, kind, start, errors[0], PowerState.NOSTATE)
            elif result.ended:
                return
            elif result.fatal:
                await power_off_after_failure(self._tools, uuid, "reboot")
                await self._end(command, kind, start, VIF_FAILURE, PowerState.SHUTDOWN)
            else:
                await self._end(command, kind, start, None, PowerState.RUNNING, result)

    def _restart(self, server: Server) -> None:
        self._tools.driver.power_off(server)
        self._tools.driver.power_on(server)

    async def _end(
        self,
        command: RebootServer,
        kind: _Kind,
        start: datetime,
        error: str | None,
        power: PowerState,
        plugs: PlugResult | None = None,
    ) -> None:
        """ACTIVE and running (ports that plugged now active), or ERROR with ``error`` as its fault."""

        def change(uow: UnitOfWork, server: Server) -> None:
            server.task_state = None
            if power is not PowerState.NOSTATE:
                server.power_state = power.value
            if error is None:
                server.vm_state = VmState.ACTIVE.value
                if plugs is not None and plugs.waited:
                    mark_plugged(server, plugs)
            else:
                server.vm_state = VmState.ERROR.value
                server.fault = {"code": 500, "message": error}

        step = Step(command.request_id, STEP, start, "Success" if error is None else "Error", error)
        await self._tools.record(Transition(command.server_uuid, (kind.started,), change, step), "Reboot")
