"""Accept external events: judge each one, record the accepted ones, say where they go.

One call handles many API requests at once (group commit): one query loads every
named server, one statement records every delivery and one every action, one commit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from herald.domain.events import EventName, EventStatus, Verdict, judge_event
from herald.domain.records import EventEnvelope, EventRecord, ServerAction, accepted_record
from herald.service.ids import new_uuid4
from herald.service.ports import Clock, ServerTargets, UnitOfWork

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class IncomingEvent:
    name: EventName
    server_uuid: str  # canonical (lower-case, hyphenated) form
    tag: str | None  # None: the caller sent no tag key
    status: EventStatus


@dataclass(frozen=True, slots=True)
class AcceptRequest:
    request_id: str
    user_id: str | None
    project_id: str | None
    events: Sequence[IncomingEvent]


@dataclass(frozen=True, slots=True)
class AcceptResult:
    """Per-event verdicts in request order, and the deliveries to hand to the hosts once committed."""

    verdicts: list[Verdict]
    deliveries: list[EventEnvelope]
    busy_hosts: tuple[str, ...] = ()  # not empty: nothing of the request was recorded (see ``has_room``)


class AcceptEvents:
    """The accept write job: many requests judged with one query and recorded with one statement each."""

    def __init__(
        self,
        clock: Clock,
        new_uuid: Callable[[], str] = new_uuid4,
        *,
        has_room: Callable[[str, int], bool] | None = None,
    ) -> None:
        """:param has_room: whether a host's delivery queue should be given so many more events; a
        request with events for a host without room is refused whole (admission control)."""
        self._clock = clock
        self._new_uuid = new_uuid
        self._has_room = has_room

    def run(self, uow: UnitOfWork, items: Sequence[AcceptRequest]) -> list[AcceptResult]:
        return judge_and_record(uow, items, self._clock.now(), self._new_uuid, has_room=self._has_room)

    @staticmethod
    def weight(item: AcceptRequest) -> int:
        """Rows the request writes, about: one per event."""
        return len(item.events)


def accept_external_events(
    uow: UnitOfWork,
    requests: Sequence[AcceptRequest],
    now: datetime,
    new_uuid: Callable[[], str] = new_uuid4,
) -> list[AcceptResult]:
    """Judge and durably record the events of ``requests`` in a transaction of their own."""
    with uow:
        results = judge_and_record(uow, requests, now, new_uuid)
        uow.commit()
    return results


def judge_and_record(
    uow: UnitOfWork,
    requests: Sequence[AcceptRequest],
    now: datetime,
    new_uuid: Callable[[], str],
    *,
    has_room: Callable[[str, int], bool] | None = None,
) -> list[AcceptResult]:
    """Judge every event in request order and record the accepted ones (no commit)."""
    targets = uow.servers.targets({ev.server_uuid for req in requests for ev in req.events})
    judged = [_judge_request(req, targets) for req in requests]
    planned: dict[str, int] = {}  # events this pass gives each host so far
    busy: list[tuple[str, ...]] = [_busy_hosts(accepted, has_room, planned) for _, accepted in judged]
    judged = [(verdicts, [] if hosts else accepted) for (verdicts, accepted), hosts in zip(judged, busy, strict=True)]
    ids = iter(uow.events.reserve_ids(sum(len(t.hosts) for _, accepted in judged for _, t, _ in accepted)))
    records: list[EventRecord] = []
    actions: list[ServerAction] = []
    results: list[AcceptResult] = []
    for req, (verdicts, accepted), busy_hosts in zip(requests, judged, busy, strict=True):
        deliveries: list[EventEnvelope] = []
        for ev, target, verdict in accepted:
            if verdict.action is not None:
                actions.append(
                    ServerAction(ev.server_uuid, verdict.action, req.request_id, req.user_id, req.project_id, now)
                )
            event_uuid = new_uuid()
            for host in target.hosts:
                envelope = EventEnvelope(
                    event_uuid,
                    req.request_id,
                    ev.server_uuid,
                    ev.name.value,
                    ev.tag,
                    ev.status.value,
                    host,
                    req.user_id,
                    req.project_id,
                    next(ids),
                )
                deliveries.append(envelope)
                records.append(accepted_record(envelope, now))
        results.append(AcceptResult(verdicts, deliveries, busy_hosts))
    if records:
        uow.events.record(records)
    if actions:
        uow.actions.start(actions)
    return results


def _busy_hosts(
    accepted: list[tuple[IncomingEvent, ServerTargets, Verdict]],
    has_room: Callable[[str, int], bool] | None,
    planned: dict[str, int],
) -> tuple[str, ...]:
    """The hosts without room for this request's events, counting those the pass already gives them."""
    if has_room is None:
        return ()
    wanted: dict[str, int] = {}
    for _, target, _ in accepted:
        for host in target.hosts:
            wanted[host] = wanted.get(host, 0) + 1
    busy = tuple(host for host, events in wanted.items() if not _fits(has_room, host, planned.get(host, 0), events))
    if not busy:
        for host, events in wanted.items():
            planned[host] = planned.get(host, 0) + events
    return busy


def _fits(has_room: Callable[[str, int], bool], host: str, planned: int, events: int) -> bool:
    # NOTE: the pass's first request for a host goes whenever the host has any room, or a request
    # larger than the room could never go; the queue's hard bound leaves slack for it.
    return has_room(host, planned + events) or (not planned and has_room(host, 1))


def _judge_request(
    req: AcceptRequest, targets: dict[str, ServerTargets]
) -> tuple[list[Verdict], list[tuple[IncomingEvent, ServerTargets, Verdict]]]:
    """Every event's verdict, in request order, and the accepted ones with where they go."""
    verdicts: list[Verdict] = []
    accepted: list[tuple[IncomingEvent, ServerTargets, Verdict]] = []
    for ev in req.events:
        target = targets.get(ev.server_uuid)
        verdict = judge_event(
            ev.name, ev.tag, server_found=target is not None, server_host=target.host if target else None
        )
        verdicts.append(verdict)
        if verdict.accepted and target is not None:
            accepted.append((ev, target, verdict))
        else:
            _log_refusal(ev, verdict)
    return verdicts, accepted


def _log_refusal(ev: IncomingEvent, verdict: Verdict) -> None:
    if verdict.code == 404:
        logger.debug("Dropping event %s:%s for unknown instance %s", ev.name, ev.tag, ev.server_uuid)
    elif verdict.code == 400 and ev.tag is None:
        logger.debug("Event tag is missing for instance %s. Dropping event %s", ev.server_uuid, ev.name)
    elif verdict.code == 400:
        logger.debug(
            "Invalid power state %s. Cannot process the event %s for instance %s", ev.tag, ev.name, ev.server_uuid
        )
    else:
        logger.debug("Unable to find a host for instance %s. Dropping event %s", ev.server_uuid, ev.name)
