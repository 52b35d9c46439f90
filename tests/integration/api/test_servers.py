"""POST/GET/DELETE /servers: creation, scheduling, project scoping and the server view per microversion."""

from __future__ import annotations

import hashlib
import uuid as uuidlib

import pytest
from sqlalchemy import Engine, text

from herald.domain.messages import BuildServer
from tests.integration.api.conftest import ADMIN, ALICE, BOB, IMAGE, READER, Compute

BASE = "http://compute.test:8774"
NO_VALID_HOST = "No valid host was found. There are not enough hosts available."


async def test_create_answers_202_with_links_and_sends_build_to_a_host(compute: Compute) -> None:
    response = await compute.client.post(
        "/v2.1/servers", json={"server": {"name": "vm", "imageRef": IMAGE, "flavorRef": "1"}}, headers=ALICE
    )
    assert response.status_code == 202
    server = response.json()["server"]
    uuid = server["id"]
    assert server["links"] == [
        {"rel": "self", "href": f"{BASE}/v2.1/servers/{uuid}"},
        {"rel": "bookmark", "href": f"{BASE}/servers/{uuid}"},
    ]
    assert server["OS-DCF:diskConfig"] == "MANUAL"
    assert server["security_groups"] == [{"name": "default"}]
    assert len(server["adminPass"]) == 12
    assert response.headers["location"] == f"{BASE}/v2.1/servers/{uuid}"
    request_id = response.headers["x-openstack-request-id"]
    assert await compute.messages() == [("compute-1", BuildServer(uuid, request_id))]
    stored = compute.server(uuid)
    assert (stored.vm_state, stored.task_state, stored.power_state) == ("building", "scheduling", 0)
    assert (stored.host, stored.node, stored.project_id, stored.user_id) == ("compute-1", "compute-1", "0b0b", "alice")
    assert [v.active for v in stored.vifs] == [True]  # an "auto" port is wired by the backend


async def test_scheduler_picks_the_host_with_fewest_servers(compute: Compute) -> None:
    hosts = []
    for _ in range(3):
        hosts.append(compute.server(await compute.create()).host)
    assert hosts == ["compute-1", "compute-2", "compute-1"]


async def test_scheduler_skips_down_and_disabled_hosts(compute: Compute, engine: Engine) -> None:
    compute.clock.advance(61)
    compute.heartbeat("compute-2", "compute-3")
    with engine.begin() as conn:
        conn.execute(text("UPDATE services SET disabled = :t WHERE host = 'compute-3'"), {"t": True})
    for _ in range(2):
        assert compute.server(await compute.create()).host == "compute-2"


async def test_no_host_up_puts_the_server_in_error_with_a_fault(compute: Compute) -> None:
    compute.clock.advance(61)
    uuid = await compute.create()
    assert await compute.messages() == []
    stored = compute.server(uuid)
    assert (stored.vm_state, stored.task_state, stored.host, stored.vifs) == ("error", None, None, [])
    shown = (await compute.get(f"/v2.1/servers/{uuid}")).json()["server"]
    assert shown["status"] == "ERROR"
    assert shown["fault"] == {"code": 500, "created": "2025-03-04T05:07:08Z", "message": NO_VALID_HOST}
    assert shown["hostId"] == ""
    assert shown["OS-EXT-AZ:availability_zone"] == ""
    actions = await compute.get(f"/v2.1/servers/{uuid}/os-instance-actions/{_request_id(compute, uuid)}", ADMIN)
    action = actions.json()["instanceAction"]
    assert action["message"] == "Error"
    assert [(e["event"], e["result"]) for e in action["events"]] == [
        ("conductor_schedule_and_build_instances", "Error")
    ]


def _request_id(compute: Compute, uuid: str) -> str:
    with compute.uow_factory() as uow:
        return uow.actions.list_for_server(uuid)[0].request_id


async def test_requested_ports_come_back_inactive(compute: Compute) -> None:
    port = str(uuidlib.uuid4())
    network = str(uuidlib.uuid4())
    uuid = await compute.create(version="2.37", networks=[{"port": port}, {"uuid": network}])
    vifs = compute.server(uuid).vifs
    assert next((v.port_id, v.active) for v in vifs) == (port, False)
    assert (vifs[1].network_id, vifs[1].active) == (network, False)
    none = await compute.create(version="2.37", networks="none")
    assert compute.server(none).vifs == []


