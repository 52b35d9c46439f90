"""POST /os-server-external-events over HTTP: every rule Nova applies (microversions, per-event codes, 200/207)."""

from __future__ import annotations

import uuid

import pytest

from tests.e2e.harness import ADMIN, Herald

PATH = "/v2.1/os-server-external-events"
MISSING = "7e3f8c62-5c4c-4e9e-a0b6-2f0d8b6d8c11"


async def _offloaded_server(herald: Herald) -> str:
    server_id = await herald.create_server()
    resp = await herald.action(server_id, {"shelve": None})
    assert resp.status_code == 202, resp.text
    await herald.settle()
    server = await herald.server(server_id)
    assert server["status"] == "SHELVED_OFFLOADED"
    assert server["OS-EXT-SRV-ATTR:host"] is None
    return server_id


async def test_create_two_events(herald: Herald) -> None:
    a = await herald.create_server(host="compute-1")
    b = await herald.create_server(host="compute-2")
    resp = await herald.events(
        [
            {"name": "network-changed", "server_uuid": a},
            {"name": "network-changed", "server_uuid": b, "tag": "foo", "status": "completed"},
        ],
        version="2.1",
    )
    assert resp.status_code == 200
    assert resp.json() == {
        "events": [
            {"name": "network-changed", "server_uuid": a, "status": "completed", "code": 200},
            {"name": "network-changed", "server_uuid": b, "tag": "foo", "status": "completed", "code": 200},
        ]
    }
    assert resp.headers["openstack-api-version"] == "compute 2.1"
    assert resp.headers["x-openstack-request-id"].startswith("req-")
    await herald.settle()
    records = {r["server_uuid"]: r for r in await herald.records()}
    assert records[a]["host"] == "compute-1"
    assert records[b]["host"] == "compute-2"
    assert {r["state"] for r in records.values()} == {"handled"}


async def test_unknown_server_is_404_and_207(herald: Herald) -> None:
    a = await herald.create_server()
    resp = await herald.events(
        [{"name": "network-changed", "server_uuid": MISSING}, {"name": "network-changed", "server_uuid": a}]
    )
    assert resp.status_code == 207
    assert [(e["code"], e["status"]) for e in resp.json()["events"]] == [(404, "failed"), (200, "completed")]
    await herald.settle()
    assert [r["server_uuid"] for r in await herald.records()] == [a]


async def test_server_without_host_is_422(herald: Herald) -> None:
    offloaded = await _offloaded_server(herald)
    hosted = await herald.create_server()
    resp = await herald.events(
        [
            {"name": "network-vif-plugged", "server_uuid": offloaded, "tag": "p1"},
            {"name": "network-vif-plugged", "server_uuid": hosted, "tag": "p1"},
        ]
    )
    assert resp.status_code == 207
    assert [(e["code"], e["status"]) for e in resp.json()["events"]] == [(422, "failed"), (200, "completed")]


async def test_no_good_events_is_still_207(herald: Herald) -> None:
    offloaded = await _offloaded_server(herald)
    resp = await herald.events(
        [{"name": "network-changed", "server_uuid": MISSING}, {"name": "network-changed", "server_uuid": offloaded}]
    )
    assert resp.status_code == 207
    assert [e["code"] for e in resp.json()["events"]] == [404, 422]
    assert await herald.records() == []


async def test_accepted_status_is_completed_but_the_caller_status_is_kept(herald: Herald) -> None:
    a = await herald.create_server()
    resp = await herald.events([{"name": "network-vif-plugged", "server_uuid": a, "tag": "p", "status": "failed"}])
    assert resp.json()["events"][0] == {
        "name": "network-vif-plugged",
        "server_uuid": a,
        "tag": "p",
        "status": "completed",
        "code": 200,
    }
    await herald.settle()
    (record,) = await herald.records(server_uuid=a)
    assert record["status"] == "failed"


async def test_non_canonical_uuid_finds_the_server_and_is_echoed(herald: Herald) -> None:
    a = await herald.create_server()
    spelled = a.upper().replace("-", "")
    resp = await herald.events([{"name": "network-changed", "server_uuid": spelled}])
    assert resp.status_code == 200
    assert resp.json()["events"][0]["server_uuid"] == spelled


