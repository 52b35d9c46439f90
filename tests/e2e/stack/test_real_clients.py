"""Unchanged OpenStack clients against a real ``herald serve`` process over TCP.

python-novaclient is what Neutron and Cinder use to post events; Ironic posts through a
keystoneauth1 adapter with ``microversion="2.76"``. Both must work as they do against Nova.
"""

from __future__ import annotations

from typing import Any

import pytest
from keystoneauth1 import adapter, session
from keystoneauth1.token_endpoint import Token
from novaclient import client as nova_client

from tests.e2e.stack.process import HeraldProcess, wait_until

pytestmark = pytest.mark.stack

IMAGE = "70a599e0-31e7-49b7-b260-868f441e862b"


def _session(process: HeraldProcess, token: str = "admin:admin") -> session.Session:
    return session.Session(auth=Token(process.url + "/v2.1", token))


def _boot(nova: Any, name: str = "vm") -> Any:
    server = nova.servers.create(name, IMAGE, "1", nics="none")
    wait_until(lambda: nova.servers.get(server.id).status == "ACTIVE")
    return nova.servers.get(server.id)


def test_novaclient_servers_and_events(herald_process: HeraldProcess) -> None:
    nova = nova_client.Client("2.76", session=_session(herald_process))
    server = _boot(nova)
    assert getattr(server, "OS-EXT-SRV-ATTR:host") in {"compute-1", "compute-2"}
    assert [s.id for s in nova.servers.list()] == [server.id]
    assert {f.name for f in nova.flavors.list()} >= {"m1.tiny", "m1.small"}
    assert {s.host for s in nova.services.list(binary="nova-compute")} == {"compute-1", "compute-2"}
    assert {s.state for s in nova.services.list()} == {"up"}

    # As Neutron sends them (novaclient's server_external_events.create, per-event codes read back).
    replies = nova.server_external_events.create(
        [
            {"name": "network-changed", "server_uuid": server.id, "tag": "port-1"},
            {"name": "network-changed", "server_uuid": "7e3f8c62-5c4c-4e9e-a0b6-2f0d8b6d8c11"},
        ]
    )
    assert [(r["code"], r["status"]) for r in replies] == [(200, "completed"), (404, "failed")]

    # As Ironic's power sync sends it.
    replies = nova.server_external_events.create(
        [{"name": "power-update", "server_uuid": server.id, "tag": "POWER_OFF"}]
    )
    assert replies[0]["code"] == 200
    wait_until(lambda: nova.servers.get(server.id).status == "SHUTOFF")
    assert getattr(nova.servers.get(server.id), "OS-EXT-STS:power_state") == 4
    actions = nova.instance_action.list(server.id)
    assert sorted(a.action for a in actions) == ["create", "stop"]

    nova.servers.start(server.id)
    wait_until(lambda: nova.servers.get(server.id).status == "ACTIVE")
    nova.servers.shelve(server.id)
    wait_until(lambda: nova.servers.get(server.id).status == "SHELVED_OFFLOADED")
    replies = nova.server_external_events.create([{"name": "network-changed", "server_uuid": server.id}])
    assert replies[0]["code"] == 422
    nova.servers.unshelve(server.id)
    wait_until(lambda: nova.servers.get(server.id).status == "ACTIVE")
    nova.servers.delete(server.id)
    wait_until(lambda: nova.servers.list() == [])


def test_keystoneauth_raw_posts_as_ironic_and_cinder_send_them(herald_process: HeraldProcess) -> None:
    nova = nova_client.Client("2.76", session=_session(herald_process))
    server = _boot(nova)
    compute = adapter.Adapter(_session(herald_process), service_type="compute")

    # Ironic: one power-update per call at 2.76, no status.
    resp = compute.post(
        "/os-server-external-events",
        json={"events": [{"name": "power-update", "server_uuid": server.id, "tag": "POWER_OFF"}]},
        microversion="2.76",
        raise_exc=False,
    )
    assert resp.status_code == 200
    assert resp.headers["OpenStack-API-Version"] == "compute 2.76"
    assert resp.json()["events"][0]["code"] == 200

    # Cinder: volume-extended at 2.51 with the volume id as tag; the same event at 2.50 is refused.
    event = {"name": "volume-extended", "server_uuid": server.id, "tag": "a0c4e0cd-1d7b-4a2e-8a45-5b4b7a0c1d2e"}
    resp = compute.post("/os-server-external-events", json={"events": [event]}, microversion="2.51", raise_exc=False)
    assert resp.status_code == 200
    resp = compute.post("/os-server-external-events", json={"events": [event]}, microversion="2.50", raise_exc=False)
    assert resp.status_code == 400
    assert resp.json()["badRequest"]["message"].startswith("Invalid input for field/attribute name.")

    # A non-admin token is refused with Nova's 403 body.
    member = adapter.Adapter(_session(herald_process, "alice:demo"), service_type="compute")
    resp = member.post("/os-server-external-events", json={"events": [event]}, microversion="2.51", raise_exc=False)
    assert resp.status_code == 403
    assert "forbidden" in resp.json()

    wait_until(lambda: nova.servers.get(server.id).status == "SHUTOFF")
    records = compute.get("/os-server-external-events", params={"server_uuid": server.id}).json()["events"]
    assert {(r["name"], r["state"]) for r in records} >= {("power-update", "handled")}
