"""The relay: hands accepted events to each host's bus queue and re-sends what was not delivered.

A crash between the accept commit and the publish loses nothing: the rows stay
``accepted`` and the relay re-reads them when it starts and every ``interval``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Sequence
from datetime import datetime, timedelta
from typing import Any

from herald.domain.messages import DeliverEvents
from herald.domain.records import EventEnvelope
from herald.service.ports import Bus, Clock, UnitOfWorkFactory

logger = logging.getLogger(__name__)


class Relay:
    """Publishes per-host event batches; one host's failure never blocks another's.

    :param volatile_bus: the bus loses messages when the process dies (in-memory), so
        deliveries already ``dispatched`` but not finished are re-sent at start-up too.
    """

    def __init__(
        self,
        bus: Bus,
        uow_factory: UnitOfWorkFactory,
        clock: Clock,
        *,
        interval: float,
        volatile_bus: bool,
        batch_limit: int = 5000,
    ) -> None:
        self._bus = bus
        self._uow_factory = uow_factory
        self._clock = clock
        self._interval = interval
        self._volatile_bus = volatile_bus
        self._batch_limit = batch_limit
        self._dispatched: list[tuple[str, str]] = []
        self._flush_scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._periodic: asyncio.Task[None] | None = None

    def hand_off(self, by_host: dict[str, list[EventEnvelope]]) -> None:
        """Called on the loop right after an accept commit."""
        for host, envelopes in by_host.items():
            self._spawn(self._publish(host, envelopes))

    async def start(self) -> None:
        await self.redeliver(include_dispatched=self._volatile_bus, older_than=None)
        self._periodic = asyncio.create_task(self._run_periodically())

    async def stop(self) -> None:
        if self._periodic is not None:
            self._periodic.cancel()
            await asyncio.gather(self._periodic, return_exceptions=True)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.flush()

    async def redeliver(self, *, include_dispatched: bool, older_than: float | None) -> int:
        """Publish every unfinished delivery again, oldest first; returns how many."""
        cutoff = None if older_than is None else self._clock.now() - timedelta(seconds=older_than)
        envelopes = await asyncio.to_thread(self._read_undelivered, include_dispatched, cutoff)
        by_host: dict[str, list[EventEnvelope]] = {}
        for envelope in envelopes:
            by_host.setdefault(envelope.host, []).append(envelope)
        await asyncio.gather(*(self._publish(host, batch) for host, batch in by_host.items()))
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

    async def _publish(self, host: str, envelopes: Sequence[EventEnvelope]) -> None:
        try:
            await self._bus.publish(host, [DeliverEvents(tuple(envelopes))])
        except Exception:
            logger.exception("Could not dispatch %d events to host %s; the relay will retry", len(envelopes), host)
            return
        self._dispatched.extend((envelope.uuid, host) for envelope in envelopes)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._spawn(self._flush_soon())

    async def _flush_soon(self) -> None:
        # NOTE: a short pause lets many publishes share one "dispatched" update.
        await asyncio.sleep(0.05)
        await self.flush()

    async def flush(self) -> None:
        """Write the "dispatched" marks collected so far."""
        self._flush_scheduled = False
        keys, self._dispatched = self._dispatched, []
        if keys:
            try:
                await asyncio.to_thread(self._mark_dispatched, keys)
            except Exception:
                logger.exception("Could not mark %d events dispatched", len(keys))

    def _mark_dispatched(self, keys: list[tuple[str, str]]) -> None:
        with self._uow_factory() as uow:
            uow.events.mark_dispatched(keys, self._clock.now())
            uow.commit()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
