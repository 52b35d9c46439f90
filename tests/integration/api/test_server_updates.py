"""PUT /servers/{id}, server metadata, server tags and server IPs over HTTP, as Nova answers them."""

from __future__ import annotations

from typing import Any

import httpx

from tests.integration.api.conftest import ADMIN, ALICE, BOB, READER, Compute

BASE = "http://compute.test:8774"


async def _send(
    compute: Compute, method: str, path: str, body: object = None, *, version: str = "2.1", headers: Any = None
) -> httpx.Response:
    return await compute.client.request(
        method,
        path,
        json=body,
        headers={**(headers or ALICE), "OpenStack-API-Version": f"compute {version}"},
    )


# --- PUT /servers/{id} ------------------------------------------------------------------------


async def test_update_changes_name_description_access_ips_and_disk_config(compute: Compute) -> None:
    uuid = await compute.active_server(name="before")
    body = {
        "server": {
            "name": "after",
            "description": "renamed",
            "accessIPv4": "192.0.2.7",
            "accessIPv6": "2001:db8::7",
            "OS-DCF:diskConfig": "AUTO",
        }
    }
    response = await _send(compute, "PUT", f"/v2.1/servers/{uuid}", body, version="2.19")
    assert response.status_code == 200, response.text
    reply = response.json()["server"]
    assert (reply["name"], reply["description"]) == ("after", "renamed")
    assert (reply["accessIPv4"], reply["accessIPv6"], reply["OS-DCF:diskConfig"]) == (
        "192.0.2.7",
        "2001:db8::7",
        "AUTO",
    )
    # Before 2.75 Nova's reply leaves out the extended attributes and the plain addresses' extras.
    for absent in ("OS-EXT-STS:vm_state", "key_name", "security_groups", "OS-EXT-AZ:availability_zone"):
        assert absent not in reply
    for ips in reply["addresses"].values():
        assert all(set(ip) == {"version", "addr"} for ip in ips)
    shown = (await compute.get(f"/v2.1/servers/{uuid}", version="2.19")).json()["server"]
    assert (shown["name"], shown["description"], shown["accessIPv4"]) == ("after", "renamed", "192.0.2.7")

    cleared = await _send(compute, "PUT", f"/v2.1/servers/{uuid}", {"server": {"description": None}}, version="2.19")
    assert cleared.json()["server"]["description"] is None
    assert cleared.json()["server"]["name"] == "after"


async def test_update_reply_is_the_full_view_from_2_75(compute: Compute) -> None:
    uuid = await compute.active_server()
    response = await _send(compute, "PUT", f"/v2.1/servers/{uuid}", {"server": {"name": "x"}}, version="2.75")
    reply = response.json()["server"]
    assert reply["OS-EXT-STS:vm_state"] == "active"
    assert "key_name" in reply


async def test_update_hostname_from_2_90_and_rename_keeps_it(compute: Compute) -> None:
    uuid = await compute.active_server(name="First Name")
    shown = (await compute.get(f"/v2.1/servers/{uuid}", version="2.90")).json()["server"]
    assert shown["OS-EXT-SRV-ATTR:hostname"] == "first-name"
    await _send(compute, "PUT", f"/v2.1/servers/{uuid}", {"server": {"name": "Other"}}, version="2.90")
    shown = (await compute.get(f"/v2.1/servers/{uuid}", version="2.90")).json()["server"]
    assert shown["OS-EXT-SRV-ATTR:hostname"] == "first-name"  # Nova sets it once, at creation
    await _send(compute, "PUT", f"/v2.1/servers/{uuid}", {"server": {"hostname": "web-01"}}, version="2.90")
    shown = (await compute.get(f"/v2.1/servers/{uuid}", version="2.90")).json()["server"]
    assert shown["OS-EXT-SRV-ATTR:hostname"] == "web-01"


