"""Write jobs on the table of current waits, run by the :class:`~herald.service.writer.Writer`."""

from __future__ import annotations

from collections.abc import Sequence

from herald.domain.records import EventWaitRecord
from herald.service.ports import UnitOfWork


class PutWaits:
    """Record the events an operation starts waiting for."""

    def run(self, uow: UnitOfWork, items: Sequence[Sequence[EventWaitRecord]]) -> list[None]:
        uow.event_waits.put([wait for batch in items for wait in batch])
        return [None] * len(items)


class RemoveWaits:
    """Forget waits that ended (satisfied, timed out, failed or cancelled)."""

    def run(self, uow: UnitOfWork, items: Sequence[Sequence[EventWaitRecord]]) -> list[None]:
        uow.event_waits.remove([wait for batch in items for wait in batch])
        return [None] * len(items)


class ClearHostWaits:
    """Forget every wait of a host whose agent starts: none of them is running any more."""

    def run(self, uow: UnitOfWork, items: Sequence[str]) -> list[None]:
        for host in dict.fromkeys(items):
            uow.event_waits.clear_host(host)
        return [None] * len(items)
