"""Version discovery documents (§1.5)."""

from __future__ import annotations

import httpx
import pytest

from herald.config import Settings
from tests.e2e.api.edge_app import build_app

BASE = "http://compute.test:8774"
MEDIA_V2 = [{"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2"}]
MEDIA_V21 = [{"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2.1"}]
DESCRIBED_BY = {"rel": "describedby", "type": "text/html", "href": "http://docs.openstack.org/"}


def versions(base: str) -> dict[str, object]:
    return {
        "versions": [
            {
                "id": "v2.0",
                "status": "DEPRECATED",
                "version": "",
                "min_version": "",
                "updated": "2025-07-04T12:00:00Z",
                "links": [{"rel": "self", "href": f"{base}/v2/"}],
            },
            {
                "id": "v2.1",
                "status": "CURRENT",
                "version": "2.104",
                "min_version": "2.1",
                "updated": "2013-07-23T11:33:21Z",
                "links": [{"rel": "self", "href": f"{base}/v2.1/"}],
            },
        ]
    }


V21 = {
    "version": {
        "id": "v2.1",
        "status": "CURRENT",
        "version": "2.104",
        "min_version": "2.1",
        "updated": "2013-07-23T11:33:21Z",
        "links": [{"rel": "self", "href": f"{BASE}/v2.1/"}, DESCRIBED_BY],
        "media-types": MEDIA_V21,
    }
}
V20 = {
    "version": {
        "id": "v2.0",
        "status": "DEPRECATED",
        "version": "",
        "min_version": "",
        "updated": "2025-07-04T12:00:00Z",
        "links": [{"rel": "self", "href": f"{BASE}/v2/"}, DESCRIBED_BY],
        "media-types": MEDIA_V2,
    }
}


async def test_root_lists_both_versions_unversioned_and_without_token(client: httpx.AsyncClient) -> None:
    r = await client.get("/", headers={"X-Auth-Token": "", "OpenStack-API-Version": "compute 9.0"})
    assert r.status_code == 200
    assert r.json() == versions(BASE)
    for name in ("openstack-api-version", "x-openstack-nova-api-version", "vary"):
        assert name not in r.headers


@pytest.mark.parametrize("path", ["/v2.1", "/v2.1/"])
async def test_v21_document_is_versioned(client: httpx.AsyncClient, path: str) -> None:
    r = await client.get(path, headers={"X-Auth-Token": "", "OpenStack-API-Version": "compute 2.50"})
    assert r.status_code == 200
    assert r.json() == V21
    assert r.headers["openstack-api-version"] == "compute 2.50"
    assert r.headers["x-openstack-nova-api-version"] == "2.50"
    assert r.headers.get_list("vary") == ["OpenStack-API-Version", "X-OpenStack-Nova-API-Version"]


async def test_v21_document_406_for_an_unsupported_version(client: httpx.AsyncClient) -> None:
    r = await client.get("/v2.1/", headers={"OpenStack-API-Version": "compute 2.200"})
    assert r.status_code == 406
    assert r.json()["computeFault"]["code"] == 406
    assert r.headers["openstack-api-version"] == "compute 2.200"


@pytest.mark.parametrize("path", ["/v2", "/v2/"])
async def test_v2_document_is_legacy(client: httpx.AsyncClient, path: str) -> None:
    r = await client.get(path, headers={"X-Auth-Token": "", "OpenStack-API-Version": "compute 9.0"})
    assert r.status_code == 200
    assert r.json() == V20
    assert "openstack-api-version" not in r.headers


async def test_versions_show_under_the_api(client: httpx.AsyncClient) -> None:
    r = await client.get("/v2.1/versions/v2.1")
    assert r.status_code == 200
    assert r.json() == V21
    r = await client.get("/v2.1/versions/v2.0")
    assert r.json() == {
        "version": {**V20["version"], "links": [{"rel": "self", "href": f"{BASE}/v2.1/"}, DESCRIBED_BY]}
    }
    r = await client.get("/v2.1/versions/v3")
    assert r.status_code == 404
    assert r.json() == {"itemNotFound": {"code": 404, "message": "The resource could not be found."}}
    r = await client.get("/v2/versions/v2.1")
    assert r.json() == V20


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_other_root_paths_are_300_choices(client: httpx.AsyncClient, method: str) -> None:
    r = await client.request(method, "/servers/detail", headers={"X-Auth-Token": ""})
    assert r.status_code == 300
    assert r.json() == {
        "choices": [
            {
                "id": "v2.0",
                "status": "DEPRECATED",
                "links": [{"rel": "self", "href": f"{BASE}/v2/servers/detail"}],
                "media-types": MEDIA_V2,
            },
            {
                "id": "v2.1",
                "status": "CURRENT",
                "links": [{"rel": "self", "href": f"{BASE}/v2.1/servers/detail"}],
                "media-types": MEDIA_V21,
            },
        ]
    }
    assert r.headers["x-openstack-request-id"].startswith("req-")


async def test_documents_honour_compute_link_prefix() -> None:
    prefix = "https://cloud.example.com/compute"
    app = build_app(settings=Settings(compute_link_prefix=prefix))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://10.0.0.1:8774") as c:
        assert (await c.get("/")).json() == versions(prefix)
        assert (await c.get("/v2.1")).json()["version"]["links"][0] == {"rel": "self", "href": f"{prefix}/v2.1/"}
        choices = (await c.get("/foo")).json()["choices"]
        assert choices[1]["links"][0]["href"] == f"{prefix}/v2.1/foo"


async def test_head_has_the_headers_without_the_body(client: httpx.AsyncClient) -> None:
    get = await client.get("/v2.1/")
    head = await client.head("/v2.1/")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == get.headers["content-length"]
    assert head.headers["openstack-api-version"] == "compute 2.1"