@pytest.mark.parametrize(
    ("version", "server", "message"),
    [
        ("2.37", {}, "'networks' is a required property"),
        ("2.1", {"networks": [{"uuid": "nope"}]}, "Bad networks format: network uuid is not in proper format (nope)"),
        ("2.1", {"flavorRef": "99"}, "Flavor 99 could not be found."),
        ("2.1", {"imageRef": ""}, "Missing imageRef attribute"),
        ("2.1", {"name": None}, "Invalid input for field/attribute name. Value: None. None is not of type 'string'"),
        (
            "2.73",
            {"host": "compute-1", "networks": "auto"},
            "Additional properties are not allowed ('host' was unexpected)",
        ),
        ("2.74", {"host": "nope", "networks": "auto"}, "Compute host nope could not be found."),
        ("2.1", {"availability_zone": "elsewhere"}, "The requested availability zone is not available"),
        ("2.1", {"min_count": 3, "max_count": 2}, "min_count must be <= max_count"),
        ("2.1", {"max_count": 0}, "0 is less than the minimum of 1"),
        ("2.1", {"max_count": 2, "hostname": "x"}, "Additional properties are not allowed ('hostname' was unexpected)"),
        (
            "2.90",
            {"max_count": 2, "hostname": "web", "networks": "auto"},
            "Unable to allocate a single hostname to multiple instances",
        ),
        ("2.1", {"key_name": "mykey"}, "Invalid key_name provided."),
        ("2.1", {"security_groups": [{"name": "default"}, {"name": "web"}]}, "Security group web not found."),
        ("2.1", {"accessIPv4": "10.0.0.300"}, "'10.0.0.300' is not a 'ipv4'"),
    ],
)
async def test_create_rejects_bad_requests(
    compute: Compute, version: str, server: dict[str, object], message: str
) -> None:
    body = {"server": {"name": "vm", "imageRef": IMAGE, "flavorRef": "1", **server}}
    response = await compute.client.post(
        "/v2.1/servers", json=body, headers={**ADMIN, "OpenStack-API-Version": f"compute {version}"}
    )
    assert response.status_code == 400, response.text
    assert response.json()["badRequest"]["message"].endswith(message)


async def test_boot_from_volume(compute: Compute) -> None:
    volume = str(uuidlib.uuid4())
    compute.volumes.set_size_gb(volume, 10)
    bdm = [{"source_type": "volume", "destination_type": "volume", "uuid": volume, "boot_index": 0}]
    uuid = await compute.active_server(imageRef="", block_device_mapping_v2=bdm)
    (attached,) = compute.server(uuid).volumes
    assert (attached.volume_id, attached.size_gb, attached.device_name) == (volume, 10, "/dev/vda")
    assert attached.attachment_id is not None
    assert attached.bdm_uuid is not None
    shown = (await compute.get(f"/v2.1/servers/{uuid}")).json()["server"]
    assert shown["image"] == ""
    assert shown["os-extended-volumes:volumes_attached"] == [{"id": volume}]
    # A volume the embedded block storage does not know exists on demand, 1 GiB.
    unknown = {**bdm[0], "uuid": str(uuidlib.uuid4())}
    other = await compute.active_server(imageRef="", block_device_mapping_v2=[unknown])
    assert [(v.volume_id, v.size_gb) for v in compute.server(other).volumes] == [(unknown["uuid"], 1)]


async def test_admin_can_request_a_host(compute: Compute) -> None:
    uuid = await compute.create(ADMIN, version="2.74", host="compute-2")
    assert compute.server(uuid).host == "compute-2"
    forced = await compute.create(ADMIN, availability_zone="nova:compute-2")
    assert compute.server(forced).host == "compute-2"
    compute.clock.advance(61)
    compute.heartbeat("compute-1")
    down = await compute.create(ADMIN, version="2.74", host="compute-2")
    assert (compute.server(down).vm_state, compute.server(down).host) == ("error", None)


@pytest.mark.parametrize(
    ("version", "server", "rule"),
    [
        ("2.74", {"host": "compute-2", "networks": "auto"}, "compute:servers:create:requested_destination"),
        (
            "2.74",
            {"hypervisor_hostname": "compute-2", "networks": "auto"},
            "compute:servers:create:requested_destination",
        ),
        ("2.1", {"availability_zone": "nova:compute-2"}, "os_compute_api:servers:create:forced_host"),
    ],
)
async def test_non_admins_cannot_pick_a_host(
    compute: Compute, version: str, server: dict[str, object], rule: str
) -> None:
    body = {"server": {"name": "vm", "imageRef": IMAGE, "flavorRef": "1", **server}}
    response = await compute.client.post(
        "/v2.1/servers", json=body, headers={**ALICE, "OpenStack-API-Version": f"compute {version}"}
    )
    assert response.status_code == 403
    assert response.json()["forbidden"]["message"] == f"Policy doesn't allow {rule} to be performed."


