"""``rebuild`` over HTTP: image-backed servers (schemas by microversion, reply, respawn's plug wait) and
volume-backed ones (2.93: the wait for ``volume-reimaged``)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import Engine

from tests.e2e.harness import Herald, crash_herald, settings_for, start_herald, stop_herald
from tests.e2e.lifecycle_helpers import (
    action_events,
    plug,
    server_with_unplugged_port,
    until_waiting,
    vif_states,
)

NEW_IMAGE = "a2459075-d96c-40d5-893e-577ff92e721c"
MEMBER = "alice:admin"


async def _rebuild(herald: Herald, server_id: str, body: dict[str, Any], version: str = "2.76") -> Any:
    return await herald.post(f"/v2.1/servers/{server_id}/action", {"rebuild": body}, version=version)


async def test_rebuild_reply_and_outcome(herald: Herald) -> None:
    server_id = await herald.create_server()
    body = {
        "imageRef": NEW_IMAGE,
        "name": "renamed",
        "metadata": {"role": "db"},
        "adminPass": "s3cret",
        "description": "rebuilt",
        "accessIPv6": "2001:0DB8:0000::0001",
        "preserve_ephemeral": False,
        "user_data": "aGVsbG8=",
    }
    resp = await _rebuild(herald, server_id, body, "2.76")
    assert resp.status_code == 202, resp.text
    server = resp.json()["server"]
    assert server["adminPass"] == "s3cret"
    assert server["image"]["id"] == NEW_IMAGE
    assert (server["name"], server["metadata"], server["description"]) == ("renamed", {"role": "db"}, "rebuilt")
    assert server["accessIPv6"] == "2001:db8::1"
    assert server["user_data"] == "aGVsbG8="
    # Nova shows user_data once: on its own (2.57), not as the extended attribute GET shows.
    assert "OS-EXT-SRV-ATTR:user_data" not in server
    assert server["OS-EXT-SRV-ATTR:host"] is not None
    assert server["status"] == "REBUILD"
    assert server["OS-EXT-STS:task_state"] == "rebuilding"
    await herald.settle()
    shown = await herald.server(server_id)
    assert (shown["status"], shown["OS-EXT-STS:power_state"], shown["image"]["id"]) == ("ACTIVE", 1, NEW_IMAGE)
    assert await action_events(herald, server_id, "rebuild") == [("compute_rebuild_instance", "Success")]


async def test_rebuild_reply_before_275_and_generated_password(herald: Herald) -> None:
    server_id = await herald.create_server()
    resp = await _rebuild(herald, server_id, {"imageRef": NEW_IMAGE}, "2.53")
    assert resp.status_code == 202, resp.text
    server = resp.json()["server"]
    assert len(server["adminPass"]) == 12
    for hidden in ("key_name", "OS-EXT-STS:task_state", "user_data"):
        assert hidden not in server
    await herald.settle()
    resp = await _rebuild(herald, server_id, {"imageRef": NEW_IMAGE, "key_name": None}, "2.54")
    assert resp.status_code == 202, resp.text
    assert resp.json()["server"]["key_name"] is None
    await herald.settle()


async def test_rebuild_of_a_stopped_server_leaves_it_stopped(herald: Herald) -> None:
    server_id = await herald.create_server()
    assert (await herald.action(server_id, {"os-stop": None})).status_code == 202
    await herald.settle()
    assert (await _rebuild(herald, server_id, {"imageRef": NEW_IMAGE})).status_code == 202
    await herald.settle()
    server = await herald.server(server_id)
    assert (server["status"], server["OS-EXT-STS:power_state"]) == ("SHUTOFF", 4)


@pytest.mark.parametrize(
    ("version", "body", "message"),
    [
        ("2.76", {}, "'imageRef' is a required property"),
        ("2.76", {"imageRef": "not-a-uuid"}, "is not a 'uuid'"),
        ("2.18", {"imageRef": NEW_IMAGE, "description": "x"}, "Additional properties are not allowed"),
        ("2.53", {"imageRef": NEW_IMAGE, "key_name": "k"}, "Additional properties are not allowed"),
        ("2.56", {"imageRef": NEW_IMAGE, "user_data": "aGVsbG8="}, "Additional properties are not allowed"),
        ("2.57", {"imageRef": NEW_IMAGE, "personality": []}, "Additional properties are not allowed"),
        ("2.89", {"imageRef": NEW_IMAGE, "hostname": "h"}, "Additional properties are not allowed"),
        ("2.54", {"imageRef": NEW_IMAGE, "key_name": "nope"}, "Invalid key_name provided."),
    ],
)
async def test_rebuild_bad_requests(herald: Herald, version: str, body: dict[str, Any], message: str) -> None:
    server_id = await herald.create_server()
    resp = await _rebuild(herald, server_id, body, version)
    assert resp.status_code == 400, resp.text
    assert message in resp.json()["badRequest"]["message"]


async def test_rebuild_refusals(herald: Herald) -> None:
    server_id = await herald.create_server()
    assert (await herald.action(server_id, {"lock": None})).status_code == 202
    resp = await herald.post(f"/v2.1/servers/{server_id}/action", {"rebuild": {"imageRef": NEW_IMAGE}}, token=MEMBER)
    assert resp.status_code == 409
    assert resp.json()["conflictingRequest"]["message"] == f"Instance {server_id} is locked"
    assert (await herald.action(server_id, {"unlock": None})).status_code == 202
    assert (await herald.action(server_id, {"shelve": None})).status_code == 202
    await herald.settle()
    resp = await _rebuild(herald, server_id, {"imageRef": NEW_IMAGE})
    assert resp.status_code == 409
    assert resp.json()["conflictingRequest"]["message"] == (
        f"Cannot 'rebuild' instance {server_id} while it is in vm_state shelved_offloaded"
    )


async def test_respawn_waits_for_the_inactive_port(db_url: str, engine: Engine) -> None:
    server_id, port = await server_with_unplugged_port(db_url)
    herald, _ = await start_herald(settings_for(db_url, vif_plugging_timeout=60))
    try:
        assert (await _rebuild(herald, server_id, {"imageRef": NEW_IMAGE})).status_code == 202
        await until_waiting(herald, server_id)
        assert (await herald.server(server_id))["status"] == "REBUILD"
        await plug(herald, server_id, port)
        await herald.settle()
        assert (await herald.server(server_id))["status"] == "ACTIVE"
        assert await vif_states(herald, server_id) == {port: True}
    finally:
        await stop_herald(herald)


async def test_respawn_without_its_plug_event_is_fatal(db_url: str, engine: Engine) -> None:
    server_id, _ = await server_with_unplugged_port(db_url)
    herald, _ = await start_herald(settings_for(db_url, vif_plugging_timeout=1, vif_plugging_is_fatal=True))
    try:
        assert (await _rebuild(herald, server_id, {"imageRef": NEW_IMAGE})).status_code == 202
        await herald.settle()
        server = await herald.server(server_id)
        assert (server["status"], server["fault"]["message"]) == ("ERROR", "Virtual Interface creation failed")
    finally:
        await stop_herald(herald)


# --- volume-backed (2.93) ---------------------------------------------------------------------


async def _volume_backed(herald: Herald) -> tuple[str, str]:
    volume = str(uuid.uuid4())
    bdm = {"boot_index": 0, "uuid": volume, "source_type": "volume", "destination_type": "volume", "volume_size": 1}
    body = {"server": {"name": "bfv", "flavorRef": "1", "networks": "none", "block_device_mapping_v2": [bdm]}}
    resp = await herald.post("/v2.1/servers", body, version="2.93")
    assert resp.status_code == 202, resp.text
    server_id: str = resp.json()["server"]["id"]
    await herald.settle()
    assert (await herald.server(server_id))["status"] == "ACTIVE"
    return server_id, volume


async def test_volume_backed_rebuild_with_a_new_image_needs_293(herald: Herald) -> None:
    server_id, _ = await _volume_backed(herald)
    resp = await _rebuild(herald, server_id, {"imageRef": NEW_IMAGE}, "2.92")
    assert resp.status_code == 400
    assert resp.json()["badRequest"]["message"] == (
        f"Image {NEW_IMAGE} is unacceptable: Unable to rebuild with a different image for a volume-backed server."
    )


async def test_volume_backed_rebuild_waits_for_volume_reimaged(herald: Herald) -> None:
    server_id, volume = await _volume_backed(herald)
    resp = await _rebuild(herald, server_id, {"imageRef": NEW_IMAGE}, "2.93")
    assert resp.status_code == 202, resp.text
    await until_waiting(herald, server_id)
    server = await herald.server(server_id)
    assert (server["status"], server["OS-EXT-STS:task_state"]) == ("REBUILD", "rebuilding")
    event = {"name": "volume-reimaged", "server_uuid": server_id, "tag": volume}
    assert (await herald.events([event])).status_code == 200
    await herald.settle()
    server = await herald.server(server_id)
    assert (server["status"], server["image"]) == ("ACTIVE", "")
    (record,) = [r for r in await herald.records(server_uuid=server_id) if r["name"] == "volume-reimaged"]
    assert record["state"] == "handled"


async def test_volume_backed_rebuild_fails_with_the_reimage(herald: Herald) -> None:
    server_id, volume = await _volume_backed(herald)
    assert (await _rebuild(herald, server_id, {"imageRef": NEW_IMAGE}, "2.93")).status_code == 202
    await until_waiting(herald, server_id)
    event = {"name": "volume-reimaged", "server_uuid": server_id, "tag": volume, "status": "failed"}
    assert (await herald.events([event])).status_code == 200
    await herald.settle()
    server = await herald.server(server_id)
    assert server["status"] == "ERROR"
    assert server["fault"]["message"] == (
        f"Build of instance {server_id} aborted: Failed to rebuild volume backed instance."
    )
    assert await action_events(herald, server_id, "rebuild") == [("compute_rebuild_instance", "Error")]


async def test_volume_backed_rebuild_times_out_after_a_gib_worth(db_url: str, engine: Engine) -> None:
    herald, _ = await start_herald(settings_for(db_url, reimage_timeout_per_gb=1))
    try:
        server_id, _ = await _volume_backed(herald)
        assert (await _rebuild(herald, server_id, {"imageRef": NEW_IMAGE}, "2.93")).status_code == 202
        await herald.settle()
        server = await herald.server(server_id)
        assert server["status"] == "ERROR"
        assert "Failed to rebuild volume backed instance." in server["fault"]["message"]
    finally:
        await stop_herald(herald)


def test_reimage_timeout_has_a_floor() -> None:
    from herald.agent.rebuild import reimage_timeout

    assert reimage_timeout(20, 0) == 20  # Nova: 0, and the rebuild fails at once
    assert reimage_timeout(20, 3) == 60


async def test_a_rebuild_cut_short_by_a_restart_ends_in_error(db_url: str, engine: Engine) -> None:
    herald, _ = await start_herald(settings_for(db_url))
    server_id, _ = await _volume_backed(herald)
    assert (await _rebuild(herald, server_id, {"imageRef": NEW_IMAGE}, "2.93")).status_code == 202
    await until_waiting(herald, server_id)
    await crash_herald(herald)
    herald, _ = await start_herald(settings_for(db_url))
    try:
        server = await herald.server(server_id)
        assert (server["status"], server["OS-EXT-STS:task_state"]) == ("ERROR", None)
        assert server["fault"]["message"] == "The compute host restarted while the instance was being rebuilt."
    finally:
        await stop_herald(herald)
