"""The distributed shape: an API worker lists the waits of agents running in other processes.

The agents record what their operations wait for in the database, so any API worker answers
``GET /os-server-external-events?state=waiting``: the port a boot waits for, and the
accelerator request a Cyborg must bind.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.e2e.stack.cluster import IMAGE, Cluster

pytestmark = [pytest.mark.stack, pytest.mark.postgres]

PORT = "9d3b2a1c-0e4f-4a5b-8c7d-6e5f4a3b2c1d"


@pytest.fixture
def cluster(make_cluster: Callable[..., Cluster]) -> Cluster:
    return make_cluster()


def _waits(cluster: Cluster, server_id: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = cluster.get(f"/os-server-external-events?server_uuid={server_id}&state=waiting")[
        "events"
    ]
    return events


def _boot(cluster: Cluster, **server: Any) -> str:
    body = {"server": {"name": "vm", "imageRef": IMAGE, "host": cluster.hosts[0], **server}}
    response = cluster.post("/servers", body, version="2.74")
    assert response.status_code == 202, response.text
    server_id: str = response.json()["server"]["id"]
    return server_id


def _release(cluster: Cluster, server_id: str, name: str, tag: str, version: str) -> None:
    response = cluster.post(
        "/os-server-external-events", {"events": [{"name": name, "server_uuid": server_id, "tag": tag}]}, version
    )
    assert response.status_code == 200, response.text
    cluster.wait_until(lambda: cluster.server(server_id)["status"] == "ACTIVE", what="the boot completing")
    cluster.wait_until(lambda: _waits(cluster, server_id) == [], what="the wait gone")


def test_waits_are_listed_by_any_api_worker(cluster: Cluster) -> None:
    server_id = _boot(cluster, flavorRef="1", networks=[{"port": PORT}])
    cluster.wait_until(lambda: bool(_waits(cluster, server_id)), what="the boot waiting for its port")
    (wait,) = _waits(cluster, server_id)
    assert (wait["name"], wait["tag"], wait["host"], wait["state"]) == (
        "network-vif-plugged",
        PORT,
        cluster.hosts[0],
        "waiting",
    )
    _release(cluster, server_id, "network-vif-plugged", PORT, "2.76")

    flavor = {"flavor": {"name": "accel", "id": "accel", "ram": 512, "vcpus": 1, "disk": 1}}
    assert cluster.post("/flavors", flavor).status_code == 200
    specs = {"extra_specs": {"accel:device_profile": "gpu"}}
    assert cluster.post("/flavors/accel/os-extra_specs", specs).status_code == 200
    server_id = _boot(cluster, flavorRef="accel", networks="none")
    cluster.wait_until(lambda: bool(_waits(cluster, server_id)), what="the boot waiting for its accelerator")
    (wait,) = _waits(cluster, server_id)
    assert wait["name"] == "accelerator-request-bound"
    _release(cluster, server_id, "accelerator-request-bound", wait["tag"], "2.82")