async def test_a_reader_cannot_create(compute: Compute) -> None:
    body = {"server": {"name": "vm", "imageRef": IMAGE, "flavorRef": "1"}}
    response = await compute.client.post("/v2.1/servers", json=body, headers=READER)
    assert response.status_code == 403


async def test_listing_is_scoped_to_the_project(compute: Compute) -> None:
    mine = await compute.create(ALICE, name="mine")
    theirs = await compute.create(BOB, name="theirs")
    alice = (await compute.get("/v2.1/servers", ALICE)).json()["servers"]
    assert alice == [
        {
            "id": mine,
            "name": "mine",
            "links": [
                {"rel": "self", "href": f"{BASE}/v2.1/servers/{mine}"},
                {"rel": "bookmark", "href": f"{BASE}/servers/{mine}"},
            ],
        }
    ]
    assert [s["id"] for s in (await compute.get("/v2.1/servers/detail", BOB)).json()["servers"]] == [theirs]
    assert (await compute.get("/v2.1/servers", ADMIN)).json()["servers"] == []
    everyone = (await compute.get("/v2.1/servers/detail?all_tenants=1", ADMIN)).json()["servers"]
    assert {s["id"] for s in everyone} == {mine, theirs}
    only_bob = (await compute.get("/v2.1/servers?all_tenants&project_id=0c0c", ADMIN)).json()["servers"]
    assert [s["id"] for s in only_bob] == [theirs]
    refused = await compute.get("/v2.1/servers?all_tenants=1", ALICE)
    assert refused.status_code == 403
    assert refused.json()["forbidden"]["message"] == (
        "Policy doesn't allow os_compute_api:servers:index:get_all_tenants to be performed."
    )


async def test_another_projects_server_is_not_found(compute: Compute) -> None:
    uuid = await compute.create(ALICE)
    for method in ("GET", "DELETE"):
        response = await compute.client.request(method, f"/v2.1/servers/{uuid}", headers=BOB)
        assert response.status_code == 404
        assert response.json() == {"itemNotFound": {"code": 404, "message": f"Instance {uuid} could not be found."}}
    assert (await compute.get(f"/v2.1/servers/{uuid}", ADMIN)).status_code == 200


async def test_list_filters_and_pages(compute: Compute) -> None:
    first = await compute.create(name="web-1")
    compute.clock.advance(1)
    second = await compute.create(name="web-2")
    compute.clock.advance(1)
    third = await compute.create(name="db-1")
    compute.activate(third)
    page = (await compute.get("/v2.1/servers?limit=2")).json()
    assert [s["id"] for s in page["servers"]] == [third, second]
    assert page["servers_links"] == [{"rel": "next", "href": f"{BASE}/v2.1/servers?limit=2&marker={second}"}]
    rest = (await compute.get(f"/v2.1/servers?limit=2&marker={second}")).json()
    assert [s["id"] for s in rest["servers"]] == [first]
    assert "servers_links" not in rest
    assert [s["id"] for s in (await compute.get("/v2.1/servers?name=^web")).json()["servers"]] == [second, first]
    assert [s["id"] for s in (await compute.get("/v2.1/servers?status=ACTIVE")).json()["servers"]] == [third]
    assert (await compute.get("/v2.1/servers?name=web-(")).json() == {"servers": []}  # not a regex: literal
    assert (await compute.get("/v2.1/servers?status=WRONG")).json() == {"servers": []}
    bad = await compute.get("/v2.1/servers?status=WRONG", version="2.38")
    assert (bad.status_code, bad.json()["badRequest"]["message"]) == (400, "Invalid status value")
    bad_marker = await compute.get("/v2.1/servers?marker=nope")
    assert bad_marker.json() == {"badRequest": {"code": 400, "message": "marker [nope] not found"}}
    bad_limit = await compute.get("/v2.1/servers?limit=x")
    assert bad_limit.status_code == 400


