"""ComputeAgent: one per compute host; consumes the host's queue and runs its periodic tasks."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from herald.agent.attachments import AttachmentOps
from herald.agent.current_waits import CurrentWaits
from herald.agent.event_delivery import EventDelivery
from herald.agent.moves import Moves
from herald.agent.power_sync import PowerSync
from herald.agent.recovery import RecoverHost
from herald.agent.server_ops import ServerOps
from herald.agent.waiters import WaiterRegistry
from herald.domain.events import DeliveryState
from herald.domain.messages import (
    AttachInterface,
    AttachVolume,
    BuildServer,
    ConfirmResize,
    DeleteServer,
    DeliverEvents,
    DetachInterface,
    DetachVolume,
    FinishResize,
    FinishRevertResize,
    PrepResize,
    RebootServer,
    RebuildServer,
    ResizeInstance,
    RestoreServer,
    RevertResize,
    ServerCommand,
    ShelveOffloadServer,
    ShelveServer,
    SoftDeleteServer,
    StartServer,
    StopServer,
    UnshelveServer,
)
from herald.service.journal_jobs import Heartbeat, MarkFinished
from herald.service.ports import Bus, Clock, UnitOfWorkFactory
from herald.service.writer import Writer

logger = logging.getLogger(__name__)

EXPIRE_INTERVAL = 1.0  # seconds between two looks at the early-event buffer
EXPIRE_SLICE = 500  # expiries recorded per write pass


class ComputeAgent:
    """Consumes ``host``'s messages in order; long operations (a build waiting for its ports) run as tasks."""

    def __init__(
        self,
        *,
        host: str,
        bus: Bus,
        uow_factory: UnitOfWorkFactory,
        writer: Writer,
        clock: Clock,
        waiters: WaiterRegistry,
        delivery: EventDelivery,
        ops: ServerOps,
        report_interval: float,
        early_ttl: float,
        power_sync: PowerSync,
        sync_power_state_interval: float,
        attachments: AttachmentOps | None = None,
        moves: Moves | None = None,
        current_waits: CurrentWaits | None = None,
    ) -> None:
        self.host = host
        self._bus = bus
        self._uow_factory = uow_factory
        self._writer = writer
        self._mark_finished = MarkFinished(clock)
        self._heartbeat = Heartbeat(clock)
        self._clock = clock
        self.waiters = waiters
        self._delivery = delivery
        self._ops = ops
        self._report_interval = report_interval
        self.power_sync = power_sync
        # Nova: negative disables the sync, 0 means the default periodic spacing (60 s).
        self._sync_interval = None if sync_power_state_interval < 0 else (sync_power_state_interval or 60.0)
        self._early_ttl = early_ttl
        self._unlogged_expiries = 0
        self._delivered_since_expiry = 0
        self._expiry_sample: list[str] = []
        self._current_waits = current_waits
        self._tasks: set[asyncio.Task[None]] = set()
        self._periodic: list[asyncio.Task[None]] = []
        self._handlers: dict[type, Callable[[Any], Awaitable[None]]] = {
            DeliverEvents: self._deliver,
            BuildServer: self._spawn_build,
            StopServer: self._command(ops.stop),
            StartServer: self._command(ops.start),
            ShelveServer: self._command(ops.shelve),
            ShelveOffloadServer: self._command(ops.shelve_offload),
            UnshelveServer: self._command(ops.unshelve),
            DeleteServer: self._command(ops.delete),
            # NOTE: these wait for events (a hard reboot's ports, a rebuild's volume and ports): in the
            # background, as builds, so that the host's other messages are not held up meanwhile.
            RebootServer: self._in_background(ops.reboot),
            RebuildServer: self._in_background(ops.rebuild),
            SoftDeleteServer: self._command(ops.soft_delete),
            RestoreServer: self._command(ops.restore),
        }
        if attachments is not None:
            self._handlers.update(
                {
                    AttachInterface: self._command(attachments.attach_interface),
                    DetachInterface: self._command(attachments.detach_interface),
                    AttachVolume: self._command(attachments.attach_volume),
                    DetachVolume: self._command(attachments.detach_volume),
                }
            )
        if moves is not None:
            # NOTE: in the background: a disk on its way to another host must not hold up this
            # host's events (the server's operation lock keeps a server's steps in order).
            for message_type, op in (
                (PrepResize, moves.prep_resize),
                (ResizeInstance, moves.resize_instance),
                (FinishResize, moves.finish_resize),
                (ConfirmResize, moves.confirm_resize),
                (RevertResize, moves.revert_resize),
                (FinishRevertResize, moves.finish_revert_resize),
            ):
                self._handlers[message_type] = self._in_background(op)

    def _command(self, op: Callable[[Any], Coroutine[Any, Any, None]]) -> Callable[[Any], Awaitable[None]]:
        """Run a command in the host's message order; behind another operation on its server, in the background.

        Waiting there (a build powering its node on) would hold up every other message of the host;
        the server's operation lock still runs its operations in the order they came.
        """

        async def run(message: ServerCommand) -> None:
            if self._ops.busy(message.server_uuid):
                self._background(op(message), message.server_uuid)
            else:
                await op(message)

        return run

    def _in_background(self, op: Callable[[Any], Coroutine[Any, Any, None]]) -> Callable[[Any], Awaitable[None]]:
        async def run(message: ServerCommand) -> None:
            self._background(op(message), message.server_uuid)

        return run

    async def start(self) -> None:
        await self.heartbeat()
        if self._current_waits is not None:
            await self._current_waits.clear()
        again = await self._writer.submit(RecoverHost(self.host), self._clock.now())
        await self._bus.subscribe(self.host, self.handle)
        if again:
            await self._bus.publish(self.host, again)
        self._periodic = [
            asyncio.create_task(
                self._every(self._report_interval, self.heartbeat),
                name=f"heartbeat-{self.host}",
            ),
            asyncio.create_task(self._every(EXPIRE_INTERVAL, self.expire_early), name=f"expire-{self.host}"),
        ]
        if self._ops.reclaim_interval > 0:
            # Nova's _reclaim_queued_deletes runs every reclaim_instance_interval seconds.
            self._periodic.append(
                asyncio.create_task(
                    self._every(float(self._ops.reclaim_interval), self._ops.reclaim), name=f"reclaim-{self.host}"
                )
            )
        if self._sync_interval is not None:
            self._periodic.append(
                asyncio.create_task(self.power_sync.run(self._sync_interval), name=f"power-sync-{self.host}")
            )
        logger.info("Compute agent for host %s started", self.host)

    async def stop(self) -> None:
        self.waiters.cancel_all()
        for task in self._periodic:
            task.cancel()
        await asyncio.gather(*self._periodic, *self._tasks, return_exceptions=True)

    async def handle(self, message: object) -> None:
        handler = self._handlers.get(type(message))
        if handler is None:
            logger.error("Host %s got a message it does not know: %r", self.host, message)
            return
        await handler(message)

    async def abandon(self) -> None:
        """Drop everything under way without finishing it (what a crash does; tests use it)."""
        tasks = [*self._periodic, *self._tasks]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    @property
    def busy(self) -> bool:
        """Whether a background operation (a build waiting for its events) is still running."""
        return bool(self._tasks)

    @property
    def duplicates_suppressed(self) -> int:
        """Deliveries received again after they were finished, and given no second effect."""
        return self._delivery.duplicates.suppressed

    async def run_until_idle(self) -> None:
        """Wait for the builds and other background operations this agent started."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _deliver(self, message: object) -> None:
        assert isinstance(message, DeliverEvents)
        await self._delivery(message)
        # NOTE: once a slice's worth of events came in, the early events they pushed out of the full
        # buffer are recorded before the next message: until then the host's queue counts them, so a
        # host whose records fall behind gets no more events (admission control) instead of a
        # growing list of them in memory.
        self._delivered_since_expiry += len(message.events)
        if self._delivered_since_expiry >= EXPIRE_SLICE:
            self._delivered_since_expiry = 0
            await self.expire_early(log=False)

    async def _spawn_build(self, message: object) -> None:
        assert isinstance(message, BuildServer)
        self._background(self._ops.build(message), message.server_uuid)

    def _background(self, work: Coroutine[Any, Any, None], server_uuid: str) -> None:
        task = asyncio.create_task(self._guard(work, server_uuid))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _guard(self, work: Awaitable[None], server_uuid: str) -> None:
        try:
            await work
        except Exception:
            logger.exception("Operation on instance %s failed on host %s", server_uuid, self.host)

    async def _every(self, seconds: float, work: Callable[[], object]) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                result = work()
                if asyncio.iscoroutine(result):
                    await result
            except Exception:
                logger.exception("Periodic task on host %s failed", self.host)

    async def reclaim_deleted(self) -> int:
        """Nova's ``_reclaim_queued_deletes`` pass (periodic when ``reclaim_instance_interval`` > 0; tests call it)."""
        return await self._ops.reclaim()

    async def heartbeat(self) -> None:
        """Tell the database this host is alive (``GET /os-services`` shows it up)."""
        await self._writer.submit(self._heartbeat, self.host)

    async def expire_early(self, *, log: bool = True) -> None:
        """Record the early events nobody waited for as ``expired``.

        :param log: log the expiries since the last logged call (one line; deliveries leave it to
            the periodic call, once a second).
        """
        expired = self.waiters.expire(self._clock.monotonic())
        if expired:
            self._unlogged_expiries += len(expired)
            self._expiry_sample = self._expiry_sample or [
                f"{ev.name}-{ev.tag} for instance {ev.server_uuid}" for ev in expired[:3]
            ]
        if log and self._unlogged_expiries:
            logger.warning(
                "Host %s: %d external events expired with nothing waiting for them (%s%s)",
                self.host,
                self._unlogged_expiries,
                ", ".join(self._expiry_sample),
                ", ..." if self._unlogged_expiries > 3 else "",
            )
            self._unlogged_expiries, self._expiry_sample = 0, []
        if not expired:
            return
        results = [
            (ev.id, DeliveryState.EXPIRED.value, "no operation waited for it before it expired") for ev in expired
        ]
        # NOTE: in slices, each in its own pass, so that a flood of expiries never stalls requests.
        for start in range(0, len(results), EXPIRE_SLICE):
            await self._writer.submit(self._mark_finished, results[start : start + EXPIRE_SLICE])