async def test_update_refusals(compute: Compute) -> None:
    uuid = await compute.active_server()
    old = await _send(compute, "PUT", f"/v2.1/servers/{uuid}", {"server": {"description": "x"}}, version="2.18")
    assert old.status_code == 400
    assert "Additional properties are not allowed" in old.json()["badRequest"]["message"]
    bad_ip = await _send(compute, "PUT", f"/v2.1/servers/{uuid}", {"server": {"accessIPv4": "nope"}})
    assert bad_ip.status_code == 400
    reader = await _send(compute, "PUT", f"/v2.1/servers/{uuid}", {"server": {"name": "x"}}, headers=READER)
    assert reader.status_code == 403
    other = await _send(compute, "PUT", f"/v2.1/servers/{uuid}", {"server": {"name": "x"}}, headers=BOB)
    assert other.status_code == 404


# --- metadata ----------------------------------------------------------------------------------


async def test_metadata_lifecycle(compute: Compute) -> None:
    uuid = await compute.active_server(metadata={"a": "1"})
    path = f"/v2.1/servers/{uuid}/metadata"
    assert (await compute.get(path)).json() == {"metadata": {"a": "1"}}
    merged = await _send(compute, "POST", path, {"metadata": {"b": "2"}})
    assert (merged.status_code, merged.json()) == (200, {"metadata": {"a": "1", "b": "2"}})
    one = await _send(compute, "PUT", f"{path}/c", {"meta": {"c": "3"}})
    assert (one.status_code, one.json()) == (200, {"meta": {"c": "3"}})
    assert (await compute.get(f"{path}/c")).json() == {"meta": {"c": "3"}}
    replaced = await _send(compute, "PUT", path, {"metadata": {"z": "26"}})
    assert replaced.json() == {"metadata": {"z": "26"}}
    deleted = await _send(compute, "DELETE", f"{path}/z")
    assert deleted.status_code == 204
    assert (await compute.get(path)).json() == {"metadata": {}}
    shown = (await compute.get(f"/v2.1/servers/{uuid}")).json()["server"]
    assert shown["metadata"] == {}


async def test_metadata_refusals(compute: Compute) -> None:
    uuid = await compute.active_server()
    path = f"/v2.1/servers/{uuid}/metadata"
    missing = await compute.get(f"{path}/nope")
    assert missing.json() == {"itemNotFound": {"code": 404, "message": "Metadata item was not found"}}
    assert (await _send(compute, "DELETE", f"{path}/nope")).status_code == 404
    mismatch = await _send(compute, "PUT", f"{path}/a", {"meta": {"b": "1"}})
    assert mismatch.json() == {"badRequest": {"code": 400, "message": "Request body and URI mismatch"}}
    two = await _send(compute, "PUT", f"{path}/a", {"meta": {"a": "1", "b": "2"}})
    assert two.status_code == 400
    too_long = await _send(compute, "POST", path, {"metadata": {"a": "x" * 256}})
    assert too_long.status_code == 400
    over_quota = await _send(compute, "PUT", path, {"metadata": {f"k{i}": "v" for i in range(129)}})
    assert over_quota.json() == {"forbidden": {"code": 403, "message": "Maximum number of metadata items exceeds 128"}}
    at_quota = await _send(compute, "PUT", path, {"metadata": {f"k{i}": "v" for i in range(128)}})
    assert at_quota.status_code == 200
    assert (await _send(compute, "POST", path, {"metadata": {"one-more": "v"}})).status_code == 403
    reader = await _send(compute, "POST", path, {"metadata": {"a": "1"}}, headers=READER)
    assert reader.status_code == 403
    assert (await compute.get(path, READER)).status_code == 200


async def test_metadata_needs_a_settled_server(compute: Compute) -> None:
    uuid = await compute.create()  # still building
    response = await _send(compute, "POST", f"/v2.1/servers/{uuid}/metadata", {"metadata": {"a": "1"}})
    assert response.status_code == 409
    assert response.json()["conflictingRequest"]["message"] == (
        f"Cannot 'update metadata' instance {uuid} while it is in vm_state building"
    )


# --- tags --------------------------------------------------------------------------------------


