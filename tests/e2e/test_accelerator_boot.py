"""A flavor with ``accel:device_profile``: the boot waits for ``accelerator-request-bound`` of each ARQ.

The test plays Cyborg: it finds the ARQs to bind in ``GET /os-server-external-events?state=waiting``
(or, before the build waits, in the accelerator backend it stands for) and posts their events at 2.82.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import Engine

from herald.domain.messages import BuildServer
from tests.e2e.harness import IMAGE, Herald, settings_for, start_herald, stop_herald

BOUND = 2000  # polls of 10 ms at most before a test gives up (a wedged process fails, it does not hang)
BOUND_EVENT = "accelerator-request-bound"
ACCEL_FLAVOR = "accel-1"


async def _accelerator_flavor(herald: Herald) -> None:
    body = {"flavor": {"name": "accel.tiny", "id": ACCEL_FLAVOR, "ram": 512, "vcpus": 1, "disk": 1}}
    assert (await herald.post("/v2.1/flavors", body)).status_code == 200
    specs = {"extra_specs": {"accel:device_profile": "fpga-profile"}}
    resp = await herald.post(f"/v2.1/flavors/{ACCEL_FLAVOR}/os-extra_specs", specs)
    assert resp.status_code == 200, resp.text


async def _boot(herald: Herald) -> str:
    body = {
        "server": {
            "name": "accel",
            "imageRef": IMAGE,
            "flavorRef": ACCEL_FLAVOR,
            "networks": "none",
            "host": "compute-1",
        }
    }
    resp = await herald.post("/v2.1/servers", body, version="2.76")
    assert resp.status_code == 202, resp.text
    server_id: str = resp.json()["server"]["id"]
    return server_id


async def waiting(herald: Herald, server_id: str) -> list[dict[str, Any]]:
    resp = await herald.client.get(
        "/v2.1/os-server-external-events",
        params={"server_uuid": server_id, "state": "waiting"},
        headers={"X-Auth-Token": "admin:admin"},
    )
    assert resp.status_code == 200, resp.text
    events: list[dict[str, Any]] = resp.json()["events"]
    return events


async def until(check: Callable[[], Awaitable[bool]]) -> None:
    for _ in range(BOUND):
        if await check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("never happened")


async def _until_waiting(herald: Herald, server_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    async def check() -> bool:
        found[:] = await waiting(herald, server_id)
        return bool(found)

    await until(check)
    return found


async def _bind(herald: Herald, server_id: str, arq: str, status: str = "completed") -> None:
    event = {"name": BOUND_EVENT, "server_uuid": server_id, "tag": arq, "status": status}
    resp = await herald.events([event], version="2.82")
    assert resp.status_code == 200, resp.text


def _aborted(server: dict[str, Any]) -> None:
    assert (server["status"], server["OS-EXT-STS:task_state"]) == ("ERROR", None)
    assert server["fault"]["message"] == (
        f"Build of instance {server['id']} aborted: Failure getting accelerator requests."
    )
    assert (server["OS-EXT-SRV-ATTR:host"], server["OS-EXT-SRV-ATTR:hypervisor_hostname"]) == (None, None)


async def test_boot_waits_for_its_arq_binding(herald: Herald) -> None:
    await _accelerator_flavor(herald)
    server_id = await _boot(herald)
    (wait,) = await _until_waiting(herald, server_id)
    arq = herald.deps.accelerators.for_server(server_id)[0].uuid
    assert (wait["name"], wait["tag"], wait["host"], wait["state"]) == (BOUND_EVENT, arq, "compute-1", "waiting")
    since, deadline = datetime.fromisoformat(wait["since"]), datetime.fromisoformat(wait["until"])
    assert (deadline - since).total_seconds() == herald.deps.settings.arq_binding_timeout
    assert (await herald.server(server_id))["status"] == "BUILD"

    await _bind(herald, server_id, wait["tag"])
    await herald.settle()
    server = await herald.server(server_id)
    assert (server["status"], server["OS-EXT-SRV-ATTR:host"]) == ("ACTIVE", "compute-1")
    assert await waiting(herald, server_id) == []
    (record,) = await herald.records(server_uuid=server_id)
    assert (record["name"], record["state"]) == (BOUND_EVENT, "handled")
    # The server's embedded flavor (2.47) is its copy, extra specs included.
    flavor = (await herald.server(server_id, version="2.47"))["flavor"]
    assert flavor["extra_specs"] == {"accel:device_profile": "fpga-profile"}


async def test_a_failed_binding_fails_the_boot(herald: Herald) -> None:
    await _accelerator_flavor(herald)
    server_id = await _boot(herald)
    (wait,) = await _until_waiting(herald, server_id)
    await _bind(herald, server_id, wait["tag"], status="failed")
    await herald.settle()
    _aborted(await herald.server(server_id))
    assert herald.deps.accelerators.for_server(server_id) == []  # deleted, as Nova deletes them
    assert await waiting(herald, server_id) == []


async def test_a_binding_that_never_comes_fails_the_boot(db_url: str, engine: Engine) -> None:
    herald, _ = await start_herald(settings_for(db_url, arq_binding_timeout=1))
    try:
        await _accelerator_flavor(herald)
        server_id = await _boot(herald)
        await herald.settle()
        _aborted(await herald.server(server_id))
        assert herald.deps.accelerators.for_server(server_id) == []
        assert await waiting(herald, server_id) == []
    finally:
        await stop_herald(herald)


async def test_a_binding_event_before_the_build_waits_is_kept_for_it(
    herald: Herald, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cyborg may bind (and say so) before the build even starts waiting; the build still completes.

    The build message is held until the event has reached the agent, whenever the relay delivers it.
    """
    agent = herald.deps.agents["compute-1"]
    held: list[BuildServer] = []

    async def hold(message: object) -> None:
        assert isinstance(message, BuildServer)
        held.append(message)

    monkeypatch.setitem(agent._handlers, BuildServer, hold)
    await _accelerator_flavor(herald)
    server_id = await _boot(herald)
    (arq,) = herald.deps.accelerators.for_server(server_id)
    await _bind(herald, server_id, arq.uuid)

    async def kept() -> bool:
        await herald.deps.relay.flush()
        return agent.waiters.early(server_id) == [f"{BOUND_EVENT}-{arq.uuid}"]

    await until(kept)
    await until(lambda: _true(bool(held)))
    monkeypatch.undo()
    await agent.handle(held[0])
    await herald.settle()

    assert (await herald.server(server_id))["status"] == "ACTIVE"
    (record,) = await herald.records(server_uuid=server_id)
    assert (record["state"], record["outcome"]) == (
        "handled",
        "woke the operation waiting for it (the event came before the wait)",
    )
    assert await waiting(herald, server_id) == []


