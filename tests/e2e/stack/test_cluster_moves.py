"""A resize across two agent processes (PostgreSQL, RabbitMQ): both hosts get the events, one acts."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.e2e.stack.cluster import Cluster

pytestmark = [pytest.mark.stack, pytest.mark.postgres]


@pytest.fixture
def cluster(make_cluster: Callable[..., Cluster]) -> Cluster:
    return make_cluster(hosts=2)


def test_resize_and_confirm_across_agent_processes(cluster: Cluster) -> None:
    source, dest = cluster.hosts
    server_id = cluster.create_server("mover", source)
    cluster.wait_until(lambda: cluster.server(server_id)["status"] == "ACTIVE", what="the server ACTIVE")

    resp = cluster.post(f"/servers/{server_id}/action", {"resize": {"flavorRef": "2"}})
    assert resp.status_code == 202, resp.text
    cluster.wait_until(lambda: cluster.server(server_id)["status"] == "VERIFY_RESIZE", what="VERIFY_RESIZE")
    server = cluster.server(server_id)
    assert (server["OS-EXT-SRV-ATTR:host"], server["flavor"]["original_name"]) == (dest, "m1.small")

    event = {"name": "network-changed", "server_uuid": server_id}
    resp = cluster.post("/os-server-external-events", {"events": [event]})
    assert resp.status_code == 200, resp.text

    def both_finished() -> bool:
        changed = [r for r in cluster.records(server_id) if r["name"] == "network-changed"]
        return len(changed) == 2 and all(r["state"] == "handled" for r in changed)

    cluster.wait_until(both_finished, what="network-changed handled on both hosts")
    outcomes = {r["host"]: r["outcome"] for r in cluster.records(server_id) if r["name"] == "network-changed"}
    assert outcomes == {
        dest: "network info refreshed for all ports",
        source: f"not handled here: host {dest} holds the server",
    }

    resp = cluster.post(f"/servers/{server_id}/action", {"confirmResize": None})
    assert resp.status_code == 204, resp.text
    cluster.wait_until(lambda: cluster.server(server_id)["status"] == "ACTIVE", what="ACTIVE after the confirm")
    migrations = cluster.get(f"/os-migrations?instance_uuid={server_id}", version="2.80")["migrations"]
    assert [(m["status"], m["source_compute"], m["dest_compute"]) for m in migrations] == [("confirmed", source, dest)]
    actions = cluster.get(f"/servers/{server_id}/os-instance-actions")["instanceActions"]
    assert [a["action"] for a in actions][:2] == ["confirmResize", "resize"]
