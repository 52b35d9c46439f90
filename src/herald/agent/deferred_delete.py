"""Deferred delete on a host: soft delete (power off), restore (power on) and the periodic reclaim.

The reclaim is Nova's ``_reclaim_queued_deletes``: every SOFT_DELETED server of this host
with no task whose ``deleted_at`` is at least ``reclaim_instance_interval`` seconds old is
deleted, through the same delete operation as ``DELETE /servers/{id}`` runs.
"""

from __future__ import annotations

import asyncio
import logging
import uuid as uuidlib
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from herald.agent.operation import OperationTools
from herald.agent.transitions import Step, Transition
from herald.domain.errors import DriverError
from herald.domain.messages import DeleteServer, RestoreServer, ServerCommand, SoftDeleteServer
from herald.domain.model import PowerState, Server, TaskState, VmState
from herald.service.ports import UnitOfWork

logger = logging.getLogger(__name__)

SOFT_DELETE_STEP = "compute_soft_delete_instance"
RESTORE_STEP = "compute_restore_instance"


class DeferredDelete:
    """One host's soft delete, restore and reclaim."""

    def __init__(
        self, tools: OperationTools, *, interval: int, delete: Callable[[DeleteServer], Awaitable[None]]
    ) -> None:
        self._tools = tools
        self._interval = interval
        self._delete = delete

    async def soft_delete(self, command: SoftDeleteServer) -> None:
        await self._power(
            command, SOFT_DELETE_STEP, TaskState.SOFT_DELETING, self._tools.driver.power_off, VmState.SOFT_DELETED
        )

    async def restore(self, command: RestoreServer) -> None:
        await self._power(command, RESTORE_STEP, TaskState.RESTORING, self._tools.driver.power_on, VmState.ACTIVE)

    async def _power(
        self,
        command: ServerCommand,
        step: str,
        expected: TaskState,
        act: Callable[[Server], None],
        vm_state: VmState,
    ) -> None:
        """Power the machine off or on, then record ``vm_state`` if the task is still ``expected``."""
        tools = self._tools
        try:
            async with tools.hold(command.server_uuid):
                server = await tools.load(command.server_uuid)
                if server is None or server.task_state != expected:
                    return
                start = tools.clock.now()
                error: str | None = None
                try:
                    await asyncio.to_thread(act, server)
                except DriverError as exc:
                    error = exc.text
                await tools.record(self._outcome(command, step, expected, vm_state, start, error), step)
        except Exception as exc:
            await tools.failed(command, step, (expected.value,), exc, f"The compute host could not complete {step}.")

    def _outcome(
        self,
        command: ServerCommand,
        step: str,
        expected: TaskState,
        vm_state: VmState,
        start: datetime,
        error: str | None,
    ) -> Transition:
        running = vm_state == VmState.ACTIVE

        def change(uow: UnitOfWork, server: Server) -> None:
            server.task_state = None
            if error is not None:
                server.fault = {"code": 500, "message": error}
                return
            server.vm_state = vm_state.value
            server.power_state = (PowerState.RUNNING if running else PowerState.SHUTDOWN).value
            if not running:
                server.terminated_at = self._tools.clock.now()

        step_record = Step(command.request_id, step, start, "Success" if error is None else "Error", error)
        return Transition(command.server_uuid, (expected.value,), change, step_record)

    async def reclaim(self) -> int:
        """Delete the soft-deleted servers whose interval has passed; :returns: how many were started."""
        if self._interval <= 0:
            return 0
        now = self._tools.clock.now()
        due = [s.uuid for s in await asyncio.to_thread(self._soft_deleted) if _old_enough(s, now, self._interval)]
        started = 0
        for server_uuid in due:
            if await self._begin_delete(server_uuid, now):
                logger.info("Reclaiming deleted instance %s", server_uuid)
                await self._delete(DeleteServer(server_uuid, f"req-{uuidlib.uuid4()}"))
                started += 1
        return started

    def _soft_deleted(self) -> list[Server]:
        with self._tools.read_uow_factory() as uow:
            servers = uow.servers.list(host=self._tools.host)
        return [s for s in servers if s.vm_state == VmState.SOFT_DELETED and s.task_state is None]

    async def _begin_delete(self, server_uuid: str, now: datetime) -> bool:
        interval = self._interval

        def change(uow: UnitOfWork, server: Server) -> bool:
            # NOTE: decided again on the locked row: a restore or forceDelete may have come since the read.
            if server.vm_state != VmState.SOFT_DELETED or not _old_enough(server, now, interval):
                return False
            server.task_state = TaskState.DELETING.value
            return True

        applied = await self._tools.record(Transition(server_uuid, (None,), change), "Reclaim")
        return applied.done


def _old_enough(server: Server, now: datetime, interval: int) -> bool:
    """Nova's ``_deleted_old_enough``: no ``deleted_at`` counts as old enough."""
    return server.deleted_at is None or server.deleted_at <= now - timedelta(seconds=interval)