async def test_list_filters_by_flavor_and_image(compute: Compute) -> None:
    other_image = "9f3b3c4e-0d1b-4a3a-8a53-3c9a1b2f7e11"
    small = await compute.create(flavorRef="1")
    compute.clock.advance(1)
    large = await compute.create(flavorRef="3", imageRef=other_image)

    async def ids(query: str) -> list[str]:
        response = await compute.get(f"/v2.1/servers?{query}")
        assert response.status_code == 200, response.text
        return [s["id"] for s in response.json()["servers"]]

    assert await ids("flavor=1") == [small]
    assert await ids("flavor=3") == [large]
    assert await ids("flavor=999") == []
    assert await ids(f"image={IMAGE}") == [small]
    assert await ids(f"image={other_image}&flavor=3") == [large]
    assert await ids(f"image={other_image}&flavor=1") == []
    assert await ids("limit=0") == []
    assert "servers_links" not in (await compute.get("/v2.1/servers?limit=0")).json()


async def test_list_changes_since_and_before(compute: Compute) -> None:
    old = await compute.create(name="old")
    compute.clock.advance(3600)
    new = await compute.create(name="new")
    compute.clock.advance(60)
    gone = await compute.create(name="gone")
    compute.force(gone, deleted=True, vm_state="deleted", updated_at=compute.clock.now())

    async def ids(query: str, version: str = "2.1") -> list[str]:
        response = await compute.get(f"/v2.1/servers/detail?{query}", version=version)
        assert response.status_code == 200, response.text
        return [s["id"] for s in response.json()["servers"]]

    assert await ids("changes-since=2051-01-01T00:00:00Z") == []
    # Deleted servers are listed too when a change window is asked for, as Nova lists them.
    assert await ids("changes-since=2025-03-04T05:36:07Z") == [gone, new]
    assert await ids("changes-since=2025-03-04T06:06:07%2B01:00") == [gone, new, old]
    assert await ids("changes-before=2025-03-04T05:36:07Z", "2.66") == [old]
    assert await ids("changes-since=2025-03-04T05:36:07Z&changes-before=2025-03-04T06:06:30Z", "2.66") == [new]
    # Below 2.66 Nova strips changes-before for non-admins.
    assert await ids("changes-before=2025-03-04T05:36:07Z") == [new, old]
    shown = (await compute.get("/v2.1/servers/detail?changes-since=2025-03-04T05:36:07Z")).json()["servers"]
    assert shown[0]["status"] == "DELETED"

    bad = await compute.get("/v2.1/servers?changes-since=yesterday")
    assert bad.status_code == 400
    assert bad.json()["badRequest"]["message"] == (
        "Invalid input for query parameters changes-since. Value: yesterday. 'yesterday' is not a 'date-time'"
    )
    backwards = await compute.get(
        "/v2.1/servers?changes-since=2025-03-04T06:00:00Z&changes-before=2025-03-04T05:00:00Z", version="2.66"
    )
    assert backwards.status_code == 400
    assert backwards.json()["badRequest"]["message"] == (
        "The value of changes-since must be less than or equal to changes-before."
    )


async def test_create_keeps_access_ips_disk_config_and_description(compute: Compute) -> None:
    uuid = await compute.create(
        version="2.19",
        accessIPv4="192.0.2.10",
        accessIPv6="2001:db8::10",
        description="the web tier",
        security_groups=[{"name": "default"}],
        **{"OS-DCF:diskConfig": "AUTO"},
    )
    compute.activate(uuid)
    server = (await compute.get(f"/v2.1/servers/{uuid}", version="2.19")).json()["server"]
    assert (server["accessIPv4"], server["accessIPv6"]) == ("192.0.2.10", "2001:db8::10")
    assert server["OS-DCF:diskConfig"] == "AUTO"
    assert server["description"] == "the web tier"
    listed = (await compute.get("/v2.1/servers/detail", version="2.19")).json()["servers"]
    assert [(s["id"], s["description"], s["OS-DCF:diskConfig"]) for s in listed] == [(uuid, "the web tier", "AUTO")]
    plain = await compute.create(version="2.19")
    compute.activate(plain)
    server = (await compute.get(f"/v2.1/servers/{plain}", version="2.19")).json()["server"]
    assert (server["accessIPv4"], server["accessIPv6"], server["description"]) == ("", "", None)
    assert server["OS-DCF:diskConfig"] == "MANUAL"


