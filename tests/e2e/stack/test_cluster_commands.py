"""Server commands on the distributed shape while RabbitMQ is away: the API answers as Nova does (no
503), the server keeps its task state, and the command reaches its agent once the broker is back.

The test runs a RabbitMQ node of its own, stopped and started again here: never the shared one.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.e2e.stack.cluster import Cluster
from tests.e2e.stack.test_cluster_faults import PrivateRabbit, private_rabbit

pytestmark = [pytest.mark.stack, pytest.mark.postgres, pytest.mark.timeout(600)]

__all__ = ["private_rabbit"]


def _state(cluster: Cluster, server_id: str) -> tuple[str, str | None]:
    server = cluster.server(server_id)
    return server["status"], server["OS-EXT-STS:task_state"]


def test_a_stop_sent_while_rabbitmq_is_stopped_is_delivered_once_it_is_back(
    private_rabbit: PrivateRabbit, make_cluster: Callable[..., Cluster]
) -> None:
    # NOTE: private_rabbit first: set up before the cluster, so it is stopped after the cluster's clean-up.
    cluster = make_cluster(default="sync_power_state_interval = -1\n", transport_url=private_rabbit.url, hosts=1)
    (host,) = cluster.hosts
    server_id = cluster.create_server("vm", host)
    cluster.wait_until(lambda: cluster.server(server_id)["status"] == "ACTIVE", what="the server ACTIVE")
    private_rabbit.stop()
    try:
        response = cluster.post(f"/servers/{server_id}/action", {"os-stop": None})
        assert response.status_code == 202, response.text
        assert _state(cluster, server_id) == ("ACTIVE", "powering-off")
        # Meanwhile the command waits in the outbox (the relay's passes find no broker).
        api_log = cluster.tmp_path / "api.log"
        cluster.wait_until(lambda: "Could not send 1 commands" in api_log.read_text(), what="a failed command publish")
        assert _state(cluster, server_id) == ("ACTIVE", "powering-off")
    finally:
        private_rabbit.start()
    cluster.wait_until(lambda: _state(cluster, server_id) == ("SHUTOFF", None), what="the server SHUTOFF", limit=180)
