"""The writer: one thread that runs every queued write of this process in one transaction.

Callers on the event loop ``await writer.submit(job, item)``. The thread takes all that
was queued since its last pass (at most ``max_pass_rows`` rows), runs each job kind once
over its items (one statement for many rows), commits once and wakes the callers. So a
durable commit is paid once per pass, whatever the number of requests, and on SQLite the
writes of the API, the relay and the agents never wait on each other's locks.

A pass whose transaction fails is retried job by job, then item by item, each in its
own transaction, so one bad item fails alone. A pass that fails because the database is
unavailable (locked, unreachable, no free connection) is retried whole, after a pause,
until it commits.

API requests use :meth:`Writer.submit_within`: refused at once when the queue is full, and
given up after a bounded wait. Giving up and committing exclude each other: the writer seals
a pass's entries just before its commit, a sealed entry cannot be given up, and a pass that
holds given-up entries is rolled back and run again without them. So a caller told
"unavailable" left nothing in the database, and a committed write is always answered.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Generic, Protocol, TypeVar

from herald.service.ports import UnitOfWork, UnitOfWorkFactory

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")
T_contra = TypeVar("T_contra", contravariant=True)
R_co = TypeVar("R_co", covariant=True)

# Pauses between two attempts at a pass while the database is unavailable.
RETRY_FIRST_S = 0.05
RETRY_MAX_S = 1.0
# Attempts at a whole pass before its writes are tried one job, then one item, at a time: a write
# that keeps failing the same way must fail alone, never hold every other write back.
PASS_ATTEMPTS = 8


class WriteJob(Protocol[T_contra, R_co]):
    """A kind of write: runs many queued items at once inside the pass's transaction.

    A job may also define ``weight(item) -> int``, the rows an item writes (default: the length
    of a list or tuple item, else 1); passes and the queue are bounded in these rows.
    """

    def run(self, uow: UnitOfWork, items: Sequence[T_contra]) -> Sequence[R_co]:
        """One result per item, in order. Must not commit; may run again if the pass is retried."""


class Unavailable(Exception):
    """The work was not done and left nothing behind; the caller may try again later.

    :param retry_after: seconds after which trying again is worthwhile.
    """

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class WriterOverloaded(Unavailable):
    """The writer's queue is full."""


class WriteTimedOut(Unavailable):
    """The database did not commit the write within the caller's wait; it never will."""


class DatabaseUnavailable(Unavailable):
    """The database stayed unavailable until the writer stopped."""


class _State(enum.Enum):
    QUEUED = 0  # waiting in the queue or in a pass that has not reached its commit
    SEALED = 1  # its pass is committing: the caller must wait for the outcome
    ABANDONED = 2  # the caller gave up: no pass may commit it


class _Entry(Generic[T, R]):
    __slots__ = ("future", "item", "job", "loop", "state", "weight")

    def __init__(
        self,
        job: WriteJob[T, R],
        item: T,
        future: asyncio.Future[R] | None,
        loop: asyncio.AbstractEventLoop | None,
        weight: int,
    ) -> None:
        self.job = job
        self.item = item
        self.future = future
        self.loop = loop
        self.weight = weight
        self.state = _State.QUEUED


_STOP = object()


class _Nothing:
    def run(self, uow: UnitOfWork, items: Sequence[None]) -> list[None]:
        return [None] * len(items)


_NOTHING = _Nothing()


def _weight(job: object, item: object) -> int:
    weigh = getattr(job, "weight", None)
    if weigh is not None:
        return max(1, int(weigh(item)))
    if isinstance(item, list | tuple):
        return max(1, len(item))
    return 1


def _never_transient(exc: BaseException) -> bool:
    return False


