"""``addSecurityGroup`` / ``removeSecurityGroup`` (only ``default`` exists) and access IPv6 as Nova shows it."""

from __future__ import annotations

import uuid

import pytest

from tests.e2e.harness import Herald
from tests.e2e.lifecycle_helpers import plug, until_waiting


async def _with_port(herald: Herald) -> str:
    port = str(uuid.uuid4())
    server_id = await herald.create_server(networks=[{"port": port}], settle=False)
    await until_waiting(herald, server_id)
    await plug(herald, server_id, port)
    await herald.settle()
    return server_id


async def test_remove_and_add_the_default_group(herald: Herald) -> None:
    server_id = await _with_port(herald)
    assert (await herald.server(server_id))["security_groups"] == [{"name": "default"}]
    resp = await herald.action(server_id, {"addSecurityGroup": {"name": "default"}})
    assert (resp.status_code, resp.content) == (202, b"")
    resp = await herald.action(server_id, {"removeSecurityGroup": {"name": "default"}})
    assert resp.status_code == 202, resp.text
    assert "security_groups" not in await herald.server(server_id)
    resp = await herald.action(server_id, {"removeSecurityGroup": {"name": "default"}})
    assert resp.status_code == 404
    assert resp.json()["itemNotFound"]["message"] == (
        f"Security group default not associated with the instance {server_id}"
    )
    assert (await herald.action(server_id, {"addSecurityGroup": {"name": "default"}})).status_code == 202
    assert (await herald.server(server_id))["security_groups"] == [{"name": "default"}]


@pytest.mark.parametrize("action", ["addSecurityGroup", "removeSecurityGroup"])
async def test_security_group_refusals(herald: Herald, action: str) -> None:
    server_id = await _with_port(herald)
    resp = await herald.action(server_id, {action: {"name": "web"}})
    assert resp.status_code == 404
    assert resp.json()["itemNotFound"]["message"] == "Security group web is not found for project admin"
    resp = await herald.action(server_id, {action: {"name": "  "}})
    assert resp.status_code == 400
    assert resp.json()["badRequest"]["message"] == "Security group name cannot be empty"
    for body in ({action: {}}, {action: {"name": ""}}, {action: "default"}):
        assert (await herald.action(server_id, body)).status_code == 400
    without_ports = await herald.create_server()
    resp = await herald.action(without_ports, {action: {"name": "default"}})
    assert resp.status_code == 404
    assert resp.json()["itemNotFound"]["message"] == (
        f"instance_id {without_ports} could not be found as device id on any ports"
    )


async def test_access_ipv6_is_shown_compressed(herald: Herald) -> None:
    body = {
        "server": {
            "name": "v6",
            "imageRef": "70a599e0-31e7-49b7-b260-868f441e862b",
            "flavorRef": "1",
            "networks": "none",
            "accessIPv6": "2001:0DB8:0000:0000::0001",
        }
    }
    resp = await herald.post("/v2.1/servers", body, version="2.76")
    assert resp.status_code == 202, resp.text
    server_id = resp.json()["server"]["id"]
    assert (await herald.server(server_id))["accessIPv6"] == "2001:db8::1"
    resp = await herald.client.put(
        f"/v2.1/servers/{server_id}",
        json={"server": {"accessIPv6": "::FFFF:102:304"}},
        headers={"X-Auth-Token": "admin:admin", "OpenStack-API-Version": "compute 2.76"},
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["server"]["accessIPv6"] == "::ffff:1.2.3.4"
    await herald.settle()