async def test_create_reply_shows_the_requested_disk_config(compute: Compute) -> None:
    body = {"server": {"name": "vm", "imageRef": IMAGE, "flavorRef": "1", "OS-DCF:diskConfig": "AUTO"}}
    response = await compute.client.post("/v2.1/servers", json=body, headers=ALICE)
    assert response.status_code == 202, response.text
    assert response.json()["server"]["OS-DCF:diskConfig"] == "AUTO"


async def test_project_and_legacy_urls(compute: Compute) -> None:
    uuid = await compute.create()
    scoped = (await compute.get(f"/v2.1/0b0b/servers/{uuid}")).json()["server"]
    assert scoped["links"][0]["href"] == f"{BASE}/v2.1/0b0b/servers/{uuid}"
    assert scoped["links"][1]["href"] == f"{BASE}/0b0b/servers/{uuid}"
    assert scoped["flavor"] == {"id": "1", "links": [{"rel": "bookmark", "href": f"{BASE}/0b0b/flavors/1"}]}
    legacy = await compute.client.get(f"/v2/servers/{uuid}", headers=ALICE)
    assert legacy.status_code == 200
    assert "openstack-api-version" not in legacy.headers
    assert legacy.json()["server"]["links"][0]["href"] == f"{BASE}/v2/servers/{uuid}"


async def test_view_at_2_1(compute: Compute) -> None:
    uuid = await compute.create()
    building = (await compute.get(f"/v2.1/servers/{uuid}")).json()["server"]
    assert building["status"] == "BUILD"
    assert building["addresses"] == {}  # hidden while building
    assert building["progress"] == 0
    compute.activate(uuid)
    server = (await compute.get(f"/v2.1/servers/{uuid}")).json()["server"]
    assert server["status"] == "ACTIVE"
    assert server["tenant_id"] == "0b0b"
    assert server["user_id"] == "alice"
    assert server["hostId"] == hashlib.sha224(b"0b0bcompute-1").hexdigest()
    assert server["image"] == {"id": IMAGE, "links": [{"rel": "bookmark", "href": f"{BASE}/images/{IMAGE}"}]}
    assert server["flavor"] == {"id": "1", "links": [{"rel": "bookmark", "href": f"{BASE}/flavors/1"}]}
    assert server["created"] == "2025-03-04T05:06:07Z"
    assert server["OS-EXT-STS:vm_state"] == "active"
    assert server["OS-EXT-STS:power_state"] == 1
    assert server["OS-EXT-STS:task_state"] is None
    assert server["OS-EXT-AZ:availability_zone"] == "nova"
    assert server["OS-SRV-USG:launched_at"] == "2025-03-04T05:06:07.000000"
    assert server["OS-SRV-USG:terminated_at"] is None
    (_network, addresses), *_ = server["addresses"].items()
    assert addresses[0]["version"] == 4
    assert addresses[0]["OS-EXT-IPS:type"] == "fixed"
    assert server["os-extended-volumes:volumes_attached"] == []
    assert server["metadata"] == {}
    assert (server["accessIPv4"], server["accessIPv6"], server["config_drive"], server["key_name"]) == (
        "",
        "",
        "",
        None,
    )
    assert not any(key.startswith("OS-EXT-SRV-ATTR") for key in server)
    for later in ("locked", "description", "tags", "host_status", "server_groups", "locked_reason"):
        assert later not in server
    admin = (await compute.get(f"/v2.1/servers/{uuid}", ADMIN)).json()["server"]
    assert admin["OS-EXT-SRV-ATTR:host"] == "compute-1"
    assert admin["OS-EXT-SRV-ATTR:hypervisor_hostname"] == "compute-1"
    assert admin["OS-EXT-SRV-ATTR:instance_name"] == f"instance-{uuid[:8]}"
    assert "OS-EXT-SRV-ATTR:hostname" not in admin


@pytest.mark.parametrize(
    ("version", "present", "absent"),
    [
        ("2.9", {"locked": False}, ["description"]),
        ("2.19", {"description": None}, ["tags"]),
        ("2.26", {"tags": []}, ["trusted_image_certificates"]),
        ("2.63", {"trusted_image_certificates": None}, ["server_groups"]),
        ("2.71", {"server_groups": []}, ["locked_reason"]),
        ("2.73", {"locked_reason": None}, ["OS-EXT-SRV-ATTR:hostname"]),
        ("2.90", {"OS-EXT-SRV-ATTR:hostname": "my-vm-1"}, ["pinned_availability_zone"]),
        ("2.96", {"pinned_availability_zone": None}, ["scheduler_hints"]),
        ("2.100", {"scheduler_hints": {}}, []),
    ],
)
async def test_view_fields_by_microversion(
    compute: Compute, version: str, present: dict[str, object], absent: list[str]
) -> None:
    uuid = await compute.active_server(name="My VM_1")
    server = (await compute.get(f"/v2.1/servers/{uuid}", version=version)).json()["server"]
    for key, value in present.items():
        assert server[key] == value, key
    for key in absent:
        assert key not in server, key
    assert "host_status" not in server


