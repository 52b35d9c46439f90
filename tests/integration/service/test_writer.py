"""The writer: many callers share one transaction; a failing item fails alone."""

from __future__ import annotations

import asyncio
import functools
import gc
import threading
import weakref
from collections.abc import Callable, Sequence
from datetime import datetime

import pytest
from sqlalchemy import Engine

from herald.adapters.sql.uow import SqlUnitOfWork
from herald.domain.model import ComputeHost
from herald.service.ports import UnitOfWork
from herald.service.writer import Writer, WriterOverloaded, WriteTimedOut

T0 = datetime(2026, 1, 1)


class Heartbeat:
    """Records a heartbeat per host; a host named "boom" raises, like a constraint violation."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def run(self, uow: UnitOfWork, items: Sequence[str]) -> list[str]:
        self.calls.append(list(items))
        for host in items:
            if host == "boom":
                raise ValueError("boom")
            uow.hosts.heartbeat(host, T0)
        return [f"ok {host}" for host in items]


def _hosts(uow_factory: Callable[[], SqlUnitOfWork]) -> list[ComputeHost]:
    with uow_factory() as uow:
        return uow.hosts.list()


async def test_concurrent_submits_share_passes_and_all_commit(uow_factory: Callable[[], SqlUnitOfWork]) -> None:
    writer = Writer(uow_factory)
    job = Heartbeat()
    writer.start()
    try:
        results = await asyncio.gather(*(writer.submit(job, f"h{i}") for i in range(50)))
    finally:
        writer.stop()
    assert results == [f"ok h{i}" for i in range(50)]
    assert sorted(h.host for h in _hosts(uow_factory)) == sorted(f"h{i}" for i in range(50))
    # Everything queued before the thread woke went into one pass: fewer passes than items.
    assert len(job.calls) < 50
    assert sum(len(c) for c in job.calls) == 50


async def test_a_failing_item_fails_alone(uow_factory: Callable[[], SqlUnitOfWork]) -> None:
    writer = Writer(uow_factory)
    job = Heartbeat()
    writer.start()
    try:
        results = await asyncio.gather(
            writer.submit(job, "a"), writer.submit(job, "boom"), writer.submit(job, "b"), return_exceptions=True
        )
    finally:
        writer.stop()
    assert results[0] == "ok a"
    assert isinstance(results[1], ValueError)
    assert results[2] == "ok b"
    assert sorted(h.host for h in _hosts(uow_factory)) == ["a", "b"]


async def test_stop_finishes_what_was_queued(uow_factory: Callable[[], SqlUnitOfWork]) -> None:
    writer = Writer(uow_factory)
    job = Heartbeat()
    writer.submit_nowait(job, "late")
    writer.start()
    await writer.flush()
    writer.stop()
    assert [h.host for h in _hosts(uow_factory)] == ["late"]


def test_run_now_commits_on_the_calling_thread(uow_factory: Callable[[], SqlUnitOfWork]) -> None:
    writer = Writer(uow_factory)
    assert writer.run_now(Heartbeat(), ["x"]) == ["ok x"]
    assert [h.host for h in _hosts(uow_factory)] == ["x"]
    with pytest.raises(ValueError, match="boom"):
        writer.run_now(Heartbeat(), ["boom"])


class Gate:
    """A job whose pass waits until released: the writer thread is busy meanwhile."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def run(self, uow: UnitOfWork, items: Sequence[str]) -> list[str]:
        self.entered.set()
        self.release.wait(30)
        return list(items)


async def _busy(writer: Writer) -> Gate:
    """Occupy the writer thread until the returned gate is released."""
    gate = Gate()
    writer.submit_nowait(gate, "busy")
    await asyncio.to_thread(gate.entered.wait, 30)
    return gate


async def test_a_pass_is_bounded_by_rows_not_requests(uow_factory: Callable[[], SqlUnitOfWork]) -> None:
    writer = Writer(uow_factory, max_pass_rows=10)
    job = Rows()
    writer.start()
    try:
        gate = await _busy(writer)
        # Five requests of four rows each queue up behind the busy pass.
        futures = [writer.submit(job, [f"h{i}-{j}" for j in range(4)]) for i in range(5)]
        gate.release.set()
        await asyncio.gather(*futures)
    finally:
        writer.stop()
    assert [sum(len(item) for item in call) for call in job.calls] == [8, 8, 4]
    assert len(_hosts(uow_factory)) == 20


async def test_an_item_heavier_than_a_pass_runs_alone(uow_factory: Callable[[], SqlUnitOfWork]) -> None:
    writer = Writer(uow_factory, max_pass_rows=3)
    job = Rows()
    writer.start()
    try:
        await writer.submit(job, [f"h{j}" for j in range(7)])
    finally:
        writer.stop()
    assert [len(call) for call in job.calls] == [1]
    assert len(_hosts(uow_factory)) == 7


async def test_a_full_queue_refuses_bounded_submits(uow_factory: Callable[[], SqlUnitOfWork]) -> None:
    writer = Writer(uow_factory, max_queue_rows=3)
    job = Heartbeat()
    writer.start()
    try:
        gate = await _busy(writer)
        admitted = [asyncio.ensure_future(writer.submit_within(job, f"h{i}", seconds=30)) for i in range(3)]
        await asyncio.sleep(0)
        with pytest.raises(WriterOverloaded) as refused:
            await writer.submit_within(job, "one-too-many", seconds=30)
        assert refused.value.retry_after >= 1
        gate.release.set()
        assert await asyncio.gather(*admitted) == ["ok h0", "ok h1", "ok h2"]
    finally:
        writer.stop()
    assert sorted(h.host for h in _hosts(uow_factory)) == ["h0", "h1", "h2"]