async def test_duplicates_are_processed_independently(herald: Herald) -> None:
    a = await herald.create_server()
    event = {"name": "network-changed", "server_uuid": a, "tag": "x"}
    resp = await herald.events([dict(event), dict(event)])
    assert [e["code"] for e in resp.json()["events"]] == [200, 200]
    await herald.settle()
    records = await herald.records(server_uuid=a)
    assert len(records) == 2
    assert len({r["id"] for r in records}) == 2


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "'events' is a required property"),
        ({"events": []}, "Invalid input for field/attribute events. Value: []. [] should be non-empty"),
        ({"events": "foo"}, "Invalid input for field/attribute events. Value: foo. 'foo' is not of type 'array'"),
        (
            {"events": [{"name": "network-changed", "server_uuid": MISSING}], "x": 1},
            "Additional properties are not allowed ('x' was unexpected)",
        ),
        (
            {"events": [{"name": "network-changed", "server_uuid": MISSING, "status": "foo"}]},
            "Invalid input for field/attribute status. Value: foo. 'foo' is not one of "
            "['failed', 'completed', 'in-progress']",
        ),
        (
            {"events": [{"name": "network-changed", "server_uuid": "abc"}]},
            "Invalid input for field/attribute server_uuid. Value: abc. 'abc' is not a 'uuid'",
        ),
        (
            {"events": [{"server_uuid": MISSING}]},
            f"Invalid input for field/attribute 0. Value: {{'server_uuid': '{MISSING}'}}. "
            "'name' is a required property",
        ),
        (
            {"events": [{"name": "network-changed", "server_uuid": MISSING, "foobar": 1}]},
            f"Invalid input for field/attribute 0. Value: {{'name': 'network-changed', 'server_uuid': '{MISSING}', "
            "'foobar': 1}. Additional properties are not allowed ('foobar' was unexpected)",
        ),
        (
            {"events": [{"name": "network-changed", "server_uuid": MISSING, "tag": None}]},
            "Invalid input for field/attribute tag. Value: None. None is not of type 'string'",
        ),
    ],
)
async def test_schema_violations_reject_the_whole_request(herald: Herald, body: object, message: str) -> None:
    resp = await herald.post(PATH, body, version="2.93")
    assert resp.status_code == 400
    assert resp.json() == {"badRequest": {"code": 400, "message": message}}
    assert await herald.records() == []


async def test_tag_longer_than_255_is_400(herald: Herald) -> None:
    a = await herald.create_server()
    resp = await herald.events([{"name": "network-changed", "server_uuid": a, "tag": "x" * 256}])
    assert resp.status_code == 400
    assert resp.json()["badRequest"]["message"].startswith("Invalid input for field/attribute tag. Value: xxx")
    assert resp.json()["badRequest"]["message"].endswith("is too long")
    ok = await herald.events([{"name": "network-changed", "server_uuid": a, "tag": "x" * 255}])
    assert ok.status_code == 200


@pytest.mark.parametrize(
    ("name", "introduced"),
    [
        ("volume-extended", "2.51"),
        ("power-update", "2.76"),
        ("accelerator-request-bound", "2.82"),
        ("volume-reimaged", "2.93"),
    ],
)
async def test_event_names_by_microversion(herald: Herald, name: str, introduced: str) -> None:
    a = await herald.create_server()
    major, minor = introduced.split(".")
    before = f"{major}.{int(minor) - 1}"
    tag = "POWER_OFF" if name == "power-update" else str(uuid.uuid4())
    resp = await herald.events([{"name": name, "server_uuid": a, "tag": tag}], version=before)
    assert resp.status_code == 400
    assert resp.json()["badRequest"]["message"].startswith("Invalid input for field/attribute name. Value: " + name)
    resp = await herald.events([{"name": name, "server_uuid": a, "tag": tag}], version=introduced)
    assert resp.status_code == 200, resp.text


@pytest.mark.parametrize(
    ("name", "version"),
    [("volume-extended", "2.51"), ("power-update", "2.76"), ("accelerator-request-bound", "2.82")],
)
async def test_missing_tag_is_a_per_event_400(
    herald: Herald, name: str, version: str, caplog: pytest.LogCaptureFixture
) -> None:
    a = await herald.create_server()
    caplog.set_level("DEBUG", logger="herald.service.accept")
    resp = await herald.events(
        [{"name": name, "server_uuid": a}, {"name": "network-changed", "server_uuid": a}], version=version
    )
    assert resp.status_code == 207
    assert [(e["code"], e["status"]) for e in resp.json()["events"]] == [(400, "failed"), (200, "completed")]
    assert "Event tag is missing for instance" in caplog.text


async def test_volume_reimaged_needs_no_tag(herald: Herald) -> None:
    a = await herald.create_server()
    resp = await herald.events([{"name": "volume-reimaged", "server_uuid": a}], version="2.93")
    assert resp.status_code == 200