async def test_tags_lifecycle(compute: Compute) -> None:
    uuid = await compute.active_server()
    path = f"/v2.1/servers/{uuid}/tags"
    assert (await compute.get(path, version="2.25")).status_code == 404
    assert (await compute.get(path, version="2.26")).json() == {"tags": []}
    added = await _send(compute, "PUT", f"{path}/web", version="2.26")
    assert added.status_code == 201
    assert added.headers["location"] == f"{BASE}/v2.1/servers/{uuid}/tags/web"
    assert (await _send(compute, "PUT", f"{path}/web", version="2.26")).status_code == 204
    assert (await _send(compute, "GET", f"{path}/web", version="2.26")).status_code == 204
    absent = await _send(compute, "GET", f"{path}/db", version="2.26")
    assert absent.json()["itemNotFound"]["message"] == f"Server {uuid} has no tag 'db'"
    replaced = await _send(compute, "PUT", path, {"tags": ["a", "b", "a"]}, version="2.26")
    assert replaced.json() == {"tags": ["a", "b"]}
    shown = (await compute.get(f"/v2.1/servers/{uuid}", version="2.26")).json()["server"]
    assert shown["tags"] == ["a", "b"]
    assert (await _send(compute, "DELETE", f"{path}/a", version="2.26")).status_code == 204
    gone = await _send(compute, "DELETE", f"{path}/a", version="2.26")
    assert gone.json()["itemNotFound"]["message"] == f"Instance {uuid} has no tag 'a'"
    assert (await _send(compute, "DELETE", path, version="2.26")).status_code == 204
    assert (await compute.get(path, version="2.26")).json() == {"tags": []}


async def test_tag_limits_and_bad_tags(compute: Compute) -> None:
    uuid = await compute.active_server()
    path = f"/v2.1/servers/{uuid}/tags"
    too_many = await _send(compute, "PUT", path, {"tags": [f"t{i}" for i in range(51)]}, version="2.26")
    assert too_many.status_code == 400
    full = await _send(compute, "PUT", path, {"tags": [f"t{i}" for i in range(50)]}, version="2.26")
    assert full.status_code == 200
    over = await _send(compute, "PUT", f"{path}/one-more", version="2.26")
    assert over.json() == {
        "badRequest": {"code": 400, "message": "The number of tags exceeded the per-server limit 50"}
    }
    long_tag = await _send(compute, "PUT", f"{path}/{'x' * 61}", version="2.26")
    assert long_tag.status_code == 400
    assert long_tag.json()["badRequest"]["message"].startswith(f"Tag '{'x' * 61}' is invalid.")
    comma = await _send(compute, "PUT", path, {"tags": ["a,b"]}, version="2.26")
    assert comma.status_code == 400
    building = await compute.create()
    conflict = await _send(compute, "PUT", f"/v2.1/servers/{building}/tags/x", version="2.26")
    assert conflict.status_code == 409


async def test_tags_on_create_and_list_filters(compute: Compute) -> None:
    web = await compute.create(version="2.52", tags=["web", "prod"])
    compute.clock.advance(1)
    db = await compute.create(version="2.52", tags=["db", "prod"])
    compute.clock.advance(1)
    bare = await compute.create(version="2.52")

    async def ids(query: str) -> list[str]:
        response = await compute.get(f"/v2.1/servers?{query}", version="2.52")
        assert response.status_code == 200, response.text
        return [s["id"] for s in response.json()["servers"]]

    assert await ids("tags=prod") == [db, web]
    assert await ids("tags=prod,web") == [web]
    assert await ids("tags-any=web,db") == [db, web]
    assert await ids("not-tags=prod,web") == [bare, db]
    assert await ids("not-tags-any=web,db") == [bare]
    listed = (await compute.get("/v2.1/servers/detail?tags=web", version="2.52")).json()["servers"]
    assert [s["tags"] for s in listed] == [["web", "prod"]]


# --- ips ---------------------------------------------------------------------------------------


async def test_ips_by_network(compute: Compute) -> None:
    uuid = await compute.active_server()
    listed = (await compute.get(f"/v2.1/servers/{uuid}/ips")).json()["addresses"]
    shown = (await compute.get(f"/v2.1/servers/{uuid}")).json()["server"]["addresses"]
    assert listed == {
        network: [{"version": ip["version"], "addr": ip["addr"]} for ip in ips] for network, ips in shown.items()
    }
    (network,) = listed
    one = await compute.get(f"/v2.1/servers/{uuid}/ips/{network}")
    assert one.json() == {network: listed[network]}
    missing = await compute.get(f"/v2.1/servers/{uuid}/ips/elsewhere")
    assert missing.json() == {"itemNotFound": {"code": 404, "message": "Instance is not a member of specified network"}}
    assert (await compute.get(f"/v2.1/servers/{uuid}/ips", BOB)).status_code == 404


