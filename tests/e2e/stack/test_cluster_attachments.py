"""Attach an interface and a volume, then extend the volume, across the distributed shape's processes.

Two agents and an API over PostgreSQL and RabbitMQ: the API answers the interface attach
once the server's agent (another process) has plugged the port; Cinder's volume-extended,
sent with python-novaclient at 2.51 as Cinder does, reaches the volume's host through the bus.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from keystoneauth1 import session
from keystoneauth1.token_endpoint import Token
from novaclient import client as nova_client

from tests.e2e.stack.cluster import Cluster

pytestmark = [pytest.mark.stack, pytest.mark.postgres]


@pytest.fixture
def cluster(make_cluster: Callable[..., Cluster]) -> Cluster:
    return make_cluster(hosts=2)


def _steps(cluster: Cluster, server_id: str, action: str) -> list[tuple[str, str]]:
    actions = cluster.get(f"/servers/{server_id}/os-instance-actions", version="2.84")["instanceActions"]
    found = [a["request_id"] for a in actions if a["action"] == action]
    if not found:
        return []
    shown = cluster.get(f"/servers/{server_id}/os-instance-actions/{found[0]}", version="2.84")
    return [(e["event"], e["result"]) for e in shown["instanceAction"]["events"]]


def test_interface_attach_and_volume_extend_across_processes(cluster: Cluster) -> None:
    server_id = cluster.create_server("vm", cluster.hosts[1])
    cluster.wait_until(lambda: cluster.server(server_id)["status"] == "ACTIVE", what="the server ACTIVE")

    port = str(uuid.uuid4())
    attached = cluster.post(f"/servers/{server_id}/os-interface", {"interfaceAttachment": {"port_id": port}}, "2.70")
    assert attached.status_code == 200, attached.text
    assert attached.json()["interfaceAttachment"]["port_id"] == port
    addresses: dict[str, Any] = cluster.server(server_id)["addresses"]
    assert [len(ips) for ips in addresses.values()] == [1]
    assert _steps(cluster, server_id, "attach_interface") == [("compute_attach_interface", "Success")]

    volume = str(uuid.uuid4())
    response = cluster.post(f"/servers/{server_id}/os-volume_attachments", {"volumeAttachment": {"volumeId": volume}})
    assert response.status_code == 200, response.text
    cluster.wait_until(
        lambda: _steps(cluster, server_id, "attach_volume") == [("compute_attach_volume", "Success")],
        what="the volume attached",
    )

    nova = nova_client.Client("2.51", session=session.Session(auth=Token(cluster.url, "admin:admin")))
    replies = nova.server_external_events.create([{"name": "volume-extended", "server_uuid": server_id, "tag": volume}])
    assert [r["code"] for r in replies] == [200]
    cluster.wait_until(
        lambda: _steps(cluster, server_id, "extend_volume") == [("compute_extend_volume", "Success")],
        what="the volume extended on its host",
    )
    records = cluster.records(server_id)
    assert [(r["name"], r["state"], r["host"]) for r in records] == [("volume-extended", "handled", cluster.hosts[1])]