async def test_embedded_flavor_from_2_47(compute: Compute) -> None:
    uuid = await compute.create(flavorRef="3")
    flavor = (await compute.get(f"/v2.1/servers/{uuid}", version="2.47")).json()["server"]["flavor"]
    expected = {"vcpus": 2, "ram": 4096, "disk": 40, "ephemeral": 0, "swap": 0, "original_name": "m1.medium"}
    assert flavor == {**expected, "extra_specs": {}}
    as_admin_2_46 = (await compute.get(f"/v2.1/servers/{uuid}", ADMIN, version="2.46")).json()["server"]["flavor"]
    assert as_admin_2_46["id"] == "3"
    detail = (await compute.get("/v2.1/servers/detail", version="2.98")).json()["servers"][0]
    assert detail["image"]["properties"] == {}
    assert "server_groups" not in detail  # never in the detail list


async def test_host_status_for_admins(compute: Compute, engine: Engine) -> None:
    uuid = await compute.active_server()
    assert (await compute.get(f"/v2.1/servers/{uuid}", ADMIN, version="2.16")).json()["server"]["host_status"] == "UP"
    assert "host_status" not in (await compute.get(f"/v2.1/servers/{uuid}", version="2.16")).json()["server"]
    compute.clock.advance(61)
    detail = (await compute.get("/v2.1/servers/detail?all_tenants=1", ADMIN, version="2.16")).json()["servers"]
    assert detail[0]["host_status"] == "UNKNOWN"
    with engine.begin() as conn:
        conn.execute(text("UPDATE services SET disabled = :t"), {"t": True})
    shown = (await compute.get(f"/v2.1/servers/{uuid}", ADMIN, version="2.16")).json()["server"]
    assert shown["host_status"] == "MAINTENANCE"


async def test_delete_with_a_host_sends_delete(compute: Compute) -> None:
    uuid = await compute.active_server()
    response = await compute.client.delete(f"/v2.1/servers/{uuid}", headers=ALICE)
    assert (response.status_code, response.content) == (204, b"")
    ((host, message),) = await compute.messages()
    assert (host, type(message).__name__, message.server_uuid) == ("compute-1", "DeleteServer", uuid)
    assert compute.server(uuid).task_state == "deleting"
    again = await compute.client.delete(f"/v2.1/servers/{uuid}", headers=ALICE)
    assert again.status_code == 204
    assert await compute.messages() == []  # Nova ignores a repeated delete


async def test_delete_without_a_live_host_is_local(compute: Compute) -> None:
    compute.clock.advance(61)
    errored = await compute.create()
    assert (await compute.client.delete(f"/v2.1/servers/{errored}", headers=ALICE)).status_code == 204
    gone = compute.server(errored)
    assert (gone.deleted, gone.vm_state, gone.terminated_at) == (True, "deleted", compute.clock.now())
    assert (await compute.get(f"/v2.1/servers/{errored}")).status_code == 404
    compute.heartbeat("compute-1")
    on_host = await compute.active_server()
    compute.clock.advance(61)  # its host goes down
    assert (await compute.client.delete(f"/v2.1/servers/{on_host}", headers=ALICE)).status_code == 204
    assert compute.server(on_host).deleted
    assert await compute.messages() == []


async def test_delete_policy(compute: Compute) -> None:
    uuid = await compute.create()
    response = await compute.client.delete(f"/v2.1/servers/{uuid}", headers=READER)
    assert response.status_code == 403
    assert (
        response.json()["forbidden"]["message"] == "Policy doesn't allow os_compute_api:servers:delete to be performed."
    )


