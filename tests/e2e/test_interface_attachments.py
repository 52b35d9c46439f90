"""``/servers/{id}/os-interface`` end to end, with Neutron's side played by python-novaclient (events at 2.1)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from herald.adapters.network.memory import AUTO_NETWORK_ID
from herald.domain.errors import DriverError
from herald.domain.naming import fixed_ip
from tests.e2e.harness import Herald
from tests.e2e.novaclient_bridge import novaclient_for

ALICE = "alice:alice"


async def _server(herald: Herald, networks: Any = "none", token: str = "admin:admin") -> str:
    body = {"server": {"name": "vm", "imageRef": "70a599e0-31e7-49b7-b260-868f441e862b", "flavorRef": "1"}}
    body["server"]["networks"] = networks
    resp = await herald.post("/v2.1/servers", body, version="2.76", token=token)
    assert resp.status_code == 202, resp.text
    server_id: str = resp.json()["server"]["id"]
    await herald.settle()
    return server_id


async def _attach(herald: Herald, server_id: str, body: dict[str, Any], version: str = "2.70") -> Any:
    return await herald.post(f"/v2.1/servers/{server_id}/os-interface", {"interfaceAttachment": body}, version=version)


async def _delete(herald: Herald, path: str, token: str = "admin:admin") -> Any:
    return await herald.client.delete(path, headers={"X-Auth-Token": token, "OpenStack-API-Version": "compute 2.70"})


async def _steps(herald: Herald, server_id: str, action: str) -> list[tuple[str, str]]:
    listed = (await herald.get(f"/v2.1/servers/{server_id}/os-instance-actions", version="2.84")).json()
    (request_id,) = [a["request_id"] for a in listed["instanceActions"] if a["action"] == action]
    shown = await herald.get(f"/v2.1/servers/{server_id}/os-instance-actions/{request_id}", version="2.84")
    return [(e["event"], e["result"]) for e in shown.json()["instanceAction"]["events"]]


async def _neutron_events(herald: Herald, events: list[dict[str, str]]) -> list[dict[str, Any]]:
    """As Neutron sends them: novaclient at 2.1, ``server_external_events.create``."""
    nova = novaclient_for(herald.client, "2.1")
    replies: list[dict[str, Any]] = await asyncio.to_thread(nova.server_external_events.create, events)
    await herald.settle()
    return replies


async def test_attach_a_port_then_detach_it(herald: Herald) -> None:
    server_id = await _server(herald)
    port = str(uuid.uuid4())
    resp = await _attach(herald, server_id, {"port_id": port, "tag": "nic1"})
    assert resp.status_code == 200, resp.text
    ip = fixed_ip(port)
    expected = {
        "net_id": AUTO_NETWORK_ID,
        "port_id": port,
        "mac_addr": ip.mac,
        "port_state": "DOWN",
        "fixed_ips": [{"subnet_id": AUTO_NETWORK_ID, "ip_address": ip.address}],
        "tag": "nic1",
    }
    assert resp.json() == {"interfaceAttachment": expected}
    listed = await herald.get(f"/v2.1/servers/{server_id}/os-interface", version="2.70")
    assert listed.json() == {"interfaceAttachments": [expected]}
    before_tags = await herald.get(f"/v2.1/servers/{server_id}/os-interface/{port}", version="2.69")
    assert "tag" not in before_tags.json()["interfaceAttachment"]
    addresses = (await herald.server(server_id))["addresses"]
    assert [a["addr"] for a in addresses[AUTO_NETWORK_ID]] == [ip.address]
    machine = herald.driver("compute-1").machine(server_id)
    assert machine is not None
    assert machine.attached_ports == [port]
    assert await _steps(herald, server_id, "attach_interface") == [("compute_attach_interface", "Success")]

    resp = await _delete(herald, f"/v2.1/servers/{server_id}/os-interface/{port}")
    assert (resp.status_code, resp.content) == (202, b"")
    await herald.settle()
    assert (await herald.get(f"/v2.1/servers/{server_id}/os-interface")).json() == {"interfaceAttachments": []}
    assert (await herald.server(server_id))["addresses"] == {}
    assert herald.deps.network.port_owner(port) is None
    assert await _steps(herald, server_id, "detach_interface") == [("compute_detach_interface", "Success")]
    gone = await herald.get(f"/v2.1/servers/{server_id}/os-interface/{port}")
    assert gone.status_code == 404
    assert gone.json()["itemNotFound"]["message"] == f"Instance {server_id} does not have a port with id {port}"


async def test_attach_on_a_network_makes_a_port(herald: Herald) -> None:
    server_id = await _server(herald)
    network = str(uuid.uuid4())
    resp = await _attach(herald, server_id, {"net_id": network})
    assert resp.status_code == 200, resp.text
    port = resp.json()["interfaceAttachment"]["port_id"]
    assert resp.json()["interfaceAttachment"]["net_id"] == network
    assert herald.deps.network.port_owner(port) == server_id
    assert list((await herald.server(server_id))["addresses"]) == [network]
    await _delete(herald, f"/v2.1/servers/{server_id}/os-interface/{port}")
    await herald.settle()
    assert herald.deps.network.port(port) is None  # Herald made it, Herald deletes it


async def test_a_port_bound_elsewhere_conflicts(herald: Herald) -> None:
    owner = await _server(herald, networks="auto")
    (taken,) = [
        p["port_id"] for p in (await herald.get(f"/v2.1/servers/{owner}/os-interface")).json()["interfaceAttachments"]
    ]
    other = await _server(herald)
    for server_id in (other, owner):
        resp = await _attach(herald, server_id, {"port_id": taken})
        assert resp.status_code == 409
        assert resp.json() == {"conflictingRequest": {"code": 409, "message": f"Port {taken} is still in use."}}
    assert herald.deps.network.port_owner(taken) == owner
    assert await _steps(herald, other, "attach_interface") == [("compute_attach_interface", "Error")]
    listed = (await herald.get(f"/v2.1/servers/{other}/os-instance-actions")).json()["instanceActions"]
    assert [a["message"] for a in listed if a["action"] == "attach_interface"] == ["Error"]


async def test_refusals(herald: Herald) -> None:
    unknown = str(uuid.uuid4())
    resp = await _attach(herald, unknown, {"port_id": str(uuid.uuid4())})
    assert resp.status_code == 404
    server_id = await _server(herald, token=ALICE)
    both = await _attach(herald, server_id, {"port_id": str(uuid.uuid4()), "net_id": str(uuid.uuid4())})
    assert both.json()["badRequest"]["message"] == "Must not input both network_id and port_id"
    ip_only = await _attach(
        herald, server_id, {"port_id": str(uuid.uuid4()), "fixed_ips": [{"ip_address": "10.0.0.5"}]}
    )
    assert ip_only.json()["badRequest"]["message"] == "Must input network_id when request IP address"
    tagged_early = await _attach(herald, server_id, {"port_id": str(uuid.uuid4()), "tag": "x"}, version="2.48")
    assert tagged_early.status_code == 400
    lock = await herald.post(f"/v2.1/servers/{server_id}/action", {"lock": None}, version="2.76", token="admin:admin")
    assert lock.status_code == 202
    locked = await herald.post(
        f"/v2.1/servers/{server_id}/os-interface", {"interfaceAttachment": {"port_id": str(uuid.uuid4())}}, token=ALICE
    )
    assert locked.json() == {"conflictingRequest": {"code": 409, "message": f"Instance {server_id} is locked"}}
    await herald.post(f"/v2.1/servers/{server_id}/action", {"unlock": None}, version="2.76")
    assert (await herald.action(server_id, {"shelve": None})).status_code == 202
    await herald.settle()
    shelved = await _attach(herald, server_id, {"port_id": str(uuid.uuid4())})
    message = f"Cannot 'attach_interface' instance {server_id} while it is in vm_state shelved_offloaded"
    assert shelved.json() == {"conflictingRequest": {"code": 409, "message": message}}
    detach = await _delete(herald, f"/v2.1/servers/{server_id}/os-interface/{uuid.uuid4()}")
    assert detach.json()["conflictingRequest"]["message"].startswith(f"Cannot 'detach_interface' instance {server_id}")


async def test_a_plug_failure_is_a_500_and_frees_the_port(herald: Herald) -> None:
    server_id = await _server(herald)
    herald.driver("compute-1").fail_next("attach_interface", DriverError("no free PCI slot"))
    port = str(uuid.uuid4())
    resp = await _attach(herald, server_id, {"port_id": port})
    assert resp.status_code == 500
    assert resp.json()["computeFault"]["message"] == f"Failed to attach network adapter device to {server_id}"
    assert herald.deps.network.port_owner(port) is None
    assert (await herald.get(f"/v2.1/servers/{server_id}/os-interface")).json() == {"interfaceAttachments": []}


async def test_detaching_a_port_that_is_not_attached_fails_on_the_host(herald: Herald) -> None:
    server_id = await _server(herald)
    resp = await _delete(herald, f"/v2.1/servers/{server_id}/os-interface/{uuid.uuid4()}")
    assert resp.status_code == 202  # Nova's detach is a cast: the host finds out
    await herald.settle()
    assert await _steps(herald, server_id, "detach_interface") == [("compute_detach_interface", "Error")]


async def test_vif_deleted_removes_the_attached_interface(herald: Herald) -> None:
    server_id = await _server(herald)
    port = str(uuid.uuid4())
    assert (await _attach(herald, server_id, {"port_id": port})).status_code == 200
    event = {"name": "network-vif-deleted", "server_uuid": server_id, "tag": port}
    replies = await _neutron_events(herald, [event, event])  # Neutron may send it twice
    assert [r["code"] for r in replies] == [200, 200]
    assert (await herald.get(f"/v2.1/servers/{server_id}/os-interface")).json() == {"interfaceAttachments": []}
    assert (await herald.server(server_id))["addresses"] == {}
    machine = herald.driver("compute-1").machine(server_id)
    assert machine is not None
    assert machine.detached_ports == [port]  # the duplicate had nothing left to detach
    states = [r["state"] for r in await herald.records(server_uuid=server_id)]
    assert states == ["handled", "handled"]


async def test_network_changed_refreshes_the_tagged_port(herald: Herald) -> None:
    server_id = await _server(herald)
    port = str(uuid.uuid4())
    assert (await _attach(herald, server_id, {"port_id": port, "tag": "nic1"})).json()["interfaceAttachment"][
        "port_state"
    ] == "DOWN"
    bound = herald.deps.network.port(port)
    assert bound is not None
    bound.active = True  # Neutron finished wiring it
    replies = await _neutron_events(herald, [{"name": "network-changed", "server_uuid": server_id, "tag": port}])
    assert replies[0]["code"] == 200
    shown = (await herald.get(f"/v2.1/servers/{server_id}/os-interface/{port}", version="2.70")).json()
    assert (shown["interfaceAttachment"]["port_state"], shown["interfaceAttachment"]["tag"]) == ("ACTIVE", "nic1")
    assert [a["addr"] for a in (await herald.server(server_id))["addresses"][AUTO_NETWORK_ID]] == [
        fixed_ip(port).address
    ]
