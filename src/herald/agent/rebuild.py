"""Rebuilding a server on its host: re-image the root volume (2.93), then respawn the guest as a boot does.

Task states as Nova's: ``rebuilding`` (a volume-backed server waits here for
``volume-reimaged`` of its root volume), ``rebuild_block_device_mapping``, then
``rebuild_spawning``, where the guest is started again while waiting for
``network-vif-plugged`` of its inactive ports. A stopped server is left stopped.

The re-image wait lasts ``reimage_timeout_per_gb`` seconds per GiB of the root volume,
counting at least one GiB: Nova counts the image's size, so a zero-size image gives it no
time at all and the rebuild fails at once.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from herald.agent.build import build_aborted
from herald.agent.operation import OperationTools
from herald.agent.plug_wait import (
    PlugPolicy,
    PlugResult,
    inactive_ports,
    mark_plugged,
    power_off_after_failure,
    start_waiting_for_plugs,
)
from herald.agent.reboot import VIF_FAILURE, set_task
from herald.agent.transitions import Step, Transition
from herald.agent.waiters import WaiterRegistry
from herald.domain.errors import DriverError, EventWaitFailed, EventWaitTimeout
from herald.domain.events import EventName
from herald.domain.messages import RebuildServer
from herald.domain.model import PowerState, Server, TaskState, VmState
from herald.domain.records import EventEnvelope
from herald.service.ports import UnitOfWork

logger = logging.getLogger(__name__)

STEP = "compute_rebuild_instance"
REIMAGE_FAILED = "Failed to rebuild volume backed instance."
REBUILDING = TaskState.REBUILDING.value
MAPPING = TaskState.REBUILD_BLOCK_DEVICE_MAPPING.value
SPAWNING = TaskState.REBUILD_SPAWNING.value
ALL_STATES = (REBUILDING, MAPPING, SPAWNING)


def reimage_timeout(per_gb: int, size_gb: int) -> int:
    """Seconds to wait for ``volume-reimaged``: per GiB of the root volume, never less than one GiB's worth."""
    return per_gb * max(1, size_gb)


class Rebuild:
    """The rebuild operation of one host."""

    def __init__(
        self, tools: OperationTools, waiters: WaiterRegistry, policy: PlugPolicy, *, reimage_timeout_per_gb: int
    ) -> None:
        self._tools = tools
        self._waiters = waiters
        self._policy = policy
        self._per_gb = reimage_timeout_per_gb

    async def __call__(self, command: RebuildServer) -> None:
        try:
            await self._rebuild(command)
        except Exception as exc:
            await self._tools.failed(command, STEP, ALL_STATES, exc, f"The compute host could not complete {STEP}.")

    async def _rebuild(self, command: RebuildServer) -> None:
        uuid, tools = command.server_uuid, self._tools
        start = tools.clock.now()
        server = await tools.load(uuid)
        if server is None or server.task_state != REBUILDING:
            return
        if command.reimage_volume_id is not None:
            problem = await self._reimage(command, command.reimage_volume_id)
            if problem is not None:
                logger.error("Rebuild of instance %s failed: %s", uuid, problem)
                await self._end(command, start, (REBUILDING,), build_aborted(uuid, REIMAGE_FAILED))
                return
        mapped = await tools.record(Transition(uuid, (REBUILDING,), set_task(MAPPING)), "Rebuild")
        if not mapped.done or mapped.server is None:
            return
        errors: list[str] = []

        async def work() -> bool:
            moved = await tools.record(Transition(uuid, (MAPPING,), set_task(SPAWNING)), "Rebuild")
            if not moved.done or moved.server is None:
                return False
            try:
                await asyncio.to_thread(self._respawn, moved.server)
            except DriverError as exc:
                logger.warning("Rebuild of instance %s failed: %s", uuid, exc)
                errors.append(exc.text)
                return False
            return True

        result = await start_waiting_for_plugs(
            tools=tools,
            waiters=self._waiters,
            policy=self._policy,
            server_uuid=uuid,
            ports=inactive_ports(mapped.server),
            work=work,
        )
        async with tools.hold(uuid):
            await self._conclude(command, start, result, errors[0] if errors else None)

    async def _conclude(self, command: RebuildServer, start: datetime, result: PlugResult, error: str | None) -> None:
        """After the respawn and its plug wait: ERROR with a fault, or the server's original state."""
        uuid = command.server_uuid
        if error is not None:
            await self._end(command, start, (SPAWNING,), build_aborted(uuid, error))
        elif result.ended:
            return
        elif result.fatal:
            await power_off_after_failure(self._tools, uuid, "rebuild")
            await self._end(command, start, (SPAWNING,), VIF_FAILURE)
        else:
            if command.was_stopped:
                await power_off_after_failure(self._tools, uuid, "rebuild")
            await self._finish(command, start, result)

    async def _reimage(self, command: RebuildServer, volume_id: str) -> str | None:
        """Wait for the block-storage service's ``volume-reimaged``; the problem, or None when it came completed."""
        failed: list[str] = []

        def on_failed_event(key: str, event: EventEnvelope) -> bool | None:
            failed.append(f"Cinder reported failure during reimaging with {key} for instance {command.server_uuid}")
            return False

        timeout = reimage_timeout(self._per_gb, command.reimage_size_gb)
        keys = [(EventName.VOLUME_REIMAGED.value, volume_id)]
        try:
            async with self._waiters.wait_for_events(
                command.server_uuid, keys, timeout=float(timeout), error_callback=on_failed_event
            ):
                # NOTE: Nova asks the block-storage service to re-image the volume here; in the embedded
                # shape the caller playing it re-images and reports with the event.
                pass
        except (EventWaitTimeout, EventWaitFailed) as exc:
            return str(exc)
        return failed[0] if failed else None

    def _respawn(self, server: Server) -> None:
        self._tools.driver.destroy(server)
        self._tools.driver.spawn(server)

    async def _finish(self, command: RebuildServer, start: datetime, plugs: PlugResult) -> None:
        clock = self._tools.clock

        def change(uow: UnitOfWork, server: Server) -> None:
            stopped = command.was_stopped
            server.vm_state = (VmState.STOPPED if stopped else VmState.ACTIVE).value
            server.power_state = (PowerState.SHUTDOWN if stopped else PowerState.RUNNING).value
            server.task_state = None
            server.launched_at = clock.now()
            if plugs.waited:
                mark_plugged(server, plugs)

        step = Step(command.request_id, STEP, start, "Success")
        await self._tools.record(Transition(command.server_uuid, (SPAWNING,), change, step), "Rebuild")

    async def _end(self, command: RebuildServer, start: datetime, expected: tuple[str, ...], message: str) -> None:
        def change(uow: UnitOfWork, server: Server) -> None:
            server.vm_state = VmState.ERROR.value
            server.task_state = None
            server.fault = {"code": 500, "message": message}

        step = Step(command.request_id, STEP, start, "Error", message)
        await self._tools.record(Transition(command.server_uuid, expected, change, step), "Rebuild")
