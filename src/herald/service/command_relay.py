"""The command relay: publishes the server commands the API committed in its outbox, and re-sends what was left.

A use case records its commands in the same transaction as the task state they belong to
(:func:`herald.service.common.commit_with`). After the commit the API hands them here; they
leave the outbox only once their host's transport took them (RabbitMQ: confirmed). A publish
that fails (the broker is away) frees their claim, the request is answered anyway, and a later
pass sends them: as the event relay (:mod:`herald.service.relay`), but for commands.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from herald.domain.errors import BusUnavailable
from herald.service.journal_jobs import ClaimPage
from herald.service.ports import Bus, Clock, QueuedCommand, UnitOfWork
from herald.service.writer import Writer

logger = logging.getLogger(__name__)


class ClaimCommands:
    """Claim a page of commands whose claim lapsed (in the pass's transaction)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    def run(self, uow: UnitOfWork, items: Sequence[ClaimPage]) -> list[list[QueuedCommand]]:
        now = self._clock.now()
        return [
            uow.commands.claim(after_id=page.after_id, claimed_before=page.claimed_before, now=now, limit=page.limit)
            for page in items
        ]

    @staticmethod
    def weight(item: ClaimPage) -> int:
        return item.limit


class RemoveCommands:
    """Forget commands their host's transport took."""

    def run(self, uow: UnitOfWork, items: Sequence[Sequence[int]]) -> list[None]:
        uow.commands.remove([key for batch in items for key in batch])
        return [None] * len(items)


class ReleaseCommands:
    """Free commands whose publish failed, for the next pass of any relay."""

    def run(self, uow: UnitOfWork, items: Sequence[Sequence[int]]) -> list[None]:
        uow.commands.release([key for batch in items for key in batch])
        return [None] * len(items)


class CommandRelay:
    """Publishes committed server commands in outbox order per host; never fails the request that made them.

    Within this process a host's commands go out in the order they were recorded: while one of
    them waits for a pass (its publish failed), later ones for the same host wait behind it.
    Each pass (at start and every ``interval``) pages through the rows whose claim is older than
    ``resend_after`` seconds, by id, and publishes them; a row a dead process had published but
    not yet removed is sent again, and the agent recognises the copy (see
    :mod:`herald.agent.command_copies`). Several relays (one per API worker) run safely together.
    """

    def __init__(
        self,
        bus: Bus,
        writer: Writer,
        clock: Clock,
        *,
        interval: float,
        resend_after: float,
        page_size: int = 500,
    ) -> None:
        self._bus = bus
        self._writer = writer
        self._clock = clock
        self._interval = interval
        self._resend_after = resend_after
        self._page_size = page_size
        self._claim = ClaimCommands(clock)
        self._remove = RemoveCommands()
        self._release = ReleaseCommands()
        # Hosts with a command of this process waiting for a pass: later commands queue behind it.
        self._held: set[str] = set()
        self._host_locks: dict[str, asyncio.Lock] = {}
        self._periodic: asyncio.Task[None] | None = None
        self._kicked: asyncio.Task[int] | None = None

    async def send(self, commands: Sequence[QueuedCommand]) -> None:
        """Publish commands just committed (claimed by this process); a failure leaves them to a pass.

        Never raises: the request that committed them is answered whatever the transport does.
        """
        by_host = _by_host(commands)
        results = await asyncio.gather(
            *(self._publish(host, batch) for host, batch in by_host.items()), return_exceptions=True
        )
        for host, result in zip(by_host, results, strict=True):
            if isinstance(result, BaseException):
                # NOTE: the rows stay claimed: a pass sends them once the claim lapsed (the agent knows a copy).
                logger.error("Commands for host %s left to the relay's passes: %r", host, result, exc_info=result)

    async def start(self, *, reclaim_all: bool = False) -> None:
        """:param reclaim_all: the first pass takes every waiting command, claimed or not (no other
        relay is alive, and the in-memory transport kept nothing of an earlier run)."""
        await self.redeliver(claimed_before=self._clock.now() if reclaim_all else None)
        self._periodic = asyncio.create_task(self._run_periodically())

    async def stop(self) -> None:
        for task in (self._periodic, self._kicked):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    async def flush(self) -> None:
        """Wait for the pass a held command started, if any (tests use it to make runs deterministic)."""
        if self._kicked is not None:
            await asyncio.gather(self._kicked, return_exceptions=True)

    async def redeliver(self, *, claimed_before: datetime | None = None) -> int:
        """One pass over the outbox, oldest first; returns how many commands were published.

        :param claimed_before: claims older than this have lapsed (default: ``resend_after`` ago).
        """
        if claimed_before is None:
            claimed_before = self._clock.now() - timedelta(seconds=self._resend_after)
        sent = after_id = 0
        failed: set[str] = set()
        held = set(self._held)
        while True:
            page = await self._writer.submit(self._claim, ClaimPage(after_id, claimed_before, self._page_size))
            if not page:
                break
            by_host = _by_host(page)
            # NOTE: a host that failed earlier in this pass gets nothing newer: its order holds.
            skipped = [c.id for host in failed & by_host.keys() for c in by_host.pop(host)]
            if skipped:
                await self._writer.submit(self._release, skipped)
            results = await asyncio.gather(
                *(self._publish(host, batch, redelivery=True) for host, batch in by_host.items())
            )
            for host, count in zip(by_host, results, strict=True):
                if count:
                    sent += count
                else:
                    failed.add(host)
            after_id = page[-1].id
            if len(page) < self._page_size:
                break
        # NOTE: a host held before this pass and reached by it takes new commands directly again (its
        # older ones went first); one whose publish failed meanwhile stays held for the next pass.
        self._held -= held - failed
        if sent:
            logger.info("Command relay sent %d waiting commands", sent)
        return sent

    async def _run_periodically(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.redeliver()
            except Exception:
                logger.exception("Command relay pass failed; retrying in %s s", self._interval)

    async def _publish(self, host: str, commands: Sequence[QueuedCommand], *, redelivery: bool = False) -> int:
        """Publish in order, then remove; returns how many were published (0 or all)."""
        keys = [command.id for command in commands]
        lock = self._host_locks.setdefault(host, asyncio.Lock())
        async with lock:
            if host in self._held and not redelivery:
                # NOTE: an older command of this host waits for a pass: this one goes after it, and
                # the pass starts now (the transport may be back: a new command is worth a try).
                await self._writer.submit(self._release, keys)
                self._kick()
                return 0
            try:
                await self._bus.publish(host, [command.message for command in commands])
            except Exception as exc:
                self._held.add(host)
                if isinstance(exc, BusUnavailable):
                    logger.warning("Could not send %d commands to host %s: %s; will retry", len(keys), host, exc)
                else:
                    logger.exception("Could not send %d commands to host %s; the relay will retry", len(keys), host)
                await self._writer.submit(self._release, keys)
                return 0
        await self._writer.submit(self._remove, keys)
        return len(keys)

    def _kick(self) -> None:
        if self._kicked is None or self._kicked.done():
            self._kicked = asyncio.create_task(self._pass_now())

    async def _pass_now(self) -> int:
        try:
            return await self.redeliver()
        except Exception:
            logger.exception("Command relay pass failed; the periodic pass will retry")
            return 0


def _by_host(commands: Sequence[QueuedCommand]) -> dict[str, list[QueuedCommand]]:
    by_host: dict[str, list[QueuedCommand]] = {}
    for command in sorted(commands, key=lambda c: c.id):
        by_host.setdefault(command.host, []).append(command)
    return by_host
