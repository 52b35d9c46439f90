"""The relay: hands accepted events to each host's bus queue and re-sends what was not delivered.

A crash between the accept commit and the publish loses nothing: the rows stay
``accepted`` and the relay re-reads them when it starts and every ``interval``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Coroutine, Sequence
from concurrent.futures import Executor
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from herald.domain.errors import BusUnavailable
from herald.domain.messages import DeliverEvents
from herald.domain.records import EventEnvelope
from herald.service.journal_jobs import MarkDispatched, MarkUndispatched
from herald.service.ports import Bus, Clock, UnitOfWorkFactory
from herald.service.writer import Writer

logger = logging.getLogger(__name__)


class HostQueueFull(Exception):
    """A bus refused events because the host's queue is full; the relay sends them again later."""


@runtime_checkable
class BoundedBus(Protocol):
    """A bus whose host queues are bounded says whether a host takes more events."""

    def has_room(self, host: str, events: int) -> bool: ...


class Relay:
    """Publishes per-host event batches; one host's failure never blocks another's.

    Hand-offs made during one turn of the event loop are published together: one
    message per host, however many requests committed in the same pass.

    :param volatile_bus: the bus lives in this process and loses messages when the process dies
        (in-memory): deliveries already ``dispatched`` but not finished are re-sent at start-up,
        and since such a bus takes a message the moment it is published, the accept transaction
        records the hand-off itself (:attr:`hands_off_at_commit`); a publish that fails puts its
        deliveries back to ``accepted`` for the periodic pass.
    """

    def __init__(
        self,
        bus: Bus,
        writer: Writer,
        uow_factory: UnitOfWorkFactory,
        clock: Clock,
        *,
        interval: float,
        volatile_bus: bool,
        batch_limit: int = 5000,
        executor: Executor | None = None,
    ) -> None:
        """:param executor: where the relay's database reads run (None: the loop's default executor)."""
        self._bus = bus
        self._writer = writer
        self._uow_factory = uow_factory
        self._clock = clock
        self._interval = interval
        self._volatile_bus = volatile_bus
        self._batch_limit = batch_limit
        self._executor = executor
        self._mark = MarkDispatched(clock)
        self._unmark = MarkUndispatched()
        self.hands_off_at_commit = volatile_bus
        self._bounded = bus if isinstance(bus, BoundedBus) else None
        self._pending: dict[str, list[EventEnvelope]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._periodic: asyncio.Task[None] | None = None

    def has_room(self, host: str, events: int) -> bool:
        """Whether ``host``'s queue should be given ``events`` more now (any thread may ask)."""
        return self._bounded is None or self._bounded.has_room(host, events)

    def hand_off(self, deliveries: Sequence[EventEnvelope]) -> None:
        """Queue committed deliveries for publication at the end of this loop turn."""
        if not self._pending:
            asyncio.get_running_loop().call_soon(self._publish_pending)
        for envelope in deliveries:
            self._pending.setdefault(envelope.host, []).append(envelope)

    def _publish_pending(self) -> None:
        pending, self._pending = self._pending, {}
        for host, envelopes in pending.items():
            self._spawn(self._publish(host, envelopes, redelivery=False))

    async def start(self) -> None:
        await self.redeliver(include_dispatched=self._volatile_bus, older_than=None)
        self._periodic = asyncio.create_task(self._run_periodically())

    async def stop(self) -> None:
        if self._periodic is not None:
            self._periodic.cancel()
            await asyncio.gather(self._periodic, return_exceptions=True)
        await self.flush()

    async def flush(self) -> None:
        """Wait for the publishes under way (tests use it to make runs deterministic)."""
        while self._tasks or self._pending:
            await asyncio.sleep(0)
            if self._tasks:
                await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def redeliver(self, *, include_dispatched: bool, older_than: float | None) -> int:
        """Publish every unfinished delivery again, oldest first; returns how many."""
        cutoff = None if older_than is None else self._clock.now() - timedelta(seconds=older_than)
        read = functools.partial(self._read_undelivered, include_dispatched, cutoff)
        envelopes = await asyncio.get_running_loop().run_in_executor(self._executor, read)
        by_host: dict[str, list[EventEnvelope]] = {}
        for envelope in envelopes:
            by_host.setdefault(envelope.host, []).append(envelope)
        await asyncio.gather(*(self._publish(host, batch, redelivery=True) for host, batch in by_host.items()))
        if envelopes:
            logger.info("Relay re-sent %d undelivered events to %d hosts", len(envelopes), len(by_host))
        return len(envelopes)

    def _read_undelivered(self, include_dispatched: bool, cutoff: datetime | None) -> list[EventEnvelope]:
        with self._uow_factory() as uow:
            return uow.events.undelivered(
                include_dispatched=include_dispatched, older_than=cutoff, limit=self._batch_limit
            )

    async def _run_periodically(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.redeliver(include_dispatched=False, older_than=self._interval)
            except Exception:
                logger.exception("Relay pass failed; retrying in %s s", self._interval)

    async def _publish(self, host: str, envelopes: Sequence[EventEnvelope], *, redelivery: bool) -> None:
        keys = [envelope.id for envelope in envelopes]
        try:
            await self._bus.publish(host, [DeliverEvents(tuple(envelopes), redelivery=redelivery)])
        except Exception as exc:
            if isinstance(exc, HostQueueFull):
                logger.warning("Host %s's queue is full; %d events wait for the relay's next pass", host, len(keys))
            elif isinstance(exc, BusUnavailable):
                # NOTE: expected while the broker is away (the bus says so itself): no traceback per batch.
                logger.warning("Could not dispatch %d events to host %s: %s; will retry", len(keys), host, exc)
            else:
                logger.exception("Could not dispatch %d events to host %s; the relay will retry", len(keys), host)
            if self.hands_off_at_commit:
                await self._writer.submit(self._unmark, keys)
            return
        # NOTE: a re-send of deliveries put back to ``accepted`` records its hand-off even when
        # fresh ones are recorded at commit: otherwise every later pass would send them again.
        if redelivery or not self.hands_off_at_commit:
            await self._writer.submit(self._mark, keys)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
