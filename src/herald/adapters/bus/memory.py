"""InMemoryBus: the embedded shape's bus, one FIFO queue per host, in this process."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from herald.service.ports import MessageHandler

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    host: str
    message: object
    error: BaseException


class InMemoryBus:
    """Per-host queues consumed one message at a time by the host's subscriber.

    A message whose handler raises goes to :attr:`dead_letters` (nothing redelivers it:
    the relay re-sends unfinished events after a restart). :meth:`join` waits until
    every queue is empty and every handler has returned, which makes tests deterministic.
    """

    volatile = True

    def __init__(self) -> None:
        self._queues: dict[str, asyncio.Queue[object]] = {}
        self._consumers: dict[str, asyncio.Task[None]] = {}
        self.dead_letters: list[DeadLetter] = []

    def _queue(self, host: str) -> asyncio.Queue[object]:
        if host not in self._queues:
            self._queues[host] = asyncio.Queue()
        return self._queues[host]

    async def publish(self, host: str, messages: Sequence[object]) -> None:
        q = self._queue(host)
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
                q.task_done()
                raise
            except Exception as exc:
                logger.exception("Handler for host %s failed; message dead-lettered", host)
                self.dead_letters.append(DeadLetter(host, message, exc))
            q.task_done()

    def pending(self, host: str) -> int:
        return self._queue(host).qsize()

    async def join(self) -> None:
        """Wait until every published message has been handled."""
        while True:
            queues = list(self._queues.values())
            await asyncio.gather(*(q.join() for q in queues))
            if all(q.empty() for q in self._queues.values()) and len(queues) == len(self._queues):
                return

    async def close(self) -> None:
        for task in self._consumers.values():
            task.cancel()
        await asyncio.gather(*self._consumers.values(), return_exceptions=True)
        self._consumers.clear()
