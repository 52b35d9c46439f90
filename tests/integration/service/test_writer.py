"""The writer: many callers share one transaction; a failing item fails alone."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime

import pytest

from herald.adapters.sql.uow import SqlUnitOfWork
from herald.domain.model import ComputeHost
from herald.service.ports import UnitOfWork
from herald.service.writer import Writer

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
