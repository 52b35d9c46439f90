"""The README's cluster recipe on one machine: PostgreSQL, RabbitMQ, two API workers, three agents.

Servers on the three hosts get streams of power-update events through the API; every event
must be handled exactly once (one effect: one instance-action step per event), in the order it
was accepted for its server, and the servers must end in the state of their last event.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.amqp import delete_queues
from tests.conftest import _pg_schema_url
from tests.e2e.stack.cluster import Cluster

pytestmark = [pytest.mark.stack, pytest.mark.postgres]

SERVERS_PER_HOST = 3
EVENTS_PER_SERVER = 8  # alternating POWER_OFF, POWER_ON: each one a real transition


@pytest.fixture
def pg_url(request: pytest.FixtureRequest) -> Iterator[str]:
    yield from _pg_schema_url(request)


@pytest.fixture
def cluster(tmp_path: Path, pg_url: str, amqp_url: str) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path, database_url=pg_url, transport_url=amqp_url)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        asyncio.run(delete_queues(amqp_url, cluster.hosts))


def _power_update(server_id: str, tag: str) -> dict[str, Any]:
    return {"events": [{"name": "power-update", "server_uuid": server_id, "tag": tag}]}


def test_every_event_is_handled_once_in_order(cluster: Cluster) -> None:
    servers = {
        cluster.create_server(f"vm-{host}-{n}", host): host for host in cluster.hosts for n in range(SERVERS_PER_HOST)
    }
    cluster.wait_until(
        lambda: all(cluster.server(s)["status"] == "ACTIVE" for s in servers), what="every server ACTIVE"
    )
    assert {cluster.server(s)["OS-EXT-SRV-ATTR:host"] for s in servers} == set(cluster.hosts)

    sent: dict[str, list[tuple[str, str]]] = {s: [] for s in servers}  # server -> [(request id, tag)]
    for n in range(EVENTS_PER_SERVER):
        tag = "POWER_OFF" if n % 2 == 0 else "POWER_ON"
        for server_id in servers:
            response = cluster.post("/os-server-external-events", _power_update(server_id, tag))
            assert response.status_code == 200, response.text
            assert response.json()["events"][0]["code"] == 200
            sent[server_id].append((response.headers["x-openstack-request-id"], tag))

    def all_finished() -> bool:
        return all(
            len(records := cluster.records(s)) == EVENTS_PER_SERVER
            and all(r["state"] in {"handled", "failed", "expired"} for r in records)
            for s in servers
        )

    cluster.wait_until(all_finished, what="every event finished")
    counts = {"sent": sum(map(len, sent.values())), "handled": 0, "effects": 0}
    for server_id, stream in sent.items():
        records = cluster.records(server_id)
        assert [r["request_id"] for r in records] == [request_id for request_id, _ in stream]
        assert {r["state"] for r in records} == {"handled"}, records
        # In order: each event found the server in the state its predecessor left (never a no-op).
        assert not [r for r in records if r["outcome"].startswith("no-op")], records
        counts["handled"] += len(records)
        for request_id, _ in stream:
            action = cluster.get(f"/servers/{server_id}/os-instance-actions/{request_id}", version="2.84")
            steps = [e for e in action["instanceAction"]["events"] if e["event"] == "compute_power_update"]
            assert [e["result"] for e in steps] == ["Success"], action
            counts["effects"] += len(steps)
        server = cluster.server(server_id)
        assert (server["status"], server["OS-EXT-STS:power_state"]) == ("ACTIVE", 1)
    print(f"cluster: {counts}")
    assert counts == {"sent": len(servers) * EVENTS_PER_SERVER, "handled": counts["sent"], "effects": counts["sent"]}
