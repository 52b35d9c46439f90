"""Deliver a batch of external events on this host.

An event with a database effect first has its driver step (``prepare``) run on a worker
thread, outside any transaction or lock, then its effect applied by a write job on the
process's writer: inside its own savepoint and under its server's lock, so its effect, its
instance-action step and its ``handled`` mark commit together, and one event's failure
touches nothing else. Driver steps run one at a time in the batch's order; a server's next
event waits for its previous effect, other effects share the writer's passes. Events that wake a
waiter are handed to the waiter registry on the loop, then marked. A redelivered batch is
first checked against the journal, so a delivery already finished has no second effect.

Notifications an outcome carries are sent after its commit, from a worker thread: at
most once (a crash between the commit and the send loses them; Nova's are best effort too).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from herald.agent.context import Backends, EventContext, Outcome, Prepared, ServerLocks
from herald.agent.event_handlers import EVENT_HANDLERS, WAITER_EVENTS, EventHandler
from herald.agent.failure_text import failure_text
from herald.agent.transitions import IsTransient, retrying
from herald.agent.waiters import Delivery, WaiterRegistry
from herald.domain.events import DeliveryState, EventName
from herald.domain.messages import DeliverEvents
from herald.domain.model import Server
from herald.domain.records import ActionStep, EventEnvelope
from herald.service.journal_jobs import FindFinished, MarkFinished
from herald.service.notifications import NO_NOTIFICATIONS, InstanceNotifications, send
from herald.service.ports import (
    Clock,
    NetworkBackend,
    Notifier,
    UnitOfWork,
    UnitOfWorkFactory,
    VirtDriver,
    VolumeBackend,
)
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
# Times an event's driver step runs again when its server changed before the effect was applied.
PREPARE_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class EffectItem:
    """One event for :class:`ApplyEvents`, with what its driver step did (None: it has none)."""

    event: EventEnvelope
    prepared: Prepared | None = None
    failure: str | None = None  # the driver step itself broke: the event fails with this text
    last_attempt: bool = True


T = TypeVar("T")


class Duplicates:
    """Counts the deliveries an agent received again after it had finished them (a relay re-sent
    them, RabbitMQ redelivered them) and suppressed: no second effect. Thread-safe: the writer
    thread and the loop both count."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.suppressed = 0

    def suppress(self, event: EventEnvelope, why: str, *, level: int = logging.INFO) -> None:
        with self._lock:
            self.suppressed += 1
            total = self.suppressed
        # NOTE: the fault tests count these lines: keep the wording.
        logger.log(
            level,
            "Duplicate delivery of event %s (%s) for instance %s suppressed: %s (%d suppressed so far)",
            event.uuid,
            event.name,
            event.server_uuid,
            why,
            total,
        )


async def _nothing() -> None:
    return None


class _Stale:
    """The server changed since the driver step was decided: run it again."""


