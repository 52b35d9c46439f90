"""Fault tests on the cluster recipe: a process killed with ``kill -9`` in the middle of power-update
streams. Each reports its counts and fails on any loss, double effect, wrong order or final state.

The power sync is off: after a restart the fake driver knows no machine (its state is not
persistent yet), and the checks read the records, never the driver.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from tests.e2e.stack.cluster import Cluster, Sent, boot_servers, check_exactly_once_in_order, send_rounds

pytestmark = [pytest.mark.stack, pytest.mark.postgres]

SERVERS_PER_HOST = 10
ROUNDS = 6


@pytest.fixture
def cluster(make_cluster: Callable[..., Cluster]) -> Cluster:
    return make_cluster(default="sync_power_state_interval = -1\n")


def test_an_agent_killed_mid_stream_then_restarted(cluster: Cluster) -> None:
    servers = boot_servers(cluster, SERVERS_PER_HOST)
    victim = cluster.hosts[0]
    victim_server = next(s for s in servers if cluster.server(s)["OS-EXT-SRV-ATTR:host"] == victim)
    sent: Sent = {}
    sender = threading.Thread(target=send_rounds, args=(cluster, servers, range(4), sent))
    sender.start()
    try:
        # Once the victim is busy with the stream: whatever it is doing stays unacknowledged, maybe committed.
        cluster.wait_until(
            lambda: any(r["state"] == "handled" for r in cluster.records(victim_server)), what="the victim at work"
        )
        cluster.agents[victim].kill()
    finally:
        sender.join()
    cluster.start_agent(victim)  # the events sent meanwhile waited in its queue
    send_rounds(cluster, servers, range(4, ROUNDS), sent)
    counts = check_exactly_once_in_order(cluster, sent)
    print(f"agent kill -9: {counts}")
    assert counts["handled"] == counts["effects"] == counts["sent"] == len(servers) * ROUNDS
