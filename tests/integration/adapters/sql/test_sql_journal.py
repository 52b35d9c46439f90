"""SqlEventJournal: accepted -> dispatched -> handled / failed / expired."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import pytest
from sqlalchemy import exc

from herald.adapters.sql.uow import SqlUnitOfWork
from herald.domain.errors import MarkerNotFound
from herald.domain.events import DeliveryState
from herald.domain.records import EventEnvelope, EventRecord

UowFactory = Callable[[], SqlUnitOfWork]
T0 = datetime(2025, 1, 2, 3, 4, 5)
ACCEPTED, DISPATCHED = DeliveryState.ACCEPTED.value, DeliveryState.DISPATCHED.value
HANDLED, FAILED, EXPIRED = DeliveryState.HANDLED.value, DeliveryState.FAILED.value, DeliveryState.EXPIRED.value


def _record(uuid: str, host: str = "c1", seconds: int = 0, **fields: object) -> EventRecord:
    values: dict[str, object] = {
        "uuid": uuid,
        "request_id": "req-1",
        "server_uuid": "s1",
        "name": "network-vif-plugged",
        "tag": "port-1",
        "status": "completed",
        "host": host,
        "state": ACCEPTED,
        "accepted_at": T0 + timedelta(seconds=seconds),
    }
    values.update(fields)
    return EventRecord(**values)  # type: ignore[arg-type]


def _envelope(record: EventRecord) -> EventEnvelope:
    assert record.id is not None
    return EventEnvelope(
        record.uuid,
        record.request_id,
        record.server_uuid,
        record.name,
        record.tag,
        record.status,
        record.host,
        id=record.id,
    )


def _with_ids(uow: SqlUnitOfWork, records: Sequence[EventRecord]) -> Sequence[EventRecord]:
    for record, row_id in zip(records, uow.events.reserve_ids(len(records)), strict=True):
        record.id = row_id
    return records


def _record_all(uow_factory: UowFactory, *records: EventRecord) -> None:
    with uow_factory() as uow:
        uow.events.record(_with_ids(uow, records))
        uow.commit()


Key = tuple[str, str]


def _ids(uow: SqlUnitOfWork, keys: Sequence[Key]) -> list[int]:
    """The row ids of (uuid, host) deliveries; -1 for one that is not recorded."""
    by_key = {(r.uuid, r.host): r.id for r in uow.events.query(limit=10_000)}
    return [by_key.get(key) or -1 for key in keys]


def _finish(
    uow: SqlUnitOfWork, results: Sequence[tuple[str, str, str, str | None]]
) -> list[tuple[int, str, str | None]]:
    ids = _ids(uow, [(u, h) for u, h, _, _ in results])
    return [(row_id, state, outcome) for row_id, (_, _, state, outcome) in zip(ids, results, strict=True)]


def _finished(uow: SqlUnitOfWork, keys: Sequence[Key]) -> set[Key]:
    by_id = {r.id: (r.uuid, r.host) for r in uow.events.query(limit=10_000)}
    return {by_id[row_id] for row_id in uow.events.finished(_ids(uow, keys))}


def _states(uow_factory: UowFactory) -> dict[tuple[str, str], str]:
    with uow_factory() as uow:
        return {(r.uuid, r.host): r.state for r in uow.events.query()}


def test_record_and_query_round_trip(uow_factory: UowFactory) -> None:
    records = [_record("e1", "c1"), _record("e1", "c2", tag=None), _record("e2", "c1", request_id="req-2")]
    _record_all(uow_factory, *records)
    _record_all(uow_factory)
    with uow_factory() as uow:
        assert uow.events.query() == records[::-1]
        assert uow.events.query(request_id="req-2") == [records[2]]
        assert uow.events.query(server_uuid="s2") == []
        assert uow.events.query(state=ACCEPTED, limit=1) == [records[2]]


def test_pages_are_newest_first_after_the_marker_and_never_split_an_event(uow_factory: UowFactory) -> None:
    records = [_record("e1", "c1"), _record("e1", "c2"), _record("e2", "c1"), _record("e3", "c1")]
    _record_all(uow_factory, *records)
    with uow_factory() as uow:
        assert uow.events.query(limit=2) == [records[3], records[2]]
        # e1 went to two hosts: a page ending in it holds both of its rows.
        assert uow.events.query(limit=1, marker="e2") == [records[1], records[0]]
        assert uow.events.query(limit=2, marker="e3") == [records[2], records[1], records[0]]
        assert uow.events.query(marker="e1") == []
        with pytest.raises(MarkerNotFound):
            uow.events.query(marker="e9")


def test_recording_a_row_id_twice_fails(uow_factory: UowFactory) -> None:
    first = _record("e1", "c1")
    _record_all(uow_factory, first)
    with pytest.raises(exc.IntegrityError), uow_factory() as uow:
        uow.events.record([_record("e2", "c1", id=first.id)])


def test_reserved_ids_are_new_and_distinct(uow_factory: UowFactory) -> None:
    _record_all(uow_factory, _record("e1"), _record("e2"))
    with uow_factory() as uow:
        taken = {r.id for r in uow.events.query()}
        fresh = uow.events.reserve_ids(3)
        assert uow.events.reserve_ids(0) == []
    assert len(set(fresh)) == 3
    assert not taken & set(fresh)


def test_mark_dispatched_moves_only_accepted_rows_and_stamps_each_once(uow_factory: UowFactory) -> None:
    """A delivery the agent finished before the relay's mark keeps its state but gets its hand-off time."""
    _record_all(uow_factory, _record("e1"), _record("e2"), _record("e3", state=HANDLED))
    now = T0 + timedelta(seconds=5)
    with uow_factory() as uow:
        uow.events.mark_dispatched(_ids(uow, [("e1", "c1"), ("e3", "c1"), ("e9", "c1")]), now)
        uow.events.mark_dispatched([], now)
        uow.commit()
    with uow_factory() as uow:
        uow.events.mark_dispatched(
            _ids(uow, [("e1", "c1")]), now + timedelta(seconds=1)
        )  # already dispatched: stays put
        uow.commit()
    with uow_factory() as uow:
        got = {r.uuid: (r.state, r.dispatched_at) for r in uow.events.query()}
    assert got == {"e1": (DISPATCHED, now), "e2": (ACCEPTED, None), "e3": (HANDLED, now)}