async def test_a_write_given_up_before_its_commit_is_never_committed(uow_factory: Callable[[], SqlUnitOfWork]) -> None:
    writer = Writer(uow_factory)
    job = Heartbeat()
    writer.start()
    try:
        gate = await _busy(writer)
        waited = asyncio.ensure_future(writer.submit(job, "patient"))
        with pytest.raises(WriteTimedOut):
            await writer.submit_within(job, "impatient", seconds=0.05)
        gate.release.set()
        assert await waited == "ok patient"
        await writer.flush()
    finally:
        writer.stop()
    assert [h.host for h in _hosts(uow_factory)] == ["patient"]


class SlowCommit(SqlUnitOfWork):
    """A unit of work whose commit waits for a signal: the pass is sealed and committing meanwhile."""

    committing = threading.Event()
    proceed = threading.Event()

    def commit(self) -> None:
        SlowCommit.committing.set()
        SlowCommit.proceed.wait(30)
        super().commit()


async def test_a_write_committing_when_the_wait_ends_is_answered_with_its_result(engine: Engine) -> None:
    SlowCommit.committing.clear()
    SlowCommit.proceed.clear()
    writer = Writer(functools.partial(SlowCommit, engine))
    writer.start()
    try:
        answer = asyncio.ensure_future(writer.submit_within(Heartbeat(), "sealed", seconds=0.05))
        await asyncio.to_thread(SlowCommit.committing.wait, 30)
        await asyncio.sleep(0.2)  # well past the caller's wait
        assert not answer.done()
        SlowCommit.proceed.set()
        assert await answer == "ok sealed"
    finally:
        SlowCommit.proceed.set()
        writer.stop()
    with SqlUnitOfWork(engine) as uow:
        assert [h.host for h in uow.hosts.list()] == ["sealed"]


class Flaky(Heartbeat):
    """Fails its first ``failures`` passes as if the database were locked."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def run(self, uow: UnitOfWork, items: Sequence[str]) -> list[str]:
        if self.failures:
            self.failures -= 1
            raise TimeoutError("database unavailable")
        return super().run(uow, items)


async def test_a_pass_the_database_could_not_take_is_retried_whole(uow_factory: Callable[[], SqlUnitOfWork]) -> None:
    writer = Writer(uow_factory, transient=lambda exc: isinstance(exc, TimeoutError))
    job = Flaky(failures=2)
    writer.start()
    try:
        gate = await _busy(writer)
        futures = [writer.submit(job, f"h{i}") for i in range(3)]
        gate.release.set()
        assert await asyncio.gather(*futures) == ["ok h0", "ok h1", "ok h2"]
    finally:
        writer.stop()
    # Two failed attempts, then the whole pass again: never split item by item.
    assert job.calls == [["h0", "h1", "h2"]]
    assert sorted(h.host for h in _hosts(uow_factory)) == ["h0", "h1", "h2"]


class Rows:
    """Records one heartbeat per row of each item (an item is a list of host names)."""

    def __init__(self) -> None:
        self.calls: list[list[list[str]]] = []

    def run(self, uow: UnitOfWork, items: Sequence[list[str]]) -> list[None]:
        self.calls.append(list(items))
        for item in items:
            for host in item:
                uow.hosts.heartbeat(host, T0)
        return [None] * len(items)


class Poisoned:
    """A host named "stuck" fails as the database being unavailable would, on every attempt."""

    def run(self, uow: UnitOfWork, items: Sequence[str]) -> list[str]:
        for host in items:
            if host == "stuck":
                raise TimeoutError("could not obtain lock")
            uow.hosts.heartbeat(host, T0)
        return [f"ok {host}" for host in items]


async def test_a_write_that_always_looks_transient_fails_alone(uow_factory: Callable[[], SqlUnitOfWork]) -> None:
    writer = Writer(uow_factory, transient=lambda exc: isinstance(exc, TimeoutError))
    job = Poisoned()
    writer.start()
    try:
        gate = await _busy(writer)
        futures = [writer.submit(job, host) for host in ("a", "stuck", "b")]
        gate.release.set()
        results = await asyncio.wait_for(asyncio.gather(*futures, return_exceptions=True), 30)
    finally:
        writer.stop()
    # The pass is retried a bounded number of times, then split: the others commit.
    assert results[0] == "ok a"
    assert isinstance(results[1], TimeoutError)
    assert results[2] == "ok b"
    assert sorted(h.host for h in _hosts(uow_factory)) == ["a", "b"]


class _Item:
    """An item (and, below, a result) a weak reference can watch."""


class _Answer:
    pass


class Answer:
    def run(self, uow: UnitOfWork, items: Sequence[_Item]) -> list[_Answer]:
        return [_Answer() for _ in items]


async def test_a_committed_write_leaves_nothing_for_the_cyclic_gc(uow_factory: Callable[[], SqlUnitOfWork]) -> None:
    # A request's item and result (every event of a batch) must go as soon as the caller drops them: held
    # by a reference cycle, they would wait for a full collection of the cyclic GC, and the API worker's
    # memory would grow with them in between.
    writer = Writer(uow_factory)
    writer.start()
    gc.disable()
    try:
        item = _Item()
        result = await writer.submit_within(Answer(), item, seconds=30)
        await writer.flush()  # the writer thread has moved on to another pass
        watched = [weakref.ref(item), weakref.ref(result)]
        del item, result
        assert [ref() for ref in watched] == [None, None]
    finally:
        gc.enable()
        writer.stop()
