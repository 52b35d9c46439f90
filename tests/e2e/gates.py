"""Gates on the fake driver's methods, so a test decides when a driver call under way may finish."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest

from herald.adapters.virt.fake import FakeVirtDriver

BOUND = 30.0  # seconds a blocked driver call waits at most for the test to release it


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
            assert self._open.wait(BOUND), f"{method} was never released"
            original(*args)

        monkeypatch.setattr(driver, method, gated)

    async def until_entered(self) -> None:
        assert await asyncio.to_thread(self.entered.wait, BOUND)

    def open(self) -> None:
        self._open.set()
