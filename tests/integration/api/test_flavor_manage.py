"""Flavors through the API: create (2.1, description 2.55), update (2.55), delete, and extra specs."""

from __future__ import annotations

from typing import Any

import httpx

from tests.integration.api.conftest import ADMIN, ALICE, Compute


async def _call(
    compute: Compute,
    method: str,
    path: str,
    body: Any = None,
    *,
    headers: dict[str, str] | None = None,
    version: str = "2.1",
) -> httpx.Response:
    return await compute.client.request(
        method,
        "/v2.1" + path,
        json=body,
        headers={**(headers or ADMIN), "OpenStack-API-Version": f"compute {version}"},
    )


def _flavor(**fields: Any) -> dict[str, Any]:
    return {"flavor": {"name": "accel.small", "ram": 1024, "vcpus": 2, "disk": 10, **fields}}


async def test_create_show_list_update_delete(compute: Compute) -> None:
    resp = await _call(compute, "POST", "/flavors", _flavor(id="acc-1", swap=512, description="GPU"), version="2.61")
    assert resp.status_code == 200, resp.text
    created = resp.json()["flavor"]
    assert {k: v for k, v in created.items() if k != "links"} == {
        "id": "acc-1",
        "name": "accel.small",
        "ram": 1024,
        "disk": 10,
        "vcpus": 2,
        "swap": 512,
        "OS-FLV-EXT-DATA:ephemeral": 0,
        "OS-FLV-DISABLED:disabled": False,
        "os-flavor-access:is_public": True,
        "rxtx_factor": 1.0,
        "description": "GPU",
        "extra_specs": {},
    }
    shown = (await _call(compute, "GET", "/flavors/acc-1", headers=ALICE, version="2.55")).json()["flavor"]
    assert (shown["name"], shown["description"]) == ("accel.small", "GPU")
    listed = (await compute.get("/v2.1/flavors")).json()["flavors"]
    assert [f["id"] for f in listed] == ["1", "2", "3", "4", "5", "acc-1"]

    resp = await _call(compute, "PUT", "/flavors/acc-1", {"flavor": {"description": None}}, version="2.55")
    assert resp.status_code == 200, resp.text
    assert resp.json()["flavor"]["description"] is None

    resp = await _call(compute, "DELETE", "/flavors/acc-1")
    assert resp.status_code == 202
    assert (await _call(compute, "GET", "/flavors/acc-1")).status_code == 404
    assert (await _call(compute, "DELETE", "/flavors/acc-1")).json() == {
        "itemNotFound": {"code": 404, "message": "Flavor acc-1 could not be found."}
    }


async def test_create_without_id_gets_a_uuid_and_strings_of_digits_count(compute: Compute) -> None:
    resp = await _call(compute, "POST", "/flavors", _flavor(ram="2048", vcpus="1", disk="0"))
    assert resp.status_code == 200, resp.text
    flavor = resp.json()["flavor"]
    assert len(flavor["id"]) == 36
    assert (flavor["ram"], flavor["vcpus"], flavor["disk"]) == (2048, 1, 0)
    assert "description" not in flavor


async def test_create_refusals(compute: Compute) -> None:
    # 409: Nova's texts for a taken name and a taken id.
    resp = await _call(compute, "POST", "/flavors", _flavor(name="m1.tiny"))
    assert resp.json() == {"conflictingRequest": {"code": 409, "message": "Flavor with name m1.tiny already exists."}}
    resp = await _call(compute, "POST", "/flavors", _flavor(id="1"))
    assert resp.json() == {"conflictingRequest": {"code": 409, "message": "Flavor with ID 1 already exists."}}
    # 400: the schema, and Nova's range checks.
    for body in (
        _flavor(ram=0),
        _flavor(ram="0"),
        _flavor(vcpus=-1),
        _flavor(name=" spaced "),
        _flavor(id=" x"),
        _flavor(extra=1),
        _flavor(description="too early"),  # 2.55
        {"flavor": {"name": "x", "ram": 1, "vcpus": 1}},
    ):
        resp = await _call(compute, "POST", "/flavors", body)
        assert resp.status_code == 400, (body, resp.text)
        assert resp.json()["badRequest"]["code"] == 400
    # 403: os_compute_api:os-flavor-manage:create is admin only.
    resp = await _call(compute, "POST", "/flavors", _flavor(), headers=ALICE)
    assert resp.status_code == 403
    assert resp.json()["forbidden"]["message"] == (
        "Policy doesn't allow os_compute_api:os-flavor-manage:create to be performed."
    )


async def test_update_refusals(compute: Compute) -> None:
    body = {"flavor": {"description": "d"}}
    assert (await _call(compute, "PUT", "/flavors/1", body, version="2.54")).status_code == 404
    assert (await _call(compute, "PUT", "/flavors/1", {"flavor": {"name": "x"}}, version="2.55")).status_code == 400
    assert (await _call(compute, "PUT", "/flavors/1", body, headers=ALICE, version="2.55")).status_code == 403
    assert (await _call(compute, "PUT", "/flavors/nope", body, version="2.55")).status_code == 404
    assert (await _call(compute, "DELETE", "/flavors/1", headers=ALICE)).status_code == 403


