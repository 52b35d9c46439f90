"""The server operations an agent runs on command: build, stop, start, shelve, unshelve, delete.

Each runs under its server's operation lock: the driver is called on a worker thread with
no transaction and no record lock held, then the outcome is recorded through the writer if
the server still has the task state the operation expects (see :mod:`herald.agent.operation`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from herald.agent.build import Build, BuildPolicy
from herald.agent.current_waits import CurrentWaits
from herald.agent.deferred_delete import DeferredDelete
from herald.agent.operation import OperationTools
from herald.agent.plug_wait import PlugPolicy
from herald.agent.reboot import Reboot
from herald.agent.rebuild import Rebuild
from herald.agent.transitions import Status, Step, Transition
from herald.agent.waiters import WaiterRegistry
from herald.domain.errors import DriverError
from herald.domain.events import EventName
from herald.domain.messages import (
    BuildServer,
    DeleteServer,
    RebootServer,
    RebuildServer,
    RestoreServer,
    ServerCommand,
    ShelveOffloadServer,
    ShelveServer,
    SoftDeleteServer,
    StartServer,
    StopServer,
    UnshelveServer,
)
from herald.domain.model import PowerState, Server, TaskState, VmState
from herald.service.notifications import (
    NO_NOTIFICATIONS,
    Initiator,
    InstanceNotifications,
    NotificationAction,
    Phase,
    send,
)
from herald.service.ports import AcceleratorBackend, NetworkBackend, Notifier, UnitOfWork

logger = logging.getLogger(__name__)

ServerHook = Callable[[Server], None]


class ServerOps:
    """One host's server operations (see the module docstring)."""

    def __init__(
        self,
        *,
        tools: OperationTools,
        network: NetworkBackend,
        waiters: WaiterRegistry,
        build_policy: BuildPolicy,
        notifier: Notifier | None = None,
        notifications: InstanceNotifications = NO_NOTIFICATIONS,
        hard_reboot_vnic_types: tuple[str, ...] = (),
        reimage_timeout_per_gb: int = 20,
        reclaim_instance_interval: int = 0,
        current_waits: CurrentWaits | None = None,
        accelerators: AcceleratorBackend | None = None,
    ) -> None:
        self._tools = tools
        self._host = tools.host
        self._clock = tools.clock
        self._driver = tools.driver
        self._network = network
        self._waiters = waiters
        self._accelerators = accelerators
        self._build = Build(
            tools, waiters, build_policy, current_waits=current_waits, accelerators=accelerators, network=network
        )
        self._notifier = notifier
        self._notifications = notifications
        plugs = PlugPolicy(build_policy.vif_plugging_timeout, build_policy.vif_plugging_is_fatal)
        self._reboot = Reboot(tools, waiters, plugs, hard_reboot_vnic_types=hard_reboot_vnic_types)
        self._rebuild = Rebuild(tools, waiters, plugs, reimage_timeout_per_gb=reimage_timeout_per_gb)
        self.reclaim_interval = reclaim_instance_interval
        self._deferred = DeferredDelete(tools, interval=reclaim_instance_interval, delete=self.delete)

    def busy(self, server_uuid: str) -> bool:
        """Whether an operation on the server is under way or waiting for one."""
        return self._tools.busy(server_uuid)

    async def build(self, command: BuildServer) -> None:
        await self._build(command)

    # --- the common shape: driver work outside any transaction, then one guarded transition ----------
    async def _operation(self, command: ServerCommand, step: str, expected: str, work: Callable[[], object]) -> None:
        """Run ``work`` under the server's operation lock; a failure ends in ERROR with a fault."""
        try:
            async with self._tools.hold(command.server_uuid):
                result = work()
                if asyncio.iscoroutine(result):
                    await result
        except Exception as exc:
            await self._tools.failed(command, step, (expected,), exc, f"The compute host could not complete {step}.")

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
        server = await self._tools.load(command.server_uuid)
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
        applied = await self._tools.record(transition, step)
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
            with self._tools.read_uow_factory() as uow:
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
        applied = await self._tools.record(transition, "Stop")
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
            claimed = await self._tools.claim_node(command.server_uuid, (expected,), expected)
            if isinstance(claimed, str):

                def no_node(uow: UnitOfWork, server: Server) -> None:
                    server.node = None
                    server.task_state = None
                    server.fault = {"code": 500, "message": claimed}

                await self._tools.record(Transition(command.server_uuid, (expected,), no_node), "Unshelve")
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
            if self._accelerators is not None and server.accelerator_requests:
                self._accelerators.delete_for_server(server.uuid)

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

    # --- reboot, rebuild, deferred delete (their own modules) ------------------------------------------
    async def reboot(self, command: RebootServer) -> None:
        await self._reboot(command)

    async def rebuild(self, command: RebuildServer) -> None:
        await self._rebuild(command)

    async def soft_delete(self, command: SoftDeleteServer) -> None:
        await self._deferred.soft_delete(command)

    async def restore(self, command: RestoreServer) -> None:
        await self._deferred.restore(command)

    async def reclaim(self) -> int:
        """Delete the soft-deleted servers whose ``reclaim_instance_interval`` has passed."""
        return await self._deferred.reclaim()
