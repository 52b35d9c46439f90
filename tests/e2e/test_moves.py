"""Cold moves through the HTTP API: migrate, resize, confirmResize, revertResize, on two hosts.

Events sent while a move is under way reach both hosts (as Nova sends them); only the host
that holds the server at that moment acts on them.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from herald.domain.model import PowerState
from tests.e2e.blocking_driver import blocking_drivers
from tests.e2e.harness import IMAGE, Herald, crash_herald, settings_for, start_herald, stop_herald

ADMIN_VERSION = "2.80"


async def _action(herald: Herald, server_id: str, body: Any, *, version: str = "2.56", **kw: Any) -> httpx.Response:
    return await herald.post(f"/v2.1/servers/{server_id}/action", body, version=version, **kw)


async def _moved(herald: Herald, server_id: str, body: Any, *, version: str = "2.56") -> dict[str, Any]:
    resp = await _action(herald, server_id, body, version=version)
    assert resp.status_code == 202, resp.text
    await herald.settle()
    return await herald.server(server_id, version="2.46")


async def _migrations(herald: Herald, **query: str) -> list[dict[str, Any]]:
    headers = {"X-Auth-Token": "admin:admin", "OpenStack-API-Version": f"compute {ADMIN_VERSION}"}
    resp = await herald.client.get("/v2.1/os-migrations", params=query, headers=headers)
    assert resp.status_code == 200, resp.text
    migrations: list[dict[str, Any]] = resp.json()["migrations"]
    return migrations


async def _action_events(herald: Herald, server_id: str, action: str) -> list[str]:
    resp = await herald.get(f"/v2.1/servers/{server_id}/os-instance-actions", version="2.84")
    assert resp.status_code == 200, resp.text
    (found,) = [a for a in resp.json()["instanceActions"] if a["action"] == action]
    detail = await herald.get(f"/v2.1/servers/{server_id}/os-instance-actions/{found['request_id']}", version="2.84")
    return [f"{e['event']}:{e['result']}" for e in reversed(detail.json()["instanceAction"]["events"])]


async def _until_waiting(herald: Herald, host: str, server_id: str) -> None:
    """Let the host's agent register its waiters (an asyncio task that awaits worker threads)."""
    for _ in range(1000):
        if herald.deps.agents[host].waiters.pending(server_id):
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"{host} never started waiting")


async def _boot_with_port(herald: Herald) -> tuple[str, str]:
    port = str(uuid.uuid4())
    server_id = await herald.create_server(host="compute-1", networks=[{"port": port}], settle=False)
    await _until_waiting(herald, "compute-1", server_id)
    resp = await herald.events([{"name": "network-vif-plugged", "server_uuid": server_id, "tag": port}])
    assert resp.status_code == 200
    await herald.settle()
    assert (await herald.server(server_id))["status"] == "ACTIVE"
    return server_id, port


async def test_migrate_reaches_verify_resize_on_the_other_host_then_confirm(herald: Herald) -> None:
    server_id = await herald.create_server(host="compute-1")

    server = await _moved(herald, server_id, {"migrate": None})
    assert server["status"] == "VERIFY_RESIZE"
    assert server["OS-EXT-SRV-ATTR:host"] == "compute-2"
    assert server["OS-EXT-STS:vm_state"] == "resized"
    assert server["flavor"]["id"] == "1"
    assert herald.driver("compute-2").machine(server_id).power == PowerState.RUNNING  # type: ignore[union-attr]
    assert herald.driver("compute-1").machine(server_id).power == PowerState.SHUTDOWN  # type: ignore[union-attr]
    (migration,) = await _migrations(herald, instance_uuid=server_id)
    assert (migration["status"], migration["migration_type"]) == ("finished", "migration")
    assert (migration["source_compute"], migration["dest_compute"]) == ("compute-1", "compute-2")
    assert (migration["old_instance_type_id"], migration["new_instance_type_id"]) == (1, 1)
    assert (migration["user_id"], migration["project_id"]) == ("admin", "admin")
    assert await _action_events(herald, server_id, "migrate") == [
        "conductor_migrate_server:Success",
        "compute_prep_resize:Success",
        "compute_resize_instance:Success",
        "compute_finish_resize:Success",
    ]

    resp = await _action(herald, server_id, {"confirmResize": None})
    assert resp.status_code == 204, resp.text
    assert resp.content == b""
    await herald.settle()
    server = await herald.server(server_id, version="2.46")
    assert (server["status"], server["OS-EXT-SRV-ATTR:host"]) == ("ACTIVE", "compute-2")
    assert herald.driver("compute-1").machine(server_id) is None
    assert [m["status"] for m in await _migrations(herald, instance_uuid=server_id)] == ["confirmed"]
    assert await _action_events(herald, server_id, "confirmResize") == ["compute_confirm_resize:Success"]
    # The move is over: events go to the server's host alone again.
    resp = await herald.events([{"name": "network-changed", "server_uuid": server_id}])
    await herald.settle()
    assert [r["host"] for r in await herald.records(server_uuid=server_id)] == ["compute-2"]