async def test_power_update_with_an_unknown_tag_is_400_not_dropped(herald: Herald) -> None:
    """Herald's documented deviation: Nova answers 200 and then silently drops the event."""
    a = await herald.create_server()
    resp = await herald.events([{"name": "power-update", "server_uuid": a, "tag": "VACATION"}], version="2.76")
    assert resp.status_code == 207
    assert resp.json()["events"][0]["code"] == 400
    actions = (await herald.get(f"/v2.1/servers/{a}/os-instance-actions")).json()["instanceActions"]
    assert [x["action"] for x in actions] == ["create"]


async def test_api_layer_records_instance_actions_under_the_request_id(herald: Herald) -> None:
    a = await herald.create_server()
    resp = await herald.events(
        [
            {"name": "volume-extended", "server_uuid": a, "tag": "vol-1"},
            {"name": "power-update", "server_uuid": a, "tag": "POWER_OFF"},
        ],
        version="2.76",
    )
    assert resp.status_code == 200
    request_id = resp.headers["x-openstack-request-id"]
    actions = (await herald.get(f"/v2.1/servers/{a}/os-instance-actions", version="2.76")).json()["instanceActions"]
    ours = sorted(x["action"] for x in actions if x["request_id"] == request_id)
    assert ours == ["extend_volume", "stop"]


async def test_policy_member_is_forbidden_service_role_is_allowed(herald: Herald) -> None:
    a = await herald.create_server()
    body = {"events": [{"name": "network-changed", "server_uuid": a}]}
    resp = await herald.post(PATH, body, token="alice:demo")
    assert resp.status_code == 403
    assert resp.json() == {
        "forbidden": {
            "code": 403,
            "message": ("Policy doesn't allow os_compute_api:os-server-external-events:create to be performed."),
        }
    }
    resp = await herald.post(PATH, body, token="neutron:service", headers={"X-Roles": "service"})
    assert resp.status_code == 200


async def test_invalid_body_from_unauthorized_caller_is_400(herald: Herald) -> None:
    resp = await herald.post(PATH, {"events": []}, token="alice:demo")
    assert resp.status_code == 400


async def test_without_a_token_noauth2_answers_as_nova(herald: Herald) -> None:
    server = await herald.create_server()
    event = {"name": "network-changed", "server_uuid": server}
    resp = await herald.client.post(PATH, json={"events": [event]}, headers={"X-Auth-Project-Id": "p1"})
    assert (resp.status_code, resp.content) == (204, b"")
    assert resp.headers["x-auth-token"] == "admin:p1"
    assert resp.headers["x-server-management-url"] == f"http://herald.test{PATH}/p1"
    assert resp.headers["content-type"] == "text/plain; charset=UTF-8"
    assert resp.headers["x-compute-request-id"].startswith("req-")
    records = await herald.client.get(f"{PATH}?server_uuid={server}", headers={"X-Auth-Token": "admin:admin"})
    assert records.json()["events"] == []


async def test_an_empty_token_is_401(herald: Herald) -> None:
    resp = await herald.client.post(PATH, json={"events": []}, headers={"X-Auth-Token": ""})
    assert resp.status_code == 401
    assert resp.json()["unauthorized"]["code"] == 401


async def test_legacy_v2_strips_unknown_keys_and_uses_the_first_schema(herald: Herald) -> None:
    a = await herald.create_server()
    resp = await herald.post(
        "/v2/os-server-external-events",
        {"events": [{"name": "network-changed", "server_uuid": a, "junk": 1}], "more": 2},
    )
    assert resp.status_code == 200
    assert resp.json() == {
        "events": [{"name": "network-changed", "server_uuid": a, "status": "completed", "code": 200}]
    }
    assert "openstack-api-version" not in resp.headers
    resp = await herald.post(
        "/v2/os-server-external-events",
        {"events": [{"name": "power-update", "server_uuid": a, "tag": "POWER_ON"}]},
        version="2.76",
    )
    assert resp.status_code == 400


async def test_project_id_in_the_url(herald: Herald) -> None:
    a = await herald.create_server()
    body = {"events": [{"name": "network-changed", "server_uuid": a}]}
    project = "6f70656e737461636b20342065766572"
    resp = await herald.post(f"/v2.1/{project}/os-server-external-events", body, token=f"admin:{project}")
    assert resp.status_code == 200
    resp = await herald.post(f"/v2.1/{project}/os-server-external-events", body, token="admin:abcdef")
    assert resp.status_code == 400
    assert "Malformed request URL" in resp.json()["badRequest"]["message"]