def test_mark_finished_and_finished(uow_factory: UowFactory) -> None:
    _record_all(uow_factory, *(_record(f"e{i}") for i in range(5)), _record("e0", "c2"))
    now = T0 + timedelta(seconds=9)
    with uow_factory() as uow:
        uow.events.mark_dispatched(_ids(uow, [("e0", "c1"), ("e1", "c1"), ("e2", "c1")]), now)
        uow.events.mark_finished(
            _finish(
                uow, [("e0", "c1", HANDLED, None), ("e1", "c1", FAILED, "boom"), ("e3", "c1", EXPIRED, "no waiter")]
            ),
            now,
        )
        uow.events.mark_finished([], now)
        uow.commit()
    keys = [(f"e{i}", "c1") for i in range(5)] + [("e0", "c2"), ("e9", "c1"), ("e0", "c1")]
    with uow_factory() as uow:
        assert _finished(uow, keys) == {("e0", "c1"), ("e1", "c1"), ("e3", "c1")}
        assert uow.events.finished([]) == set()
        failed = uow.events.query(state=FAILED)
    assert [(r.uuid, r.outcome, r.handled_at) for r in failed] == [("e1", "boom", now)]
    assert _states(uow_factory)[("e0", "c2")] == ACCEPTED


def test_a_failed_delivery_can_be_finished_again(uow_factory: UowFactory) -> None:
    _record_all(uow_factory, _record("e1"))
    with uow_factory() as uow:
        uow.events.mark_finished(_finish(uow, [("e1", "c1", FAILED, "boom")]), T0)
        uow.commit()
    with uow_factory() as uow:
        uow.events.mark_finished(_finish(uow, [("e1", "c1", HANDLED, None)]), T0 + timedelta(seconds=1))
        uow.commit()
    with uow_factory() as uow:
        (record,) = uow.events.query()
    assert (record.state, record.outcome, record.handled_at) == (HANDLED, None, T0 + timedelta(seconds=1))


