"""Buses for the contract suite: the in-memory bus and RabbitBus on the test RabbitMQ node."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable

import pytest

from herald.adapters.bus.memory import InMemoryBus
from herald.adapters.bus.rabbit import RabbitBus
from herald.adapters.bus.transport_url import parse_rabbit_url
from tests.amqp import delete_queues

BusFactory = Callable[[], InMemoryBus | RabbitBus]


async def until(check: Callable[[], bool], limit: float = 20.0) -> None:
    """Wait until ``check()`` holds (the bus delivers on its own tasks); fail after ``limit`` seconds."""
    async with asyncio.timeout(limit):
        while not check():  # noqa: ASYNC110 - the condition is the bus's state, not an event of ours
            await asyncio.sleep(0.01)


class Recorder:
    """A handler that keeps every message it gets."""

    def __init__(self) -> None:
        self.seen: list[object] = []

    async def __call__(self, message: object) -> None:
        self.seen.append(message)


def rabbit_bus(url: str, **options: float | int) -> RabbitBus:
    options = {"retry_delay": (0.01, 0.05), "reconnect_delay": (0.05, 0.2), **options}
    return RabbitBus(parse_rabbit_url(url), **options)  # type: ignore[arg-type]


def new_host() -> str:
    """A fresh host name (each test has its own queues on the shared node)."""
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture(params=["memory", "rabbit"])
async def bus_factory(request: pytest.FixtureRequest) -> AsyncIterator[tuple[str, BusFactory, Callable[[], str]]]:
    """(kind, a factory of buses of that kind, a maker of fresh host names); every bus made is closed after
    the test, every host's queue deleted."""
    made: list[InMemoryBus | RabbitBus] = []
    cleanup: list[str] = []

    def host() -> str:
        cleanup.append(new_host())
        return cleanup[-1]

    url = ""
    if request.param == "rabbit":
        url = request.getfixturevalue("amqp_url")

        def factory() -> InMemoryBus | RabbitBus:
            made.append(rabbit_bus(url))
            return made[-1]
    else:

        def factory() -> InMemoryBus | RabbitBus:
            made.append(InMemoryBus())
            return made[-1]

    yield request.param, factory, host
    await asyncio.gather(*(bus.close() for bus in made))
    if url:
        await delete_queues(url, cleanup)