async def test_multiple_create_makes_max_count_servers_with_one_reservation(compute: Compute) -> None:
    body = {"server": {"name": "web", "imageRef": IMAGE, "flavorRef": "1", "min_count": 2, "max_count": 3}}
    response = await compute.client.post("/v2.1/servers", json=body, headers=ALICE)
    assert response.status_code == 202, response.text
    first = response.json()["server"]["id"]
    sent = await compute.messages()
    assert sorted(host for host, _ in sent) == ["compute-1", "compute-1", "compute-2"]  # spread by the scheduler
    uuids = [message.server_uuid for _, message in sent]  # type: ignore[attr-defined]
    assert first in uuids
    uuids.sort(key=lambda uuid: compute.server(uuid).launch_index)
    for uuid in uuids:
        compute.activate(uuid)
    listed = (await compute.get("/v2.1/servers/detail?all_tenants=1", ADMIN, version="2.90")).json()["servers"]
    by_id = {s["id"]: s for s in listed}
    assert sorted(by_id[u]["name"] for u in uuids) == ["web-1", "web-2", "web-3"]
    assert [by_id[u]["OS-EXT-SRV-ATTR:launch_index"] for u in uuids] == [0, 1, 2]
    assert [by_id[u]["OS-EXT-SRV-ATTR:hostname"] for u in uuids] == ["web-1", "web-2", "web-3"]
    assert len({by_id[u]["OS-EXT-SRV-ATTR:reservation_id"] for u in uuids}) == 1


async def test_multiple_create_can_answer_with_the_reservation_id(compute: Compute) -> None:
    body = {
        "server": {"name": "vm", "imageRef": IMAGE, "flavorRef": "1", "max_count": 2, "return_reservation_id": True}
    }
    response = await compute.client.post("/v2.1/servers", json=body, headers=ALICE)
    assert response.status_code == 202
    reservation = response.json()["reservation_id"]
    sent = await compute.messages()
    assert len(sent) == 2
    for _, message in sent:
        compute.activate(message.server_uuid)  # type: ignore[attr-defined]
    shown = [
        (await compute.get(f"/v2.1/servers/{m.server_uuid}", ADMIN, version="2.3")).json()["server"]  # type: ignore[attr-defined]
        for _, m in sent
    ]
    assert {s["OS-EXT-SRV-ATTR:reservation_id"] for s in shown} == {reservation}


@pytest.mark.parametrize(
    ("server", "status", "message"),
    [
        (
            {"networks": [{"port": "0f5b7d2e-6b8a-4f51-9c51-2b0c4f3f9a11"}]},
            400,
            "Unable to launch multiple instances with a single configured port ID.",
        ),
        ({"max_count": 101}, 403, "Quota exceeded for instances: Requested 101, but already used 0 of 100 instances"),
    ],
)
async def test_multiple_create_refusals(compute: Compute, server: dict[str, object], status: int, message: str) -> None:
    body = {"server": {"name": "vm", "imageRef": IMAGE, "flavorRef": "1", "max_count": 2, **server}}
    response = await compute.client.post("/v2.1/servers", json=body, headers=ALICE)
    assert response.status_code == status, response.text
    assert message in next(iter(response.json().values()))["message"]
    assert await compute.messages() == []


async def test_multiple_create_refuses_an_existing_volume(compute: Compute) -> None:
    volume = str(uuidlib.uuid4())
    compute.volumes.set_size_gb(volume, 10)
    bdm = [{"source_type": "volume", "destination_type": "volume", "uuid": volume, "boot_index": 0}]
    body = {"server": {"name": "vm", "flavorRef": "1", "max_count": 2, "block_device_mapping_v2": bdm}}
    response = await compute.client.post("/v2.1/servers", json=body, headers=ALICE)
    assert response.json() == {
        "badRequest": {"code": 400, "message": "Cannot attach one or more volumes to multiple instances"}
    }


async def test_create_keeps_user_data_config_drive_certificates_and_hints(compute: Compute) -> None:
    body = {
        "server": {
            "name": "vm",
            "imageRef": IMAGE,
            "flavorRef": "1",
            "networks": "none",
            "user_data": "IyEvYmluL3NoCmVjaG8gaGkK",
            "config_drive": True,
            "trusted_image_certificates": ["cert-1", "cert-2"],
        },
        "os:scheduler_hints": {"group": "0b3bd2bc-4b8a-4bcd-8c2f-7b0d8c0d0f11", "same_host": ["a", "b"]},
    }
    response = await compute.client.post(
        "/v2.1/servers", json=body, headers={**ALICE, "OpenStack-API-Version": "compute 2.100"}
    )
    assert response.status_code == 202, response.text
    uuid = response.json()["server"]["id"]
    compute.activate(uuid)
    shown = (await compute.get(f"/v2.1/servers/{uuid}", version="2.100")).json()["server"]
    assert shown["config_drive"] == "True"
    assert shown["trusted_image_certificates"] == ["cert-1", "cert-2"]
    assert shown["scheduler_hints"] == {"group": ["0b3bd2bc-4b8a-4bcd-8c2f-7b0d8c0d0f11"], "same_host": ["a", "b"]}
    as_admin = (await compute.get(f"/v2.1/servers/{uuid}", ADMIN, version="2.3")).json()["server"]
    assert as_admin["OS-EXT-SRV-ATTR:user_data"] == "IyEvYmluL3NoCmVjaG8gaGkK"