def test_finished_with_many_keys(uow_factory: UowFactory) -> None:
    records = [_record(f"e{i}", seconds=i) for i in range(200)]
    _record_all(uow_factory, *records)
    with uow_factory() as uow:
        uow.events.mark_finished([(r.id, HANDLED, None) for r in records[::2] if r.id is not None], T0)
        uow.commit()
    with uow_factory() as uow:
        assert uow.events.finished([r.id for r in records if r.id is not None]) == {r.id for r in records[::2]}


def test_uncommitted_records_are_invisible(uow_factory: UowFactory) -> None:
    with uow_factory() as uow:
        uow.events.record(_with_ids(uow, [_record("e1")]))
    assert _states(uow_factory) == {}


def test_claim_pages_through_unfinished_rows_whose_claim_lapsed(uow_factory: UowFactory) -> None:
    """A row is claimed by its accept (its own relay publishes it); a pass takes it once that lapsed."""
    t1 = T0 + timedelta(seconds=1)
    rows = [_record(f"e{n}", seconds=n) for n in range(5)]
    rows.append(_record("done", state=HANDLED))
    rows.append(_record("sent", state=DISPATCHED, dispatched_at=t1))
    _record_all(uow_factory, *rows)
    now = T0 + timedelta(seconds=100)
    with uow_factory() as uow:
        # Claims taken at accept (T0 + n) are not older than T0 + 2: only e0, e1 and "sent" (at T0) are free.
        first = uow.events.claim(after_id=0, claimed_before=T0 + timedelta(seconds=2), now=now, limit=2)
        assert [e.uuid for e in first] == ["e0", "e1"]
        rest = uow.events.claim(after_id=first[-1].id, claimed_before=T0 + timedelta(seconds=2), now=now, limit=2)
        assert [e.uuid for e in rest] == ["sent"]
        uow.commit()
    with uow_factory() as uow:
        # Just claimed: another pass leaves them alone until their claim lapses in turn.
        again = uow.events.claim(after_id=0, claimed_before=now, now=now, limit=10)
        assert [e.uuid for e in again] == ["e2", "e3", "e4"]
        uow.events.release([e.id for e in again[:1]])
        uow.commit()
    with uow_factory() as uow:
        assert [e.uuid for e in uow.events.claim(after_id=0, claimed_before=now, now=now, limit=10)] == ["e2"]
        later = now + timedelta(seconds=1)
        everything = uow.events.claim(after_id=0, claimed_before=later, now=later, limit=10)
        assert [e.uuid for e in everything] == ["e0", "e1", "e2", "e3", "e4", "sent"]


def test_two_relays_never_claim_the_same_rows(uow_factory: UowFactory, db_url: str) -> None:
    """PostgreSQL: a relay skips the rows another relay's open claim holds (FOR UPDATE SKIP LOCKED).
    (SQLite has one writer at a time: its second claim would wait for the first to commit.)"""
    if not db_url.startswith("postgresql"):
        pytest.skip("several relays at once need PostgreSQL")
    _record_all(uow_factory, *(_record(f"e{n}") for n in range(6)))
    later = T0 + timedelta(seconds=10)
    with uow_factory() as first, uow_factory() as second:
        mine = first.events.claim(after_id=0, claimed_before=later, now=later, limit=4)
        theirs = second.events.claim(after_id=0, claimed_before=later, now=later, limit=4)
        assert [e.uuid for e in mine] == ["e0", "e1", "e2", "e3"]
        assert [e.uuid for e in theirs] == ["e4", "e5"]
        first.commit()
        second.commit()