async def _true(value: bool) -> bool:
    return value


async def test_a_duplicate_binding_event_wakes_nothing_twice(herald: Herald) -> None:
    await _accelerator_flavor(herald)
    server_id = await _boot(herald)
    (wait,) = await _until_waiting(herald, server_id)
    event = {"name": BOUND_EVENT, "server_uuid": server_id, "tag": wait["tag"]}
    resp = await herald.events([event, dict(event)], version="2.82")
    assert [e["code"] for e in resp.json()["events"]] == [200, 200]
    await herald.settle()
    assert (await herald.server(server_id))["status"] == "ACTIVE"
    records = await herald.records(server_uuid=server_id)
    assert sorted(r["state"] == "handled" for r in records) == [False, True]
    actions = (await herald.get(f"/v2.1/servers/{server_id}/os-instance-actions")).json()["instanceActions"]
    assert [a["action"] for a in actions] == ["create"]


async def test_a_stuck_boot_shows_the_ports_it_waits_for(herald: Herald) -> None:
    ports = ["0b8f3c4e-4f21-4c2e-9a53-3d1f2a6b7c80", "1c9a4d5f-5a32-4d3f-8b64-4e2a3b7c8d91"]
    server_id = await herald.create_server(networks=[{"port": p} for p in ports], settle=False)
    waits = await _until_waiting(herald, server_id)
    server = await herald.server(server_id)
    assert sorted((w["name"], w["tag"], w["state"]) for w in waits) == [
        ("network-vif-plugged", port, "waiting") for port in sorted(ports)
    ]
    assert {w["host"] for w in waits} == {server["OS-EXT-SRV-ATTR:host"]}
    since, deadline = datetime.fromisoformat(waits[0]["since"]), datetime.fromisoformat(waits[0]["until"])
    assert (deadline - since).total_seconds() == herald.deps.settings.vif_plugging_timeout

    # Once one port's event came, only the other one is waited for.
    resp = await herald.events([{"name": "network-vif-plugged", "server_uuid": server_id, "tag": ports[0]}])
    assert resp.status_code == 200

    async def one_left() -> bool:
        return [w["tag"] for w in await waiting(herald, server_id)] == [ports[1]]

    await until(one_left)
    assert (await herald.server(server_id))["status"] == "BUILD"
    resp = await herald.events([{"name": "network-vif-plugged", "server_uuid": server_id, "tag": ports[1]}])
    assert resp.status_code == 200
    await herald.settle()
    assert (await herald.server(server_id))["status"] == "ACTIVE"
    assert await waiting(herald, server_id) == []


async def test_a_late_plug_event_is_recorded_late_and_kept_from_the_next_wait(db_url: str, engine: Engine) -> None:
    herald, _ = await start_herald(settings_for(db_url, vif_plugging_timeout=1, vif_plugging_is_fatal=False))
    try:
        port = "5e2d1c0b-8a7f-4e6d-9c5b-4a3f2e1d0c9b"
        server_id = await herald.create_server(networks=[{"port": port}])
        server = await herald.server(server_id)
        assert server["status"] == "ACTIVE"  # not fatal: the boot went on without the event
        assert await waiting(herald, server_id) == []

        resp = await herald.events([{"name": "network-vif-plugged", "server_uuid": server_id, "tag": port}])
        assert resp.status_code == 200
        await herald.settle()
        (record,) = await herald.records(server_uuid=server_id)
        assert (record["state"], record["outcome"]) == ("expired", "arrived after its waiter timed out")
        waiter = herald.deps.agents[server["OS-EXT-SRV-ATTR:host"]].waiters.prepare(
            server_id, "network-vif-plugged", port
        )
        assert not waiter.is_set()  # the late event was not kept for the next operation's wait
    finally:
        await stop_herald(herald)


async def test_waiting_listing_refusals(herald: Herald) -> None:
    base = "/v2.1/os-server-external-events?state=waiting"
    for query in ("&marker=0b8f3c4e-4f21-4c2e-9a53-3d1f2a6b7c80", "&request_id=req-1", "&server_uuid=nope"):
        assert (await herald.get(base + query)).status_code == 400
    assert (await herald.get(base, token="alice:alice")).status_code == 403