async def test_extra_specs(compute: Compute) -> None:
    specs = "/flavors/2/os-extra_specs"
    resp = await _call(compute, "POST", specs, {"extra_specs": {"accel:device_profile": "gpu", "hw:numa_nodes": 1}})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"extra_specs": {"accel:device_profile": "gpu", "hw:numa_nodes": 1}}
    resp = await _call(compute, "GET", specs, headers=ALICE)
    assert resp.json() == {"extra_specs": {"accel:device_profile": "gpu", "hw:numa_nodes": "1"}}
    assert (await _call(compute, "GET", specs + "/hw:numa_nodes", headers=ALICE)).json() == {"hw:numa_nodes": "1"}

    resp = await _call(compute, "PUT", specs + "/hw:numa_nodes", {"hw:numa_nodes": "2"})
    assert (resp.status_code, resp.json()) == (200, {"hw:numa_nodes": "2"})
    shown = (await _call(compute, "GET", "/flavors/2", version="2.61")).json()["flavor"]
    assert shown["extra_specs"] == {"accel:device_profile": "gpu", "hw:numa_nodes": "2"}
    assert "extra_specs" not in (await _call(compute, "GET", "/flavors/2", version="2.60")).json()["flavor"]

    assert (await _call(compute, "DELETE", specs + "/hw:numa_nodes")).status_code == 202
    resp = await _call(compute, "GET", specs + "/hw:numa_nodes")
    assert resp.json() == {
        "itemNotFound": {"code": 404, "message": "Flavor 2 has no extra specs with key hw:numa_nodes."}
    }
    assert (await _call(compute, "DELETE", specs + "/hw:numa_nodes")).status_code == 404


async def test_extra_spec_refusals(compute: Compute) -> None:
    specs = "/flavors/3/os-extra_specs"
    resp = await _call(compute, "PUT", specs + "/a", {"b": "1"})
    assert resp.json() == {"badRequest": {"code": 400, "message": "Request body and URI mismatch"}}
    assert (await _call(compute, "PUT", specs + "/a", {"a": "1", "b": "2"})).status_code == 400
    assert (await _call(compute, "POST", specs, {"extra_specs": {"bad/key": "1"}})).status_code == 400
    assert (await _call(compute, "POST", specs, {"extra_specs": {"k": "v" * 256}})).status_code == 400
    assert (await _call(compute, "POST", specs, {"specs": {}})).status_code == 400
    assert (await _call(compute, "POST", specs, {"extra_specs": {"k": "v"}}, headers=ALICE)).status_code == 403
    assert (await _call(compute, "DELETE", specs + "/k", headers=ALICE)).status_code == 403
    assert (await _call(compute, "POST", "/flavors/nope/os-extra_specs", {"extra_specs": {"k": "v"}})).json() == {
        "itemNotFound": {"code": 404, "message": "Flavor nope could not be found."}
    }
    assert (await _call(compute, "GET", "/flavors/nope/os-extra_specs")).status_code == 404


async def test_a_server_keeps_its_flavor_when_the_flavor_goes(compute: Compute) -> None:
    resp = await _call(compute, "POST", "/flavors", _flavor(id="short-lived"))
    assert resp.status_code == 200
    await _call(compute, "POST", "/flavors/short-lived/os-extra_specs", {"extra_specs": {"k": "v"}})
    uuid = await compute.create(ADMIN, flavorRef="short-lived")
    assert (await _call(compute, "DELETE", "/flavors/short-lived")).status_code == 202
    server = (await _call(compute, "GET", f"/servers/{uuid}", version="2.47")).json()["server"]
    assert server["flavor"] == {
        "vcpus": 2,
        "ram": 1024,
        "disk": 10,
        "ephemeral": 0,
        "swap": 0,
        "original_name": "accel.small",
        "extra_specs": {"k": "v"},
    }
    server = (await _call(compute, "GET", f"/servers/{uuid}")).json()["server"]
    assert server["flavor"]["id"] == "short-lived"
    # A deleted flavor is no flavor for a new server (Nova's 400 for an unknown flavorRef).
    body = {"server": {"name": "vm", "imageRef": "70a599e0-31e7-49b7-b260-868f441e862b", "flavorRef": "short-lived"}}
    resp = await _call(compute, "POST", "/servers", body)
    assert resp.json() == {"badRequest": {"code": 400, "message": "Flavor short-lived could not be found."}}


async def test_a_private_flavor_is_for_admins_only(compute: Compute) -> None:
    resp = await _call(compute, "POST", "/flavors", _flavor(id="private", **{"os-flavor-access:is_public": "false"}))
    assert (resp.status_code, resp.json()["flavor"]["os-flavor-access:is_public"]) == (200, False)
    assert (await _call(compute, "GET", "/flavors/private")).status_code == 200
    assert (await _call(compute, "GET", "/flavors/private", headers=ALICE)).json() == {
        "itemNotFound": {"code": 404, "message": "Flavor private could not be found."}
    }
    assert (await _call(compute, "GET", "/flavors/private/os-extra_specs", headers=ALICE)).status_code == 404
    assert "private" not in [f["id"] for f in (await compute.get("/v2.1/flavors")).json()["flavors"]]
    listed = (await _call(compute, "GET", "/flavors?is_public=none")).json()["flavors"]
    assert "private" in [f["id"] for f in listed]
    body = {"server": {"name": "vm", "imageRef": "70a599e0-31e7-49b7-b260-868f441e862b", "flavorRef": "private"}}
    resp = await _call(compute, "POST", "/servers", body, headers=ALICE)
    assert resp.json() == {"badRequest": {"code": 400, "message": "Flavor private could not be found."}}