async def test_body_limits_and_media_types(herald: Herald) -> None:
    a = await herald.create_server()
    big = {"events": [{"name": "network-changed", "server_uuid": a, "tag": "t" * 200}] * 600}
    resp = await herald.post(PATH, big)
    assert resp.status_code == 413
    assert resp.json()["overLimit"]["code"] == 413
    resp = await herald.client.post(
        PATH, content=b"<events/>", headers={"X-Auth-Token": "admin:admin", "Content-Type": "application/xml"}
    )
    assert resp.status_code == 415
    assert resp.json() == {"badMediaType": {"code": 415, "message": "Unsupported Content-Type"}}
    resp = await herald.client.post(
        PATH, content=b"{not json", headers={"X-Auth-Token": "admin:admin", "Content-Type": "application/json"}
    )
    assert resp.status_code == 400
    assert resp.json() == {"badRequest": {"code": 400, "message": "Malformed request body"}}
    deep = b"[" * 100 + b"]" * 100
    resp = await herald.client.post(PATH, content=deep, headers={"X-Auth-Token": "admin:admin"})
    assert resp.status_code == 400
    assert await herald.records() == []


async def test_unsupported_and_malformed_versions(herald: Herald) -> None:
    resp = await herald.post(PATH, {"events": []}, version="2.105")
    assert resp.status_code == 406
    assert resp.json()["computeFault"]["message"] == (
        "Version 2.105 is not supported by the API. Minimum is 2.1 and maximum is 2.104."
    )
    resp = await herald.post(PATH, {"events": []}, version="2.01")
    assert resp.status_code == 400


async def test_latest_accepts_every_event_name(herald: Herald) -> None:
    a = await herald.create_server()
    resp = await herald.events([{"name": "volume-reimaged", "server_uuid": a, "tag": "v"}], version="latest")
    assert resp.status_code == 200
    assert resp.headers["openstack-api-version"] == "compute 2.104"


async def test_event_records_need_admin_or_service(herald: Herald) -> None:
    resp = await herald.client.get(PATH, headers={"X-Auth-Token": "alice:demo"})
    assert resp.status_code == 403
    resp = await herald.client.get(PATH + "?state=bogus", headers={"X-Auth-Token": "admin:admin"})
    assert resp.status_code == 400


@pytest.mark.parametrize(
    "event",
    [
        {"name": [], "server_uuid": MISSING},
        {"name": {"a": 1}, "server_uuid": MISSING},
        {"name": "network-changed", "server_uuid": MISSING, "status": {"a": 1}},
        {"name": "network-changed", "server_uuid": MISSING, "status": ["completed"]},
        {"name": "network-changed", "server_uuid": 7},
        {"name": "network-changed", "server_uuid": MISSING, "tag": 10**30},
    ],
)
async def test_values_of_the_wrong_type_are_400_never_500(herald: Herald, event: dict[str, object]) -> None:
    for path in (PATH, "/v2/os-server-external-events"):
        resp = await herald.post(path, {"events": [event]}, version="2.93")
        assert resp.status_code == 400, resp.text
        assert "badRequest" in resp.json()


@pytest.mark.parametrize(
    "server_uuid",
    [
        "\u0660" * 32,  # Arabic-Indic digits: int() reads them, a UUID has none
        MISSING + "\n",
        " " + MISSING[1:],
        MISSING.replace("-", "")[:-1] + "_",
        "+" + MISSING.replace("-", "")[1:],
    ],
)
async def test_a_server_uuid_that_only_looks_like_a_uuid_is_400(herald: Herald, server_uuid: str) -> None:
    for version in ("2.1", "2.93"):
        resp = await herald.events([{"name": "network-changed", "server_uuid": server_uuid}], version=version)
        assert resp.status_code == 400, resp.text
        assert "server_uuid" in resp.json()["badRequest"]["message"]
    assert await herald.records() == []


async def test_a_trailing_slash_is_404_not_a_redirect(herald: Herald) -> None:
    a = await herald.create_server()
    for path in (PATH + "/", "/v2/os-server-external-events/"):
        resp = await herald.post(path, {"events": [{"name": "network-changed", "server_uuid": a}]})
        assert resp.status_code == 404, resp.text
        assert resp.json() == {"itemNotFound": {"code": 404, "message": "The resource could not be found."}}
    resp = await herald.get(f"/v2.1/servers/{a}/")
    assert resp.status_code == 404


@pytest.mark.parametrize("header", ["OpenStack-API-Version", "X-OpenStack-Nova-API-Version"])
async def test_a_version_of_thousands_of_digits_is_406_never_500(herald: Herald, header: str) -> None:
    huge = "2." + "1" * 5000
    value = f"compute {huge}" if header == "OpenStack-API-Version" else huge
    # The version document needs no token; the events API negotiates after authenticating.
    for resp in (
        await herald.client.get("/v2.1", headers={header: value}),
        await herald.client.post(PATH, json={"events": []}, headers={header: value, **ADMIN}),
    ):
        assert resp.status_code == 406, resp.text
        assert resp.json()["computeFault"]["message"].startswith(f"Version {huge} is not supported by the API.")