STALE = _Stale()


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
        is_transient: IsTransient,
        notifications: InstanceNotifications = NO_NOTIFICATIONS,
        duplicates: Duplicates | None = None,
    ) -> None:
        self._host = host
        self.duplicates = duplicates or Duplicates()
        self._clock = clock
        self._driver = driver
        self._network = network
        self._volumes = volumes
        self._locks = locks
        self._is_transient = is_transient
        self._notifications = notifications

    def run(self, uow: UnitOfWork, items: Sequence[EffectItem]) -> list[Outcome | _Stale | None]:
        """One outcome per event; None for a delivery that was already finished, STALE to prepare again.

        The pass's servers are read and locked in one query. The events are applied under one
        savepoint; only when one of them fails is that rolled back and each event applied again
        under a savepoint of its own, so that the failure touches nothing else (a savepoint per
        event costs two round trips each, for a case that is rare).
        """
        finished = uow.events.finished([item.event.id for item in items])
        fresh = [item for item in items if item.event.id not in finished]
        try:
            with uow.savepoint():
                decided = self._apply_all(uow, fresh, isolated=False)
        except _EventFailed:
            decided = self._apply_all(uow, fresh, isolated=True)
        now = self._clock.now()
        outcomes: list[Outcome | _Stale | None] = []
        marks: list[tuple[int, str, str | None]] = []
        for item in items:
            event = item.event
            if event.id in finished:
                self.duplicates.suppress(event, "already finished")
                outcomes.append(None)
                continue
            outcome = decided[event.id]
            outcomes.append(outcome)
            if isinstance(outcome, Outcome):
                logger.debug("Event %s for instance %s: %s", event.name, event.server_uuid, outcome.text)
                marks.append((event.id, outcome.state.value, outcome.text))
        uow.events.mark_finished(marks, now)
        return outcomes

    def _apply_all(
        self, uow: UnitOfWork, items: Sequence[EffectItem], *, isolated: bool
    ) -> dict[int, Outcome | _Stale]:
        locked = uow.servers.get_many(
            {item.event.server_uuid for item in items if item.failure is None}, for_update=True
        )
        decided: dict[int, Outcome | _Stale] = {}
        writes = _PassWrites([], [])
        for item in items:
            # NOTE: a server's second event in the pass reads the row again: the first one changed it.
            read = locked.pop(item.event.server_uuid, None)
            if read is None:
                uow.servers.save_states(writes.states)
                writes.states.clear()
            decided[item.event.id] = self._apply(uow, item, read, writes, isolated=isolated)
        uow.servers.save_states(writes.states)
        uow.actions.add_events(writes.steps)
        return decided

    def _apply(
        self, uow: UnitOfWork, item: EffectItem, read: Server | None, writes: _PassWrites, *, isolated: bool
    ) -> Outcome | _Stale:
        event = item.event
        if item.failure is not None:
            return Outcome.failed(item.failure)
        handler = EVENT_HANDLERS[EventName(event.name)]
        try:
            with self._locks(event.server_uuid), uow.savepoint() if isolated else contextlib.nullcontext():
                server = read or uow.servers.get(event.server_uuid, for_update=True)
                if server is None:
                    return Outcome.handled("the server no longer exists")
                if server.host != self._host:
                    # NOTE: during a move both hosts get the event; only the one holding the server acts.
                    return Outcome.handled(f"not handled here: host {server.host} holds the server")
                if handler.basis is not None and (
                    item.prepared is None or handler.basis(event, server) != item.prepared.basis
                ):
                    if not item.last_attempt:
                        return STALE
                    return Outcome.failed("the server kept changing while the event was handled")
                ctx = EventContext(
                    uow, self._host, self._driver, self._network, self._volumes, self._clock.now(), self._notifications
                )
                outcome = handler.apply(ctx, event, server, item.prepared)
                writes.steps.extend(ctx.action_steps)
                writes.states.extend(ctx.changed_states)
                return outcome
        except Exception as exc:
            if self._is_transient(exc):
                raise  # the database's fault, not the event's: the whole write is tried again
            if not isolated:
                raise _EventFailed from exc
            # NOTE: one event's failure never blocks the rest of its batch (Nova's does).
            logger.exception("Event %s for instance %s failed", event.name, event.server_uuid)
            return Outcome.failed(failure_text(exc))


@dataclass(slots=True)
class _PassWrites:
    """What the pass's effects left to write together before the commit."""

    steps: list[ActionStep]
    states: list[Server]


class _EventFailed(Exception):
    """An event's effect raised while the pass shared one savepoint: apply each in its own."""


