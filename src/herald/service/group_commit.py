"""Group commit: many concurrent callers share one worker-thread call (one transaction).

Callers on the event loop ``await committer.submit(item)``. A single worker thread
takes everything queued since its last pass and hands the whole list to ``work``,
so a durable commit is paid once per batch, not once per request.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

_STOP = object()


class GroupCommitter(Generic[T, R]):
    """Runs ``work(items) -> results`` (same length, same order) on one thread, batching callers."""

    def __init__(self, work: Callable[[Sequence[T]], Sequence[R]], *, name: str, max_batch: int = 512) -> None:
        self._work = work
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._started = False

    def start(self) -> None:
        if not self._started:
            self._started = True
            self._thread.start()

    def stop(self) -> None:
        if self._started:
            self._queue.put(_STOP)
            self._thread.join(timeout=10)
            self._started = False

    def submit(self, item: T) -> asyncio.Future[R]:
        """Queue ``item``; the future resolves (on the caller's loop) after its batch is done."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._queue.put((item, future, loop))
        return future

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch = [self._queue.get()]
            while len(batch) < self._max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if _STOP in batch:
                stopping = True
                batch = [entry for entry in batch if entry is not _STOP]
            if batch:
                self._process(batch)  # type: ignore[arg-type]

    def _process(self, batch: list[tuple[T, asyncio.Future[R], asyncio.AbstractEventLoop]]) -> None:
        items = [item for item, _, _ in batch]
        try:
            results: Sequence[R] | BaseException = self._work(items)
        except Exception as exc:
            logger.exception("Group commit of %d items failed", len(items))
            results = exc
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[R], R | BaseException]]] = {}
        for index, (_, future, loop) in enumerate(batch):
            outcome = results if isinstance(results, BaseException) else results[index]
            by_loop.setdefault(loop, []).append((future, outcome))
        for loop, settled in by_loop.items():
            # NOTE: one wake-up of the loop per batch, not one per caller.
            loop.call_soon_threadsafe(_settle, settled)


def _settle(settled: list[tuple[asyncio.Future[R], R | BaseException]]) -> None:
    for future, outcome in settled:
        if future.done():
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
