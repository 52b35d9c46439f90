"""InMemoryBus: the embedded shape's bus, one bounded FIFO queue per host, in this process."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from herald.domain.messages import DeliverEvents
from herald.service.ports import MessageHandler
from herald.service.relay import HostQueueFull

logger = logging.getLogger(__name__)

# Events a host's queue holds before it refuses more (about 1 KiB of memory each).
DEFAULT_MAX_EVENTS = 10_000


@dataclass(frozen=True, slots=True)
class DeadLetter:
    host: str
    message: object
    error: BaseException


def _events(message: object) -> int:
    return len(message.events) if isinstance(message, DeliverEvents) else 0


class InMemoryBus:
    """Per-host queues consumed one message at a time by the host's subscriber.

    A message whose handler raises goes to :attr:`dead_letters` (nothing redelivers it:
    the relay re-sends unfinished events after a restart). :meth:`join` waits until
    every queue is empty and every handler has returned, which makes tests deterministic.

    Event deliveries are bounded: a host holding ``max_events`` events not yet handled
    refuses more with :class:`HostQueueFull` (their journal rows stay ``accepted`` and the
    relay sends them again later), and :meth:`has_room` tells the accept path to stop taking
    events for it before that. Other messages (one per server operation, which nothing would send again)
    are always taken.
    """

    def __init__(self, max_events: int = DEFAULT_MAX_EVENTS) -> None:
        self._max_events = max_events
        self._queues: dict[str, asyncio.Queue[object]] = {}
        self._events: dict[str, int] = {}
        self._consumers: dict[str, asyncio.Task[None]] = {}
        self.dead_letters: list[DeadLetter] = []
        self._published = 0  # messages ever published: join() looks again when it grew meanwhile

    def _queue(self, host: str) -> asyncio.Queue[object]:
        if host not in self._queues:
            self._queues[host] = asyncio.Queue()
        return self._queues[host]

    def has_room(self, host: str, events: int) -> bool:
        """Whether ``host`` should be given ``events`` more (asked from any thread: a plain int read).

        Admission stops at three quarters of the bound: the rest is room for the events admitted
        by write passes whose hand-off has not reached the queue yet.
        """
        return self._events.get(host, 0) + events <= self._max_events * 3 // 4

    async def publish(self, host: str, messages: Sequence[object]) -> None:
        """:raises HostQueueFull: the events would overflow ``host``'s queue; nothing was queued."""
        q = self._queue(host)
        events = sum(_events(message) for message in messages)
        queued = self._events.get(host, 0)
        # NOTE: an empty queue takes any batch, or a batch larger than the bound could never go.
        if events and queued and queued + events > self._max_events:
            raise HostQueueFull(f"host {host} has {queued} events queued")
        self._events[host] = queued + events
        self._published += len(messages)
        for message in messages:
            q.put_nowait(message)

    async def subscribe(self, host: str, handler: MessageHandler) -> None:
        if host in self._consumers:
            raise RuntimeError(f"host {host} already has a consumer")
        self._consumers[host] = asyncio.create_task(self._consume(host, handler), name=f"bus-{host}")

    async def _consume(self, host: str, handler: MessageHandler) -> None:
        q = self._queue(host)
        while True:
            message = await q.get()
            try:
                await handler(message)
            except asyncio.CancelledError:
                self._done(host, q, message)
                raise
            except Exception as exc:
                logger.exception("Handler for host %s failed; message dead-lettered", host)
                self.dead_letters.append(DeadLetter(host, message, exc))
            self._done(host, q, message)

    def _done(self, host: str, q: asyncio.Queue[object], message: object) -> None:
        self._events[host] -= _events(message)
        q.task_done()

    def pending(self, host: str) -> int:
        return self._queue(host).qsize()

    async def join(self) -> None:
        """Wait until every published message has been handled."""
        while True:
            queues = list(self._queues.values())
            published = self._published
            await asyncio.gather(*(q.join() for q in queues))
            # NOTE: a handler of one host may publish to another whose join had already returned.
            if published != self._published:
                continue
            if all(q.empty() for q in self._queues.values()) and len(queues) == len(self._queues):
                return

    async def close(self) -> None:
        for task in self._consumers.values():
            task.cancel()
        await asyncio.gather(*self._consumers.values(), return_exceptions=True)
        self._consumers.clear()
