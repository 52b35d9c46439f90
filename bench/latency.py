"""POST→handled latency from the event records, and the open-loop load that produces it.

Both shapes use these: the latency of an event is ``handled_at - accepted_at`` of its
``external_events`` row (one row per event and host), read once the event is finished, so the
clocks are the server's own and the client's scheduling plays no part in it.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import orjson
from sqlalchemy import Engine, func, select

from bench import open_loop
from herald.adapters.sql.tables import external_events

EVENTS_PATH = "/v2.1/os-server-external-events"
HEADERS = {"X-Auth-Token": "admin:admin", "OpenStack-API-Version": "compute 2.76"}
FINISHED = frozenset({"handled", "failed", "expired"})


@dataclass(frozen=True, slots=True)
class Sent:
    """What an open-loop run sent and how it was answered."""

    requests: int
    events_accepted: int
    seconds: float  # from the first request out to the last answer in
    statuses: dict[int, int] = field(default_factory=dict)
    sending_seconds: float = 0.0  # from the first request out to the last one out (the schedule's length if kept)


@dataclass(frozen=True, slots=True)
class Latency:
    """POST→finished latency (ms) of the finished records of one run, and every record's state."""

    rows: int
    finished: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    states: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, rows: list[tuple[str, datetime | None, datetime | None]]) -> Latency:
        """From (state, accepted_at, handled_at) rows; unfinished ones count in ``states`` only."""
        states = Counter(state for state, _, _ in rows)
        spans = sorted(
            (handled - accepted).total_seconds() * 1000
            for state, accepted, handled in rows
            if state in FINISHED and accepted is not None and handled is not None
        )
        if not spans:
            return cls(len(rows), 0, 0.0, 0.0, 0.0, dict(states))
        return cls(len(rows), len(spans), percentile(spans, 0.50), percentile(spans, 0.99), spans[-1], dict(states))


def percentile(ordered: list[float], share: float) -> float:
    """The value below which ``share`` of ``ordered`` (sorted, not empty) falls (nearest rank)."""
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def max_event_id(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.coalesce(func.max(external_events.c.id), 0))).scalar_one())


def record_latency(engine: Engine, first: int, last: int | None = None) -> Latency:
    """The latency of the records with ``first < id <= last`` (no upper bound when ``last`` is None)."""
    ev = external_events.c
    query = select(ev.state, ev.accepted_at, ev.handled_at).where(ev.id > first)
    if last is not None:
        query = query.where(ev.id <= last)
    with engine.connect() as connection:
        rows = [(str(state), accepted, handled) for state, accepted, handled in connection.execute(query)]
    return Latency.of(rows)


def unfinished(engine: Engine, first: int) -> int:
    """Records after ``first`` not finished yet."""
    ev = external_events.c
    query = select(func.count()).where(ev.id > first, ev.state.not_in(sorted(FINISHED)))
    with engine.connect() as connection:
        return int(connection.execute(query).scalar_one())


def wait_finished(engine: Engine, first: int, *, timeout: float, alive: Callable[[], None] | None = None) -> int:
    """Wait until every record after ``first`` is finished; returns how many are not at ``timeout``."""
    deadline = time.monotonic() + timeout
    while (left := unfinished(engine, first)) and time.monotonic() < deadline:
        if alive is not None:
            alive()
        time.sleep(0.2)
    return left


def power_updates(servers: list[str], n: int, batch: int) -> list[dict[str, str]]:
    """Request ``n``'s events: POWER_OFF and POWER_ON alternating, so that each one changes its server."""
    return [
        {
            "name": "power-update",
            "server_uuid": servers[(n * batch + i) % len(servers)],
            "tag": "POWER_OFF" if (n + i) % 2 else "POWER_ON",
        }
        for i in range(batch)
    ]


def request_count(rate: int, batch: int, duration: float) -> int:
    """How many requests :func:`send_open_loop` sends."""
    return max(1, int(duration * rate / batch))


async def send_open_loop(
    base_url: str, servers: list[str], *, rate: int, batch: int, duration: float, first_request: int = 0
) -> Sent:
    """One request of ``batch`` power-update events every ``batch / rate`` seconds for ``duration``
    seconds, on schedule whether or not earlier requests were answered (open loop); the events are
    those of requests ``first_request``, ``first_request + 1``, ... (to go on from an earlier run)."""
    interval = batch / rate
    count = request_count(rate, batch, duration)
    url = base_url + EVENTS_PATH
    requests = [
        open_loop.encode_post(url, orjson.dumps({"events": power_updates(servers, n, batch)}), HEADERS)
        for n in range(first_request, first_request + count)
    ]
    sent = await open_loop.send_open_loop(url, requests, interval=interval)
    statuses: Counter[int] = Counter()
    accepted = 0
    for status, body in sent.answers:
        statuses[status] += 1
        if status == 200:
            accepted += batch
        elif status == 207:
            accepted += sum(1 for event in orjson.loads(body)["events"] if event.get("code") == 200)
    return Sent(count, accepted, sent.seconds, dict(statuses), sent.sending_seconds)
