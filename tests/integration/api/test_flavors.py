"""GET /flavors[/detail|/{id}]: the built-in m1.* flavors, per microversion."""

from __future__ import annotations

import pytest

from tests.integration.api.conftest import ALICE, Compute

BASE = "http://compute.test:8774"


async def test_list(compute: Compute) -> None:
    flavors = (await compute.get("/v2.1/flavors")).json()["flavors"]
    assert [(f["id"], f["name"]) for f in flavors] == [
        ("1", "m1.tiny"),
        ("2", "m1.small"),
        ("3", "m1.medium"),
        ("4", "m1.large"),
        ("5", "m1.xlarge"),
    ]
    assert flavors[0]["links"] == [
        {"rel": "self", "href": f"{BASE}/v2.1/flavors/1"},
        {"rel": "bookmark", "href": f"{BASE}/flavors/1"},
    ]
    assert "description" not in flavors[0]
    assert (await compute.get("/v2.1/flavors", version="2.55")).json()["flavors"][0]["description"] is None


async def test_detail_and_show(compute: Compute) -> None:
    detail = (await compute.get("/v2.1/flavors/detail?minRam=4096&minDisk=50")).json()["flavors"]
    assert [f["name"] for f in detail] == ["m1.large", "m1.xlarge"]
    tiny = (await compute.get("/v2.1/flavors/1")).json()["flavor"]
    assert {k: v for k, v in tiny.items() if k != "links"} == {
        "id": "1",
        "name": "m1.tiny",
        "ram": 512,
        "disk": 1,
        "vcpus": 1,
        "swap": "",
        "OS-FLV-EXT-DATA:ephemeral": 0,
        "OS-FLV-DISABLED:disabled": False,
        "os-flavor-access:is_public": True,
        "rxtx_factor": 1.0,
    }


@pytest.mark.parametrize(
    ("version", "present", "absent"),
    [
        ("2.61", {"extra_specs": {}, "swap": ""}, []),
        ("2.75", {"swap": 0}, []),
        ("2.102", {"swap": 0}, ["OS-FLV-DISABLED:disabled", "rxtx_factor"]),
    ],
)
async def test_show_by_microversion(
    compute: Compute, version: str, present: dict[str, object], absent: list[str]
) -> None:
    flavor = (await compute.get("/v2.1/flavors/2", version=version)).json()["flavor"]
    for key, value in present.items():
        assert flavor[key] == value
    for key in absent:
        assert key not in flavor


async def test_unknown_flavor(compute: Compute) -> None:
    response = await compute.client.get("/v2.1/flavors/99", headers=ALICE)
    assert response.json() == {"itemNotFound": {"code": 404, "message": "Flavor 99 could not be found."}}


async def test_paging(compute: Compute) -> None:
    page = (await compute.get("/v2.1/flavors?limit=2")).json()
    assert [f["id"] for f in page["flavors"]] == ["1", "2"]
    assert page["flavors_links"] == [{"rel": "next", "href": f"{BASE}/v2.1/flavors?limit=2&marker=2"}]
    rest = (await compute.get("/v2.1/flavors?limit=2&marker=4")).json()
    assert [f["id"] for f in rest["flavors"]] == ["5"]
    assert "flavors_links" not in rest
    bad = await compute.get("/v2.1/flavors?minRam=x")
    assert bad.json()["badRequest"]["message"] == "Invalid minRam filter [x]"
