"""``power_state_change_grace`` on the fake driver: the sync records the machine's power at once but
stops it only once the same disagreement has lasted the grace, and the watch shows as an instance action.

The wall clock is moved forward by the test (``ShiftedClock``), so nothing here waits for the grace.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import Engine

from herald.agent.power_sync import GRACE_EVENT
from herald.domain.model import PowerState
from herald.domain.power_sync import SyncAction
from tests.e2e.harness import Herald, ShiftedClock, settings_for, start_herald, stop_herald

GRACE = 120
HOST = "compute-1"


@dataclass
class Cloud:
    herald: Herald
    clock: ShiftedClock

    async def sync(self) -> SyncAction:
        (outcome,) = await self.herald.deps.agents[HOST].power_sync.sync_all()
        await self.herald.settle()
        assert outcome.decision is not None, outcome.skipped
        return outcome.decision.action

    async def state(self, server_id: str) -> tuple[str, int]:
        server = await self.herald.server(server_id)
        return server["status"], server["OS-EXT-STS:power_state"]

    def machine_power(self, server_id: str) -> PowerState:
        machine = self.herald.driver(HOST).machine(server_id)
        assert machine is not None
        return machine.power

    async def actions(self, server_id: str) -> list[dict[str, Any]]:
        resp = await self.herald.get(f"/v2.1/servers/{server_id}/os-instance-actions", version="2.84")
        assert resp.status_code == 200, resp.text
        actions: list[dict[str, Any]] = resp.json()["instanceActions"]
        return actions

    async def action(self, server_id: str, request_id: str) -> dict[str, Any]:
        resp = await self.herald.get(f"/v2.1/servers/{server_id}/os-instance-actions/{request_id}", version="2.84")
        assert resp.status_code == 200, resp.text
        action: dict[str, Any] = resp.json()["instanceAction"]
        return action

    async def watches(self, server_id: str) -> list[dict[str, Any]]:
        """The ``stop`` actions that carry a grace event, oldest first, with their events."""
        found = []
        for summary in reversed(await self.actions(server_id)):
            action = await self.action(server_id, summary["request_id"])
            if any(e["event"] == GRACE_EVENT for e in action["events"]):
                found.append(action)
        return found


async def _cloud(db_url: str, clock: ShiftedClock, grace: int = GRACE) -> Herald:
    herald, _ = await start_herald(settings_for(db_url, power_state_change_grace=grace), clock=clock)
    return herald


@pytest.fixture
async def cloud(db_url: str, engine: Engine) -> AsyncIterator[Cloud]:
    clock = ShiftedClock()
    herald = await _cloud(db_url, clock)
    try:
        yield Cloud(herald, clock)
    finally:
        await stop_herald(herald)


async def _stopped_server(cloud: Cloud) -> str:
    server_id = await cloud.herald.create_server(host=HOST)
    assert (await cloud.herald.action(server_id, {"os-stop": None})).status_code == 202
    await cloud.herald.settle()
    assert await cloud.state(server_id) == ("SHUTOFF", PowerState.SHUTDOWN)
    return server_id


def _grace_event(action: dict[str, Any]) -> dict[str, Any]:
    (event,) = [e for e in action["events"] if e["event"] == GRACE_EVENT]
    return event


async def test_a_power_on_is_recorded_at_once_watched_and_kept_until_power_update(cloud: Cloud) -> None:
    server_id = await _stopped_server(cloud)
    cloud.herald.driver(HOST).set_power(server_id, PowerState.RUNNING)  # powered on at the BMC

    assert await cloud.sync() is SyncAction.WAIT
    # The hypervisor wins for power_state at once; vm_state waits for the event or the grace.
    assert await cloud.state(server_id) == ("SHUTOFF", PowerState.RUNNING)
    assert cloud.machine_power(server_id) is PowerState.RUNNING

    # More passes within the grace: nothing done, and still one record of the watch.
    for _ in range(3):
        cloud.clock.advance(GRACE / 4)
        assert await cloud.sync() is SyncAction.WAIT
    (watch,) = await cloud.watches(server_id)
    assert watch["action"] == "stop"
    event = _grace_event(watch)
    assert event["result"] is None  # still watched
    assert event["finish_time"] is None
    assert event["start_time"] == watch["start_time"]  # since when
    assert "vm_state stopped, machine on" in event["details"]
    assert f"{GRACE} s" in event["details"]
    assert cloud.machine_power(server_id) is PowerState.RUNNING

    # The bare-metal service reports it: the power-update wins.
    resp = await cloud.herald.events(
        [{"name": "power-update", "server_uuid": server_id, "tag": "POWER_ON"}], version="2.76"
    )
    assert resp.status_code == 200
    await cloud.herald.settle()
    assert await cloud.state(server_id) == ("ACTIVE", PowerState.RUNNING)
    cloud.clock.advance(GRACE)
    assert await cloud.sync() is SyncAction.NOTHING
    assert cloud.machine_power(server_id) is PowerState.RUNNING
    (watch,) = await cloud.watches(server_id)
    event = _grace_event(watch)
    assert event["result"] == "Cancelled"
    assert event["details"] == "the record and the machine no longer disagree"
    assert [e["event"] for e in watch["events"]] == [GRACE_EVENT]  # no stop ran under it


async def test_an_unreported_power_on_is_stopped_once_the_grace_has_passed(cloud: Cloud) -> None:
    server_id = await _stopped_server(cloud)
    cloud.herald.driver(HOST).set_power(server_id, PowerState.RUNNING)
    assert await cloud.sync() is SyncAction.WAIT
    cloud.clock.advance(GRACE - 1)
    assert await cloud.sync() is SyncAction.WAIT
    cloud.clock.advance(1)
    # Nova's rule, late: a stopped server's machine that came back on is switched off.
    assert await cloud.sync() is SyncAction.FORCE_STOP
    assert cloud.machine_power(server_id) is PowerState.SHUTDOWN
    assert await cloud.state(server_id) == ("SHUTOFF", PowerState.SHUTDOWN)
    # The stop ran under the action that showed the watch.
    (watch,) = await cloud.watches(server_id)
    results = {e["event"]: e["result"] for e in watch["events"]}
    assert results == {GRACE_EVENT: "Success", "compute_stop_instance": "Success"}
    assert "lasted 120 s" in _grace_event(watch)["details"]
    assert await cloud.sync() is SyncAction.NOTHING


async def test_a_machine_that_stopped_by_itself_is_stopped_after_the_grace(cloud: Cloud) -> None:
    server_id = await cloud.herald.create_server(host=HOST)
    cloud.herald.driver(HOST).set_power(server_id, PowerState.SHUTDOWN)
    assert await cloud.sync() is SyncAction.WAIT
    assert await cloud.state(server_id) == ("ACTIVE", PowerState.SHUTDOWN)
    cloud.clock.advance(GRACE)
    assert await cloud.sync() is SyncAction.STOP
    assert await cloud.state(server_id) == ("SHUTOFF", PowerState.SHUTDOWN)


async def test_a_disagreement_that_goes_away_starts_the_grace_again(cloud: Cloud) -> None:
    server_id = await _stopped_server(cloud)
    driver = cloud.herald.driver(HOST)
    driver.set_power(server_id, PowerState.RUNNING)
    assert await cloud.sync() is SyncAction.WAIT
    cloud.clock.advance(GRACE - 1)
    driver.set_power(server_id, PowerState.SHUTDOWN)  # the operator changed their mind
    assert await cloud.sync() is SyncAction.NOTHING
    driver.set_power(server_id, PowerState.RUNNING)
    assert await cloud.sync() is SyncAction.WAIT
    cloud.clock.advance(GRACE - 1)  # long after the first sighting, not after the second
    assert await cloud.sync() is SyncAction.WAIT
    assert cloud.machine_power(server_id) is PowerState.RUNNING
    first, second = await cloud.watches(server_id)
    assert _grace_event(first)["result"] == "Cancelled"
    assert _grace_event(second)["result"] is None
    cloud.clock.advance(1)
    assert await cloud.sync() is SyncAction.FORCE_STOP


async def test_grace_zero_stops_on_the_first_pass_and_shows_no_watch(db_url: str, engine: Engine) -> None:
    herald = await _cloud(db_url, ShiftedClock(), grace=0)
    try:
        cloud = Cloud(herald, ShiftedClock())
        server_id = await _stopped_server(cloud)
        herald.driver(HOST).set_power(server_id, PowerState.RUNNING)
        assert await cloud.sync() is SyncAction.FORCE_STOP
        assert cloud.machine_power(server_id) is PowerState.SHUTDOWN
        assert await cloud.watches(server_id) == []
    finally:
        await stop_herald(herald)


async def test_the_watch_survives_a_restart_of_the_agent(db_url: str, engine: Engine) -> None:
    clock = ShiftedClock()
    herald = await _cloud(db_url, clock)
    try:
        cloud = Cloud(herald, clock)
        server_id = await _stopped_server(cloud)
        herald.driver(HOST).set_power(server_id, PowerState.RUNNING)
        assert await cloud.sync() is SyncAction.WAIT
    finally:
        await stop_herald(herald)

    clock.advance(GRACE)
    herald = await _cloud(db_url, clock)
    try:
        cloud = Cloud(herald, clock)
        herald.driver(HOST).set_power(server_id, PowerState.RUNNING)  # a fresh fake driver: the machine is on
        # The first sighting came from the database: the grace is over, not started again.
        assert await cloud.sync() is SyncAction.FORCE_STOP
        (watch,) = await cloud.watches(server_id)
        assert _grace_event(watch)["result"] == "Success"
    finally:
        await stop_herald(herald)


async def test_a_deleted_server_leaves_nothing_watched(cloud: Cloud) -> None:
    server_id = await _stopped_server(cloud)
    other = await _stopped_server(cloud)
    cloud.herald.driver(HOST).set_power(server_id, PowerState.RUNNING)
    outcomes = await cloud.herald.deps.agents[HOST].power_sync.sync_all()
    assert {o.server_uuid: o.decision.action for o in outcomes if o.decision} == {
        server_id: SyncAction.WAIT,
        other: SyncAction.NOTHING,
    }
    resp = await cloud.herald.client.delete(f"/v2.1/servers/{server_id}", headers={"X-Auth-Token": "admin:admin"})
    assert resp.status_code == 204
    await cloud.herald.settle()
    await cloud.herald.deps.agents[HOST].power_sync.sync_all()
    with cloud.herald.deps.uow_factory() as uow:
        assert uow.power_observations.server_uuids(HOST) == set()
