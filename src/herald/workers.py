"""The process's two thread pools: API work, and agent work that calls virt drivers.

A driver call can block for a minute (a BMC powering a node off), so agent operations and
power-sync driver calls run on their own pool: however many hang, the API's reads, server
creates, the events listing and the relay keep theirs. The driver pool is the event loop's
default executor, which the agents use (``asyncio.to_thread``); API code passes :attr:`api`.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor


class WorkerPools:
    """:param api_threads: threads for API requests and the relay's database reads.
    :param driver_threads: threads for agent operations and virt driver calls."""

    def __init__(self, api_threads: int = 4, driver_threads: int = 8) -> None:
        # NOTE: threads start on first use; each one costs memory arenas, so keep the pools small.
        self.api = ThreadPoolExecutor(max_workers=api_threads, thread_name_prefix="herald-api")
        self.driver = ThreadPoolExecutor(max_workers=driver_threads, thread_name_prefix="herald-driver")

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        """Make the driver pool ``loop``'s default executor (where the agents' threads come from)."""
        loop.set_default_executor(self.driver)

    def shutdown(self) -> None:
        """Wait for the threads to finish what they run (they give back their database connections)."""
        self.api.shutdown(wait=True)
        self.driver.shutdown(wait=True)