async def test_migrate_to_a_named_host(herald: Herald) -> None:
    server_id = await herald.create_server(host="compute-1")
    server = await _moved(herald, server_id, {"migrate": {"host": "compute-2"}})
    assert (server["status"], server["OS-EXT-SRV-ATTR:host"]) == ("VERIFY_RESIZE", "compute-2")


async def test_resize_then_revert_brings_the_old_flavor_back_on_the_source(herald: Herald) -> None:
    server_id = await herald.create_server(host="compute-1")

    server = await _moved(herald, server_id, {"resize": {"flavorRef": "2"}})
    assert (server["status"], server["flavor"]["id"]) == ("VERIFY_RESIZE", "2")
    (migration,) = await _migrations(herald, instance_uuid=server_id)
    assert (migration["migration_type"], migration["new_instance_type_id"]) == ("resize", 2)

    server = await _moved(herald, server_id, {"revertResize": None})
    assert (server["status"], server["flavor"]["id"]) == ("ACTIVE", "1")
    assert server["OS-EXT-SRV-ATTR:host"] == "compute-1"
    assert herald.driver("compute-2").machine(server_id) is None
    assert herald.driver("compute-1").machine(server_id).power == PowerState.RUNNING  # type: ignore[union-attr]
    assert [m["status"] for m in await _migrations(herald, instance_uuid=server_id)] == ["reverted"]
    assert await _action_events(herald, server_id, "revertResize") == [
        "compute_revert_resize:Success",
        "compute_finish_revert_resize:Success",
    ]


async def test_a_stopped_server_moves_stopped(herald: Herald) -> None:
    server_id = await herald.create_server(host="compute-1")
    assert (await _action(herald, server_id, {"os-stop": None})).status_code == 202
    await herald.settle()
    server = await _moved(herald, server_id, {"resize": {"flavorRef": 3}})
    assert server["status"] == "VERIFY_RESIZE"
    assert herald.driver("compute-2").machine(server_id).power == PowerState.SHUTDOWN  # type: ignore[union-attr]
    assert (await _action(herald, server_id, {"confirmResize": None})).status_code == 204
    await herald.settle()
    assert (await herald.server(server_id))["status"] == "SHUTOFF"


@pytest.mark.parametrize(
    ("body", "version", "message"),
    [
        ({"migrate": {"host": "compute-1"}}, "2.56", "Cannot migrate to the host where the server exists."),
        ({"migrate": {"host": "nowhere"}}, "2.56", "Compute host nowhere could not be found."),
        ({"resize": {"flavorRef": "1"}}, "2.56", "When resizing, instances must change flavor!"),
        ({"resize": {"flavorRef": "42"}}, "2.56", "Flavor 42 could not be found."),
        ({"migrate": {"host": "compute-2"}}, "2.55", None),  # before 2.56 the body is not looked at
    ],
)
async def test_refused_moves(herald: Herald, body: Any, version: str, message: str | None) -> None:
    server_id = await herald.create_server(host="compute-1")
    resp = await _action(herald, server_id, body, version=version)
    if message is None:
        assert resp.status_code == 202, resp.text
        return
    assert resp.status_code == 400, resp.text
    assert resp.json() == {"badRequest": {"code": 400, "message": message}}
    server = await herald.server(server_id)
    assert (server["status"], server["OS-EXT-STS:task_state"]) == ("ACTIVE", None)


