"""Deferred delete over HTTP (``reclaim_instance_interval``): SOFT_DELETED, restore, forceDelete, the reclaim."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import Engine

from herald.domain.errors import DriverError
from tests.e2e.harness import Herald, ShiftedClock, settings_for, start_herald, stop_herald
from tests.e2e.lifecycle_helpers import action_events

INTERVAL = 3600
MEMBER = "alice:admin"


@pytest.fixture
async def clock() -> ShiftedClock:
    return ShiftedClock()


@pytest.fixture
async def deferred(db_url: str, engine: Engine, clock: ShiftedClock) -> AsyncIterator[Herald]:
    herald, _ = await start_herald(settings_for(db_url, reclaim_instance_interval=INTERVAL), clock=clock)
    try:
        yield herald
    finally:
        await stop_herald(herald)


async def _soft_deleted(herald: Herald) -> str:
    server_id = await herald.create_server(host="compute-1")
    resp = await herald.client.delete(f"/v2.1/servers/{server_id}", headers={"X-Auth-Token": "admin:admin"})
    assert resp.status_code == 204, resp.text
    await herald.settle()
    server = await herald.server(server_id)
    assert (server["status"], server["OS-EXT-STS:power_state"], server["OS-EXT-STS:task_state"]) == (
        "SOFT_DELETED",
        4,
        None,
    )
    return server_id


async def _listed(herald: Herald) -> list[str]:
    resp = await herald.get("/v2.1/servers")
    assert resp.status_code == 200
    return [s["id"] for s in resp.json()["servers"]]


async def test_delete_is_deferred_and_restore_brings_it_back(deferred: Herald) -> None:
    server_id = await _soft_deleted(deferred)
    assert server_id not in await _listed(deferred)
    assert await action_events(deferred, server_id, "delete") == [("compute_soft_delete_instance", "Success")]
    resp = await deferred.action(server_id, {"restore": None})
    assert resp.status_code == 202, resp.text
    await deferred.settle()
    server = await deferred.server(server_id)
    assert (server["status"], server["OS-EXT-STS:power_state"]) == ("ACTIVE", 1)
    assert server_id in await _listed(deferred)
    assert await action_events(deferred, server_id, "restore") == [("compute_restore_instance", "Success")]


async def test_restore_refusals(deferred: Herald) -> None:
    server_id = await deferred.create_server()
    resp = await deferred.action(server_id, {"restore": None})
    assert resp.status_code == 409
    assert resp.json()["conflictingRequest"]["message"] == (
        f"Cannot 'restore' instance {server_id} while it is in vm_state active"
    )
    resp = await deferred.action(server_id, {"restore": {}, "extra": 1})
    assert resp.status_code == 400


async def test_force_delete_deletes_now(deferred: Herald) -> None:
    server_id = await _soft_deleted(deferred)
    resp = await deferred.action(server_id, {"forceDelete": None})
    assert resp.status_code == 202, resp.text
    await deferred.settle()
    assert (await deferred.get(f"/v2.1/servers/{server_id}")).status_code == 404
    assert deferred.driver("compute-1").machine(server_id) is None


async def test_force_delete_of_a_locked_server_is_refused(deferred: Herald) -> None:
    server_id = await deferred.create_server()
    assert (await deferred.action(server_id, {"lock": None})).status_code == 202
    resp = await deferred.post(f"/v2.1/servers/{server_id}/action", {"forceDelete": None}, token=MEMBER)
    assert resp.status_code == 409
    assert resp.json()["conflictingRequest"]["message"] == f"Instance {server_id} is locked"


async def test_reclaim_after_the_interval(deferred: Herald, clock: ShiftedClock) -> None:
    server_id = await _soft_deleted(deferred)
    agent = deferred.deps.agents["compute-1"]
    assert await agent.reclaim_deleted() == 0
    clock.advance(INTERVAL - 60)
    assert await agent.reclaim_deleted() == 0
    assert (await deferred.server(server_id))["status"] == "SOFT_DELETED"
    clock.advance(120)
    assert await agent.reclaim_deleted() == 1
    await deferred.settle()
    assert (await deferred.get(f"/v2.1/servers/{server_id}")).status_code == 404
    assert deferred.driver("compute-1").machine(server_id) is None


async def test_without_an_interval_delete_is_immediate(herald: Herald) -> None:
    server_id = await herald.create_server()
    resp = await herald.client.delete(f"/v2.1/servers/{server_id}", headers={"X-Auth-Token": "admin:admin"})
    assert resp.status_code == 204
    await herald.settle()
    assert (await herald.get(f"/v2.1/servers/{server_id}")).status_code == 404
    resp = await herald.post(f"/v2.1/servers/{server_id}/action", {"restore": None}, version="2.76")
    assert resp.status_code == 404


async def test_a_server_that_never_launched_is_deleted_at_once(deferred: Herald) -> None:
    deferred.driver("compute-1").fail_next("spawn", DriverError("no power"))
    server_id = await deferred.create_server(host="compute-1")
    server = await deferred.server(server_id)
    assert (server["status"], server["OS-SRV-USG:launched_at"]) == ("ERROR", None)
    resp = await deferred.client.delete(f"/v2.1/servers/{server_id}", headers={"X-Auth-Token": "admin:admin"})
    assert resp.status_code == 204
    await deferred.settle()
    assert (await deferred.get(f"/v2.1/servers/{server_id}")).status_code == 404
