"""The periodic power sync: make each server's record follow its machine, as Nova does.

For every server of this host with no task under way: ask the driver for the machine's
power (outside any lock: a BMC may be slow), then decide on a fresh read of the record,
under the server's lock and in the writer's transaction, the same place power-update
events are applied. So whichever of the two runs second sees the other's result, and a
power-update already accepted for the server makes the sync leave it alone: the event
knows better than a sync that cannot tell who changed the power.

A stop or force stop waits until the same disagreement has lasted ``grace`` seconds (see
:mod:`herald.domain.power_sync`): the first pass that sees it keeps it in
``power_observations`` (so that an agent restart does not start the grace again) and opens
the ``stop`` instance action it would lead to, with an event ``compute_power_sync_grace``
that shows since when it is watched and, once finished, how it ended.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from herald.agent.context import ServerLocks
from herald.agent.failure_text import failure_text
from herald.domain.events import EventName
from herald.domain.messages import StopServer
from herald.domain.model import Server, TaskState
from herald.domain.power_sync import (
    Disagreement,
    PowerObservation,
    SyncAction,
    SyncDecision,
    decide,
    power_class,
)
from herald.domain.records import ActionEvent, ServerAction
from herald.service.ids import new_uuid4
from herald.service.ports import Bus, Clock, UnitOfWork, UnitOfWorkFactory, VirtDriver
from herald.service.writer import Writer

logger = logging.getLogger(__name__)

GRACE_EVENT = "compute_power_sync_grace"  # the action event that shows a watched disagreement
_STOPS = (SyncAction.STOP, SyncAction.FORCE_STOP)


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
    """The write job: decide on the fresh record and apply (power_state, and a stop to run after commit)."""

    def __init__(self, *, host: str, clock: Clock, locks: ServerLocks, grace: float = 0.0) -> None:
        self._host = host
        self._clock = clock
        self._locks = locks
        self._grace = grace

    def run(self, uow: UnitOfWork, items: Sequence[SyncItem]) -> list[SyncOutcome]:
        outcomes = []
        for item in items:
            with self._locks(item.server_uuid), uow.savepoint():
                outcomes.append(self._sync(uow, item))
        return outcomes

    def _sync(self, uow: UnitOfWork, item: SyncItem) -> SyncOutcome:
        server = uow.servers.get(item.server_uuid, for_update=True)
        if server is None:
            uow.power_observations.delete([item.server_uuid])
            return SyncOutcome(item.server_uuid, skipped="deleted meanwhile")
        if server.host != self._host:
            return SyncOutcome(item.server_uuid, skipped=f"moved to host {server.host}")
        if uow.events.pending(server.uuid, EventName.POWER_UPDATE.value, self._host):
            return SyncOutcome(item.server_uuid, skipped="a power-update for it is on its way")
        now = self._clock.now()
        kept = uow.power_observations.get(server.uuid)
        decision = decide(
            vm_state=server.vm_state,
            db_power_state=server.power_state,
            task_state=server.task_state,
            driver_power_state=item.driver_power_state,
            watched=kept.disagreement if kept is not None and kept.host == self._host else None,
            now=now,
            grace=self._grace,
        )
        seen = Disagreement(server.vm_state, power_class(item.driver_power_state), now)
        stop_request = self._track(uow, server.uuid, kept, decision, seen, item.request_id)
        if decision.power_state is not None:
            logger.info(
                "During sync_power_state the instance %s has a pending power state change: record %s, driver %s",
                server.uuid,
                server.power_state,
                decision.power_state,
            )
            server.power_state = decision.power_state
        stop = None
        if decision.action in _STOPS:
            stop = self._start_stop(uow, server, stop_request or item.request_id, new_action=stop_request is None)
        if decision.power_state is not None or stop is not None:
            server.updated_at = self._clock.now()
            uow.servers.save(server)
        if decision.message:
            logger.log(
                decision.level,
                "%s (instance %s, vm_state %s, power %s)",
                decision.message,
                server.uuid,
                server.vm_state,
                item.driver_power_state,
            )
        return SyncOutcome(server.uuid, decision=decision, stop=stop)

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
        if kept is not None and kept.host == self._host and kept.disagreement == watched:
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

    def _start_stop(self, uow: UnitOfWork, server: Server, request_id: str, *, new_action: bool) -> StopServer:
        """What Nova's stop/force_stop API does: powering-off, a ``stop`` action, then the stop itself."""
        server.task_state = TaskState.POWERING_OFF.value
        if new_action:
            uow.actions.start([ServerAction(server.uuid, "stop", request_id, None, None, self._clock.now())])
        return StopServer(server.uuid, request_id, from_power_sync=True)


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
        self._apply = ApplySync(host=host, clock=clock, locks=locks, grace=grace)
        self._record_failure = RecordSyncFailure()
        self._forget = ForgetObservations(host)
        self._pool_size = pool_size
        self._max_failures = max_failures
        self._failures: dict[str, int] = {}
        self._in_progress: set[str] = set()

    async def sync_all(self) -> list[SyncOutcome]:
        """One pass over this host's servers; per-server failures are logged and counted, never raised."""
        servers, watched = await asyncio.to_thread(self._servers)
        await self._forget_gone(watched - {s.uuid for s in servers})
        pool = asyncio.Semaphore(self._pool_size)
        request_id = f"req-{new_uuid4()}"
        todo = [s for s in servers if s.uuid not in self._in_progress]
        results = await asyncio.gather(*(self._guarded(pool, s, request_id) for s in todo))
        return [outcome for outcome in results if outcome is not None]

    def _servers(self) -> tuple[list[Server], set[str]]:
        """This host's servers, and those it watches a disagreement of."""
        # NOTE: bootstrap hands this class a read-only unit of work factory: it only lists.
        with self._uow_factory() as uow:
            return uow.servers.list(host=self._host), uow.power_observations.server_uuids(self._host)

    async def _forget_gone(self, gone: set[str]) -> None:
        try:
            await asyncio.gather(*(self._writer.submit(self._forget, uuid) for uuid in sorted(gone)))
        except Exception:  # NOTE: stale rows only cost space; the sync must go on
            logger.exception("Could not forget the watched disagreements of servers gone from host %s", self._host)

    async def _guarded(self, pool: asyncio.Semaphore, server: Server, request_id: str) -> SyncOutcome | None:
        self._in_progress.add(server.uuid)
        try:
            async with pool:
                return await self.sync_one(server, request_id)
        except Exception as exc:
            logger.exception("Periodic sync_power_state task had an error while processing instance %s", server.uuid)
            await self._count_failure(server.uuid, exc)
            return None
        finally:
            self._in_progress.discard(server.uuid)

    async def sync_one(self, server: Server, request_id: str) -> SyncOutcome:
        if server.task_state is not None:
            # NOTE: like Nova, the driver is not even asked while a task is under way.
            return SyncOutcome(server.uuid, skipped=f"pending task ({server.task_state})")
        power = await asyncio.to_thread(self._driver.get_power_state, server)
        outcome: SyncOutcome = await self._writer.submit(self._apply, SyncItem(server.uuid, power, request_id))
        self._failures.pop(server.uuid, None)
        if outcome.stop is not None:
            await self._bus.publish(self._host, [outcome.stop])
        return outcome

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
