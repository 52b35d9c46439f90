"""A server operation's record changes: one write job, guarded by the task state the operation set.

Operations call the driver first, outside any lock or transaction, then submit a
:class:`Transition` to the process's writer. It is applied under the server's short
record lock (the lock event handlers and the power sync take, on the same thread) and
only if the row still has one of the ``expected`` task states: a delete that came in
meanwhile (``deleting``) is never overwritten by the end of a stop or a build (Nova's
``expected_task_state``). A transient database error is tried again a few times.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TypeVar

from herald.agent.context import ServerLocks
from herald.domain.model import Server
from herald.domain.records import ActionEvent
from herald.service.ports import Clock, UnitOfWork

logger = logging.getLogger(__name__)

T = TypeVar("T")
IsTransient = Callable[[BaseException], bool]

ATTEMPTS = 5
BACKOFF = 0.05  # seconds before the second attempt; doubled each time after


@dataclass(frozen=True, slots=True)
class Step:
    """The instance-action step a transition records with its change."""

    request_id: str
    name: str
    start: datetime
    result: str
    details: str | None = None


class Status(enum.Enum):
    DONE = "done"
    GONE = "gone"  # the server no longer exists
    UNEXPECTED = "unexpected"  # its task state is not one the operation expected
    DECLINED = "declined"  # the change looked at the row and wrote nothing


# ``change`` edits the locked row in place; returning False writes nothing (``DECLINED``).
Change = Callable[[UnitOfWork, Server], bool | None]


@dataclass(frozen=True, slots=True)
class Transition:
    server_uuid: str
    expected: tuple[str | None, ...]
    change: Change
    step: Step | None = None


@dataclass(frozen=True, slots=True)
class Applied:
    status: Status
    server: Server | None = None  # the row as written (DONE) or as found (UNEXPECTED, DECLINED)

    @property
    def done(self) -> bool:
        return self.status is Status.DONE


class ApplyTransitions:
    """The write job: each transition in its own savepoint, under its server's record lock."""

    def __init__(self, *, host: str, clock: Clock, locks: ServerLocks) -> None:
        self._host = host
        self._clock = clock
        self._locks = locks

    def run(self, uow: UnitOfWork, items: Sequence[Transition]) -> list[Applied]:
        results = []
        for item in items:
            with self._locks(item.server_uuid), uow.savepoint():
                results.append(self._apply(uow, item))
        return results

    def _apply(self, uow: UnitOfWork, item: Transition) -> Applied:
        server = uow.servers.get(item.server_uuid, for_update=True)
        if server is None:
            return Applied(Status.GONE)
        if server.task_state not in item.expected:
            return Applied(Status.UNEXPECTED, server)
        if item.change(uow, server) is False:
            return Applied(Status.DECLINED, server)
        now = self._clock.now()
        server.updated_at = now
        uow.servers.save(server)
        step = item.step
        if step is not None:
            event = ActionEvent(step.name, step.start, now, step.result, None, self._host, step.details)
            uow.actions.add_event(server.uuid, step.request_id, event)
        # NOTE: a copy: the writer may run this job again if its pass is retried.
        return Applied(Status.DONE, replace(server))


async def retrying(attempt: Callable[[], Awaitable[T]], is_transient: IsTransient, what: str) -> T:
    """``attempt()``, again after a short pause while it fails with a transient database error.

    :raises Exception: the last error, after ``ATTEMPTS`` tries, or at once when it is not transient.
    """
    delay = BACKOFF
    for number in range(1, ATTEMPTS + 1):
        try:
            return await attempt()
        except Exception as exc:
            if number == ATTEMPTS or not is_transient(exc):
                raise
            logger.warning("%s failed (attempt %d of %d), trying again: %s", what, number, ATTEMPTS, exc)
        await asyncio.sleep(delay)
        delay *= 2
    raise AssertionError("unreachable")
