"""What each server waits for right now, written where every API process can read it.

:func:`CurrentWaits.waiting` wraps :meth:`WaiterRegistry.wait_for_events`: the waits are recorded
before the waiters register (so a caller that reads them and sends the event never finds it
unwaited for long: an event that comes first is kept by the early buffer); each is removed once its
event satisfies it, and whatever is left once the wait ends, by any path (timeout, failure,
cancellation). A crashed agent's rows are cleared when the agent starts again.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta

from herald.agent.waiters import ErrorCallback, EventKeys, EventWait, WaiterRegistry
from herald.domain.records import EventWaitRecord
from herald.service.ports import Clock
from herald.service.wait_jobs import ClearHostWaits, PutWaits, RemoveWaits
from herald.service.writer import Writer

logger = logging.getLogger(__name__)


class CurrentWaits:
    def __init__(self, *, host: str, registry: WaiterRegistry, writer: Writer, clock: Clock) -> None:
        self._host = host
        self._registry = registry
        self._writer = writer
        self._clock = clock
        self._put = PutWaits()
        self._remove = RemoveWaits()
        self._active: dict[tuple[str, str], EventWaitRecord] = {}
        registry.on_satisfied = self._satisfied

    def _satisfied(self, server_uuid: str, key: str) -> None:
        record = self._active.pop((server_uuid, key), None)
        if record is not None:
            self._forget([record])

    def _forget(self, records: list[EventWaitRecord]) -> None:
        try:
            self._writer.submit_nowait(self._remove, records)
        except Exception:
            # NOTE: the writer is stopping (or full): the rows go when this host's agent starts again.
            logger.warning("Host %s could not forget %d finished waits", self._host, len(records), exc_info=True)

    async def clear(self) -> None:
        """Forget the host's recorded waits (at start: no operation of this agent runs yet)."""
        await self._writer.submit(ClearHostWaits(), self._host)

    @contextlib.asynccontextmanager
    async def waiting(
        self,
        server_uuid: str,
        keys: EventKeys,
        *,
        timeout: float,  # noqa: ASYNC109 (the wait's deadline, as wait_for_events takes it)
        error_callback: ErrorCallback | None = None,
    ) -> AsyncIterator[EventWait]:
        """:meth:`WaiterRegistry.wait_for_events`, with its waits recorded while it lasts."""
        since = self._clock.now()
        until = since + timedelta(seconds=timeout)
        records = (
            [EventWaitRecord(server_uuid, self._host, name, tag, since, until) for name, tag in dict.fromkeys(keys)]
            if timeout > 0
            else []
        )
        if records:
            await self._writer.submit(self._put, records)
            self._active.update({(r.server_uuid, r.key): r for r in records})
        try:
            async with self._registry.wait_for_events(
                server_uuid, keys, timeout=timeout, error_callback=error_callback
            ) as wait:
                yield wait
        finally:
            left = [r for r in records if self._active.get((r.server_uuid, r.key)) is r]
            for record in left:
                del self._active[(record.server_uuid, record.key)]
            if left:
                # NOTE: queued after the put, so the writer removes them after it wrote them.
                self._forget(left)