class Writer:
    """Group commit for every writer of the process (see the module docstring)."""

    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        *,
        name: str = "herald-writer",
        max_pass_rows: int = 5000,
        max_queue_rows: int = 20000,
        gather_delay: float = 0.0,
        gather_below: int = 8,
        gather_max: float = 0.002,
        transient: Callable[[BaseException], bool] = _never_transient,
    ) -> None:
        """:param max_pass_rows: rows one pass holds at most (an item heavier than that runs alone).
        :param max_queue_rows: rows queued beyond which :meth:`submit_within` refuses new work.
        :param gather_delay: seconds to wait, again and again while more items come (at most
            ``gather_max`` in all), when a pass would hold fewer than ``gather_below`` (0: never).
        :param transient: whether an exception means the database is unavailable for now
            (the pass is then retried whole) rather than that an item is bad."""
        self._uow_factory = uow_factory
        self._max_pass_rows = max_pass_rows
        self._max_queue_rows = max_queue_rows
        self._gather_delay = gather_delay
        self._gather_below = gather_below
        self._gather_max = gather_max
        self._transient = transient
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)
        self._queue: deque[object] = deque()
        self._queued_rows = 0
        self._idle = False  # the thread waits for work (only then does a submit wake it)
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        self._name = name

    def start(self) -> None:
        if self._thread is None:
            self._closing.clear()
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Finish what is queued, then end the thread (failing what the database cannot take now)."""
        if self._thread is not None:
            self._closing.set()
            self._put(_STOP)
            self._thread.join(timeout=30)
            self._thread = None

    def submit(self, job: WriteJob[T, R], item: T) -> asyncio.Future[R]:
        """Queue ``item`` for ``job``; the future resolves on the caller's loop after the commit."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._put(_Entry(job, item, future, loop, _weight(job, item)))
        return future

    def submit_nowait(self, job: WriteJob[T, Any], item: T) -> None:
        """Queue ``item`` with nobody waiting for it (failures are logged)."""
        self._put(_Entry(job, item, None, None, _weight(job, item)))

    async def submit_within(self, job: WriteJob[T, R], item: T, *, seconds: float) -> R:
        """Queue ``item`` unless the queue is full, and wait at most about ``seconds`` for its commit.

        :raises WriterOverloaded: the queue holds ``max_queue_rows`` rows already; nothing was queued.
        :raises WriteTimedOut: not committed in time; it never will be.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        entry = _Entry(job, item, future, loop, _weight(job, item))
        with self._lock:
            if self._queued_rows and self._queued_rows + entry.weight > self._max_queue_rows:
                raise WriterOverloaded(f"The database writer is overloaded ({self._queued_rows} rows queued).")
            self._append(entry)
        timers: list[asyncio.TimerHandle] = []
        # NOTE: expire re-arms itself through this list, emptied once the wait is over. Naming itself, its
        # closure would hold its own cell: a reference cycle keeping the item and the result (every event of
        # the request) alive until the cyclic GC's next full collection, thousands of requests away.
        again: list[Callable[[], None]] = []

        def expire() -> None:
            if future.done():
                return
            if self._abandon(entry):
                retry_after = max(1, math.ceil(seconds))
                future.set_exception(WriteTimedOut(f"The database did not commit within {seconds:g} s.", retry_after))
            else:
                # NOTE: sealed: its commit is under way; its outcome comes in a moment.
                timers.append(loop.call_later(RETRY_FIRST_S, again[0]))

        again.append(expire)
        timers.append(loop.call_later(seconds, expire))
        try:
            return await future
        finally:
            timers[-1].cancel()
            again.clear()

    async def flush(self) -> None:
        """Wait until everything queued before this call is committed."""
        await self.submit(_NOTHING, None)

    def run_now(self, job: WriteJob[T, R], items: Sequence[T]) -> Sequence[R]:
        """Run ``job`` at once in its own transaction on the calling thread (start-up, tools, tests)."""
        with self._uow_factory() as uow:
            results = job.run(uow, items)
            uow.commit()
        return results

    # --- the queue ----------------------------------------------------------------
    def _put(self, entry: object) -> None:
        with self._lock:
            self._append(entry)

    def _append(self, entry: object) -> None:
        """Under the lock."""
        self._queue.append(entry)
        if isinstance(entry, _Entry):
            self._queued_rows += entry.weight
        if self._idle:
            self._ready.notify()

    def _abandon(self, entry: _Entry[Any, Any]) -> bool:
        """Give ``entry`` up unless its pass is committing; True when given up."""
        with self._lock:
            if entry.state is _State.SEALED:
                return False
            entry.state = _State.ABANDONED
            return True

    def _seal(self, entries: list[_Entry[Any, Any]]) -> bool:
        """Seal every entry for the commit, or none when one was given up (the pass runs again)."""
        with self._lock:
            if any(entry.state is _State.ABANDONED for entry in entries):
                return False
            for entry in entries:
                entry.state = _State.SEALED
        return True

    def _unseal(self, entries: list[_Entry[Any, Any]]) -> None:
        with self._lock:
            for entry in entries:
                entry.state = _State.QUEUED

    @staticmethod
    def _live(entries: list[_Entry[Any, Any]]) -> list[_Entry[Any, Any]]:
        return [entry for entry in entries if entry.state is not _State.ABANDONED]

    # --- the thread ---------------------------------------------------------------
    def _take(self, pending: list[object], rows: int) -> int:
        """Move queued entries into ``pending`` while the pass has room (under the lock); returns its rows."""
        queue = self._queue
        while queue:
            entry = queue[0]
            if isinstance(entry, _Entry):
                if rows and rows + entry.weight > self._max_pass_rows:
                    break
                self._queued_rows -= entry.weight
                if entry.state is _State.ABANDONED:
                    queue.popleft()
                    continue
                rows += entry.weight
            queue.popleft()
            pending.append(entry)
            if entry is _STOP:
                break
        return rows

    def _next_pass(self) -> list[object]:
        pending: list[object] = []
        with self._lock:
            while not self._queue:
                self._idle = True
                self._ready.wait()
                self._idle = False
            rows = self._take(pending, 0)
        self._gather(pending, rows)
        return pending

    def _gather(self, pending: list[object], rows: int) -> None:
        """Let a small pass wait a little for company, as long as company keeps coming.

        A pass costs nearly the same for 1 item or 50 (begin, commit and its fsync), so when few
        items came in, a fraction of that cost spent waiting buys fewer, fuller passes.
        """
        waited = 0.0
        while self._gather_delay and len(pending) < self._gather_below and waited < self._gather_max:
            if pending and pending[-1] is _STOP:
                return
            before = len(pending)
            time.sleep(self._gather_delay)
            waited += self._gather_delay
            with self._lock:
                rows = self._take(pending, rows)
            if len(pending) == before:
                return

    def _run(self) -> None:
        while True:
            entries: list[_Entry[Any, Any]] = []
            stopping = False
            for entry in self._next_pass():
                if entry is _STOP:
                    stopping = True
                else:
                    entries.append(entry)  # type: ignore[arg-type]
            if entries:
                self._settle(self._commit(entries))
            if stopping:
                return

    def _commit(
        self, entries: list[_Entry[Any, Any]], attempts: int = PASS_ATTEMPTS
    ) -> list[tuple[_Entry[Any, Any], object]]:
        """Commit ``entries`` (those not given up), retrying the whole a few times while the database
        is unavailable, then split (a caller of a write that still fails gets its error and retries)."""
        delay = RETRY_FIRST_S
        while True:
            entries = self._live(entries)
            if not entries:
                return []
            try:
                outcomes = self._attempt(entries)
            except Exception as exc:
                attempts -= 1
                if not self._transient(exc) or attempts <= 0:
                    return self._split(entries, exc)
                if self._closing.is_set():
                    logger.warning(
                        "Database unavailable while stopping; %d writes fail: %s", len(entries), _first_line(exc)
                    )
                    failure = _Failure(DatabaseUnavailable(f"The database is unavailable: {type(exc).__name__}"))
                    return [(entry, failure) for entry in entries]
                logger.warning(
                    "Database unavailable (%s); retrying a pass of %d writes in %.2f s",
                    _first_line(exc),
                    len(entries),
                    delay,
                )
                self._closing.wait(delay)
                delay = min(delay * 2, RETRY_MAX_S)
                continue
            if outcomes is not None:
                return outcomes

    def _attempt(self, entries: list[_Entry[Any, Any]]) -> list[tuple[_Entry[Any, Any], object]] | None:
        """One transaction; None when an entry was given up before the commit (rolled back)."""
        outcomes: list[tuple[_Entry[Any, Any], object]] = []
        with self._uow_factory() as uow:
            for job, group in _groups(entries):
                results = job.run(uow, [entry.item for entry in group])
                outcomes.extend(zip(group, results, strict=True))
            if not self._seal(entries):
                return None
            try:
                uow.commit()
            except BaseException:
                self._unseal(entries)
                raise
        return outcomes

    def _split(self, entries: list[_Entry[Any, Any]], exc: Exception) -> list[tuple[_Entry[Any, Any], object]]:
        """After a failure that is not the database's: job by job, then item by item, so a bad item fails alone."""
        groups = _groups(entries)
        if len(groups) > 1:
            logger.error("Write pass of %d items failed; retrying them one job at a time", len(entries), exc_info=exc)
            return [outcome for _, group in groups for outcome in self._commit(group, attempts=1)]
        if len(entries) == 1:
            logger.error("Write %s failed", type(entries[0].job).__name__, exc_info=exc)
            return [(entries[0], _Failure(exc))]
        return [outcome for entry in entries for outcome in self._commit([entry], attempts=1)]

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


def _first_line(exc: BaseException) -> str:
    return str(exc).partition("\n")[0]


def _groups(entries: list[_Entry[Any, Any]]) -> list[tuple[WriteJob[Any, Any], list[_Entry[Any, Any]]]]:
    groups: dict[int, tuple[WriteJob[Any, Any], list[_Entry[Any, Any]]]] = {}
    for entry in entries:
        groups.setdefault(id(entry.job), (entry.job, []))[1].append(entry)
    # NOTE: jobs with a higher ``order`` run later in the pass (e.g. hand-off marks after outcomes).
    return sorted(groups.values(), key=lambda group: getattr(group[0], "order", 0))


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