async def test_user_data_must_be_base64(compute: Compute) -> None:
    body = {"server": {"name": "vm", "imageRef": IMAGE, "flavorRef": "1", "user_data": "not base64!"}}
    response = await compute.client.post("/v2.1/servers", json=body, headers=ALICE)
    assert response.status_code == 400
    assert "is not a 'base64'" in response.json()["badRequest"]["message"]


@pytest.mark.parametrize("server_id", ["\x00", "\u0660" * 32, "7e3f8c62-5c4c-4e9e-a0b6-2f0d8b6d8c11\n"])
async def test_a_server_id_that_is_no_uuid_is_404_on_every_route(compute: Compute, server_id: str) -> None:
    quoted = server_id.replace("\n", "%0A").replace("\x00", "%00")
    for method, path, body in (
        ("GET", f"/v2.1/servers/{quoted}", None),
        ("DELETE", f"/v2.1/servers/{quoted}", None),
        ("POST", f"/v2.1/servers/{quoted}/action", {"os-stop": None}),
        ("GET", f"/v2.1/servers/{quoted}/os-instance-actions", None),
    ):
        response = await compute.client.request(method, path, json=body, headers=ADMIN)
        assert response.status_code == 404, (method, path, response.text)
        assert response.json()["itemNotFound"]["message"] == f"Instance {server_id} could not be found."


@pytest.mark.parametrize("query", ["host=%00", "all_tenants=1&project_id=%00", "name=a%00", "marker=%00"])
async def test_a_nul_character_in_a_list_filter_is_400(compute: Compute, query: str) -> None:
    for path in ("/v2.1/servers", "/v2.1/servers/detail"):
        response = await compute.client.get(f"{path}?{query}", headers=ADMIN)
        assert response.status_code == 400, response.text
        assert response.json() == {
            "badRequest": {"code": 400, "message": "Invalid input received: a query parameter holds a NUL character."}
        }


async def test_list_sorts_by_nova_sort_keys(compute: Compute) -> None:
    b = await compute.create(name="b")
    compute.clock.advance(1)
    a = await compute.create(name="a")
    compute.clock.advance(1)
    c = await compute.create(name="c")

    async def ids(query: str, headers: dict[str, str] | None = None) -> list[str]:
        response = await compute.get(f"/v2.1/servers?{query}", headers)
        assert response.status_code == 200, response.text
        return [s["id"] for s in response.json()["servers"]]

    assert await ids("") == [c, a, b]  # newest first
    assert await ids("sort_key=display_name&sort_dir=asc") == [a, b, c]
    assert await ids("sort_key=display_name") == [c, b, a]  # desc by default
    assert await ids("sort_key=created_at&sort_dir=asc") == [b, a, c]
    assert await ids("sort_key=display_name&sort_dir=asc&limit=2") == [a, b]
    assert await ids(f"sort_key=display_name&sort_dir=asc&marker={b}") == [c]
    # Keys Nova accepts and ignores (with their direction), and admin-only keys for others: the
    # default order.
    assert await ids("sort_key=vcpus&sort_dir=asc") == [c, a, b]
    assert await ids("sort_key=host&sort_dir=asc") == [c, a, b]
    assert await ids("sort_key=host&sort_dir=asc", ADMIN) == []  # the admin's own project has none

    bad_key = await compute.get("/v2.1/servers?sort_key=nope")
    assert bad_key.status_code == 400
    bad_dir = await compute.get("/v2.1/servers?sort_key=display_name&sort_dir=up")
    assert bad_dir.json()["badRequest"]["message"] == (
        "Invalid input received: Unknown sort direction, must be 'desc' or 'asc'"
    )
    too_many = await compute.get("/v2.1/servers?sort_key=display_name&sort_dir=asc&sort_dir=desc")
    assert too_many.status_code == 400
