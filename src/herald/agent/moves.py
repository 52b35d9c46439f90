"""Cold moves on the agents: each host runs its share of a migrate or resize and hands over to the other.

The steps and task states are Nova's: the destination prepares (``compute_prep_resize``),
the source powers off and sends the disk (``resize_migrating``, then ``resize_migrated``:
from here the destination holds the server), the destination starts the machine with the
new flavor (``resize_finish``, then VERIFY_RESIZE). A confirm removes the source's machine;
a revert removes the destination's, then the source starts its old machine again and, as
Nova's driver does there, waits for ``network-vif-plugged`` of the ports bound back to it.

Each step calls the driver on a worker thread with no transaction and no lock, then records
its outcome as a guarded transition; ``server.host`` always names the host that owns the
server, which is how event handlers on both hosts know which one acts.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from datetime import datetime

from herald.agent.build import BuildPolicy
from herald.agent.operation import OperationTools
from herald.agent.transitions import Applied, Step, Transition
from herald.agent.waiters import WaiterRegistry
from herald.domain.errors import DriverError, EventWaitFailed, EventWaitTimeout
from herald.domain.events import EventName
from herald.domain.messages import (
    ConfirmResize,
    DeleteServer,
    FinishResize,
    FinishRevertResize,
    MoveCommand,
    PrepResize,
    ResizeInstance,
    RevertResize,
)
from herald.domain.model import Migration, MigrationStatus, PowerState, Server, TaskState, VmState
from herald.domain.records import EventEnvelope
from herald.service.ports import Bus, NetworkBackend, UnitOfWork

logger = logging.getLogger(__name__)

# Nova's VirtualInterfaceCreateException, the fault of a revert whose ports never came up.
VIF_CREATE_FAILED = "Virtual Interface creation failed"
PREP = TaskState.RESIZE_PREP.value
MIGRATING = TaskState.RESIZE_MIGRATING.value
MIGRATED = TaskState.RESIZE_MIGRATED.value
FINISH = TaskState.RESIZE_FINISH.value
REVERTING = TaskState.RESIZE_REVERTING.value
DELETING = TaskState.DELETING.value

MigrationChange = Callable[[Server, Migration], None]


class _MoveFailed(Exception):
    """A step of the move could not be done; the server goes to ERROR with ``message``."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _power_on(migration: Migration) -> bool:
    # NOTE: a stopped server moves stopped, as Nova keeps old_vm_state.
    return migration.old_vm_state != VmState.STOPPED


