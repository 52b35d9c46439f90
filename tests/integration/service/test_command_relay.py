"""The command relay over a real outbox (SQLite and PostgreSQL): a command leaves the outbox only once
its transport took it, a failed publish waits for the next pass, and a claimed row nobody published is
sent again once its claim lapsed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime, timedelta

import pytest

from herald.adapters.bus.memory import InMemoryBus
from herald.adapters.sql.uow import SqlUnitOfWork
from herald.bootstrap import build_writer
from herald.config import Settings
from herald.domain.errors import BusUnavailable
from herald.domain.messages import StartServer, StopServer
from herald.service.command_relay import CommandRelay
from herald.service.ports import QueuedCommand
from herald.service.writer import Writer

T0 = datetime(2026, 12, 2, 3, 0, 0)
SERVER = "4a3c2b1d-0000-4000-8000-000000000001"
OTHER = "4a3c2b1d-0000-4000-8000-000000000002"


class FakeClock:
    def __init__(self) -> None:
        self._now = T0

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return (self._now - T0).total_seconds()

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)


class SwitchableBus(InMemoryBus):
    """Refuses every publish while ``down`` (as RabbitMQ's bus does while no broker answers)."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.taken: list[tuple[str, object]] = []

    async def publish(self, host: str, messages: Sequence[object]) -> None:
        if self.down:
            raise BusUnavailable("RabbitMQ is unreachable (test)")
        self.taken.extend((host, message) for message in messages)
        await super().publish(host, messages)


@pytest.fixture
async def writer(uow_factory: Callable[[], SqlUnitOfWork]) -> AsyncIterator[Writer]:
    writer = build_writer(Settings(), uow_factory)
    writer.start()
    yield writer
    writer.stop()


def _record(uow_factory: Callable[[], SqlUnitOfWork], *commands: tuple[str, object]) -> list[int]:
    """What a use case's transaction does: the commands committed, claimed by the recording process."""
    with uow_factory() as uow:
        ids = uow.commands.add(list(commands), T0)  # type: ignore[arg-type]
        uow.commit()
    return ids


def _waiting(uow_factory: Callable[[], SqlUnitOfWork]) -> int:
    with uow_factory() as uow:
        return uow.commands.count()


async def test_a_claimed_row_nobody_published_is_sent_once_its_claim_lapsed(
    uow_factory: Callable[[], SqlUnitOfWork], writer: Writer
) -> None:
    bus, clock = SwitchableBus(), FakeClock()
    relay = CommandRelay(bus, writer, clock, interval=3600, resend_after=60)
    # The process that recorded it died before it published: the row stays claimed by it.
    _record(uow_factory, ("compute-1", StopServer(SERVER, "req-1")))
    clock.advance(30)
    assert await relay.redeliver() == 0
    assert bus.taken == []
    assert _waiting(uow_factory) == 1
    clock.advance(31)
    assert await relay.redeliver() == 1
    assert bus.taken == [("compute-1", StopServer(SERVER, "req-1"))]
    assert _waiting(uow_factory) == 0
    # Gone from the outbox: a later pass sends nothing more.
    clock.advance(120)
    assert await relay.redeliver() == 0


async def test_a_failed_publish_waits_for_the_next_pass_and_keeps_the_hosts_order(
    uow_factory: Callable[[], SqlUnitOfWork], writer: Writer
) -> None:
    bus, clock = SwitchableBus(), FakeClock()
    relay = CommandRelay(bus, writer, clock, interval=3600, resend_after=60)
    bus.down = True
    (first,) = await asyncio.to_thread(_record, uow_factory, ("compute-1", StopServer(SERVER, "req-1")))
    await relay.send(await _queued(uow_factory, first))
    assert _waiting(uow_factory) == 1
    # A later command for the same host waits behind the first one, while the transport is away...
    (second,) = await asyncio.to_thread(_record, uow_factory, ("compute-1", StartServer(OTHER, "req-2")))
    await relay.send(await _queued(uow_factory, second))
    await relay.flush()
    assert bus.taken == []
    assert _waiting(uow_factory) == 2
    # ... and once it is back, the pass a new command starts sends them all, oldest first (freed rows
    # need no lapse).
    bus.down = False
    (third,) = await asyncio.to_thread(_record, uow_factory, ("compute-1", StopServer(OTHER, "req-3")))
    await relay.send(await _queued(uow_factory, third))
    await relay.flush()
    assert bus.taken == [
        ("compute-1", StopServer(SERVER, "req-1")),
        ("compute-1", StartServer(OTHER, "req-2")),
        ("compute-1", StopServer(OTHER, "req-3")),
    ]
    assert _waiting(uow_factory) == 0
    # The host is reached again: a new command goes at once.
    (fourth,) = await asyncio.to_thread(_record, uow_factory, ("compute-1", StartServer(OTHER, "req-4")))
    await relay.send(await _queued(uow_factory, fourth))
    assert bus.taken[-1] == ("compute-1", StartServer(OTHER, "req-4"))
    assert _waiting(uow_factory) == 0


async def _queued(uow_factory: Callable[[], SqlUnitOfWork], row_id: int) -> list[QueuedCommand]:
    """The row as the recording process holds it after its commit (what the API hands to the relay)."""

    def read() -> list[QueuedCommand]:
        with uow_factory() as uow:
            # NOTE: a claim far in the future takes the row whatever its claim (it is this process's own).
            claimed = uow.commands.claim(after_id=row_id - 1, claimed_before=T0 + timedelta(days=1), now=T0, limit=1)
            uow.commit()
        return claimed

    return await asyncio.to_thread(read)


def test_two_relays_never_claim_the_same_commands(uow_factory: Callable[[], SqlUnitOfWork], db_url: str) -> None:
    """PostgreSQL: a relay skips the rows another relay's open claim holds (FOR UPDATE SKIP LOCKED).
    (SQLite has one writer at a time: its second claim would wait for the first to commit.)"""
    if not db_url.startswith("postgresql"):
        pytest.skip("several relays at once need PostgreSQL")
    _record(uow_factory, *(("compute-1", StopServer(SERVER, f"req-{n}")) for n in range(6)))
    later = T0 + timedelta(seconds=61)
    with uow_factory() as first, uow_factory() as second:
        mine = first.commands.claim(after_id=0, claimed_before=later, now=later, limit=4)
        theirs = second.commands.claim(after_id=0, claimed_before=later, now=later, limit=4)
        assert [c.message.request_id for c in mine] == ["req-0", "req-1", "req-2", "req-3"]  # type: ignore[union-attr]
        assert [c.message.request_id for c in theirs] == ["req-4", "req-5"]  # type: ignore[union-attr]
        first.commit()
        second.commit()