class Prepare:
    """Runs an event's driver step on a fresh read of its server, with no transaction held."""

    def __init__(self, *, backends: Backends, read_uow_factory: UnitOfWorkFactory) -> None:
        self._backends = backends
        self._read_uow_factory = read_uow_factory

    def __call__(self, handler: EventHandler, event: EventEnvelope, last_attempt: bool) -> EffectItem:
        return self.many([(handler, event)], last_attempt)[0]

    def many(self, jobs: Sequence[tuple[EventHandler, EventEnvelope]], last_attempt: bool) -> list[EffectItem]:
        """The driver steps of several events, one after the other in their order, on one read of
        their servers (so give it at most one event per server)."""
        with self._read_uow_factory() as uow:
            # NOTE: a delivery already finished (a redelivered batch) tells the driver nothing twice.
            done = uow.events.finished([event.id for _, event in jobs])
            servers = uow.servers.get_many({event.server_uuid for _, event in jobs if event.id not in done})
        return [self._step(handler, event, servers.get(event.server_uuid), last_attempt) for handler, event in jobs]

    def _step(
        self, handler: EventHandler, event: EventEnvelope, server: Server | None, last_attempt: bool
    ) -> EffectItem:
        assert handler.prepare is not None
        if server is None or server.host != self._backends.host:
            # NOTE: another host holds the server (a move): its agent tells its driver, not this one.
            return EffectItem(event, None, None, last_attempt)
        try:
            return EffectItem(event, handler.prepare(self._backends, event, server), None, last_attempt)
        except Exception as exc:
            logger.exception("Event %s for instance %s failed", event.name, event.server_uuid)
            return EffectItem(event, None, failure_text(exc), last_attempt)


class OlderUnfinished:
    """The events with an effect, accepted before a batch's for the same servers, not finished yet.

    With a durable bus shared by several relays an event can arrive after a newer one of its server
    (a relay whose publish failed re-sends later). Handling those older ones first, read from the
    journal, keeps each server's events in accept order; their own message, when it comes, finds
    them finished.
    """

    def __init__(self, *, host: str, read_uow_factory: UnitOfWorkFactory) -> None:
        self._host = host
        self._read_uow_factory = read_uow_factory

    def __call__(self, events: Sequence[EventEnvelope]) -> list[EventEnvelope]:
        if not events:
            return []
        wanted = {ev.id for ev in events}
        with self._read_uow_factory() as uow:
            older = uow.events.unfinished_before(self._host, [ev.server_uuid for ev in events], max(wanted))
        return [ev for ev in older if ev.id not in wanted and EventName(ev.name) not in WAITER_EVENTS]


