"""The server operations an agent runs on command: build, stop, start, shelve, unshelve, delete.

Each operation holds its server's operation lock (build and delete never overlap), calls
the driver on a worker thread with no transaction and no record lock held, then records
its outcome through the writer as a :class:`~herald.agent.transitions.Transition`
guarded by the task state it expects. An operation that still cannot record its outcome
after the retries puts the server in ERROR with a fault rather than leave a task state
nobody will finish.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from herald.agent.context import OperationLocks, ServerLocks
from herald.agent.transitions import Applied, ApplyTransitions, IsTransient, Status, Step, Transition, retrying
from herald.agent.waiters import WaiterRegistry
from herald.domain.errors import DriverError, EventWaitFailed, EventWaitTimeout, NoValidHost
from herald.domain.events import EventName
from herald.domain.messages import (
    BuildServer,
    DeleteServer,
    ServerCommand,
    ShelveOffloadServer,
    ShelveServer,
    StartServer,
    StopServer,
    UnshelveServer,
)
from herald.domain.model import PowerState, Server, TaskState, VmState
from herald.domain.records import EventEnvelope
from herald.service.notifications import (
    NO_NOTIFICATIONS,
    Initiator,
    InstanceNotifications,
    NotificationAction,
    Phase,
    send,
)
from herald.service.ports import Clock, NetworkBackend, Notifier, UnitOfWork, UnitOfWorkFactory, VirtDriver
from herald.service.writer import Writer

logger = logging.getLogger(__name__)

NETWORK_FAILURE = "Failed to allocate the network(s), not rescheduling."
BUILD_STEP = "compute__do_build_and_run_instance"

ServerHook = Callable[[Server], None]


@dataclass(frozen=True, slots=True)
class BuildPolicy:
    vif_plugging_timeout: int
    vif_plugging_is_fatal: bool


class _BuildEnded(Exception):
    """Raised inside the plug-event wait to leave it without waiting: the build is over."""


def build_aborted(server_uuid: str, reason: str) -> str:
    return f"Build of instance {server_uuid} aborted: {reason}"


class ServerOps:
    """Runs one operation step at a time per server (see the module docstring)."""

    def __init__(
        self,
        *,
        host: str,
        writer: Writer,
        read_uow_factory: UnitOfWorkFactory,
        clock: Clock,
        driver: VirtDriver,
        network: NetworkBackend,
        waiters: WaiterRegistry,
        locks: ServerLocks,
        is_transient: IsTransient,
        build_policy: BuildPolicy,
        notifier: Notifier | None = None,
        notifications: InstanceNotifications = NO_NOTIFICATIONS,
    ) -> None:
        self._host = host
        self._writer = writer
        self._read_uow_factory = read_uow_factory
        self._clock = clock
        self._driver = driver
        self._network = network
        self._waiters = waiters
        self._apply = ApplyTransitions(host=host, clock=clock, locks=locks)
        self._op_locks = OperationLocks()
        # NOTE: choosing a node and recording it are one step per host, as Nova's resource claim.
        self._claim = asyncio.Lock()
        self._is_transient = is_transient
        self._policy = build_policy
        self._notifier = notifier
        self._notifications = notifications

    # --- helpers ---------------------------------------------------------------
    async def _record(self, transition: Transition, what: str) -> Applied:
        """Submit ``transition`` to the writer, again while the database fails transiently."""
        applied = await retrying(
            lambda: self._writer.submit(self._apply, transition),
            self._is_transient,
            f"{what} of instance {transition.server_uuid}",
        )
        if applied.status is Status.UNEXPECTED and applied.server is not None:
            logger.info(
                "%s of instance %s not recorded: task_state is %s, expected %s",
                what,
                transition.server_uuid,
                applied.server.task_state,
                " or ".join(str(t) for t in transition.expected),
            )
        return applied

    async def _load(self, server_uuid: str) -> Server | None:
        return await asyncio.to_thread(self._read, server_uuid)

    def _read(self, server_uuid: str) -> Server | None:
        with self._read_uow_factory() as uow:
            return uow.servers.get(server_uuid)

    def _nodes_in_use(self, server_uuid: str) -> set[str]:
        with self._read_uow_factory() as uow:
            return {s.node for s in uow.servers.list(host=self._host) if s.node and s.uuid != server_uuid}

    async def _failed(
        self, command: ServerCommand, step: str, expected: tuple[str | None, ...], exc: Exception
    ) -> None:
        """An operation that could not finish: ERROR with a fault, unless another one took the server over."""
        logger.error("%s of instance %s failed: %r", step, command.server_uuid, exc, exc_info=exc)
        if step == BUILD_STEP:
            message = build_aborted(command.server_uuid, "the compute host could not record its progress.")
        else:
            message = f"The compute host could not complete {step}."

        def change(uow: UnitOfWork, server: Server) -> None:
            server.vm_state = VmState.ERROR.value
            server.task_state = None
            server.fault = {"code": 500, "message": message}

        now = self._clock.now()
        step_record = Step(command.request_id, step, now, "Error", message)
        try:
            await self._record(Transition(command.server_uuid, expected, change, step_record), step)
        except Exception:
            # NOTE: the start-up recovery finishes what is left in a transitional task state.
            logger.exception("Could not put instance %s in ERROR after %s failed", command.server_uuid, step)

    def busy(self, server_uuid: str) -> bool:
        """Whether an operation on the server is under way or waiting for one."""
        return self._op_locks.busy(server_uuid)

    # --- build -----------------------------------------------------------------
    async def build(self, command: BuildServer) -> None:
        expected = (TaskState.SCHEDULING.value, TaskState.SPAWNING.value)
        try:
            await self._build(command)
        except Exception as exc:
            await self._failed(command, BUILD_STEP, expected, exc)

    async def _build(self, command: BuildServer) -> None:
        server = await self._load(command.server_uuid)
        if server is None or server.vm_state != VmState.BUILDING:
            return
        uuid = server.uuid
        timeout = self._policy.vif_plugging_timeout
        keys = (
            [(EventName.NETWORK_VIF_PLUGGED.value, v.port_id) for v in server.vifs if not v.active] if timeout else []
        )
        failed: list[str] = []

        def on_failed_event(key: str, event: EventEnvelope) -> bool | None:
            logger.error("Neutron reported failure on event %s for instance %s", key, uuid)
            failed.append(key)
            return False if self._policy.vif_plugging_is_fatal else None

        try:
            async with (
                self._waiters.wait_for_events(uuid, keys, timeout=float(timeout), error_callback=on_failed_event),
                self._op_locks.hold(uuid),
            ):
                if not await self._spawn(command):
                    raise _BuildEnded
        except _BuildEnded:
            return
        except (EventWaitTimeout, EventWaitFailed) as exc:
            if self._policy.vif_plugging_is_fatal:
                await self._fail_build(command, NETWORK_FAILURE)
                return
            logger.warning("Continuing the build of instance %s without its plug events: %s", uuid, exc)
        if failed and self._policy.vif_plugging_is_fatal:
            await self._fail_build(command, NETWORK_FAILURE)
            return
        async with self._op_locks.hold(uuid):
            await self._finish_build(command)

    async def _spawn(self, command: BuildServer) -> bool:
        """Claim a node, then power it on; under the operation lock. False: the build is over."""
        uuid = command.server_uuid
        claimed = await self._claim_node(command, (TaskState.SCHEDULING.value,), TaskState.SPAWNING.value)
        if isinstance(claimed, str):
            await self._end_failed_build(command, build_aborted(uuid, claimed), (TaskState.SCHEDULING.value,))
            return False
        if claimed is None:
            return False
        try:
            await asyncio.to_thread(self._driver.spawn, claimed)
        except DriverError as exc:
            await self._end_failed_build(command, build_aborted(uuid, exc.text), (TaskState.SPAWNING.value,), claimed)
            return False
        return True

    async def _claim_node(
        self, command: ServerCommand, expected: tuple[str | None, ...], task_state: str | None
    ) -> Server | str | None:
        """Choose a node and record it (with ``task_state``): the server, why none is free, or None (gone)."""
        uuid = command.server_uuid
        async with self._claim:
            server = await self._load(uuid)
            if server is None or server.task_state not in expected:
                return None
            in_use = await asyncio.to_thread(self._nodes_in_use, uuid)
            try:
                node = await asyncio.to_thread(self._driver.allocate_node, server, in_use)
            except NoValidHost as exc:
                return exc.text

            def change(uow: UnitOfWork, server: Server) -> None:
                server.host = self._host
                server.node = node
                server.task_state = task_state

            applied = await self._record(Transition(uuid, expected, change), "Node claim")
        return applied.server if applied.done else None

    async def _finish_build(self, command: BuildServer) -> None:
        def change(uow: UnitOfWork, server: Server) -> None:
            server.vm_state = VmState.ACTIVE.value
            server.power_state = PowerState.RUNNING.value
            server.task_state = None
            server.launched_at = self._clock.now()
            for vif in server.vifs:
                vif.active = True

        step = Step(command.request_id, BUILD_STEP, self._clock.now(), "Success")
        await self._record(Transition(command.server_uuid, (TaskState.SPAWNING.value,), change, step), "Build")

    async def _fail_build(self, command: BuildServer, message: str) -> None:
        async with self._op_locks.hold(command.server_uuid):
            server = await self._load(command.server_uuid)
            if server is not None:
                await self._end_failed_build(command, message, (TaskState.SPAWNING.value,), server)

    async def _end_failed_build(
        self, command: BuildServer, message: str, expected: tuple[str | None, ...], server: Server | None = None
    ) -> None:
        """Tear down what the build made (a failure to is logged, not fatal), then ERROR with Nova's fault."""
        logger.error("Build of instance %s failed: %s", command.server_uuid, message)
        start = self._clock.now()
        if server is not None and server.task_state in expected:
            try:
                await asyncio.to_thread(self._driver.destroy, server)
            except Exception:
                logger.exception("Could not destroy instance %s after its failed build", command.server_uuid)

        def change(uow: UnitOfWork, server: Server) -> None:
            server.vm_state = VmState.ERROR.value
            server.power_state = PowerState.NOSTATE.value
            server.task_state = None
            server.fault = {"code": 500, "message": message}

        step = Step(command.request_id, BUILD_STEP, start, "Error")
        await self._record(Transition(command.server_uuid, expected, change, step), "Failed build")

    # --- the common shape: driver work outside any transaction, then one guarded transition ----------
    async def _operation(self, command: ServerCommand, step: str, expected: str, work: Callable[[], object]) -> None:
        """Run ``work`` under the server's operation lock; a failure ends in ERROR (see :meth:`_failed`)."""
        try:
            async with self._op_locks.hold(command.server_uuid):
                result = work()
                if asyncio.iscoroutine(result):
                    await result
        except Exception as exc:
            await self._failed(command, step, (expected,), exc)

    async def _step(
        self,
        command: ServerCommand,
        step: str,
        expected: str,
        act: Callable[[Server], None] | None,
        done: Callable[[Server], None],
        notify: tuple[ServerHook, ServerHook] | None = None,
    ) -> str | None:
        """Run ``act`` on the machine, then record the outcome if the task state is still ``expected``.

        The driver may take long (a BMC waits for the power to change): no transaction and no
        record lock is held meanwhile, so events and the power sync for this server are not blocked.
        ``notify`` is called with the server before ``act`` and, after a success, once committed.
        """
        server = await self._load(command.server_uuid)
        if server is None:
            logger.info("Instance %s is gone; %s skipped", command.server_uuid, step)
            return None
        if server.task_state != expected:
            logger.info(
                "Instance %s has task_state %s, not %s; %s skipped", server.uuid, server.task_state, expected, step
            )
            return None
        if notify is not None:
            await asyncio.to_thread(notify[0], server)
        start = self._clock.now()
        error: str | None = None
        if act is not None:
            try:
                await asyncio.to_thread(act, server)
            except DriverError as exc:
                logger.warning("%s failed for instance %s: %s", step, server.uuid, exc)
                error = exc.text

        def change(uow: UnitOfWork, fresh: Server) -> None:
            if error is None:
                done(fresh)
            else:
                fresh.task_state = None
                fresh.fault = {"code": 500, "message": error}

        result = "Success" if error is None else "Error"
        transition = Transition(
            command.server_uuid, (expected,), change, Step(command.request_id, step, start, result, error)
        )
        applied = await self._record(transition, step)
        if not applied.done:
            return None
        if notify is not None and error is None and applied.server is not None:
            await asyncio.to_thread(notify[1], applied.server)
        return result

    async def _notifying(
        self, command: ServerCommand, action: NotificationAction
    ) -> tuple[ServerHook, ServerHook] | None:
        """Nova's ``instance.<action>.start`` before the driver and ``.end`` after the commit; none when off."""
        notifier = self._notifier
        if notifier is None or not self._notifications.enabled:
            return None

        def read() -> Initiator:
            with self._read_uow_factory() as uow:
                record = uow.actions.get(command.server_uuid, command.request_id)
            if record is None:
                return Initiator(command.request_id)
            return Initiator(command.request_id, record.user_id, record.project_id)

        initiator = await asyncio.to_thread(read)

        def hook(phase: Phase) -> ServerHook:
            return lambda server: send(notifier, self._notifications.action(server, action, phase, initiator))

        return hook(Phase.START), hook(Phase.END)

    # --- power -----------------------------------------------------------------
    async def stop(self, command: StopServer) -> None:
        step, expected = "compute_stop_instance", TaskState.POWERING_OFF.value

        def done(server: Server) -> None:
            server.vm_state = VmState.STOPPED.value
            server.power_state = PowerState.SHUTDOWN.value
            server.task_state = None

        async def work() -> None:
            if command.from_power_sync and await self._power_update_pending(command):
                return
            notify = await self._notifying(command, NotificationAction.POWER_OFF)
            await self._step(command, step, expected, self._driver.power_off, done, notify)

        await self._operation(command, step, expected, work)

    async def _power_update_pending(self, command: StopServer) -> bool:
        """A stop the power sync asked for yields to a power-update accepted since (it knows better)."""

        def change(uow: UnitOfWork, server: Server) -> bool:
            if not uow.events.pending(server.uuid, EventName.POWER_UPDATE.value, self._host):
                return False
            logger.info("Stop of instance %s by the power sync cancelled: a power-update is on its way", server.uuid)
            server.task_state = None
            return True

        step = Step(
            command.request_id, "compute_stop_instance", self._clock.now(), "Cancelled", "a power-update came in"
        )
        transition = Transition(command.server_uuid, (TaskState.POWERING_OFF.value,), change, step)
        applied = await self._record(transition, "Stop")
        return applied.status is not Status.DECLINED

    async def start(self, command: StartServer) -> None:
        step, expected = "compute_start_instance", TaskState.POWERING_ON.value

        def done(server: Server) -> None:
            server.vm_state = VmState.ACTIVE.value
            server.power_state = PowerState.RUNNING.value
            server.task_state = None

        async def work() -> None:
            notify = await self._notifying(command, NotificationAction.POWER_ON)
            await self._step(command, step, expected, self._driver.power_on, done, notify)

        await self._operation(command, step, expected, work)

    # --- shelve ------------------------------------------------------------------
    async def shelve(self, command: ShelveServer) -> None:
        step, expected = "compute_shelve_instance", TaskState.SHELVING.value

        def done(server: Server) -> None:
            server.vm_state = VmState.SHELVED.value
            server.power_state = PowerState.SHUTDOWN.value
            server.task_state = TaskState.SHELVING_OFFLOADING.value if command.offload else None

        async def work() -> None:
            result = await self._step(command, step, expected, self._driver.power_off, done)
            if command.offload and result == "Success":
                await self._offload(ShelveOffloadServer(command.server_uuid, command.request_id))

        await self._operation(command, step, expected, work)

    async def shelve_offload(self, command: ShelveOffloadServer) -> None:
        step, expected = "compute_shelve_offload_instance", TaskState.SHELVING_OFFLOADING.value
        await self._operation(command, step, expected, lambda: self._offload(command))

    async def _offload(self, command: ShelveOffloadServer) -> None:
        def done(server: Server) -> None:
            server.vm_state = VmState.SHELVED_OFFLOADED.value
            server.power_state = PowerState.SHUTDOWN.value
            server.task_state = None
            # NOTE: no host from here on: external events for this server now get 422.
            server.host = None
            server.node = None

        step, expected = "compute_shelve_offload_instance", TaskState.SHELVING_OFFLOADING.value
        if await self._step(command, step, expected, self._driver.destroy, done) is not None:
            self._waiters.clear(command.server_uuid)

    async def unshelve(self, command: UnshelveServer) -> None:
        step, expected = "compute_unshelve_instance", TaskState.UNSHELVING.value

        def done(server: Server) -> None:
            server.vm_state = VmState.ACTIVE.value
            server.power_state = PowerState.RUNNING.value
            server.task_state = None

        async def work() -> None:
            claimed = await self._claim_node(command, (expected,), expected)
            if isinstance(claimed, str):

                def no_node(uow: UnitOfWork, server: Server) -> None:
                    server.node = None
                    server.task_state = None
                    server.fault = {"code": 500, "message": claimed}

                await self._record(Transition(command.server_uuid, (expected,), no_node), "Unshelve")
                return
            if claimed is not None:
                await self._step(command, step, expected, self._driver.spawn, done)

        await self._operation(command, step, expected, work)

    # --- delete ------------------------------------------------------------------
    async def delete(self, command: DeleteServer) -> None:
        step, expected = "compute_terminate_instance", TaskState.DELETING.value

        def destroy(server: Server) -> None:
            self._driver.destroy(server)
            self._network.deallocate_for_server(server.uuid)

        def done(server: Server) -> None:
            server.vm_state = VmState.DELETED.value
            server.power_state = PowerState.NOSTATE.value
            server.task_state = None
            server.deleted = True
            server.terminated_at = self._clock.now()

        async def work() -> None:
            if await self._step(command, step, expected, destroy, done) is not None:
                self._waiters.clear(command.server_uuid)

        await self._operation(command, step, expected, work)