@pytest.mark.parametrize("action", ["confirmResize", "revertResize"])
async def test_confirm_or_revert_outside_verify_resize_is_409(herald: Herald, action: str) -> None:
    server_id = await herald.create_server(host="compute-1")
    resp = await _action(herald, server_id, {action: None})
    assert resp.status_code == 409, resp.text
    assert resp.json()["conflictingRequest"]["message"] == (
        f"Cannot '{action}' instance {server_id} while it is in vm_state active"
    )


async def test_a_locked_server_is_not_moved(herald: Herald) -> None:
    server = {"name": "vm", "imageRef": IMAGE, "flavorRef": "1", "networks": "none"}
    resp = await herald.post("/v2.1/servers", {"server": server}, version="2.76", token="alice:demo")
    server_id = resp.json()["server"]["id"]
    await herald.settle()
    assert (await _action(herald, server_id, {"lock": None}, token="alice:demo")).status_code == 202
    resp = await _action(herald, server_id, {"resize": {"flavorRef": "2"}}, token="alice:demo")
    assert resp.status_code == 409, resp.text
    assert resp.json()["conflictingRequest"]["message"] == f"Instance {server_id} is locked"


async def test_migrate_needs_the_manager_or_admin_role(herald: Herald) -> None:
    server = {"name": "vm", "imageRef": IMAGE, "flavorRef": "1", "networks": "none"}
    resp = await herald.post("/v2.1/servers", {"server": server}, version="2.76", token="alice:demo")
    server_id = resp.json()["server"]["id"]
    await herald.settle()
    resp = await _action(herald, server_id, {"migrate": None}, token="alice:demo")
    assert resp.status_code == 403, resp.text
    resp = await herald.client.get("/v2.1/os-migrations", headers={"X-Auth-Token": "alice:demo"})
    assert resp.status_code == 403, resp.text


@pytest.fixture
async def lone_host(db_url: str, engine: Any) -> AsyncIterator[Herald]:
    service, _ = await start_herald(settings_for(db_url, hosts=("compute-1",)))
    try:
        yield service
    finally:
        await stop_herald(service)


async def test_no_other_host_leaves_the_server_as_it_was(lone_host: Herald) -> None:
    """Nova's conductor answers after the 202: no valid host, the server unchanged, the migration in error."""
    herald = lone_host
    server_id = await herald.create_server(host="compute-1")
    server = await _moved(herald, server_id, {"migrate": None})
    assert (server["status"], server["OS-EXT-STS:task_state"]) == ("ACTIVE", None)
    assert server["OS-EXT-SRV-ATTR:host"] == "compute-1"
    assert await _action_events(herald, server_id, "migrate") == ["conductor_migrate_server:Error"]
    assert [m["status"] for m in await _migrations(herald, instance_uuid=server_id)] == ["error"]


async def test_events_during_verify_resize_reach_both_hosts_and_act_once(herald: Herald) -> None:
    server_id = await herald.create_server(host="compute-1")
    await _moved(herald, server_id, {"migrate": None})

    resp = await herald.events([{"name": "network-changed", "server_uuid": server_id}])
    assert resp.status_code == 200
    resp = await herald.events([{"name": "power-update", "server_uuid": server_id, "tag": "POWER_OFF"}])
    assert resp.status_code == 200
    await herald.settle()

    records = await herald.records(server_uuid=server_id)
    by_name: dict[str, dict[str, str]] = {}
    for record in records:
        by_name.setdefault(record["name"], {})[record["host"]] = record["outcome"]
    assert set(by_name["network-changed"]) == {"compute-1", "compute-2"}
    assert by_name["network-changed"]["compute-2"] == "network info refreshed for all ports"
    assert by_name["network-changed"]["compute-1"] == "not handled here: host compute-2 holds the server"
    assert by_name["power-update"]["compute-1"] == "not handled here: host compute-2 holds the server"
    # Only the destination recorded the power-update step (a no-op: a resized server is not stopped by it).
    assert await _power_update_steps(herald, server_id) == ["compute-2"]
    assert herald.driver("compute-1").power_update_calls == []


