"""Fault tests on the cluster recipe: an agent, RabbitMQ or an API worker killed with ``kill -9`` in
the middle of power-update streams. Each reports its counts and fails on any loss, double effect,
wrong order or final state.

The power sync is off: after a restart the fake driver knows no machine (its state is not
persistent yet), and the checks read the records, never the driver.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.stack.cluster import (
    Cluster,
    Sent,
    boot_servers,
    check_exactly_once_in_order,
    check_with_client_retries,
    send_rounds,
    send_rounds_retrying,
)

pytestmark = [pytest.mark.stack, pytest.mark.postgres]

REPO = Path(__file__).resolve().parents[3]
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


def _broker_pid() -> int:
    pid_file = os.environ.get("HERALD_TEST_AMQP_PID_FILE")
    if not pid_file:
        pytest.skip('HERALD_TEST_AMQP_PID_FILE is not set: run `eval "$(scripts/test-services)"` first')
    return int(Path(pid_file).read_text().strip())


def _restart_broker() -> None:
    """scripts/test-services starts the node again on the same data directory (durable queues kept)."""
    subprocess.run([str(REPO / "scripts" / "test-services")], check=True, capture_output=True, timeout=300)


def test_rabbitmq_killed_mid_stream_then_restarted(cluster: Cluster) -> None:
    servers = boot_servers(cluster, SERVERS_PER_HOST)
    pid = _broker_pid()
    probe = servers[0]
    sent: Sent = {}
    sender = threading.Thread(target=send_rounds, args=(cluster, servers, range(4), sent))
    sender.start()
    try:
        cluster.wait_until(lambda: any(r["state"] == "handled" for r in cluster.records(probe)), what="events flowing")
        os.kill(pid, signal.SIGKILL)  # confirmed messages are in quorum queues; the rest stays in the outbox
        sender.join()  # the API keeps answering 200 while RabbitMQ is away
    finally:
        sender.join()
        _restart_broker()
    send_rounds(cluster, servers, range(4, ROUNDS), sent)
    counts = check_exactly_once_in_order(cluster, sent)
    print(f"RabbitMQ kill -9: {counts}")
    assert counts["handled"] == counts["effects"] == counts["sent"] == len(servers) * ROUNDS


def test_an_api_worker_killed_mid_stream(cluster: Cluster) -> None:
    servers = boot_servers(cluster, SERVERS_PER_HOST)
    workers = cluster.api_workers()
    probe = servers[0]
    sent: Sent = {}
    retried: set[str] = set()
    sender = threading.Thread(target=send_rounds_retrying, args=(cluster, servers, range(4), sent, retried))
    sender.start()
    try:
        cluster.wait_until(lambda: any(r["state"] == "handled" for r in cluster.records(probe)), what="events flowing")
        os.kill(workers[0], signal.SIGKILL)  # its accepted but unpublished events wait in the outbox
    finally:
        sender.join()
    send_rounds_retrying(cluster, servers, range(4, ROUNDS), sent, retried)
    counts = check_with_client_retries(cluster, sent, retried)
    print(f"API worker kill -9: {counts}")
    assert counts["effects"] == len(servers) * ROUNDS
    assert counts["handled"] == counts["effects"] + counts["no_op_copies"]
