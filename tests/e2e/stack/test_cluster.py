"""The README's cluster recipe on one machine: PostgreSQL, RabbitMQ, two API workers, three agents.

Servers on the three hosts get streams of power-update events through the API; every event
must be handled exactly once (one effect: one instance-action step per event), in the order it
was accepted for its server, and the servers must end in the state of their last event.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

import pytest

from tests.e2e.stack.cluster import Cluster, Sent, boot_servers, check_exactly_once_in_order, send_rounds

pytestmark = [pytest.mark.stack, pytest.mark.postgres]

SERVERS_PER_HOST = 3
EVENTS_PER_SERVER = 8  # alternating POWER_OFF, POWER_ON: each one a real transition


@pytest.fixture
def cluster(make_cluster: Callable[..., Cluster]) -> Cluster:
    return make_cluster()


def test_every_event_is_handled_once_in_order(cluster: Cluster) -> None:
    servers = boot_servers(cluster, SERVERS_PER_HOST)
    sent: Sent = {}
    send_rounds(cluster, servers, range(EVENTS_PER_SERVER), sent)
    counts = check_exactly_once_in_order(cluster, sent)
    print(f"cluster: {counts}")
    total = len(servers) * EVENTS_PER_SERVER
    assert counts == {
        "sent": total,
        "acknowledged": total,
        "handled": total,
        "effects": total,
        "in_final_state": len(servers),
        # NOTE: nothing failed, so nothing was sent twice (a re-send needs a lapsed claim).
        "duplicates_suppressed": 0,
    }


def test_a_dead_api_worker_is_replaced(cluster: Cluster) -> None:
    assert cluster.api is not None
    workers = cluster.api_workers()
    assert len(workers) == 2
    os.kill(workers[0], signal.SIGKILL)
    cluster.wait_until(lambda: len(cluster.api_workers()) == 3, what="a new API worker")
    cluster.wait_until(lambda: cluster.get("/os-services") is not None, what="the API answering")