class EventDelivery:
    """The agent's handler for :class:`DeliverEvents` messages; returns once the outcomes are committed."""

    def __init__(
        self,
        *,
        writer: Writer,
        clock: Clock,
        apply: ApplyEvents,
        prepare: Prepare,
        waiters: WaiterRegistry,
        is_transient: IsTransient,
        notifier: Notifier | None = None,
        catch_up: OlderUnfinished | None = None,
    ) -> None:
        """:param catch_up: handle a batch's older unfinished events first (a bus several relays share)."""
        self._catch_up = catch_up
        self._writer = writer
        self._apply = apply
        self._prepare = prepare
        self._is_transient = is_transient
        self._waiters = waiters
        self._notifier = notifier
        self._mark = MarkFinished(clock)
        self._find_finished = FindFinished()
        self.duplicates = apply.duplicates

    async def __call__(self, message: DeliverEvents) -> None:
        waiter_events = [ev for ev in message.events if EventName(ev.name) in WAITER_EVENTS]
        effect_events = [ev for ev in message.events if EventName(ev.name) not in WAITER_EVENTS]
        if effect_events and self._catch_up is not None:
            catch_up = functools.partial(asyncio.to_thread, self._catch_up, effect_events)
            what = f"Reading the older unfinished events of {len(effect_events)} events"
            older = await retrying(catch_up, self._is_transient, what)
            effect_events = [*older, *effect_events]
        # NOTE: accept order (the journal's ids): a merged group of deliveries is in publish order,
        # and after a broker outage a relay may publish a server's older events after a newer one.
        effect_events.sort(key=lambda event: event.id or 0)
        if effect_events:
            outcomes = await self._effects(effect_events)
            notes = [note for outcome in outcomes if outcome is not None for note in outcome.notifications]
            if notes and self._notifier is not None:
                await asyncio.to_thread(send, self._notifier, notes)
        if waiter_events:
            await self._wake(waiter_events, check_journal=message.redelivery)

    async def _effects(self, events: Sequence[EventEnvelope]) -> list[Outcome | None]:
        """Driver steps and effects in waves: the first event of each server, then the second, ...

        A wave's driver steps are taken in the batch's order on one read of its servers, its
        effects share the writer's passes, and the next wave starts once they are committed, so
        that a server's next driver step sees its previous effect.
        """
        waves: list[list[int]] = []
        seen: dict[str, int] = {}
        for position, event in enumerate(events):
            number = seen.get(event.server_uuid, 0)
            seen[event.server_uuid] = number + 1
            if number == len(waves):
                waves.append([])
            waves[number].append(position)
        tasks: dict[int, asyncio.Task[Outcome | None]] = {}
        try:
            for wave in waves:
                prepared = await self._prepared_together([events[position] for position in wave])
                for position, item in zip(wave, prepared, strict=True):
                    event = events[position]
                    handler = EVENT_HANDLERS[EventName(event.name)]
                    work = self._effect(handler, item) if item is not None else _nothing()
                    tasks[position] = asyncio.create_task(self._guarded(event, work))
                await asyncio.wait([tasks[position] for position in wave])
            return [tasks[position].result() for position in range(len(events))]
        except BaseException:
            for task in tasks.values():
                task.cancel()
            raise

    async def _prepared_together(self, events: Sequence[EventEnvelope]) -> list[EffectItem | None]:
        """Events of distinct servers, prepared on one read; one by one if that read fails."""
        handlers = [EVENT_HANDLERS[EventName(event.name)] for event in events]
        jobs = [
            (handler, event) for handler, event in zip(handlers, events, strict=True) if handler.prepare is not None
        ]
        last_attempt = PREPARE_ATTEMPTS == 1
        prepared: dict[int, EffectItem | None] = {}
        if jobs:
            many = functools.partial(asyncio.to_thread, self._prepare.many, jobs, last_attempt)
            try:
                items = await retrying(many, self._is_transient, f"Driver steps of {len(jobs)} events")
                prepared = {item.event.id: item for item in items}
            except Exception:
                logger.exception("Driver steps of %d events failed together; taking them one by one", len(jobs))
                for handler, event in jobs:
                    prepared[event.id] = await self._guarded(
                        event, self._prepared(handler, event, last_attempt=last_attempt)
                    )
        return [
            prepared[event.id] if handler.prepare is not None else EffectItem(event)
            for handler, event in zip(handlers, events, strict=True)
        ]

    @staticmethod
    async def _guarded(event: EventEnvelope, work: Awaitable[T]) -> T | None:
        try:
            return await work
        except Exception:
            # NOTE: left ``dispatched``: the relay delivers it again; the server's next events go on.
            logger.exception("Event %s for instance %s could not be handled", event.name, event.server_uuid)
            return None

    async def _prepared(self, handler: EventHandler, event: EventEnvelope, *, last_attempt: bool) -> EffectItem:
        what = f"Event {event.name} for instance {event.server_uuid}"
        prepare = functools.partial(asyncio.to_thread, self._prepare, handler, event, last_attempt)
        return await retrying(prepare, self._is_transient, what)

    async def _effect(self, handler: EventHandler, item: EffectItem) -> Outcome | None:
        event, attempt = item.event, 1
        while True:
            outcome = await self._submit(item, f"Event {event.name} for instance {event.server_uuid}")
            if not isinstance(outcome, _Stale):
                return outcome
            # NOTE: ends: an item prepared as the last attempt is never found stale.
            attempt += 1
            logger.info(
                "Instance %s changed while event %s was prepared; preparing again", event.server_uuid, event.name
            )
            item = await self._prepared(handler, event, last_attempt=attempt == PREPARE_ATTEMPTS)

    async def _submit(self, item: EffectItem, what: str) -> Outcome | _Stale | None:
        return await retrying(lambda: self._writer.submit(self._apply, item), self._is_transient, what)

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
                self.duplicates.suppress(event, "already finished")
                continue
            if self._waiters.holds(event):
                # NOTE: expected: a relay pass re-sends an event kept for its waiter once its claim lapsed.
                self.duplicates.suppress(event, "already kept for its waiter", level=logging.DEBUG)
                continue
            outcome = _WAITER_OUTCOMES[self._waiters.deliver(event)]
            if outcome is not None:
                results.append((event.id, outcome.state.value, outcome.text))
        if results:
            await self._writer.submit(self._mark, results)
