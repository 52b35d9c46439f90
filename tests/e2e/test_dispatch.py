"""Dispatch: accepted events reach the right hosts' agents, exactly once in effect, even after a crash."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine

from herald.adapters.bus.memory import InMemoryBus
from herald.adapters.sql.uow import SqlUnitOfWork
from herald.domain.errors import BusUnavailable, HeraldError
from herald.domain.events import EventName, EventStatus
from herald.domain.messages import DeliverEvents
from herald.domain.model import Migration, PowerState
from herald.service.accept import AcceptRequest, IncomingEvent, accept_external_events
from tests.e2e.harness import Herald, settings_for, start_herald, stop_herald


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


async def test_event_for_a_migrating_server_goes_to_both_hosts(herald: Herald) -> None:
    server_id = await herald.create_server(host="compute-1")
    with herald.deps.uow_factory() as uow:
        migration = uow.migrations.add(Migration(0, server_id, "compute-1", "compute-2", "live-migration", "running"))
        server = uow.servers.get(server_id)
        assert server is not None
        server.migration_id = migration.id
        uow.servers.save(server)
        uow.commit()
    resp = await herald.events([{"name": "network-changed", "server_uuid": server_id, "tag": "p1"}])
    assert resp.status_code == 200
    await herald.settle()
    records = await herald.records(server_uuid=server_id)
    assert sorted(r["host"] for r in records) == ["compute-1", "compute-2"]
    assert len({r["id"] for r in records}) == 1
    assert {r["state"] for r in records} == {"handled"}


class FlakyBus(InMemoryBus):
    """An in-memory bus whose publish to some hosts fails, like a broker that is down for them."""

    def __init__(self, broken: set[str], error: type[HeraldError] = HeraldError) -> None:
        super().__init__()
        self.broken = broken
        self.error = error

    async def publish(self, host: str, messages: Sequence[object]) -> None:
        if host in self.broken and any(isinstance(m, DeliverEvents) for m in messages):
            raise self.error(f"cannot reach {host}")
        await super().publish(host, messages)


async def test_one_host_failing_does_not_block_another_and_the_relay_retries(db_url: str, engine: Engine) -> None:
    bus = FlakyBus({"compute-1"})
    herald, _ = await start_herald(settings_for(db_url), bus=bus)
    try:
        a = await herald.create_server(host="compute-1")
        b = await herald.create_server(host="compute-2")
        resp = await herald.events(
            [{"name": "network-changed", "server_uuid": a}, {"name": "network-changed", "server_uuid": b}]
        )
        assert resp.status_code == 200
        await herald.settle()
        states = {r["host"]: r["state"] for r in await herald.records()}
        assert states == {"compute-1": "accepted", "compute-2": "handled"}

        bus.broken.clear()
        assert await herald.deps.relay.redeliver() == 1
        await herald.settle()
        states = {r["host"]: r["state"] for r in await herald.records()}
        assert states == {"compute-1": "handled", "compute-2": "handled"}
    finally:
        await stop_herald(herald)


async def test_a_bus_that_is_away_is_a_warning_not_a_traceback_per_batch(
    db_url: str, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    herald, _ = await start_herald(settings_for(db_url), bus=FlakyBus({"compute-1"}, BusUnavailable))
    try:
        server_id = await herald.create_server(host="compute-1")
        resp = await herald.events([{"name": "network-changed", "server_uuid": server_id}])
        assert resp.status_code == 200
        await herald.settle()
    finally:
        await stop_herald(herald)
    (failure,) = [r for r in caplog.records if "Could not dispatch" in r.getMessage()]
    assert failure.levelno == logging.WARNING
    assert failure.exc_info is None
    assert "cannot reach compute-1" in failure.getMessage()


async def test_events_recorded_before_a_crash_are_delivered_at_start(db_url: str, engine: Engine) -> None:
    herald, _ = await start_herald(settings_for(db_url))
    try:
        server_id = await herald.create_server(host="compute-2")
    finally:
        await stop_herald(herald)
    # The API committed these and answered 200, then died before handing them to the bus.
    request = AcceptRequest(
        "req-crash",
        "admin",
        "admin",
        [
            IncomingEvent(EventName.POWER_UPDATE, server_id, "POWER_OFF", EventStatus.COMPLETED),
        ],
    )
    (result,) = accept_external_events(SqlUnitOfWork(engine), [request], _now())
    assert [v.code for v in result.verdicts] == [200]

    herald, _ = await start_herald(settings_for(db_url))
    try:
        await herald.settle()
        server = await herald.server(server_id)
        assert (server["status"], server["OS-EXT-STS:power_state"]) == ("SHUTOFF", int(PowerState.SHUTDOWN))
        (record,) = await herald.records(server_uuid=server_id)
        assert record["state"] == "handled"
        assert record["dispatched_at"] is not None
    finally:
        await stop_herald(herald)


async def test_a_redelivered_event_has_no_second_effect(herald: Herald) -> None:
    server_id = await herald.create_server(host="compute-1")
    resp = await herald.events([{"name": "power-update", "server_uuid": server_id, "tag": "POWER_OFF"}], version="2.76")
    assert resp.status_code == 200
    await herald.settle()
    driver = herald.driver("compute-1")
    assert driver.power_update_calls == [(server_id, "POWER_OFF")]
    # Put the server back to ACTIVE so that a second application would show.
    resp = await herald.action(server_id, {"os-start": None})
    assert resp.status_code == 202
    await herald.settle()
    assert (await herald.server(server_id))["status"] == "ACTIVE"

    with herald.deps.uow_factory() as uow:
        envelopes = uow.events.unfinished_on("compute-1", after_id=0, limit=10)
    assert envelopes == []
    records = await herald.records(server_uuid=server_id)
    with herald.deps.uow_factory() as uow:
        stored = uow.events.query(server_uuid=server_id)
    from herald.domain.records import EventEnvelope

    replay = [
        EventEnvelope(r.uuid, r.request_id, r.server_uuid, r.name, r.tag, r.status, r.host, id=r.id or 0)
        for r in stored
    ]
    await herald.deps.bus.publish("compute-1", [DeliverEvents(tuple(replay))])
    await herald.settle()
    assert (await herald.server(server_id))["status"] == "ACTIVE"
    assert driver.power_update_calls == [(server_id, "POWER_OFF")]
    assert [r["state"] for r in records] == ["handled"]


async def test_one_failing_event_does_not_block_the_rest_of_its_batch(herald: Herald) -> None:
    a = await herald.create_server(host="compute-1")
    b = await herald.create_server(host="compute-1")
    from herald.domain.errors import DriverError

    herald.driver("compute-1").fail_next("power_update_event", DriverError("BMC unreachable"))
    resp = await herald.events(
        [
            {"name": "power-update", "server_uuid": a, "tag": "POWER_OFF"},
            {"name": "power-update", "server_uuid": b, "tag": "POWER_OFF"},
        ],
        version="2.76",
    )
    assert resp.status_code == 200
    await herald.settle()
    assert (await herald.server(a))["status"] == "ACTIVE"
    assert (await herald.server(b))["status"] == "SHUTOFF"
    states = {r["server_uuid"]: (r["state"], r["outcome"]) for r in await herald.records()}
    assert states[a][0] == "failed"
    assert "BMC unreachable" in states[a][1]
    assert states[b][0] == "handled"
