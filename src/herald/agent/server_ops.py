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
from herald.service.ports import Clock, NetworkBackend, UnitOfWork, UnitOfWorkFactory, VirtDriver

logger = logging.getLogger(__name__)

NETWORK_FAILURE = "Failed to allocate the network(s), not rescheduling."


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
        clock: Clock,
        driver: VirtDriver,
        network: NetworkBackend,
        waiters: WaiterRegistry,
        locks: ServerLocks,
        build_policy: BuildPolicy,
    ) -> None:
        self._host = host
        self._uow_factory = uow_factory
        self._clock = clock
        self._driver = driver
        self._network = network
        self._waiters = waiters
        self._locks = locks
        self._policy = build_policy

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

    def _driver_step(self, action: Callable[[Server], None], server: Server) -> str:
        try:
            action(server)
        except DriverError as exc:
            logger.warning("Driver failed for instance %s: %s", server.uuid, exc)
            server.task_state = None
            server.fault = {"code": 500, "message": exc.text}
            return "Error"
        return "Success"

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
        with self._uow_factory() as uow:
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

    # --- power -----------------------------------------------------------------
    def stop(self, command: StopServer) -> None:
        def change(uow: UnitOfWork, server: Server) -> str:
            result = self._driver_step(self._driver.power_off, server)
            if result == "Success":
                server.vm_state = VmState.STOPPED.value
                server.power_state = PowerState.SHUTDOWN.value
                server.task_state = None
            return result

        self._transact(command, "compute_stop_instance", change)

    def start(self, command: StartServer) -> None:
        def change(uow: UnitOfWork, server: Server) -> str:
            result = self._driver_step(self._driver.power_on, server)
            if result == "Success":
                server.vm_state = VmState.ACTIVE.value
                server.power_state = PowerState.RUNNING.value
                server.task_state = None
            return result

        self._transact(command, "compute_start_instance", change)

    # --- shelve ------------------------------------------------------------------
    def shelve(self, command: ShelveServer) -> None:
        def change(uow: UnitOfWork, server: Server) -> str:
            result = self._driver_step(self._driver.power_off, server)
            if result == "Success":
                server.vm_state = VmState.SHELVED.value
                server.power_state = PowerState.SHUTDOWN.value
                server.task_state = TaskState.SHELVING_OFFLOADING.value if command.offload else None
            return result

        self._transact(command, "compute_shelve_instance", change)
        if command.offload:
            self.shelve_offload(ShelveOffloadServer(command.server_uuid, command.request_id))

    def shelve_offload(self, command: ShelveOffloadServer) -> None:
        def change(uow: UnitOfWork, server: Server) -> str:
            result = self._driver_step(self._driver.destroy, server)
            if result == "Success":
                self._waiters_clear(server.uuid)
                server.vm_state = VmState.SHELVED_OFFLOADED.value
                server.power_state = PowerState.SHUTDOWN.value
                server.task_state = None
                # NOTE: no host from here on: external events for this server now get 422.
                server.host = None
                server.node = None
            return result

        self._transact(command, "compute_shelve_offload_instance", change)

    def unshelve(self, command: UnshelveServer) -> None:
        def change(uow: UnitOfWork, server: Server) -> str:
            server.host = self._host
            try:
                server.node = self._driver.allocate_node(server, self._nodes_in_use(uow, server.uuid))
            except NoValidHost as exc:
                server.task_state = None
                server.fault = {"code": 500, "message": exc.text}
                return "Error"
            result = self._driver_step(self._driver.spawn, server)
            if result == "Success":
                server.vm_state = VmState.ACTIVE.value
                server.power_state = PowerState.RUNNING.value
                server.task_state = None
            return result

        self._transact(command, "compute_unshelve_instance", change)

    # --- delete ------------------------------------------------------------------
    def delete(self, command: DeleteServer) -> None:
        def change(uow: UnitOfWork, server: Server) -> str:
            self._driver.destroy(server)
            self._network.deallocate_for_server(server.uuid)
            self._waiters_clear(server.uuid)
            server.vm_state = VmState.DELETED.value
            server.power_state = PowerState.NOSTATE.value
            server.task_state = None
            server.deleted = True
            server.terminated_at = self._clock.now()
            return "Success"

        self._transact(command, "compute_terminate_instance", change)

    def _waiters_clear(self, server_uuid: str) -> None:
        # NOTE: the registry lives on the loop; clearing is scheduled there.
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(self._waiters.clear, server_uuid)

    _loop: asyncio.AbstractEventLoop | None = None

    def bind_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