class Moves:
    """One host's share of cold moves (see the module docstring)."""

    def __init__(
        self,
        *,
        tools: OperationTools,
        waiters: WaiterRegistry,
        bus: Bus,
        policy: BuildPolicy,
        network: NetworkBackend | None = None,
    ) -> None:
        self._tools = tools
        self._host = tools.host
        self._waiters = waiters
        self._bus = bus
        self._policy = policy
        self._network = network

    async def _wired_ports(self, server_uuid: str) -> set[str]:
        """The server's ports the network backend reports active: no plug event will come for them.

        The embedded backend wires the ports it allocates itself at once (it sends no events, as a
        boot does not wait for them either); a port it does not know is waited for.
        """
        if self._network is None:
            return set()
        ports = await asyncio.to_thread(self._network.refresh, server_uuid, None)
        return {str(port["port_id"]) for port in ports if port["active"]}

    # --- the destination ---------------------------------------------------------------------
    async def prep_resize(self, command: PrepResize) -> None:
        step = "compute_prep_resize"

        async def work(server: Server, migration: Migration) -> None:
            target = dataclasses.replace(server, host=self._host, node=None)
            node = await asyncio.to_thread(self._tools.driver.allocate_node, target, set())
            applied = await self._record(command, (PREP,), PREP, step, None, dest_node=node)
            if applied.done:
                await self._bus.publish(migration.source_compute, [ResizeInstance(*self._args(command))])

        await self._run(command, step, (PREP,), work)

    async def finish_resize(self, command: FinishResize) -> None:
        step = "compute_finish_resize"

        async def work(server: Server, migration: Migration) -> None:
            start = self._tools.clock.now()

            def resizing(server: Server, migration: Migration) -> None:
                server.flavor_id = migration.new_flavor_id or server.flavor_id

            applied = await self._record(command, (MIGRATED,), FINISH, None, resizing)
            if not applied.done or applied.server is None:
                return
            await self._driver(self._tools.driver.finish_migration, applied.server, _power_on(migration))

            def finished(server: Server, migration: Migration) -> None:
                server.vm_state = VmState.RESIZED.value
                server.power_state = (PowerState.RUNNING if _power_on(migration) else PowerState.SHUTDOWN).value
                server.launched_at = self._tools.clock.now()

            await self._record(command, (FINISH,), None, step, finished, start=start, status=MigrationStatus.FINISHED)

        await self._run(command, step, (MIGRATED, FINISH), work)

    async def revert_resize(self, command: RevertResize) -> None:
        step = "compute_revert_resize"

        async def work(server: Server, migration: Migration) -> None:
            start = self._tools.clock.now()
            await self._driver(self._tools.driver.destroy, server)
            applied = await self._record(command, (REVERTING,), REVERTING, step, None, start=start)
            if applied.done:
                # NOTE: the server is no longer this host's to wait for (Nova clears its events too).
                self._waiters.clear(server.uuid)
                await self._bus.publish(migration.source_compute, [FinishRevertResize(*self._args(command))])

        await self._run(command, step, (REVERTING,), work)

    # --- the source ----------------------------------------------------------------------------
    async def resize_instance(self, command: ResizeInstance) -> None:
        step = "compute_resize_instance"

        async def work(server: Server, migration: Migration) -> None:
            start = self._tools.clock.now()
            applied = await self._record(command, (PREP,), MIGRATING, None, None, status=MigrationStatus.MIGRATING)
            if not applied.done or applied.server is None:
                return
            await self._driver(self._tools.driver.migrate_disk_and_power_off, applied.server)

            def handed_over(server: Server, migration: Migration) -> None:
                server.host = migration.dest_compute
                server.node = migration.dest_node
                server.power_state = PowerState.SHUTDOWN.value

            applied = await self._record(
                command, (MIGRATING,), MIGRATED, step, handed_over, start=start, status=MigrationStatus.POST_MIGRATING
            )
            if applied.done:
                self._waiters.clear(server.uuid)
                await self._bus.publish(migration.dest_compute, [FinishResize(*self._args(command))])

        await self._run(command, step, (PREP, MIGRATING), work)

    async def confirm_resize(self, command: ConfirmResize) -> None:
        step = "compute_confirm_resize"

        async def work(server: Server, migration: Migration) -> None:
            if server.vm_state != VmState.RESIZED or migration.status != MigrationStatus.CONFIRMING:
                logger.info("Instance %s is no longer waiting for a confirm; confirm skipped", server.uuid)
                return
            start = self._tools.clock.now()
            await self._driver(self._tools.driver.confirm_migration, server)

            def confirmed(server: Server, migration: Migration) -> None:
                server.migration_id = None
                if server.task_state is None:
                    off = server.power_state == PowerState.SHUTDOWN
                    server.vm_state = (VmState.STOPPED if off else VmState.ACTIVE).value

            expected = (server.task_state,)
            status = MigrationStatus.CONFIRMED
            await self._record(command, expected, server.task_state, step, confirmed, start=start, status=status)

        try:
            await self._run(command, step, (None, DELETING), work)
        finally:
            if command.then_delete:
                # NOTE: the delete goes on whatever became of the confirm, as Nova's does.
                await self._delete_on_destination(command)

    async def _delete_on_destination(self, command: ConfirmResize) -> None:
        loaded = await asyncio.to_thread(self._read, command)
        if loaded is not None and loaded[0].host:
            await self._bus.publish(loaded[0].host, [DeleteServer(command.server_uuid, command.request_id)])

    async def finish_revert_resize(self, command: FinishRevertResize) -> None:
        step = "compute_finish_revert_resize"

        async def work(server: Server, migration: Migration) -> None:
            start = self._tools.clock.now()
            # NOTE: events kept for this server before its ports came back here are not about them.
            self._waiters.clear(server.uuid)
            wired = await self._wired_ports(server.uuid)

            def back_here(server: Server, migration: Migration) -> None:
                server.host = self._host
                server.node = migration.source_node
                server.flavor_id = migration.old_flavor_id or server.flavor_id
                # The ports are bound to this host again: Neutron reports them up once plugged.
                for vif in server.vifs:
                    vif.active = vif.port_id in wired

            applied = await self._record(command, (REVERTING,), REVERTING, None, back_here)
            if not applied.done or applied.server is None:
                return
            await self._start_old_machine(command, applied.server, migration)

            def reverted(server: Server, migration: Migration) -> None:
                on = _power_on(migration)
                server.vm_state = (VmState.ACTIVE if on else VmState.STOPPED).value
                server.power_state = (PowerState.RUNNING if on else PowerState.SHUTDOWN).value
                server.launched_at = self._tools.clock.now()
                server.migration_id = None
                for vif in server.vifs:
                    vif.active = True

            await self._record(
                command, (REVERTING,), None, step, reverted, start=start, status=MigrationStatus.REVERTED
            )

        await self._run(command, step, (REVERTING,), work, hold=False)

    async def _start_old_machine(self, command: MoveCommand, server: Server, migration: Migration) -> None:
        """Nova's ``finish_revert_migration``: start the guest, waiting for its ports to be plugged here."""
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
            waiting = self._waiters.wait_for_events(
                server.uuid, keys, timeout=float(timeout), error_callback=on_failed_event
            )
            async with waiting, self._tools.hold(server.uuid):
                await self._driver(self._tools.driver.finish_revert_migration, server, _power_on(migration))
        except (EventWaitTimeout, EventWaitFailed) as exc:
            if self._policy.vif_plugging_is_fatal:
                await self._stop_guest(server)
                raise _MoveFailed(VIF_CREATE_FAILED) from exc
            logger.warning("Continuing the revert of instance %s without its plug events: %s", server.uuid, exc)
        if failed and self._policy.vif_plugging_is_fatal:
            await self._stop_guest(server)
            raise _MoveFailed(VIF_CREATE_FAILED)

    async def _stop_guest(self, server: Server) -> None:
        """As Nova's driver after a failed plug wait: the guest it started is stopped (its disk is kept)."""
        try:
            await asyncio.to_thread(self._tools.driver.power_off, server)
        except DriverError as exc:
            logger.warning("Could not stop instance %s after its ports failed: %s", server.uuid, exc)

    # --- the common shape ----------------------------------------------------------------------
    @staticmethod
    def _args(command: MoveCommand) -> tuple[str, str, int]:
        return command.server_uuid, command.request_id, command.migration_id

    async def _driver(self, method: Callable[..., None], *args: object) -> None:
        try:
            await asyncio.to_thread(method, *args)
        except DriverError as exc:
            raise _MoveFailed(exc.text) from exc

    async def _run(
        self,
        command: MoveCommand,
        step: str,
        expected: tuple[str | None, ...],
        work: Callable[[Server, Migration], object],
        *,
        hold: bool = True,
    ) -> None:
        """Run ``work`` on the server and its migration (under the operation lock unless it waits for events)."""
        try:
            if hold:
                async with self._tools.hold(command.server_uuid):
                    await self._start(command, expected, work)
            else:
                await self._start(command, expected, work)
        except _MoveFailed as exc:
            await self._fail(command, step, expected, exc.message)
        except Exception as exc:
            logger.exception("%s of instance %s failed", step, command.server_uuid)
            await self._fail(command, step, expected, f"The compute host could not complete {step}: {exc!r}")

    async def _start(
        self, command: MoveCommand, expected: tuple[str | None, ...], work: Callable[[Server, Migration], object]
    ) -> None:
        loaded = await asyncio.to_thread(self._read, command)
        if loaded is None:
            logger.info("Instance %s or its migration is gone; move step skipped", command.server_uuid)
            return
        server, migration = loaded
        if server.task_state not in expected:
            logger.info("Instance %s has task_state %s; move step skipped", server.uuid, server.task_state)
            return
        result = work(server, migration)
        if asyncio.iscoroutine(result):
            await result

    def _read(self, command: MoveCommand) -> tuple[Server, Migration] | None:
        with self._tools.read_uow_factory() as uow:
            server = uow.servers.get(command.server_uuid)
            migration = uow.migrations.get(command.migration_id)
        if server is None or migration is None:
            return None
        return server, migration

    async def _record(
        self,
        command: MoveCommand,
        expected: tuple[str | None, ...],
        task_state: str | None,
        step: str | None,
        change: MigrationChange | None,
        *,
        start: datetime | None = None,
        status: MigrationStatus | None = None,
        dest_node: str | None = None,
    ) -> Applied:
        """One guarded transition: the server's change, its new task state, the migration's status and the step."""
        migration_id = command.migration_id

        def apply(uow: UnitOfWork, server: Server) -> bool | None:
            migration = uow.migrations.get(migration_id)
            if migration is None:
                return False
            if change is not None:
                flavor_id = server.flavor_id
                change(server, migration)
                if server.flavor_id != flavor_id:
                    # NOTE: the server's own copy follows the flavor it now runs with (Nova swaps
                    # instance.flavor with new_flavor/old_flavor); a flavor deleted since keeps the copy.
                    server.flavor = uow.flavors.get(server.flavor_id) or server.flavor
            server.task_state = task_state
            updated = migration
            if status is not None:
                updated = dataclasses.replace(updated, status=status.value)
            if dest_node is not None:
                updated = dataclasses.replace(updated, dest_node=dest_node)
            if updated != migration:
                uow.migrations.save(updated)
            return None

        record = None
        if step is not None:
            record = Step(command.request_id, step, start or self._tools.clock.now(), "Success")
        return await self._tools.record(Transition(command.server_uuid, expected, apply, record), step or "Move")

    async def _fail(self, command: MoveCommand, step: str, expected: tuple[str | None, ...], message: str) -> None:
        """ERROR with ``message`` as the fault and the migration in error (Nova's ``errors_out_migration``)."""
        logger.error("%s of instance %s failed: %s", step, command.server_uuid, message)
        migration_id = command.migration_id

        def change(uow: UnitOfWork, server: Server) -> None:
            server.vm_state = VmState.ERROR.value
            server.task_state = None
            server.fault = {"code": 500, "message": message}
            migration = uow.migrations.get(migration_id)
            if migration is not None:
                uow.migrations.save(dataclasses.replace(migration, status=MigrationStatus.ERROR.value))

        record = Step(command.request_id, step, self._tools.clock.now(), "Error", message)
        try:
            await self._tools.record(Transition(command.server_uuid, expected, change, record), step)
        except Exception:
            logger.exception("Could not put instance %s in ERROR after %s failed", command.server_uuid, step)
