"""Deliver a batch of external events on this host.

Events with a database effect run one transaction each, under the server's lock:
the effect, its instance-action step and the event's mark commit together, and a
redelivered event (already finished) is skipped. Events that wake a waiter are
handed to the waiter registry on the loop, then marked in one transaction.
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
from herald.service.ports import Clock, NetworkBackend, UnitOfWorkFactory, VirtDriver, VolumeBackend

logger = logging.getLogger(__name__)

_WAITER_OUTCOMES: dict[Delivery, Outcome] = {
    Delivery.WOKE_WAITER: Outcome.handled("woke the operation waiting for it"),
    Delivery.BUFFERED: Outcome.handled("no waiter yet; kept for one"),
    Delivery.LATE_AFTER_TIMEOUT: Outcome(DeliveryState.EXPIRED, "arrived after its waiter timed out"),
    Delivery.DISCARDED: Outcome(DeliveryState.EXPIRED, "no waiter and no room to keep it"),
}


class EventDelivery:
    """The agent's handler for :class:`DeliverEvents` messages."""

    def __init__(
        self,
        *,
        host: str,
        uow_factory: UnitOfWorkFactory,
        clock: Clock,
        driver: VirtDriver,
        network: NetworkBackend,
        volumes: VolumeBackend,
        waiters: WaiterRegistry,
        locks: ServerLocks,
    ) -> None:
        self._host = host
        self._uow_factory = uow_factory
        self._clock = clock
        self._driver = driver
        self._network = network
        self._volumes = volumes
        self._waiters = waiters
        self._locks = locks

    async def __call__(self, message: DeliverEvents) -> None:
        waiter_events = [ev for ev in message.events if EventName(ev.name) in WAITER_EVENTS]
        effect_events = [ev for ev in message.events if EventName(ev.name) not in WAITER_EVENTS]
        if effect_events:
            await asyncio.to_thread(self._apply_all, effect_events)
        if waiter_events:
            await self._wake(waiter_events)

    async def _wake(self, events: Sequence[EventEnvelope]) -> None:
        finished = await asyncio.to_thread(self._finished, events)
        results: list[tuple[str, str, str, str | None]] = []
        for event in events:
            if (event.uuid, event.host) in finished:
                continue
            outcome = _WAITER_OUTCOMES[self._waiters.deliver(event)]
            results.append((event.uuid, event.host, outcome.state.value, outcome.text))
        if results:
            await asyncio.to_thread(self._mark, results)

    def _finished(self, events: Sequence[EventEnvelope]) -> set[tuple[str, str]]:
        with self._uow_factory() as uow:
            return uow.events.finished([(ev.uuid, ev.host) for ev in events])

    def _mark(self, results: Sequence[tuple[str, str, str, str | None]]) -> None:
        with self._uow_factory() as uow:
            uow.events.mark_finished(results, self._clock.now())
            uow.commit()

    def _apply_all(self, events: Sequence[EventEnvelope]) -> None:
        for event in events:
            try:
                self._apply(event)
            except Exception as exc:
                # NOTE: one event's failure never blocks the rest of its batch (Nova's does).
                logger.exception("Event %s for instance %s failed", event.name, event.server_uuid)
                self._mark([(event.uuid, event.host, DeliveryState.FAILED.value, f"{type(exc).__name__}: {exc}")])

    def _apply(self, event: EventEnvelope) -> None:
        with self._locks(event.server_uuid), self._uow_factory() as uow:
            if uow.events.finished([(event.uuid, event.host)]):
                logger.debug("Event %s for instance %s already handled; skipped", event.uuid, event.server_uuid)
                return
            server = uow.servers.get(event.server_uuid, for_update=True)
            now = self._clock.now()
            if server is None:
                outcome = Outcome.handled("the server no longer exists")
            else:
                ctx = EventContext(uow, self._host, self._driver, self._network, self._volumes, now)
                outcome = EVENT_HANDLERS[EventName(event.name)](ctx, event, server)
            uow.events.mark_finished([(event.uuid, event.host, outcome.state.value, outcome.text)], now)
            uow.commit()
        logger.debug("Event %s for instance %s: %s", event.name, event.server_uuid, outcome.text)
