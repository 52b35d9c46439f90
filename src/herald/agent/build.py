"""Building a server on its host: claim a node, power it on, wait for its ports, then ACTIVE or ERROR.

The claim and the spawn run under the server's operation lock, so a delete that comes
meanwhile waits for them (Nova's per-instance lock), and each record change expects the
task state the build set, so a delete recorded meanwhile is never overwritten. A failed
build ends in ERROR with Nova's "Build of instance ... aborted" fault, even when tearing
the machine down fails too.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from herald.agent.operation import OperationTools
from herald.agent.plug_wait import PlugPolicy, PlugResult, inactive_ports, mark_plugged, start_waiting_for_plugs
from herald.agent.transitions import Step, Transition
from herald.agent.waiters import WaiterRegistry
from herald.domain.errors import DriverError
from herald.domain.messages import BuildServer
from herald.domain.model import PowerState, Server, TaskState, VmState
from herald.service.ports import UnitOfWork

logger = logging.getLogger(__name__)

NETWORK_FAILURE = "Failed to allocate the network(s), not rescheduling."
BUILD_STEP = "compute__do_build_and_run_instance"
SCHEDULING = (TaskState.SCHEDULING.value,)
SPAWNING = (TaskState.SPAWNING.value,)


@dataclass(frozen=True, slots=True)
class BuildPolicy:
    vif_plugging_timeout: int
    vif_plugging_is_fatal: bool


def build_aborted(server_uuid: str, reason: str) -> str:
    """Nova's fault message for a build that failed on its host."""
    return f"Build of instance {server_uuid} aborted: {reason}"


class Build:
    """The build operation of one host."""

    def __init__(self, tools: OperationTools, waiters: WaiterRegistry, policy: BuildPolicy) -> None:
        self._tools = tools
        self._waiters = waiters
        self._policy = policy

    async def __call__(self, command: BuildServer) -> None:
        try:
            await self._build(command)
        except Exception as exc:
            reason = build_aborted(command.server_uuid, "the compute host could not record its progress.")
            await self._tools.failed(command, BUILD_STEP, SCHEDULING + SPAWNING, exc, reason)

    async def _build(self, command: BuildServer) -> None:
        server = await self._tools.load(command.server_uuid)
        if server is None or server.vm_state != VmState.BUILDING:
            return
        result = await start_waiting_for_plugs(
            tools=self._tools,
            waiters=self._waiters,
            policy=PlugPolicy(self._policy.vif_plugging_timeout, self._policy.vif_plugging_is_fatal),
            server_uuid=server.uuid,
            ports=inactive_ports(server),
            work=lambda: self._spawn(command),
        )
        if result.ended:
            return
        if result.fatal:
            await self._fail(command, NETWORK_FAILURE)
            return
        async with self._tools.hold(server.uuid):
            await self._finish(command, result)

    async def _spawn(self, command: BuildServer) -> bool:
        """Claim a node, then power it on; under the operation lock. False: the build is over."""
        uuid = command.server_uuid
        claimed = await self._tools.claim_node(uuid, SCHEDULING, TaskState.SPAWNING.value)
        if isinstance(claimed, str):
            await self._end_failed(command, build_aborted(uuid, claimed), SCHEDULING)
            return False
        if claimed is None:
            return False
        try:
            await asyncio.to_thread(self._tools.driver.spawn, claimed)
        except DriverError as exc:
            await self._end_failed(command, build_aborted(uuid, exc.text), SPAWNING, claimed)
            return False
        return True

    async def _finish(self, command: BuildServer, plugs: PlugResult) -> None:
        clock = self._tools.clock

        def change(uow: UnitOfWork, server: Server) -> None:
            server.vm_state = VmState.ACTIVE.value
            server.power_state = PowerState.RUNNING.value
            server.task_state = None
            server.launched_at = clock.now()
            # NOTE: a port whose plug event never came (a non-fatal timeout) stays inactive.
            mark_plugged(server, plugs)

        step = Step(command.request_id, BUILD_STEP, clock.now(), "Success")
        await self._tools.record(Transition(command.server_uuid, SPAWNING, change, step), "Build")

    async def _fail(self, command: BuildServer, message: str) -> None:
        async with self._tools.hold(command.server_uuid):
            server = await self._tools.load(command.server_uuid)
            if server is not None:
                await self._end_failed(command, message, SPAWNING, server)

    async def _end_failed(
        self, command: BuildServer, message: str, expected: tuple[str | None, ...], server: Server | None = None
    ) -> None:
        """Tear down what the build made (a failure there is logged, not fatal), then ERROR with Nova's fault."""
        logger.error("Build of instance %s failed: %s", command.server_uuid, message)
        start = self._tools.clock.now()
        if server is not None and server.task_state in expected:
            try:
                await asyncio.to_thread(self._tools.driver.destroy, server)
            except Exception:
                logger.exception("Could not destroy instance %s after its failed build", command.server_uuid)

        def change(uow: UnitOfWork, server: Server) -> None:
            server.vm_state = VmState.ERROR.value
            server.power_state = PowerState.NOSTATE.value
            server.task_state = None
            server.fault = {"code": 500, "message": message}

        step = Step(command.request_id, BUILD_STEP, start, "Error")
        await self._tools.record(Transition(command.server_uuid, expected, change, step), "Failed build")
