"""The server operations an agent runs on command: build, stop, start, shelve, unshelve, delete."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from herald.agent.context import ServerLocks
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
from herald.domain.records import ActionEvent, EventEnvelope
from herald.service.notifications import (
    NO_NOTIFICATIONS,
    Initiator,
    InstanceNotifications,
    NotificationAction,
    Phase,
    send,
)
from herald.service.ports import Clock, NetworkBackend, Notifier, UnitOfWork, UnitOfWorkFactory, VirtDriver

logger = logging.getLogger(__name__)

NETWORK_FAILURE = "Failed to allocate the network(s), not rescheduling."

ServerHook = Callable[[Server], None]


@dataclass(frozen=True, slots=True)
class BuildPolicy:
    vif_plugging_timeout: int
    vif_plugging_is_fatal: bool


class ServerOps:
    """Runs one command at a time per server; each ends in one transaction that records its step."""

    def __init__(
        self,
        *,
        host: str,
        uow_factory: UnitOfWorkFactory,
        read_uow_factory: UnitOfWorkFactory,
        clock: Clock,
        driver: VirtDriver,
        network: NetworkBackend,
        waiters: WaiterRegistry,
        locks: ServerLocks,
        build_policy: BuildPolicy,
        notifier: Notifier | None = None,
        notifications: InstanceNotifications = NO_NOTIFICATIONS,
    ) -> None:
        self._host = host
        self._uow_factory = uow_factory
        self._read_uow_factory = read_uow_factory
        self._clock = clock
        self._driver = driver
        self._network = network
        self._waiters = waiters
        self._locks = locks
        self._policy = build_policy
        self._notifier = notifier
        self._notifications = notifications

    # --- helpers ---------------------------------------------------------------
    def _transact(self, command: ServerCommand, step: str, change: Callable[[UnitOfWork, Server], str]) -> None:
        """Under the server's lock and in one transaction: apply ``change`` and record the step."""
        with self._locks(command.server_uuid), self._uow_factory() as uow:
            server = uow.servers.get(command.server_uuid, for_update=True)
            if server is None:
                logger.info("Instance %s is gone; %s skipped", command.server_uuid, step)
                return
            start = self._clock.now()
            result = change(uow, server)
            server.updated_at = self._clock.now()
            uow.servers.save(server)
            uow.actions.add_event(
                server.uuid,
                command.request_id,
                ActionEvent(step, start, self._clock.now(), result, None, self._host),
            )
            uow.commit()

    # --- build -----------------------------------------------------------------
    async def build(self, command: BuildServer) -> None:
        server = await asyncio.to_thread(self._load, command.server_uuid)
        if server is None or server.vm_state != VmState.BUILDING:
            return
        timeout = self._policy.vif_plugging_timeout
        keys = (
            [(EventName.NETWORK_VIF_PLUGGED.value, v.port_id) for v in server.vifs if not v.active] if timeout else []
        )
        failed: list[str] = []

        def on_failed_event(key: str, event: EventEnvelope) -> bool | None:
            logger.error("Neutron reported failure on event %s for instance %s", key, server.uuid)
            failed.append(key)
            return False if self._policy.vif_plugging_is_fatal else None

        try:
            async with self._waiters.wait_for_events(
                server.uuid, keys, timeout=float(timeout), error_callback=on_failed_event
            ):
                spawned = await asyncio.to_thread(self._spawn, command)
        except (EventWaitTimeout, EventWaitFailed) as exc:
            if self._policy.vif_plugging_is_fatal:
                await asyncio.to_thread(self._fail_build, command, NETWORK_FAILURE)
                return
            logger.warning("Continuing the build of instance %s without its plug events: %s", server.uuid, exc)
            spawned = True
        if not spawned:
            return
        if failed and self._policy.vif_plugging_is_fatal:
            await asyncio.to_thread(self._fail_build, command, NETWORK_FAILURE)
            return
        await asyncio.to_thread(self._finish_build, command)

    def _load(self, server_uuid: str) -> Server | None:
        with self._read_uow_factory() as uow:
            return uow.servers.get(server_uuid)

    def _spawn(self, command: BuildServer) -> bool:
        with self._locks(command.server_uuid), self._uow_factory() as uow:
            server = uow.servers.get(command.server_uuid, for_update=True)
            if server is None:
                return False
            try:
                server.node = self._driver.allocate_node(server, self._nodes_in_use(uow, server.uuid))
            except NoValidHost as exc:
                uow.rollback()
                self._fail_build(command, f"Build of instance {command.server_uuid} aborted: {exc.text}")
                return False
            server.task_state = TaskState.SPAWNING.value
            uow.servers.save(server)
            uow.commit()
        try:
            self._driver.spawn(server)
        except DriverError as exc:
            self._fail_build(command, f"Build of instance {command.server_uuid} aborted: {exc.text}")
            return False
        return True

    def _nodes_in_use(self, uow: UnitOfWork, server_uuid: str) -> set[str]:
        return {s.node for s in uow.servers.list(host=self._host) if s.node and s.uuid != server_uuid}

    def _finish_build(self, command: BuildServer) -> None:
        def change(uow: UnitOfWork, server: Server) -> str:
            server.vm_state = VmState.ACTIVE.value
            server.power_state = PowerState.RUNNING.value
            server.task_state = None
            server.launched_at = self._clock.now()
            for vif in server.vifs:
                vif.active = True
            return "Success"

        self._transact(command, "compute__do_build_and_run_instance", change)

    def _fail_build(self, command: BuildServer, message: str) -> None:
        def change(uow: UnitOfWork, server: Server) -> str:
            self._driver.destroy(server)
            server.vm_state = VmState.ERROR.value
            server.power_state = PowerState.NOSTATE.value
            server.task_state = None
            server.fault = {"code": 500, "message": message}
            return "Error"

        logger.error("Build of instance %s failed: %s", command.server_uuid, message)
        self._transact(command, "compute__do_build_and_run_instance", change)

    # --- the common shape: driver work outside any transaction, then one short transaction ---------
    def _step(
        self,
        command: ServerCommand,
        step: str,
        act: Callable[[Server], None] | None,
        done: Callable[[Server], None],
        notify: tuple[ServerHook, ServerHook] | None = None,
    ) -> str | None:
        """Run ``act`` on the machine, then record the outcome under the server's lock.

        The driver may take long (a BMC waits for the power to change): no transaction and no
        lock is held meanwhile, so events and the power sync for this server are not blocked.
        ``notify`` is called with the server before ``act`` and, after a success, once committed.
        """
        server = self._load(command.server_uuid)
        if server is None:
            logger.info("Instance %s is gone; %s skipped", command.server_uuid, step)
            return None
        if notify is not None:
            notify[0](server)
        start = self._clock.now()
        error: str | None = None
        if act is not None:
            try:
                act(server)
            except DriverError as exc:
                logger.warning("%s failed for instance %s: %s", step, server.uuid, exc)
                error = exc.text
        with self._locks(command.server_uuid), self._uow_factory() as uow:
            fresh = uow.servers.get(command.server_uuid, for_update=True)
            if fresh is None:
                return None
            if error is None:
                done(fresh)
            else:
                fresh.task_state = None
                fresh.fault = {"code": 500, "message": error}
            fresh.updated_at = self._clock.now()
            uow.servers.save(fresh)
            result = "Success" if error is None else "Error"
            uow.actions.add_event(
                fresh.uuid, command.request_id, ActionEvent(step, start, self._clock.now(), result, error, self._host)
            )
            uow.commit()
        if notify is not None and error is None:
            notify[1](fresh)
        return result

    def _notifying(self, command: ServerCommand, action: NotificationAction) -> tuple[ServerHook, ServerHook] | None:
        """Nova's ``instance.<action>.start`` before the driver and ``.end`` after the commit; none when off."""
        notifier = self._notifier
        if notifier is None or not self._notifications.enabled:
            return None
        with self._uow_factory() as uow:
            record = uow.actions.get(command.server_uuid, command.request_id)
        initiator = Initiator(command.request_id)
        if record is not None:
            initiator = Initiator(command.request_id, record.user_id, record.project_id)

        def hook(phase: Phase) -> ServerHook:
            return lambda server: send(notifier, self._notifications.action(server, action, phase, initiator))

        return hook(Phase.START), hook(Phase.END)

    # --- power -----------------------------------------------------------------
    def stop(self, command: StopServer) -> None:
        if command.from_power_sync and self._power_update_pending(command):
            return

        def done(server: Server) -> None:
            server.vm_state = VmState.STOPPED.value
            server.power_state = PowerState.SHUTDOWN.value
            server.task_state = None

        notify = self._notifying(command, NotificationAction.POWER_OFF)
        self._step(command, "compute_stop_instance", self._driver.power_off, done, notify)

    def _power_update_pending(self, command: StopServer) -> bool:
        """A stop the power sync asked for yields to a power-update accepted since (it knows better)."""
        with self._locks(command.server_uuid), self._uow_factory() as uow:
            if not uow.events.pending(command.server_uuid, EventName.POWER_UPDATE.value, self._host):
                return False
            server = uow.servers.get(command.server_uuid, for_update=True)
            if server is None:
                return True
            logger.info("Stop of instance %s by the power sync cancelled: a power-update is on its way", server.uuid)
            server.task_state = None
            uow.servers.save(server)
            now = self._clock.now()
            uow.actions.add_event(
                server.uuid,
                command.request_id,
                ActionEvent("compute_stop_instance", now, now, "Cancelled", "a power-update came in", self._host),
            )
            uow.commit()
        return True

    def start(self, command: StartServer) -> None:
        def done(server: Server) -> None:
            server.vm_state = VmState.ACTIVE.value
            server.power_state = PowerState.RUNNING.value
            server.task_state = None

        notify = self._notifying(command, NotificationAction.POWER_ON)
        self._step(command, "compute_start_instance", self._driver.power_on, done, notify)

    # --- shelve ------------------------------------------------------------------
    def shelve(self, command: ShelveServer) -> None:
        def done(server: Server) -> None:
            server.vm_state = VmState.SHELVED.value
            server.power_state = PowerState.SHUTDOWN.value
            server.task_state = TaskState.SHELVING_OFFLOADING.value if command.offload else None

        result = self._step(command, "compute_shelve_instance", self._driver.power_off, done)
        if command.offload and result == "Success":
            self.shelve_offload(ShelveOffloadServer(command.server_uuid, command.request_id))

    def shelve_offload(self, command: ShelveOffloadServer) -> None:
        def done(server: Server) -> None:
            self._waiters_clear(server.uuid)
            server.vm_state = VmState.SHELVED_OFFLOADED.value
            server.power_state = PowerState.SHUTDOWN.value
            server.task_state = None
            # NOTE: no host from here on: external events for this server now get 422.
            server.host = None
            server.node = None

        self._step(command, "compute_shelve_offload_instance", self._driver.destroy, done)

    def unshelve(self, command: UnshelveServer) -> None:
        with self._locks(command.server_uuid), self._uow_factory() as uow:
            server = uow.servers.get(command.server_uuid, for_update=True)
            if server is None:
                return
            server.host = self._host
            try:
                server.node = self._driver.allocate_node(server, self._nodes_in_use(uow, server.uuid))
            except NoValidHost as exc:
                server.node = None
                server.task_state = None
                server.fault = {"code": 500, "message": exc.text}
            uow.servers.save(server)
            uow.commit()
        if server.node is None:
            return

        def done(server: Server) -> None:
            server.vm_state = VmState.ACTIVE.value
            server.power_state = PowerState.RUNNING.value
            server.task_state = None

        self._step(command, "compute_unshelve_instance", self._driver.spawn, done)

    # --- delete ------------------------------------------------------------------
    def delete(self, command: DeleteServer) -> None:
        def destroy(server: Server) -> None:
            self._driver.destroy(server)
            self._network.deallocate_for_server(server.uuid)

        def done(server: Server) -> None:
            self._waiters_clear(server.uuid)
            server.vm_state = VmState.DELETED.value
            server.power_state = PowerState.NOSTATE.value
            server.task_state = None
            server.deleted = True
            server.terminated_at = self._clock.now()

        self._step(command, "compute_terminate_instance", destroy, done)

    def _waiters_clear(self, server_uuid: str) -> None:
        # NOTE: the registry lives on the loop; clearing is scheduled there.
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(self._waiters.clear, server_uuid)

    _loop: asyncio.AbstractEventLoop | None = None

    def bind_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
