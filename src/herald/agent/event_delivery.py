"""Deliver a batch of external events on this host.

Events with a database effect run as one write job through the process's writer: each
event inside its own savepoint and under its server's lock, so its effect, its
instance-action step and its ``handled`` mark commit together, and one event's failure
touches nothing else. Events that wake a waiter are handed to the waiter registry on
the loop, then marked. A redelivered batch is first checked against the journal, so a
delivery already finished has no second effect.

Notifications an outcome carries are sent after its commit, from a worker thread: at
most once (a crash between the commit and the send loses them; Nova's are best effort too).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from herald.agent.context import EventContext, Outcome, ServerLocks
from herald.agent.event_handlers import EVENT_HANDLERS, WAITER_EVENTS
from herald.agent.waiters import Delivery, WaiterRegistry
from herald.domain.events import DeliveryState, EventName
from herald.domain.messages import DeliverEvents
from herald.domain.records import EventEnvelope
from herald.service.journal_jobs import FindFinished, MarkFinished
from herald.service.notifications import NO_NOTIFICATIONS, InstanceNotifications, send
from herald.service.ports import Clock, NetworkBackend, Notifier, UnitOfWork, VirtDriver, VolumeBackend
from herald.service.writer import Writer

logger = logging.getLogger(__name__)

# NOTE: a buffered event gets no mark yet: it stays ``dispatched`` until a waiter takes it
# (``handled``) or it expires (``expired``), so each delivery is written once when it ends.
_WAITER_OUTCOMES: dict[Delivery, Outcome | None] = {
    Delivery.WOKE_WAITER: Outcome.handled("woke the operation waiting for it"),
    Delivery.BUFFERED: None,
    Delivery.LATE_AFTER_TIMEOUT: Outcome(DeliveryState.EXPIRED, "arrived after its waiter timed out"),
    Delivery.DISCARDED: Outcome(DeliveryState.EXPIRED, "no waiter and no room to keep it"),
}
EARLY_CONSUMED = Outcome.handled("woke the operation waiting for it (the event came before the wait)")


class ApplyEvents:
    """The write job for events with a database effect (the handlers of ``EVENT_HANDLERS``)."""

    def __init__(
        self,
        *,
        host: str,
        clock: Clock,
        driver: VirtDriver,
        network: NetworkBackend,
        volumes: VolumeBackend,
        locks: ServerLocks,
        notifications: InstanceNotifications = NO_NOTIFICATIONS,
        catch_up: bool = False,
    ) -> None:
        """:param catch_up: before an event, apply the unfinished events of its server accepted
        earlier, read from the journal (see :meth:`_older_first`)."""
        self._host = host
        self._catch_up = catch_up
        self._clock = clock
        self._driver = driver
        self._network = network
        self._volumes = volumes
        self._locks = locks
        self._notifications = notifications

    def run(self, uow: UnitOfWork, items: Sequence[EventEnvelope]) -> list[Outcome | None]:
        """One outcome per event; None for a delivery that was already finished."""
        earlier = self._older_first(uow, items) if self._catch_up else []
        finished = uow.events.finished([ev.id for ev in items])
        now = self._clock.now()
        outcomes: list[Outcome | None] = []
        marks: list[tuple[int, str, str | None]] = []
        for event in earlier:
            outcome = self._apply(uow, event, now)
            marks.append((event.id, outcome.state.value, outcome.text))
        for event in items:
            if event.id in finished:
                logger.debug("Event %s for instance %s already handled; skipped", event.uuid, event.server_uuid)
                outcomes.append(None)
                continue
            outcome = self._apply(uow, event, now)
            outcomes.append(outcome)
            marks.append((event.id, outcome.state.value, outcome.text))
        uow.events.mark_finished(marks, now)
        return outcomes

    def _older_first(self, uow: UnitOfWork, items: Sequence[EventEnvelope]) -> list[EventEnvelope]:
        """Events with an effect, accepted before ``items`` for the same servers, that have not reached
        this agent yet.

        With a durable bus an event can arrive after a newer one of its server: several relays
        publish, and one whose publish failed re-sends later. Applying the older ones first, from
        the journal, keeps each server's events in accept order; their own message, when it comes,
        finds them finished.
        """
        if not items:
            return []
        wanted = {ev.id for ev in items}
        older = uow.events.unfinished_before(self._host, [ev.server_uuid for ev in items], max(wanted))
        return [ev for ev in older if ev.id not in wanted and EventName(ev.name) not in WAITER_EVENTS]

    def _apply(self, uow: UnitOfWork, event: EventEnvelope, now: object) -> Outcome:
        try:
            with self._locks(event.server_uuid), uow.savepoint():
                server = uow.servers.get(event.server_uuid, for_update=True)
                if server is None:
                    return Outcome.handled("the server no longer exists")
                ctx = EventContext(
                    uow, self._host, self._driver, self._network, self._volumes, self._clock.now(), self._notifications
                )
                outcome = EVENT_HANDLERS[EventName(event.name)](ctx, event, server)
        except Exception as exc:
            # NOTE: one event's failure never blocks the rest of its batch (Nova's does).
            logger.exception("Event %s for instance %s failed", event.name, event.server_uuid)
            return Outcome.failed(f"{type(exc).__name__}: {exc}")
        logger.debug("Event %s for instance %s: %s", event.name, event.server_uuid, outcome.text)
        return outcome


class EventDelivery:
    """The agent's handler for :class:`DeliverEvents` messages; returns once the outcomes are committed."""

    def __init__(
        self,
        *,
        writer: Writer,
        clock: Clock,
        apply: ApplyEvents,
        waiters: WaiterRegistry,
        notifier: Notifier | None = None,
    ) -> None:
        self._writer = writer
        self._apply = apply
        self._waiters = waiters
        self._notifier = notifier
        self._mark = MarkFinished(clock)
        self._find_finished = FindFinished()

    async def __call__(self, message: DeliverEvents) -> None:
        waiter_events = [ev for ev in message.events if EventName(ev.name) in WAITER_EVENTS]
        effect_events = [ev for ev in message.events if EventName(ev.name) not in WAITER_EVENTS]
        if effect_events:
            outcomes = await asyncio.gather(*(self._writer.submit(self._apply, ev) for ev in effect_events))
            notes = [note for outcome in outcomes if outcome is not None for note in outcome.notifications]
            if notes and self._notifier is not None:
                await asyncio.to_thread(send, self._notifier, notes)
        if waiter_events:
            await self._wake(waiter_events, check_journal=message.redelivery)

    def early_event_consumed(self, event: EventEnvelope) -> None:
        """The registry's hook: a waiter took an event that was kept for it."""
        marks = [(event.id, EARLY_CONSUMED.state.value, EARLY_CONSUMED.text)]
        self._writer.submit_nowait(self._mark, marks)

    async def _wake(self, events: Sequence[EventEnvelope], *, check_journal: bool) -> None:
        finished: set[int] = set()
        if check_journal:
            finished = await self._writer.submit(self._find_finished, [ev.id for ev in events])
        results: list[tuple[int, str, str | None]] = []
        for event in events:
            if event.id in finished:
                continue
            outcome = _WAITER_OUTCOMES[self._waiters.deliver(event)]
            if outcome is not None:
                results.append((event.id, outcome.state.value, outcome.text))
        if results:
            await self._writer.submit(self._mark, results)
