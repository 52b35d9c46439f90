"""The relay: hands accepted events to each host's bus queue and re-sends what was not delivered.

A crash between the accept commit and the publish loses nothing: the rows stay
``accepted`` and a relay claims them again once their claim has lapsed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from herald.domain.errors import BusUnavailable
from herald.domain.messages import DeliverEvents
from herald.domain.records import EventEnvelope
from herald.service.journal_jobs import ClaimPage, ClaimUndelivered, MarkDispatched, ReleaseClaims
from herald.service.ports import Bus, Clock
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

    The path is the same for every transport: the accept transaction records each delivery
    ``accepted`` and claimed by this process; after the commit the relay publishes it, and
    marks it ``dispatched`` only once the transport has taken it (RabbitMQ: confirmed). A
    publish that fails frees its claim for the next pass.

    Each pass (at start and every ``interval``) pages through every unfinished delivery whose
    claim is older than ``resend_after`` seconds, claims it and publishes it again: rows of a
    relay that died before publishing, and ``dispatched`` rows nobody finished (the agent
    recognises a delivery it already handled by id). Several relays run safely together: a
    claimed row is left alone until its claim lapses.

    Hand-offs made during one turn of the event loop are published together: one
    message per host, however many requests committed in the same pass.
    """

    def __init__(
        self,
        bus: Bus,
        writer: Writer,
        clock: Clock,
        *,
        interval: float,
        resend_after: float,
        page_size: int = 1000,
    ) -> None:
        self._bus = bus
        self._writer = writer
        self._clock = clock
        self._interval = interval
        self._resend_after = resend_after
        self._page_size = page_size
        self._mark = MarkDispatched(clock)
        self._claim = ClaimUndelivered(clock)
        self._release = ReleaseClaims()
        self._bounded = bus if isinstance(bus, BoundedBus) else None
        self._pending: dict[str, list[EventEnvelope]] = {}
        self._tasks: set[asyncio.Task[int]] = set()
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

    async def start(self, *, reclaim_all: bool = False) -> None:
        """:param reclaim_all: the first pass takes every unfinished delivery, claimed or not: the
        transport kept nothing of an earlier run (in-memory) and no other relay is alive."""
        await self.redeliver(claimed_before=self._clock.now() if reclaim_all else None)
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

    async def redeliver(self, *, claimed_before: datetime | None = None) -> int:
        """One pass: claim and publish every unfinished delivery whose claim lapsed, page by page,
        oldest first; returns how many were published.

        :param claimed_before: claims older than this have lapsed (default: ``resend_after`` ago).
        """
        if claimed_before is None:
            claimed_before = self._clock.now() - timedelta(seconds=self._resend_after)
        sent = after_id = 0
        hosts: set[str] = set()
        while True:
            page = ClaimPage(after_id, claimed_before, self._page_size)
            envelopes = await self._writer.submit(self._claim, page)
            if not envelopes:
                break
            by_host: dict[str, list[EventEnvelope]] = {}
            for envelope in envelopes:
                by_host.setdefault(envelope.host, []).append(envelope)
            # NOTE: a page is published before the next is claimed: memory stays bounded by the page.
            results = await asyncio.gather(
                *(self._publish(host, batch, redelivery=True) for host, batch in by_host.items())
            )
            sent += sum(count for count in results)
            hosts.update(by_host)
            after_id = envelopes[-1].id
            if len(envelopes) < self._page_size:
                break
        if sent:
            logger.info("Relay re-sent %d undelivered events to %d hosts", sent, len(hosts))
        return sent

    async def _run_periodically(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.redeliver()
            except Exception:
                logger.exception("Relay pass failed; retrying in %s s", self._interval)

    async def _publish(self, host: str, envelopes: Sequence[EventEnvelope], *, redelivery: bool) -> int:
        """Publish, then mark ``dispatched``; returns how many were published (0 or all)."""
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
            await self._writer.submit(self._release, keys)
            return 0
        await self._writer.submit(self._mark, keys)
        return len(keys)

    def _spawn(self, coro: Coroutine[Any, Any, int]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
