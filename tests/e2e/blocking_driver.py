"""A virt driver whose chosen methods hang until released, like a BMC that stopped answering."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Engine

from herald import bootstrap
from herald.config import Settings
from herald.domain.model import Server
from herald.domain.power_sync import SyncRow
from herald.service.ports import VirtDriver


class Gate:
    """Holds every call of ``methods`` until :meth:`release`; counts the calls held."""

    def __init__(self, methods: set[str]) -> None:
        self.methods = methods
        self._released = threading.Event()
        self._lock = threading.Lock()
        self.held = 0

    def pass_through(self, method: str) -> None:
        if method not in self.methods:
            return
        with self._lock:
            self.held += 1
        # NOTE: bounded, so that a broken test ends instead of leaving a thread behind forever.
        self._released.wait(60)

    def release(self) -> None:
        self._released.set()

    async def wait_held(self, count: int) -> None:
        """Until ``count`` calls are held (polled on the loop: the worker threads may all be held)."""
        for _ in range(3000):
            if self.held >= count:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"only {self.held} driver calls held, expected {count}")


class BlockingDriver:
    """Wraps a host's usual driver; calls of the gate's methods wait for the gate first."""

    def __init__(self, inner: VirtDriver, gate: Gate) -> None:
        self._inner = inner
        self._gate = gate

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def spawn(self, server: Server) -> None:
        self._gate.pass_through("spawn")
        self._inner.spawn(server)

    def power_off(self, server: Server) -> None:
        self._gate.pass_through("power_off")
        self._inner.power_off(server)

    def migrate_disk_and_power_off(self, server: Server) -> None:
        self._gate.pass_through("migrate_disk_and_power_off")
        self._inner.migrate_disk_and_power_off(server)

    def finish_migration(self, server: Server, power_on: bool) -> None:
        self._gate.pass_through("finish_migration")
        self._inner.finish_migration(server, power_on)

    def get_power_state(self, server: Server) -> int:
        self._gate.pass_through("get_power_state")
        return self._inner.get_power_state(server)

    # Power reads one server at a time, each through the gate, like a BMC per node.
    batches_power_reads = False

    def get_power_states(self, servers: Sequence[SyncRow]) -> dict[str, int | Exception]:
        for _ in servers:
            self._gate.pass_through("get_power_state")
        return self._inner.get_power_states(servers)


@contextmanager
def blocking_drivers(monkeypatch: pytest.MonkeyPatch, methods: set[str]) -> Iterator[Gate]:
    """Every host built inside gets a :class:`BlockingDriver`; the gate opens on the way out."""
    gate = Gate(methods)
    usual = bootstrap.DRIVERS["fake"]

    def build(settings: Settings, host: str, engine: Engine) -> VirtDriver:
        return BlockingDriver(usual(settings, host, engine), gate)  # type: ignore[return-value]

    monkeypatch.setitem(bootstrap.DRIVERS, "fake", build)
    try:
        yield gate
    finally:
        gate.release()
