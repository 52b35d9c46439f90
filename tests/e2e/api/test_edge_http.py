"""The API edge through HTTP: microversions (§1.4), body rules (§1.2, §1.6), request ids, faults."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import orjson
import pytest

from herald.config import Settings
from tests.e2e.api.edge_app import build_app

VERSION_HEADERS = ("openstack-api-version", "x-openstack-nova-api-version")
P1 = "0a1b2c3d"


def assert_request_id(response: httpx.Response) -> None:
    rid = response.headers["x-openstack-request-id"]
    assert rid.startswith("req-")
    assert len(rid) == 40
    assert response.headers["x-compute-request-id"] == rid


def assert_versioned(response: httpx.Response, version: str) -> None:
    assert response.headers["openstack-api-version"] == f"compute {version}"
    assert response.headers["x-openstack-nova-api-version"] == version
    assert response.headers.get_list("vary") == ["OpenStack-API-Version", "X-OpenStack-Nova-API-Version"]


def assert_unversioned(response: httpx.Response) -> None:
    for name in (*VERSION_HEADERS, "vary"):
        assert name not in response.headers


async def test_no_version_header_is_2_1(client: httpx.AsyncClient) -> None:
    r = await client.get("/v2.1/echo")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.json()["version"] == "2.1"
    assert_versioned(r, "2.1")
    assert_request_id(r)
    assert r.json()["request_id"] == r.headers["x-openstack-request-id"]


@pytest.mark.parametrize(
    ("headers", "version"),
    [
        ({"OpenStack-API-Version": "compute 2.76"}, "2.76"),
        ({"X-OpenStack-Nova-API-Version": "2.51"}, "2.51"),
        ({"OpenStack-API-Version": "compute 2.82", "X-OpenStack-Nova-API-Version": "2.51"}, "2.82"),
        ({"OpenStack-API-Version": "identity 3.0, Compute 2.93, image 2.1"}, "2.93"),
        ({"OpenStack-API-Version": "placement 1.10", "X-OpenStack-Nova-API-Version": "2.60"}, "2.60"),
        ({"OpenStack-API-Version": "compute latest"}, "2.104"),
        ({"X-OpenStack-Nova-API-Version": "latest"}, "2.104"),
        ({"OpenStack-API-Version": "compute 2.104"}, "2.104"),
    ],
)
async def test_negotiation(client: httpx.AsyncClient, headers: dict[str, str], version: str) -> None:
    r = await client.get("/v2.1/echo", headers=headers)
    assert r.status_code == 200
    assert r.json()["version"] == version
    assert_versioned(r, version)


async def test_repeated_legacy_header_uses_the_last(client: httpx.AsyncClient) -> None:
    headers = [("X-OpenStack-Nova-API-Version", "2.10"), ("X-OpenStack-Nova-API-Version", "2.20")]
    r = await client.get("/v2.1/echo", headers=headers)
    assert r.json()["version"] == "2.20"


@pytest.mark.parametrize("value", ["2.01", "LATEST", "3", "compute"])
async def test_bad_version_string_is_400_without_version_headers(client: httpx.AsyncClient, value: str) -> None:
    r = await client.get("/v2.1/echo", headers={"X-OpenStack-Nova-API-Version": value})
    assert r.status_code == 400
    assert r.json() == {
        "badRequest": {
            "code": 400,
            "message": f"API Version String {value} is of invalid format. Must be of format MajorNum.MinorNum.",
        }
    }
    assert r.headers["content-type"] == "application/json; charset=UTF-8"
    assert_unversioned(r)
    assert_request_id(r)


@pytest.mark.parametrize("value", ["2.0", "2.105", "3.0"])
async def test_unsupported_version_is_406_echoing_it(client: httpx.AsyncClient, value: str) -> None:
    r = await client.get("/v2.1/echo", headers={"OpenStack-API-Version": f"compute {value}"})
    assert r.status_code == 406
    assert r.json() == {
        "computeFault": {
            "code": 406,
            "message": f"Version {value} is not supported by the API. Minimum is 2.1 and maximum is 2.104.",
        }
    }
    assert_versioned(r, value)
    assert_request_id(r)


async def test_faults_after_negotiation_carry_the_version(client: httpx.AsyncClient) -> None:
    r = await client.get("/v2.1/fail?kind=notfound", headers={"OpenStack-API-Version": "compute 2.60"})
    assert r.status_code == 404
    assert r.json() == {"itemNotFound": {"code": 404, "message": "Instance abc could not be found."}}
    assert_versioned(r, "2.60")


async def test_legacy_v2_ignores_version_headers_both_ways(client: httpx.AsyncClient) -> None:
    r = await client.get("/v2/echo", headers={"OpenStack-API-Version": "compute 9.9"})
    assert r.status_code == 200
    assert r.json()["legacy_v2"] is True
    assert r.json()["version"] == "2.0"
    assert r.json()["api_url"] == "http://compute.test:8774/v2"
    assert_unversioned(r)
    assert_request_id(r)
    r = await client.get("/v2/fail?kind=conflict", headers={"X-OpenStack-Nova-API-Version": "bogus"})
    assert r.status_code == 409
    assert r.json() == {
        "conflictingRequest": {"code": 409, "message": "Cannot 'start' instance abc while it is in vm_state active"}
    }
    assert_unversioned(r)


async def test_json_body_is_parsed(client: httpx.AsyncClient) -> None:
    r = await client.post("/v2.1/echo", json={"events": [{"name": "network-changed"}]})
    assert r.status_code == 200
    assert r.json()["body"] == {"events": [{"name": "network-changed"}]}
    assert r.json()["json"] == r.json()["body"]


@pytest.mark.parametrize(
    "content_type", [None, "application/json", "text/plain", "application/vnd.openstack.compute+json", ""]
)
async def test_accepted_content_types(client: httpx.AsyncClient, content_type: str | None) -> None:
    headers = {} if content_type is None else {"Content-Type": content_type}
    r = await client.put("/v2.1/echo", content=b'{"a": 1}', headers=headers)
    assert r.status_code == 200
    assert r.json()["body"] == {"a": 1}


@pytest.mark.parametrize("method", ["POST", "GET"])
async def test_unsupported_content_type_is_415(client: httpx.AsyncClient, method: str) -> None:
    r = await client.request(method, "/v2.1/echo", content=b"<a/>", headers={"Content-Type": "application/xml"})
    assert r.status_code == 415
    assert r.json() == {"badMediaType": {"code": 415, "message": "Unsupported Content-Type"}}
    assert_versioned(r, "2.1")
    assert_request_id(r)


@pytest.mark.parametrize("body", [b"{", b"not json", b'{"a": 1,}', b" "])
async def test_malformed_json_is_400(client: httpx.AsyncClient, body: bytes) -> None:
    r = await client.post("/v2.1/echo", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert r.json() == {"badRequest": {"code": 400, "message": "Malformed request body"}}


async def test_too_deep_json_is_400(client: httpx.AsyncClient) -> None:
    r = await client.post("/v2.1/echo", content=b"[" * 33 + b"]" * 33)
    assert r.status_code == 400
    r = await client.post("/v2.1/echo", content=b"[" * 32 + b"]" * 32)
    assert r.status_code == 200


async def test_empty_body_is_none(client: httpx.AsyncClient) -> None:
    r = await client.post("/v2.1/echo", content=b"", headers={"Content-Type": "application/json"})
    assert r.status_code == 200
    assert r.json()["body"] is None


async def test_body_of_a_get_is_not_read(client: httpx.AsyncClient) -> None:
    r = await client.request("GET", "/v2.1/echo", content=b"{garbage")
    assert r.status_code == 200
    assert r.json()["body"] is None


TOO_LARGE = {"overLimit": {"code": 413, "message": "Request is too large. Larger than max_request_body_size (1024)."}}


async def test_body_at_the_limit_is_fine(client: httpx.AsyncClient) -> None:
    body = orjson.dumps({"x": "a" * (1024 - 8)})
    assert len(body) == 1024
    r = await client.post("/v2.1/echo", content=body)
    assert r.status_code == 200


async def test_content_length_over_the_limit_is_413_before_auth(client: httpx.AsyncClient) -> None:
    body = orjson.dumps({"x": "a" * 1024})
    r = await client.post("/v2.1/echo", content=body, headers={"X-Auth-Token": ""})
    assert r.status_code == 413
    assert r.json() == TOO_LARGE
    assert_request_id(r)


async def test_chunked_body_over_the_limit_is_413(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"x": "'
        for _ in range(10):
            yield b"a" * 200
        yield b'"}'

    r = await client.post("/v2.1/echo", content=chunks())
    assert "content-length" not in r.request.headers
    assert r.status_code == 413
    assert r.json() == TOO_LARGE
    assert_versioned(r, "2.1")
    assert_request_id(r)


async def test_chunked_body_under_the_limit_is_parsed(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"a": '
        yield b"1}"

    r = await client.post("/v2.1/echo", content=chunks())
    assert r.status_code == 200
    assert r.json()["body"] == {"a": 1}


async def test_missing_token_is_401_with_request_id(client: httpx.AsyncClient) -> None:
    r = await client.get("/v2.1/echo", headers={"X-Auth-Token": ""})
    assert r.status_code == 401
    assert r.json() == {"unauthorized": {"code": 401, "message": "The request you have made requires authentication."}}
    assert_unversioned(r)
    assert_request_id(r)


async def test_noauth2_identity(client: httpx.AsyncClient) -> None:
    r = await client.get("/v2.1/echo", headers={"X-Auth-Token": "admin:0a1b"})
    assert (r.json()["user_id"], r.json()["project_id"]) == ("admin", "0a1b")
    assert r.json()["roles"] == ["admin", "member", "reader"]
    r = await client.get("/v2.1/echo", headers={"X-Auth-Token": "neutron:svc", "X-Roles": "service"})
    assert r.json()["roles"] == ["service"]


async def test_project_id_in_url_matching_the_token(client: httpx.AsyncClient) -> None:
    r = await client.get(f"/v2.1/{P1}/echo/thing?limit=5", headers={"X-Auth-Token": f"alice:{P1}"})
    assert r.status_code == 200
    assert r.json()["path_params"] == {"project_id": P1, "item": "thing"}
    assert r.json()["query"] == {"limit": "5"}


async def test_project_id_in_url_not_matching_the_token_is_400(client: httpx.AsyncClient) -> None:
    r = await client.post(f"/v2.1/{P1}/echo", json={}, headers={"X-Auth-Token": "alice:ffff"})
    assert r.status_code == 400
    assert r.json() == {
        "badRequest": {
            "code": 400,
            "message": f"Malformed request URL: URL's project_id '{P1}' doesn't match Context's project_id 'ffff'",
        }
    }
    assert_versioned(r, "2.1")


async def test_non_hex_project_segment_does_not_route(client: httpx.AsyncClient) -> None:
    r = await client.get("/v2.1/alice/echo")
    assert r.status_code == 404
    assert r.json() == {"itemNotFound": {"code": 404, "message": "The resource could not be found."}}
    assert_request_id(r)


async def test_unknown_api_path_needs_a_token_then_is_404(client: httpx.AsyncClient) -> None:
    r = await client.get("/v2.1/nothing-here", headers={"X-Auth-Token": ""})
    assert r.status_code == 401
    assert_request_id(r)
    r = await client.get("/v2.1/nothing-here")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/json; charset=UTF-8"


async def test_wrong_method_is_405(client: httpx.AsyncClient) -> None:
    r = await client.delete("/v2.1/os-server-external-events")
    assert r.status_code == 405
    assert r.json() == {"badMethod": {"code": 405, "message": "The method DELETE is not allowed for this resource."}}
    assert r.headers["allow"] == "POST"
    assert_request_id(r)


async def test_unexpected_error_is_json_500_without_details(client: httpx.AsyncClient) -> None:
    r = await client.get("/v2.1/fail")
    assert r.status_code == 500
    fault = r.json()["computeFault"]
    assert fault["code"] == 500
    assert fault["message"].startswith("Unexpected API Error.")
    assert fault["message"].endswith("<class 'ZeroDivisionError'>")
    assert "secret detail" not in r.text
    assert "Traceback" not in r.text
    assert_request_id(r)


async def test_api_fault_headers_are_sent(client: httpx.AsyncClient) -> None:
    r = await client.get("/v2.1/fail?kind=fault")
    assert r.status_code == 409
    assert r.headers["x-extra"] == "1"


async def test_empty_response_body(client: httpx.AsyncClient) -> None:
    r = await client.post("/v2.1/accepted")
    assert r.status_code == 202
    assert r.content == b""
    assert r.headers["location"] == "http://example/x"
    assert "content-type" not in r.headers
    assert_versioned(r, "2.1")


async def test_each_request_gets_its_own_id(client: httpx.AsyncClient) -> None:
    ids = {(await client.get("/v2.1/echo")).headers["x-openstack-request-id"] for _ in range(5)}
    assert len(ids) == 5


async def test_compute_link_prefix_rewrites_urls() -> None:
    app = build_app(settings=Settings(compute_link_prefix="https://cloud.example.com/compute"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://10.0.0.1:8774") as c:
        r = await c.get("/v2.1/echo", headers={"X-Auth-Token": "a"})
    assert r.json()["base_url"] == "https://cloud.example.com/compute"
    assert r.json()["api_url"] == "https://cloud.example.com/compute/v2.1"
