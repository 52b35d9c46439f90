"""Building a server on its host: wait for its accelerators, claim a node, power it on, wait for its
ports, then ACTIVE or ERROR.

The claim and the spawn run under the server's operation lock, so a delete that comes
meanwhile waits for them (Nova's per-instance lock), and each record change expects the
task state the build set, so a delete recorded meanwhile is never overwritten. A failed
build ends in ERROR with Nova's "Build of instance ... aborted" fault, even when tearing
the machine down fails too, with no host or node any more (Nova nils them on a build abort) and
its ports deallocated (Nova's network cleanup; its addresses go with them).

A server whose flavor asked for accelerators first waits, holding no lock, for one
``accelerator-request-bound`` per accelerator request, within ``arq_binding_timeout``; a
failed binding or a timeout deletes its requests and aborts the build (Nova's
"Failure getting accelerator requests."). Every wait is recorded as a current wait
(:mod:`herald.agent.current_waits`) while it lasts.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

from herald.agent.current_waits import CurrentWaits
from herald.agent.operation import OperationTools
from herald.agent.plug_wait import PlugPolicy, PlugResult, inactive_ports, mark_plugged, start_waiting_for_plugs
from herald.agent.transitions import Step, Transition
from herald.agent.waiters import ErrorCallback, EventKeys, EventWait, WaiterRegistry
from herald.domain.errors import DriverError, EventWaitFailed, EventWaitTimeout
from herald.domain.events import EventName
from herald.domain.messages import BuildServer
from herald.domain.model import PowerState, Server, TaskState, VmState
from herald.service.ports import AcceleratorBackend, NetworkBackend, UnitOfWork

logger = logging.getLogger(__name__)

NETWORK_FAILURE = "Failed to allocate the network(s), not rescheduling."
ACCELERATOR_FAILURE = "Failure getting accelerator requests."
BUILD_STEP = "compute__do_build_and_run_instance"
SCHEDULING = (TaskState.SCHEDULING.value,)
SPAWNING = (TaskState.SPAWNING.value,)


@dataclass(frozen=True, slots=True)
class BuildPolicy:
    vif_plugging_timeout: int
    vif_plugging_is_fatal: bool
    arq_binding_timeout: int = 300


def build_aborted(server_uuid: str, reason: str) -> str:
    """Nova's fault message for a build that failed on its host."""
    return f"Build of instance {server_uuid} aborted: {reason}"


class Build:
    """The build operation of one host."""

    def __init__(
        self,
        tools: OperationTools,
        waiters: WaiterRegistry,
        policy: BuildPolicy,
        *,
        current_waits: CurrentWaits | None = None,
        accelerators: AcceleratorBackend | None = None,
        network: NetworkBackend | None = None,
    ) -> None:
        self._tools = tools
        self._network = network
        self._waiters = waiters
        self._policy = policy
        self._current = current_waits
        self._accelerators = accelerators

    def _waiting(
        self, server_uuid: str, keys: EventKeys, timeout: float, callback: ErrorCallback | None
    ) -> AbstractAsyncContextManager[EventWait]:
        if self._current is None:
            return self._waiters.wait_for_events(server_uuid, keys, timeout=timeout, error_callback=callback)
        return self._current.waiting(server_uuid, keys, timeout=timeout, error_callback=callback)

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
        uuid = server.uuid
        if server.accelerator_requests and not await self._bind_accelerators(command, server):
            return
        result = await start_waiting_for_plugs(
            tools=self._tools,
            waiters=self._waiters,
            policy=PlugPolicy(self._policy.vif_plugging_timeout, self._policy.vif_plugging_is_fatal),
            server_uuid=uuid,
            ports=inactive_ports(server),
            work=lambda: self._spawn(command),
            current_waits=self._current,
        )
        if result.ended:
            return
        if result.fatal:
            await self._fail(command, build_aborted(uuid, NETWORK_FAILURE))
            return
        async with self._tools.hold(uuid):
            await self._finish(command, result)

    async def _bind_accelerators(self, command: BuildServer, server: Server) -> bool:
        """Wait for each accelerator request's binding, under no lock. False: the build is over."""
        uuid = server.uuid
        keys: list[tuple[str, str | None]] = [
            (EventName.ACCELERATOR_REQUEST_BOUND.value, arq) for arq in server.accelerator_requests
        ]
        try:
            async with self._waiting(uuid, keys, float(self._policy.arq_binding_timeout), None):
                pass
        except (EventWaitTimeout, EventWaitFailed) as exc:
            logger.error("Accelerator requests of instance %s were not bound: %s", uuid, exc)
            if self._accelerators is not None:
                try:
                    await asyncio.to_thread(self._accelerators.delete_for_server, uuid)
                except Exception:
                    logger.exception("Could not delete the accelerator requests of instance %s", uuid)
            await self._end_failed(command, build_aborted(uuid, ACCELERATOR_FAILURE), SCHEDULING)
            return False
        return True

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

    async def _release_ports(self, server_uuid: str) -> None:
        """Unbind the server's ports (Nova's cleanup of a failed build's networks); a failure is logged."""
        if self._network is None:
            return
        try:
            await asyncio.to_thread(self._network.deallocate_for_server, server_uuid)
        except Exception:
            logger.exception("Could not deallocate the network of instance %s after its failed build", server_uuid)

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
        await self._release_ports(command.server_uuid)

        def change(uow: UnitOfWork, server: Server) -> None:
            server.vm_state = VmState.ERROR.value
            server.power_state = PowerState.NOSTATE.value
            server.task_state = None
            server.host = server.node = None
            server.vifs = []  # Nova empties the network info cache when it deallocates a failed build's ports
            server.fault = {"code": 500, "message": message}

        step = Step(command.request_id, BUILD_STEP, start, "Error")
        await self._tools.record(Transition(command.server_uuid, expected, change, step), "Failed build")