def test_unfinished_before_finds_earlier_deliveries_of_the_servers(uow_factory: UowFactory) -> None:
    _record_all(
        uow_factory,
        _record("e1"),
        _record("e2", state=HANDLED),
        _record("e3", server_uuid="s2"),
        _record("e4", host="c2"),
        _record("e5", server_uuid="s3"),
        _record("e6", state=DISPATCHED),
        _record("e7"),
    )
    with uow_factory() as uow:
        ids = {r.uuid: r.id for r in uow.events.query()}
        found = uow.events.unfinished_before("c1", ["s1", "s2"], ids["e7"])  # type: ignore[arg-type]
    assert [(e.uuid, e.server_uuid, e.host, e.id) for e in found] == [
        ("e1", "s1", "c1", ids["e1"]),
        ("e3", "s2", "c1", ids["e3"]),
        ("e6", "s1", "c1", ids["e6"]),
    ]
    assert (found[0].name, found[0].tag, found[0].status, found[0].request_id) == (
        "network-vif-plugged",
        "port-1",
        "completed",
        "req-1",
    )


def test_unfinished_on_pages_through_one_hosts_unfinished_rows(uow_factory: UowFactory) -> None:
    _record_all(
        uow_factory,
        _record("e1"),
        _record("e2", state=HANDLED),
        _record("e3", state=DISPATCHED),
        _record("e4", host="c2"),
        _record("e5"),
        _record("e6"),
    )
    with uow_factory() as uow:
        first = uow.events.unfinished_on("c1", after_id=0, limit=2)
        second = uow.events.unfinished_on("c1", after_id=first[-1].id, limit=2)
        third = uow.events.unfinished_on("c1", after_id=second[-1].id, limit=2)
    assert [[e.uuid for e in page] for page in (first, second, third)] == [["e1", "e3"], ["e5", "e6"], []]


def test_the_last_result_of_a_delivery_in_one_call_wins(uow_factory: UowFactory) -> None:
    _record_all(uow_factory, _record("e1"), _record("e2"))
    with uow_factory() as uow:
        (first,), (second,) = _finish(uow, [("e1", "c1", FAILED, "boom")]), _finish(uow, [("e2", "c1", FAILED, "x")])
        uow.events.mark_finished([first, second, (first[0], HANDLED, None)], T0)
        uow.commit()
    with uow_factory() as uow:
        got = {r.uuid: (r.state, r.outcome) for r in uow.events.query()}
    assert got == {"e1": (HANDLED, None), "e2": (FAILED, "x")}


def test_a_delivery_its_agent_is_finishing_is_left_to_the_agent(uow_factory: UowFactory, db_url: str) -> None:
    """PostgreSQL: the relay's mark skips a row locked by the agent's finish instead of waiting for
    it (the relay's writer is the API's); the finish records the hand-off time itself."""
    if not db_url.startswith("postgresql"):
        pytest.skip("row locks: PostgreSQL (SQLite has one writer at a time)")
    _record_all(uow_factory, _record("e1"), _record("e2"))
    later = T0 + timedelta(seconds=1)
    with uow_factory() as agent:
        agent.events.mark_finished(_finish(agent, [("e1", "c1", HANDLED, None)]), T0)
        with uow_factory() as relay:
            relay.events.mark_dispatched(_ids(relay, [("e1", "c1"), ("e2", "c1")]), later)
            relay.commit()
        agent.commit()
    with uow_factory() as uow:
        got = {r.uuid: (r.state, r.dispatched_at) for r in uow.events.query()}
    assert got == {"e1": (HANDLED, T0), "e2": (DISPATCHED, later)}