async def _power_update_steps(herald: Herald, server_id: str) -> list[str]:
    resp = await herald.get(f"/v2.1/servers/{server_id}/os-instance-actions", version="2.84")
    hosts = []
    for action in resp.json()["instanceActions"]:
        path = f"/v2.1/servers/{server_id}/os-instance-actions/{action['request_id']}"
        detail = await herald.get(path, version="2.84")
        hosts += [e["host"] for e in detail.json()["instanceAction"]["events"] if e["event"] == "compute_power_update"]
    return hosts


async def test_destination_needs_no_plug_event_and_revert_waits_on_the_source(herald: Herald) -> None:
    """Nova's finish_migration does not wait (its ports are already plugged); finish_revert_migration does."""
    server_id, port = await _boot_with_port(herald)
    server = await _moved(herald, server_id, {"migrate": None})
    assert server["status"] == "VERIFY_RESIZE"

    resp = await _action(herald, server_id, {"revertResize": None})
    assert resp.status_code == 202
    await _until_waiting(herald, "compute-1", server_id)
    assert (await herald.server(server_id))["status"] == "REVERT_RESIZE"
    resp = await herald.events([{"name": "network-vif-plugged", "server_uuid": server_id, "tag": port}])
    assert resp.status_code == 200
    await herald.settle()
    server = await herald.server(server_id)
    assert (server["status"], server["OS-EXT-SRV-ATTR:host"]) == ("ACTIVE", "compute-1")
    plugged = await herald.records(server_uuid=server_id)
    woke = [r["host"] for r in plugged if r["outcome"] == "woke the operation waiting for it"]
    assert woke.count("compute-1") == 2  # the boot's and the revert's


async def test_revert_needs_no_plug_event_for_a_port_its_network_wired_itself(herald: Herald) -> None:
    """An auto-allocated port of the in-memory network is active at once (it sends no events): the
    revert does not wait for it, as the boot did not."""
    server_id = await herald.create_server(host="compute-1", networks="auto")
    assert (await herald.server(server_id))["addresses"]
    await _moved(herald, server_id, {"migrate": None})
    resp = await _action(herald, server_id, {"revertResize": None})
    assert resp.status_code == 202
    await herald.settle()
    server = await herald.server(server_id)
    assert (server["status"], server["OS-EXT-SRV-ATTR:host"]) == ("ACTIVE", "compute-1")
    assert not herald.deps.agents["compute-1"].waiters.pending(server_id)


@pytest.fixture
async def short_plug_timeout(db_url: str, engine: Any) -> AsyncIterator[Herald]:
    service, _ = await start_herald(settings_for(db_url, vif_plugging_timeout=1))
    try:
        yield service
    finally:
        await stop_herald(service)


async def test_revert_whose_ports_never_come_up_ends_in_error(short_plug_timeout: Herald) -> None:
    herald = short_plug_timeout
    server_id, _ = await _boot_with_port(herald)
    await _moved(herald, server_id, {"migrate": None})
    resp = await _action(herald, server_id, {"revertResize": None})
    assert resp.status_code == 202
    await _until_waiting(herald, "compute-1", server_id)
    await herald.settle()
    for agent in herald.deps.agents.values():
        await agent.run_until_idle()
    server = await herald.server(server_id)
    assert server["status"] == "ERROR"
    assert server["fault"]["message"] == "Virtual Interface creation failed"
    assert herald.driver("compute-1").machine(server_id).power == PowerState.SHUTDOWN  # type: ignore[union-attr]
    assert [m["status"] for m in await _migrations(herald, instance_uuid=server_id)] == ["error"]
    assert (await _action_events(herald, server_id, "revertResize"))[-1] == "compute_finish_revert_resize:Error"


async def test_os_migrations_pages_newest_first(herald: Herald) -> None:
    server_id = await herald.create_server(host="compute-1")
    await _moved(herald, server_id, {"migrate": None})
    assert (await _action(herald, server_id, {"confirmResize": None})).status_code == 204
    await herald.settle()
    await _moved(herald, server_id, {"migrate": None})
    first, second = await _migrations(herald)
    assert (first["status"], second["status"]) == ("finished", "confirmed")
    assert (first["source_compute"], second["source_compute"]) == ("compute-2", "compute-1")
    page = await _migrations(herald, limit="1")
    assert [m["uuid"] for m in page] == [first["uuid"]]
    rest = await _migrations(herald, marker=first["uuid"])
    assert [m["uuid"] for m in rest] == [second["uuid"]]
    headers = {"X-Auth-Token": "admin:admin", "OpenStack-API-Version": "compute 2.22"}
    old = (await herald.client.get("/v2.1/os-migrations", headers=headers)).json()["migrations"]
    assert "migration_type" not in old[0]
    assert "uuid" not in old[0]
    resp = await herald.get(f"/v2.1/servers/{server_id}/migrations", version="2.80")
    assert resp.status_code == 200
    assert resp.json() == {"migrations": []}  # no live migration in progress


