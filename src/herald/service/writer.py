"""The writer: one thread that runs every queued write of this process in one transaction.

Callers on the event loop ``await writer.submit(job, item)``. The thread takes all that
was queued since its last pass, runs each job kind once over its items (one statement
for many rows), commits once and wakes the callers. So a durable commit is paid once
per pass, whatever the number of requests, and on SQLite the writes of the API, the
relay and the agents never wait on each other's locks.

A pass whose transaction fails is retried job by job, then item by item, each in its
own transaction, so one bad item fails alone.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Sequence
from typing import Any, Generic, Protocol, TypeVar

from herald.service.ports import UnitOfWork, UnitOfWorkFactory

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")
T_contra = TypeVar("T_contra", contravariant=True)
R_co = TypeVar("R_co", covariant=True)


class WriteJob(Protocol[T_contra, R_co]):
    """A kind of write: runs many queued items at once inside the pass's transaction."""

    def run(self, uow: UnitOfWork, items: Sequence[T_contra]) -> Sequence[R_co]:
        """One result per item, in order. Must not commit; may run again if the pass is retried."""


class _Entry(Generic[T, R]):
    __slots__ = ("future", "item", "job", "loop")

    def __init__(
        self, job: WriteJob[T, R], item: T, future: asyncio.Future[R] | None, loop: asyncio.AbstractEventLoop | None
    ) -> None:
        self.job = job
        self.item = item
        self.future = future
        self.loop = loop


_STOP = object()


class _Nothing:
    def run(self, uow: UnitOfWork, items: Sequence[None]) -> list[None]:
        return [None] * len(items)


_NOTHING = _Nothing()


class Writer:
    """Group commit for every writer of the process (see the module docstring)."""

    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        *,
        name: str = "herald-writer",
        max_items: int = 2048,
        gather_delay: float = 0.0,
        gather_below: int = 8,
        gather_max: float = 0.002,
    ) -> None:
        """:param gather_delay: seconds to wait, again and again while more items come (at most
        ``gather_max`` in all), when a pass would hold fewer than ``gather_below`` (0: never)."""
        self._uow_factory = uow_factory
        self._max_items = max_items
        self._gather_delay = gather_delay
        self._gather_below = gather_below
        self._gather_max = gather_max
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._name = name

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Finish what is queued, then end the thread."""
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join(timeout=30)
            self._thread = None

    def submit(self, job: WriteJob[T, R], item: T) -> asyncio.Future[R]:
        """Queue ``item`` for ``job``; the future resolves on the caller's loop after the commit."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._queue.put(_Entry(job, item, future, loop))
        return future

    def submit_nowait(self, job: WriteJob[T, Any], item: T) -> None:
        """Queue ``item`` with nobody waiting for it (failures are logged)."""
        self._queue.put(_Entry(job, item, None, None))

    async def flush(self) -> None:
        """Wait until everything queued before this call is committed."""
        await self.submit(_NOTHING, None)

    def run_now(self, job: WriteJob[T, R], items: Sequence[T]) -> Sequence[R]:
        """Run ``job`` at once in its own transaction on the calling thread (start-up, tools, tests)."""
        with self._uow_factory() as uow:
            results = job.run(uow, items)
            uow.commit()
        return results

    # --- the thread ---------------------------------------------------------------
    def _drain(self, pending: list[object]) -> None:
        while len(pending) < self._max_items:
            try:
                pending.append(self._queue.get_nowait())
            except queue.Empty:
                return

    def _gather(self, pending: list[object]) -> None:
        """Let a small pass wait a little for company, as long as company keeps coming.

        A pass costs nearly the same for 1 item or 50 (begin, commit and its fsync), so when few
        items came in, a fraction of that cost spent waiting buys fewer, fuller passes.
        """
        waited = 0.0
        while self._gather_delay and len(pending) < self._gather_below and waited < self._gather_max:
            before = len(pending)
            time.sleep(self._gather_delay)
            waited += self._gather_delay
            self._drain(pending)
            if len(pending) == before:
                return

    def _run(self) -> None:
        while True:
            entries: list[_Entry[Any, Any]] = []
            stopping = False
            pending = [self._queue.get()]
            self._drain(pending)
            self._gather(pending)
            for entry in pending:
                if entry is _STOP:
                    stopping = True
                else:
                    entries.append(entry)  # type: ignore[arg-type]
            if entries:
                self._pass(entries)
            if stopping:
                return

    def _pass(self, entries: list[_Entry[Any, Any]]) -> None:
        groups: dict[int, tuple[WriteJob[Any, Any], list[_Entry[Any, Any]]]] = {}
        for entry in entries:
            groups.setdefault(id(entry.job), (entry.job, []))[1].append(entry)
        # NOTE: jobs with a higher ``order`` run later in the pass (e.g. hand-off marks after outcomes).
        ordered = sorted(groups.values(), key=lambda group: getattr(group[0], "order", 0))
        try:
            outcomes = self._transaction(ordered)
        except Exception:
            logger.exception("Write pass of %d items failed; retrying them one job at a time", len(entries))
            outcomes = []
            for group in groups.values():
                outcomes.extend(self._retry(group))
        self._settle(outcomes)

    def _transaction(
        self, groups: list[tuple[WriteJob[Any, Any], list[_Entry[Any, Any]]]]
    ) -> list[tuple[_Entry[Any, Any], object]]:
        outcomes: list[tuple[_Entry[Any, Any], object]] = []
        with self._uow_factory() as uow:
            for job, group in groups:
                results = job.run(uow, [entry.item for entry in group])
                outcomes.extend(zip(group, results, strict=True))
            uow.commit()
        return outcomes

    def _retry(self, group: tuple[WriteJob[Any, Any], list[_Entry[Any, Any]]]) -> list[tuple[_Entry[Any, Any], object]]:
        job, entries = group
        try:
            return self._transaction([group])
        except Exception as exc:
            if len(entries) == 1:
                logger.exception("Write %s failed", type(job).__name__)
                return [(entries[0], _Failure(exc))]
        outcomes: list[tuple[_Entry[Any, Any], object]] = []
        for entry in entries:
            outcomes.extend(self._retry((job, [entry])))
        return outcomes

    @staticmethod
    def _settle(outcomes: list[tuple[_Entry[Any, Any], object]]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], object]]] = {}
        for entry, outcome in outcomes:
            if entry.future is None or entry.loop is None:
                continue
            by_loop.setdefault(entry.loop, []).append((entry.future, outcome))
        for loop, settled in by_loop.items():
            # NOTE: one wake-up of each loop per pass, not one per caller.
            try:
                loop.call_soon_threadsafe(_settle_on_loop, settled)
            except RuntimeError:
                logger.warning("An event loop closed before its %d writes were settled", len(settled))


class _Failure:
    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


def _settle_on_loop(settled: list[tuple[asyncio.Future[Any], object]]) -> None:
    for future, outcome in settled:
        if future.done():
            continue
        if isinstance(outcome, _Failure):
            future.set_exception(outcome.error)
        else:
            future.set_result(outcome)
