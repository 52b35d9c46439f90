"""Gates on the fake driver's methods, so a test decides when a driver call under way may finish."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest

from herald.adapters.virt.fake import FakeVirtDriver
from tests.e2e.harness import Herald

BOUND = 30.0  # seconds a test waits at most for something that must happen
GATE_BOUND = 3 * BOUND  # seconds a gated driver call waits at most: longer than any wait of the test


class Gate:
    """Makes one driver method block until the test opens the gate; records the thread it ran on."""

    def __init__(self, driver: FakeVirtDriver, method: str, monkeypatch: pytest.MonkeyPatch) -> None:
        self.entered = threading.Event()
        self.thread: str | None = None
        self._open = threading.Event()
        original: Callable[..., None] = getattr(driver, method)

        def gated(*args: Any) -> None:
            self.thread = threading.current_thread().name
            self.entered.set()
            assert self._open.wait(GATE_BOUND), f"{method} was never released"
            original(*args)

        monkeypatch.setattr(driver, method, gated)

    async def until_entered(self) -> None:
        assert await asyncio.to_thread(self.entered.wait, BOUND)

    def open(self) -> None:
        self._open.set()


async def until_handled(herald: Herald, server_id: str, name: str) -> dict[str, object]:
    """The record of the event ``name`` for ``server_id`` once the agent finished it (``settle`` cannot
    be used while a gate holds a driver call)."""
    for _ in range(int(BOUND / 0.01)):
        records = await herald.records(server_uuid=server_id, name=name)
        if records and records[0]["state"] not in ("accepted", "dispatched"):
            return records[0]
        await asyncio.sleep(0.01)
    raise AssertionError(f"{name} for {server_id} was never handled")