@pytest.mark.parametrize(
    ("held", "task_state", "owner"),
    [
        # The source holds the server while it sends the disk ...
        ("migrate_disk_and_power_off", "resize_migrating", "compute-1"),
        # ... the destination from then on.
        ("finish_migration", "resize_finish", "compute-2"),
    ],
)
async def test_the_host_holding_the_server_at_each_step_is_the_one_that_acts(
    db_url: str, engine: Any, monkeypatch: pytest.MonkeyPatch, held: str, task_state: str, owner: str
) -> None:
    with blocking_drivers(monkeypatch, {held}) as gate:
        herald, _ = await start_herald(settings_for(db_url))
        try:
            server_id = await herald.create_server(host="compute-1")
            resp = await _action(herald, server_id, {"migrate": None})
            assert resp.status_code == 202
            await gate.wait_held(1)
            server = await herald.server(server_id)
            assert (server["status"], server["OS-EXT-STS:task_state"]) == ("RESIZE", task_state)
            assert server["OS-EXT-SRV-ATTR:host"] == owner

            resp = await herald.events([{"name": "network-changed", "server_uuid": server_id}])
            assert resp.status_code == 200
            for _ in range(1000):
                records = await herald.records(server_uuid=server_id)
                if len(records) == 2 and all(r["state"] == "handled" for r in records):
                    break
                await asyncio.sleep(0.005)
            outcomes = {r["host"]: r["outcome"] for r in await herald.records(server_uuid=server_id)}
            other = "compute-2" if owner == "compute-1" else "compute-1"
            assert outcomes == {
                owner: "network info refreshed for all ports",
                other: f"not handled here: host {owner} holds the server",
            }
            gate.release()
            await herald.settle()
            assert (await herald.server(server_id))["status"] == "VERIFY_RESIZE"
        finally:
            gate.release()
            await stop_herald(herald)


async def test_a_move_cut_short_by_a_restart_ends_in_error(
    db_url: str, engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Clearing the task alone would leave the server half on each host: an operator must look at it."""
    with blocking_drivers(monkeypatch, {"migrate_disk_and_power_off"}) as gate:
        herald, _ = await start_herald(settings_for(db_url))
        server_id = await herald.create_server(host="compute-1")
        assert (await _action(herald, server_id, {"migrate": None})).status_code == 202
        await gate.wait_held(1)
        # Killed: nothing under way finishes (the held driver call is let go only once the agents are gone).
        for agent in herald.deps.agents.values():
            await agent.abandon()
        gate.release()
        await crash_herald(herald)
    herald, _ = await start_herald(settings_for(db_url))
    try:
        server = await herald.server(server_id)
        assert (server["status"], server["OS-EXT-STS:task_state"]) == ("ERROR", None)
        assert server["fault"]["message"] == "The compute host restarted while the instance was being moved."
        assert [m["status"] for m in await _migrations(herald, instance_uuid=server_id)] == ["error"]
    finally:
        await stop_herald(herald)


async def test_deleting_a_server_in_verify_resize_confirms_the_move_first(herald: Herald) -> None:
    server_id = await herald.create_server(host="compute-1")
    await _moved(herald, server_id, {"resize": {"flavorRef": "2"}})
    resp = await herald.client.delete(f"/v2.1/servers/{server_id}", headers={"X-Auth-Token": "admin:admin"})
    assert resp.status_code == 204, resp.text
    await herald.settle()
    assert (await herald.get(f"/v2.1/servers/{server_id}")).status_code == 404
    assert herald.driver("compute-1").machine(server_id) is None
    assert herald.driver("compute-2").machine(server_id) is None
    assert [m["status"] for m in await _migrations(herald, instance_uuid=server_id)] == ["confirmed"]
