"""``reboot`` SOFT and HARD over HTTP: Nova's states and refusals, and the hard reboot's wait for plug events."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import Engine

from tests.e2e.harness import Herald, settings_for, start_herald, stop_herald
from tests.e2e.lifecycle_helpers import (
    action_events,
    plug,
    server_with_unplugged_port,
    until_status,
    until_waiting,
    vif_states,
)

MEMBER = "alice:admin"  # a non-admin member of the project the admin's servers are in


async def test_soft_reboot(herald: Herald) -> None:
    server_id = await herald.create_server()
    resp = await herald.action(server_id, {"reboot": {"type": "SOFT"}})
    assert resp.status_code == 202, resp.text
    assert resp.content == b""
    assert (await herald.server(server_id))["status"] in ("REBOOT", "ACTIVE")
    await herald.settle()
    server = await herald.server(server_id)
    assert (server["status"], server["OS-EXT-STS:task_state"], server["OS-EXT-STS:power_state"]) == ("ACTIVE", None, 1)
    assert await action_events(herald, server_id, "reboot") == [("compute_reboot_instance", "Success")]


async def test_hard_reboot_of_a_stopped_server_starts_it(herald: Herald) -> None:
    server_id = await herald.create_server()
    assert (await herald.action(server_id, {"os-stop": None})).status_code == 202
    await herald.settle()
    resp = await herald.action(server_id, {"reboot": {"type": "soft"}})
    assert resp.status_code == 409
    assert resp.json()["conflictingRequest"]["message"] == (
        f"Cannot 'reboot' instance {server_id} while it is in vm_state stopped"
    )
    resp = await herald.action(server_id, {"reboot": {"type": "Hard"}})
    assert resp.status_code == 202, resp.text
    await herald.settle()
    server = await herald.server(server_id)
    assert (server["status"], server["OS-EXT-STS:power_state"]) == ("ACTIVE", 1)


async def test_reboot_refusals(herald: Herald) -> None:
    server_id = await herald.create_server()
    resp = await herald.action(server_id, {"reboot": {"type": "WARM"}})
    assert resp.status_code == 400
    resp = await herald.action(server_id, {"reboot": {}})
    assert resp.status_code == 400
    resp = await herald.post(f"/v2.1/servers/{uuid.uuid4()}/action", {"reboot": {"type": "SOFT"}}, version="2.76")
    assert resp.status_code == 404
    assert (await herald.action(server_id, {"lock": None})).status_code == 202
    resp = await herald.post(f"/v2.1/servers/{server_id}/action", {"reboot": {"type": "HARD"}}, token=MEMBER)
    assert resp.status_code == 409
    assert resp.json()["conflictingRequest"]["message"] == f"Instance {server_id} is locked"


async def test_hard_reboot_does_not_wait_for_active_ports(herald: Herald) -> None:
    port = str(uuid.uuid4())
    server_id = await herald.create_server(networks=[{"port": port}], settle=False)
    await until_waiting(herald, server_id)
    await plug(herald, server_id, port)
    await herald.settle()
    assert await vif_states(herald, server_id) == {port: True}
    assert (await herald.action(server_id, {"reboot": {"type": "HARD"}})).status_code == 202
    await herald.settle()
    assert (await herald.server(server_id))["status"] == "ACTIVE"


async def test_hard_reboot_waits_for_the_inactive_port(db_url: str, engine: Engine) -> None:
    server_id, port = await server_with_unplugged_port(db_url)
    herald, _ = await start_herald(settings_for(db_url, vif_plugging_timeout=60))
    try:
        assert (await herald.action(server_id, {"reboot": {"type": "HARD"}})).status_code == 202
        await until_waiting(herald, server_id)
        server = await herald.server(server_id)
        assert server["status"] == "HARD_REBOOT"
        assert server["OS-EXT-STS:task_state"] in ("reboot_pending_hard", "reboot_started_hard")
        await plug(herald, server_id, port)
        await herald.settle()
        server = await herald.server(server_id)
        assert (server["status"], server["OS-EXT-STS:power_state"]) == ("ACTIVE", 1)
        assert await vif_states(herald, server_id) == {port: True}
        assert await action_events(herald, server_id, "reboot") == [("compute_reboot_instance", "Success")]
    finally:
        await stop_herald(herald)


@pytest.mark.parametrize("fatal", [True, False])
async def test_hard_reboot_without_the_plug_event(db_url: str, engine: Engine, fatal: bool) -> None:
    server_id, port = await server_with_unplugged_port(db_url)
    herald, _ = await start_herald(settings_for(db_url, vif_plugging_timeout=1, vif_plugging_is_fatal=fatal))
    try:
        assert (await herald.action(server_id, {"reboot": {"type": "HARD"}})).status_code == 202
        await herald.settle()
        server = await herald.server(server_id)
        if fatal:
            assert (server["status"], server["OS-EXT-STS:power_state"]) == ("ERROR", 4)
            assert server["fault"]["message"] == "Virtual Interface creation failed"
            assert await action_events(herald, server_id, "reboot") == [("compute_reboot_instance", "Error")]
        else:
            assert (server["status"], server["OS-EXT-STS:power_state"]) == ("ACTIVE", 1)
            assert await vif_states(herald, server_id) == {port: False}
    finally:
        await stop_herald(herald)


async def test_workaround_normal_waits_for_every_port(db_url: str, engine: Engine) -> None:
    settings = settings_for(db_url, vif_plugging_timeout=60, wait_for_vif_plugged_event_during_hard_reboot=("normal",))
    herald, _ = await start_herald(settings)
    try:
        port = str(uuid.uuid4())
        server_id = await herald.create_server(networks=[{"port": port}], settle=False)
        await until_waiting(herald, server_id)
        await plug(herald, server_id, port)
        await herald.settle()
        assert await vif_states(herald, server_id) == {port: True}
        assert (await herald.action(server_id, {"reboot": {"type": "HARD"}})).status_code == 202
        await until_waiting(herald, server_id)
        assert (await herald.server(server_id))["status"] == "HARD_REBOOT"
        await plug(herald, server_id, port)
        await until_status(herald, server_id, "ACTIVE")
        await herald.settle()
    finally:
        await stop_herald(herald)


async def test_build_marks_only_plugged_ports_active(db_url: str, engine: Engine) -> None:
    herald, _ = await start_herald(settings_for(db_url, vif_plugging_timeout=1, vif_plugging_is_fatal=False))
    try:
        plugged, silent = str(uuid.uuid4()), str(uuid.uuid4())
        server_id = await herald.create_server(networks=[{"port": plugged}, {"port": silent}], settle=False)
        await until_waiting(herald, server_id, 2)
        await plug(herald, server_id, plugged)
        await herald.settle()
        assert (await herald.server(server_id))["status"] == "ACTIVE"
        assert await vif_states(herald, server_id) == {plugged: True, silent: False}
    finally:
        await stop_herald(herald)
