"""The periodic power sync: make each server's record follow its machine, as Nova does.

For every server of this host with no task under way: ask the driver for the machine's
power (outside any lock: a BMC may be slow), then decide on a fresh read of the record,
under the server's lock and in the writer's transaction, the same place power-update
events are applied. So whichever of the two runs second sees the other's result, and a
power-update already accepted for the server makes the sync leave it alone: the event
knows better than a sync that cannot tell who changed the power.

A pass reads only the columns it decides on (:class:`~herald.domain.power_sync.SyncRow`), asks
the driver for many machines at once when it can (``batches_power_reads``), and decides on a read
taken after the driver answered: a server whose record and observation need no change is left
alone without a write. Only the others go to the writer, in chunks of ``CHUNK``, each decided again
on the rows read (and locked) inside the writer's transaction.

A stop or force stop waits until the same disagreement has lasted ``grace`` seconds (see
:mod:`herald.domain.power_sync`): the first pass that sees it keeps it in
``power_observations`` (so that an agent restart does not start the grace again) and opens
the ``stop`` instance action it would lead to, with an event ``compute_power_sync_grace``
that shows since when it is watched and, once finished, how it ended.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime

from herald.agent.context import ServerLocks
from herald.agent.failure_text import failure_text
from herald.domain.events import EventName
from herald.domain.messages import StopServer
from herald.domain.model import TaskState
from herald.domain.power_sync import (
    Disagreement,
    PowerObservation,
    SyncAction,
    SyncChange,
    SyncDecision,
    SyncRow,
    decide,
    power_class,
)
from herald.domain.records import ActionEvent, ServerAction
from herald.service.ids import new_uuid4
from herald.service.ports import Bus, Clock, UnitOfWork, UnitOfWorkFactory, VirtDriver
from herald.service.writer import Writer

logger = logging.getLogger(__name__)

GRACE_EVENT = "compute_power_sync_grace"  # the action event that shows a watched disagreement
CHUNK = 500  # servers per batched driver read and per write job
_STOPS = (SyncAction.STOP, SyncAction.FORCE_STOP)
_POWER_UPDATE = EventName.POWER_UPDATE.value


@dataclass(frozen=True, slots=True)
class SyncItem:
    server_uuid: str
    driver_power_state: int
    request_id: str


@dataclass(frozen=True, slots=True)
class SyncOutcome:
    """What the sync did to one server: a decision, or why it left the server alone."""

    server_uuid: str
    decision: SyncDecision | None = None
    skipped: str | None = None
    stop: StopServer | None = None


class ApplySync:
    """The write job: decide each server of a chunk on its fresh (locked) row and apply the decision.

    One item is a chunk of :class:`SyncItem`: its rows are read (and locked) with one query, the host's
    watched disagreements and pending power-update events with one each, and its record changes are
    written with one statement.
    """

    def __init__(self, *, host: str, clock: Clock, locks: ServerLocks, grace: float = 0.0) -> None:
        self._host = host
        self._clock = clock
        self._locks = locks
        self._grace = grace

    def run(self, uow: UnitOfWork, chunks: Sequence[Sequence[SyncItem]]) -> list[list[SyncOutcome]]:
        return [self._chunk(uow, chunk) for chunk in chunks]

    def _chunk(self, uow: UnitOfWork, items: Sequence[SyncItem]) -> list[SyncOutcome]:
        uuids = [item.server_uuid for item in items]
        with self._all_locks(uuids):
            rows = uow.servers.sync_rows_of(uuids, for_update=True)
            # NOTE: by host, not by an IN list of the chunk: both are few rows, and cheaper to ask for.
            pending = uow.events.pending_servers(_POWER_UPDATE, self._host)
            kept = uow.power_observations.of_servers_on(self._host)
            gone = [uuid for uuid in uuids if uuid not in rows]
            if gone:
                uow.power_observations.delete(gone)
            now = self._clock.now()
            outcomes, changes = [], []
            for item in items:
                row = rows.get(item.server_uuid)
                if row is None:
                    outcomes.append(SyncOutcome(item.server_uuid, skipped="deleted meanwhile"))
                elif row.host != self._host:
                    outcomes.append(SyncOutcome(item.server_uuid, skipped=f"moved to host {row.host}"))
                elif item.server_uuid in pending:
                    outcomes.append(SyncOutcome(item.server_uuid, skipped="a power-update for it is on its way"))
                else:
                    outcome, change = self._sync(uow, item, row, kept.get(item.server_uuid), now)
                    outcomes.append(outcome)
                    if change is not None:
                        changes.append(change)
            uow.servers.save_sync_changes(changes)
        return outcomes

    @contextmanager
    def _all_locks(self, uuids: Sequence[str]) -> Iterator[None]:
        """The record locks of a chunk, in one order (so two holders of several never wait on each other)."""
        with ExitStack() as stack:
            for uuid in sorted(uuids):
                stack.enter_context(self._locks(uuid))
            yield

    def _sync(
        self, uow: UnitOfWork, item: SyncItem, row: SyncRow, kept: PowerObservation | None, now: datetime
    ) -> tuple[SyncOutcome, SyncChange | None]:
        decision = decide_row(row, item.driver_power_state, kept, self._host, now, self._grace)
        seen = Disagreement(row.vm_state, power_class(item.driver_power_state), now)
        stop_request = self._track(uow, row.uuid, kept, decision, seen, item.request_id)
        power_state, task_state = row.power_state, row.task_state
        if decision.power_state is not None:
            logger.info(
                "During sync_power_state the instance %s has a pending power state change: record %s, driver %s",
                row.uuid,
                row.power_state,
                decision.power_state,
            )
            power_state = decision.power_state
        stop = None
        if decision.action in _STOPS:
            # What Nova's stop/force_stop API does: powering-off, a ``stop`` action, then the stop itself.
            task_state = TaskState.POWERING_OFF.value
            if stop_request is None:
                uow.actions.start([ServerAction(row.uuid, "stop", item.request_id, None, None, now)])
            stop = StopServer(row.uuid, stop_request or item.request_id, from_power_sync=True)
        change = None
        if decision.power_state is not None or stop is not None:
            change = SyncChange(row.uuid, power_state, task_state, now)
        log_decision(decision, row, item.driver_power_state)
        return SyncOutcome(row.uuid, decision=decision, stop=stop), change

    def _track(
        self,
        uow: UnitOfWork,
        server_uuid: str,
        kept: PowerObservation | None,
        decision: SyncDecision,
        seen: Disagreement,
        request_id: str,
    ) -> str | None:
        """Keep the watched disagreement in step with ``decision``: start, keep or end its watch.

        :returns: the request id of the watch's ``stop`` action when the stop decided now is the one it waited
            for (the stop then runs under that action); None otherwise.
        """
        watched = decision.watched
        if not watch_changes(kept, decision, self._host):
            return None  # the same watch goes on: nothing to write, one record per disagreement
        waited_for: str | None = None
        now = seen.since
        if kept is not None:
            uow.power_observations.delete([server_uuid])
            if decision.action in _STOPS and kept.host == self._host and kept.disagreement.same_as(seen):
                waited_for = kept.request_id
                lasted = f"lasted {kept.disagreement.age(now):.0f} s: stopping the machine"
                self._end_watch(uow, kept, now, "Success", lasted)
            elif watched is None:
                self._end_watch(uow, kept, now, "Cancelled", "the record and the machine no longer disagree")
            else:
                self._end_watch(uow, kept, now, "Cancelled", "the disagreement changed")
        if watched is not None:
            uow.power_observations.put(PowerObservation(server_uuid, self._host, request_id, watched))
            details = (
                f"vm_state {watched.vm_state}, machine {watched.power_class.value}: not stopping it before this "
                f"has lasted {self._grace:g} s"
            )
            event = ActionEvent(GRACE_EVENT, watched.since, host=self._host, details=details)
            action = ServerAction(server_uuid, "stop", request_id, None, None, watched.since, events=[event])
            uow.actions.start([action])
        return waited_for

    def _end_watch(self, uow: UnitOfWork, kept: PowerObservation, now: datetime, result: str, details: str) -> None:
        event = ActionEvent(GRACE_EVENT, kept.disagreement.since, now, result, host=kept.host, details=details)
        uow.actions.finish_event(kept.server_uuid, kept.request_id, event)


def decide_row(
    row: SyncRow, driver_power_state: int, kept: PowerObservation | None, host: str, now: datetime, grace: float
) -> SyncDecision:
    """:func:`decide` for one row, with what ``host`` watches of it (a watch kept by another host is not its)."""
    if kept is None and row.task_state is None and driver_power_state == row.power_state:
        settled = _settled(row.vm_state, driver_power_state)
        if settled is not None:
            return settled
    return decide(
        vm_state=row.vm_state,
        db_power_state=row.power_state,
        task_state=row.task_state,
        driver_power_state=driver_power_state,
        watched=kept.disagreement if kept is not None and kept.host == host else None,
        now=now,
        grace=grace,
    )


@functools.lru_cache(maxsize=256)
def _settled(vm_state: str, power: int) -> SyncDecision | None:
    """The decision for a server whose record has the machine's power, with no task and nothing watched,
    when it is to do nothing: then it depends on the vm_state and the power alone (most servers, most passes).
    None when it is a stop: that one depends on the time and the grace."""
    decision = decide(
        vm_state=vm_state,
        db_power_state=power,
        task_state=None,
        driver_power_state=power,
        watched=None,
        now=datetime.min,
        grace=0.0,
    )
    return decision if decision.action is SyncAction.NOTHING else None


def watch_changes(kept: PowerObservation | None, decision: SyncDecision, host: str) -> bool:
    """Whether applying ``decision`` starts, ends or replaces a watch (and so writes)."""
    if kept is None:
        return decision.watched is not None
    return kept.host != host or kept.disagreement != decision.watched


def needs_write(kept: PowerObservation | None, decision: SyncDecision, host: str) -> bool:
    """Whether ``decision`` changes anything stored: the record, a watch, or a stop to start."""
    return decision.power_state is not None or decision.action in _STOPS or watch_changes(kept, decision, host)


def log_decision(decision: SyncDecision, row: SyncRow, driver_power_state: int) -> None:
    if decision.message:
        logger.log(
            decision.level,
            "%s (instance %s, vm_state %s, power %s)",
            decision.message,
            row.uuid,
            row.vm_state,
            driver_power_state,
        )


class RecordSyncFailure:
    """The write job marking a server faulted after too many failed syncs in a row."""

    def run(self, uow: UnitOfWork, items: Sequence[tuple[str, str]]) -> list[None]:
        for server_uuid, message in items:
            server = uow.servers.get(server_uuid, for_update=True)
            if server is not None:
                server.fault = {"code": 500, "message": message}
                uow.servers.save(server)
        return [None] * len(items)


class ForgetObservations:
    """The write job dropping what a host watched for servers it no longer has (deleted, or moved away)."""

    def __init__(self, host: str) -> None:
        self._host = host

    def run(self, uow: UnitOfWork, items: Sequence[str]) -> list[None]:
        uow.power_observations.delete(items, host=self._host)
        return [None] * len(items)


class PowerSync:
    """``sync_all`` once, or ``run`` every ``interval`` seconds (negative: never).

    :param pool_size: driver reads under way at once (a chunk for a batching driver, a server otherwise).
    :param grace: ``[DEFAULT] power_state_change_grace``: seconds a disagreement must last before a stop.
    """

    def __init__(
        self,
        *,
        host: str,
        uow_factory: UnitOfWorkFactory,
        writer: Writer,
        driver: VirtDriver,
        bus: Bus,
        clock: Clock,
        locks: ServerLocks,
        pool_size: int,
        grace: float = 0.0,
        max_failures: int = 3,
    ) -> None:
        self._host = host
        self._uow_factory = uow_factory
        self._writer = writer
        self._driver = driver
        self._bus = bus
        self._clock = clock
        self._grace = grace
        self._apply = ApplySync(host=host, clock=clock, locks=locks, grace=grace)
        self._record_failure = RecordSyncFailure()
        self._forget = ForgetObservations(host)
        self._pool_size = pool_size
        self._max_failures = max_failures
        self._failures: dict[str, int] = {}
        self._in_progress: set[str] = set()

    async def sync_all(self) -> list[SyncOutcome]:
        """One pass over this host's servers; per-server failures are logged and counted, never raised."""
        rows, watched = await asyncio.to_thread(self._servers)
        await self._forget_gone(watched - {row.uuid for row in rows})
        todo = [row for row in rows if row.uuid not in self._in_progress]
        busy = {row.uuid for row in todo}
        self._in_progress |= busy
        try:
            outcomes = await self._pass(todo, f"req-{new_uuid4()}")
        finally:
            self._in_progress -= busy
        return [outcomes[row.uuid] for row in todo if row.uuid in outcomes]

    def _servers(self) -> tuple[Sequence[SyncRow], set[str]]:
        """This host's servers, and those it watches a disagreement of."""
        # NOTE: bootstrap hands this class a read-only unit of work factory: it only lists.
        with self._uow_factory() as uow:
            return uow.servers.sync_rows(self._host), uow.power_observations.server_uuids(self._host)

    async def _forget_gone(self, gone: set[str]) -> None:
        try:
            await asyncio.gather(*(self._writer.submit(self._forget, uuid) for uuid in sorted(gone)))
        except Exception:  # NOTE: stale rows only cost space; the sync must go on
            logger.exception("Could not forget the watched disagreements of servers gone from host %s", self._host)

    async def _pass(self, todo: list[SyncRow], request_id: str) -> dict[str, SyncOutcome]:
        outcomes: dict[str, SyncOutcome] = {}
        asked = []
        for row in todo:
            if row.task_state is not None:
                # NOTE: like Nova, the driver is not even asked while a task is under way.
                outcomes[row.uuid] = SyncOutcome(row.uuid, skipped=f"pending task ({row.task_state})")
            else:
                asked.append(row)
        powers = await self._read_powers(asked)
        read: dict[str, int] = {}
        for uuid, power in powers.items():
            if isinstance(power, Exception):
                logger.error(
                    "Periodic sync_power_state task had an error while processing instance %s", uuid, exc_info=power
                )
                await self._count_failure(uuid, power)
            else:
                read[uuid] = power
        if not read:
            return outcomes
        items = await self._decide_unchanged(read, request_id, outcomes)
        chunks = [items[start : start + CHUNK] for start in range(0, len(items), CHUNK)]
        for done in await asyncio.gather(*(self._apply_chunk(chunk) for chunk in chunks)):
            outcomes.update((outcome.server_uuid, outcome) for outcome in done)
        return outcomes

    async def _read_powers(self, rows: list[SyncRow]) -> dict[str, int | Exception]:
        """Each row's machine power (or the error of its read), at most ``pool_size`` driver calls at once."""
        size = CHUNK if self._driver.batches_power_reads else 1
        pool = asyncio.Semaphore(self._pool_size)

        async def read(part: list[SyncRow]) -> dict[str, int | Exception]:
            async with pool:
                try:
                    return await asyncio.to_thread(self._driver.get_power_states, part)
                except Exception as exc:  # NOTE: a read that failed as a whole fails each of its servers
                    return dict.fromkeys((row.uuid for row in part), exc)

        parts = [rows[start : start + size] for start in range(0, len(rows), size)]
        powers: dict[str, int | Exception] = {}
        for answer in await asyncio.gather(*(read(part) for part in parts)):
            powers.update(answer)
        return powers

    async def _decide_unchanged(
        self, read: dict[str, int], request_id: str, outcomes: dict[str, SyncOutcome]
    ) -> list[SyncItem]:
        """Decide on a read taken after the driver answered; the servers with nothing to write are done here.

        :returns: the items the writer must decide again on their locked rows (they change something).
        """
        rows, kept, pending = await asyncio.to_thread(self._snapshot)
        now = self._clock.now()
        items = []
        for uuid, power in read.items():
            row = rows.get(uuid)
            if row is None:  # deleted or moved meanwhile: the writer says which
                items.append(SyncItem(uuid, power, request_id))
                continue
            decision = decide_row(row, power, kept.get(uuid), self._host, now, self._grace)
            if needs_write(kept.get(uuid), decision, self._host):
                items.append(SyncItem(uuid, power, request_id))
                continue
            self._failures.pop(uuid, None)
            if uuid in pending:
                outcomes[uuid] = SyncOutcome(uuid, skipped="a power-update for it is on its way")
            else:
                log_decision(decision, row, power)
                outcomes[uuid] = SyncOutcome(uuid, decision=decision)
        return items

    def _snapshot(self) -> tuple[dict[str, SyncRow], dict[str, PowerObservation], set[str]]:
        with self._uow_factory() as uow:
            rows = {row.uuid: row for row in uow.servers.sync_rows(self._host)}
            kept = uow.power_observations.of_servers_on(self._host)
            pending = uow.events.pending_servers(_POWER_UPDATE, self._host)
        return rows, kept, pending

    async def _apply_chunk(self, chunk: list[SyncItem]) -> list[SyncOutcome]:
        """Write one chunk; when it fails, each of its servers alone, so that one bad server fails alone."""
        try:
            outcomes: list[SyncOutcome] = await self._writer.submit(self._apply, chunk)
        except Exception as exc:
            if len(chunk) == 1:
                logger.exception(
                    "Periodic sync_power_state task had an error while processing instance %s", chunk[0].server_uuid
                )
                await self._count_failure(chunk[0].server_uuid, exc)
                return []
            alone = await asyncio.gather(*(self._apply_chunk([item]) for item in chunk))
            return [outcome for outcomes in alone for outcome in outcomes]
        for outcome in outcomes:
            self._failures.pop(outcome.server_uuid, None)
        stops = [outcome for outcome in outcomes if outcome.stop is not None]
        for outcome in stops:
            try:
                await self._bus.publish(self._host, [outcome.stop])
            except Exception as exc:
                logger.exception("Could not send the power sync's stop of instance %s", outcome.server_uuid)
                await self._count_failure(outcome.server_uuid, exc)
        return outcomes

    async def _count_failure(self, server_uuid: str, exc: Exception) -> None:
        count = self._failures.get(server_uuid, 0) + 1
        self._failures[server_uuid] = count
        if count == self._max_failures:
            # NOTE: the fault is shown to users: the detail of an unexpected error stays in the log.
            message = f"Power state sync failed {count} times in a row: {failure_text(exc)}"
            logger.error("Instance %s: %s (%s)", server_uuid, message, exc)
            await self._writer.submit(self._record_failure, (server_uuid, message))

    async def run(self, interval: float) -> None:
        """Sync now, then every ``interval`` seconds, until cancelled."""
        while True:
            try:
                await self.sync_all()
            except Exception:
                logger.exception("Power sync pass on host %s failed", self._host)
            await asyncio.sleep(interval)