# --- lock, unlock, os-resetState ---------------------------------------------------------------


async def test_a_locked_server_refuses_its_owner_but_not_an_admin(compute: Compute) -> None:
    uuid = await compute.active_server()
    locked = await compute.action(uuid, {"lock": {"locked_reason": "maintenance"}}, version="2.73")
    assert locked.status_code == 202, locked.text
    shown = (await compute.get(f"/v2.1/servers/{uuid}", version="2.73")).json()["server"]
    assert (shown["locked"], shown["locked_reason"]) == (True, "maintenance")
    refused = await compute.action(uuid, {"os-stop": None})
    assert refused.json() == {"conflictingRequest": {"code": 409, "message": f"Instance {uuid} is locked"}}
    meta = await _send(compute, "POST", f"/v2.1/servers/{uuid}/metadata", {"metadata": {"a": "1"}})
    assert meta.status_code == 409
    assert (await _send(compute, "DELETE", f"/v2.1/servers/{uuid}")).status_code == 409
    assert (await compute.action(uuid, {"os-stop": None}, ADMIN)).status_code == 202
    listed = await compute.get("/v2.1/servers?locked=true", version="2.73")
    assert [s["id"] for s in listed.json()["servers"]] == [uuid]
    assert (await compute.get("/v2.1/servers?locked=false", version="2.73")).json()["servers"] == []
    assert (await compute.get("/v2.1/servers?locked=maybe", version="2.73")).status_code == 400
    actions = (await compute.get(f"/v2.1/servers/{uuid}/os-instance-actions")).json()["instanceActions"]
    assert "lock" in [a["action"] for a in actions]


async def test_an_admins_lock_needs_the_override_to_be_undone(compute: Compute) -> None:
    uuid = await compute.active_server()
    assert (await compute.action(uuid, {"lock": None}, ADMIN)).status_code == 202
    by_owner = await compute.action(uuid, {"unlock": None})
    assert by_owner.status_code == 403
    assert (await compute.action(uuid, {"unlock": None}, ADMIN)).status_code == 202
    assert (await compute.get(f"/v2.1/servers/{uuid}", version="2.9")).json()["server"]["locked"] is False
    assert (await compute.action(uuid, {"lock": None})).status_code == 202
    assert (await compute.action(uuid, {"unlock": None})).status_code == 202
    assert (await compute.action(uuid, {"os-stop": None})).status_code == 202


async def test_lock_reason_is_kept_from_2_73(compute: Compute) -> None:
    uuid = await compute.active_server()
    # Before 2.73 Nova's schema takes any value for "lock" and reads nothing from it.
    old = await compute.action(uuid, {"lock": {"locked_reason": "x"}}, version="2.72")
    assert old.status_code == 202
    shown = (await compute.get(f"/v2.1/servers/{uuid}", version="2.73")).json()["server"]
    assert (shown["locked"], shown["locked_reason"]) == (True, None)
    unknown = await compute.action(uuid, {"lock": {"why": "x"}}, version="2.73")
    assert unknown.status_code == 400


async def test_reset_state_is_for_admins(compute: Compute) -> None:
    uuid = await compute.create()  # building, task scheduling
    assert (await compute.action(uuid, {"os-resetState": {"state": "active"}})).status_code == 403
    bad = await compute.action(uuid, {"os-resetState": {"state": "stopped"}}, ADMIN)
    assert bad.status_code == 400
    assert (await compute.action(uuid, {"os-resetState": {"state": "error"}}, ADMIN)).status_code == 202
    stored = compute.server(uuid)
    assert (stored.vm_state, stored.task_state) == ("error", None)
    assert (await compute.action(uuid, {"os-resetState": {"state": "active"}}, ADMIN)).status_code == 202
    assert compute.server(uuid).vm_state == "active"
