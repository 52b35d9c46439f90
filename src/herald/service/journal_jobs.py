"""Write jobs on the event journal and host records, run by the :class:`~herald.service.writer.Writer`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from herald.domain.records import EventEnvelope
from herald.service.ports import Clock, UnitOfWork

Key = int  # a delivery's journal row id (EventEnvelope.id)
Finish = tuple[int, str, str | None]  # (row id, state, outcome)


class MarkDispatched:
    """Record that deliveries were handed to their host's bus queue.

    Runs after the pass's outcomes: a delivery finished in the same pass already got its
    hand-off time from :class:`MarkFinished`, and then costs no second row write.
    """

    order = 1

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    def run(self, uow: UnitOfWork, items: Sequence[Sequence[Key]]) -> list[None]:
        keys = [key for batch in items for key in batch]
        uow.events.mark_dispatched(keys, self._clock.now())
        return [None] * len(items)


@dataclass(frozen=True, slots=True)
class ClaimPage:
    """One page of a relay pass: unfinished deliveries above ``after_id`` whose claim lapsed."""

    after_id: int
    claimed_before: datetime
    limit: int


class ClaimUndelivered:
    """Claim pages of unfinished deliveries for the relay (each page in the pass's transaction)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    def run(self, uow: UnitOfWork, items: Sequence[ClaimPage]) -> list[list[EventEnvelope]]:
        now = self._clock.now()
        return [
            uow.events.claim(after_id=page.after_id, claimed_before=page.claimed_before, now=now, limit=page.limit)
            for page in items
        ]

    @staticmethod
    def weight(item: ClaimPage) -> int:
        return item.limit


class ReleaseClaims:
    """Free deliveries whose publish failed, for the next relay pass (of any relay)."""

    def run(self, uow: UnitOfWork, items: Sequence[Sequence[Key]]) -> list[None]:
        uow.events.release([key for batch in items for key in batch])
        return [None] * len(items)


class MarkFinished:
    """Record how the agent dealt with deliveries (handled, failed or expired, with the outcome)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    def run(self, uow: UnitOfWork, items: Sequence[Sequence[Finish]]) -> list[None]:
        uow.events.mark_finished([result for batch in items for result in batch], self._clock.now())
        return [None] * len(items)


class FindFinished:
    """Which of these deliveries are already finished (so a redelivery has no second effect)."""

    def run(self, uow: UnitOfWork, items: Sequence[Sequence[Key]]) -> list[set[Key]]:
        finished = uow.events.finished([key for batch in items for key in batch])
        return [{key for key in batch if key in finished} for batch in items]


class Heartbeat:
    """Record that compute hosts are alive (the service records behind ``os-services``)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    def run(self, uow: UnitOfWork, items: Sequence[str]) -> list[None]:
        now = self._clock.now()
        for host in dict.fromkeys(items):
            uow.hosts.heartbeat(host, now)
        return [None] * len(items)
