"""Fault tests on the cluster recipe: an agent, RabbitMQ or an API worker killed with ``kill -9`` in
the middle of power-update streams. Each reports its counts and fails on any loss, double effect,
wrong order or final state.

The power sync is off: after a restart the fake driver knows no machine (its state is not
persistent yet), and the checks read the records, never the driver.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.stack.cluster import (
    Cluster,
    Sent,
    boot_servers,
    check_exactly_once_in_order,
    check_with_client_retries,
    send_concurrently,
    send_rounds,
)
from tests.e2e.stack.process import free_port

# NOTE: real processes, a few hundred events, a broker started and restarted: minutes on a busy machine.
pytestmark = [pytest.mark.stack, pytest.mark.postgres, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[3]
SCRIPT = REPO / "scripts" / "test-services"
SERVERS_PER_HOST = 10
ROUNDS = 6
CLIENTS = 6  # concurrent clients in the API worker test
KILL_ROUNDS_LIMIT = 20  # rounds the API worker test sends at most until a kill catches a request in flight


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


@dataclass
class PrivateRabbit:
    """A RabbitMQ node of the test's own (``scripts/test-services rabbitmq DIR PORT``): killing it
    touches no other test's broker."""

    directory: Path
    port: int
    url: str = ""
    pid_file: Path = Path()

    def start(self) -> None:
        """Start the node (again: on the same data directory, durable queues kept)."""
        out = subprocess.run(
            [str(SCRIPT), "rabbitmq", str(self.directory), str(self.port)],
            check=True,
            capture_output=True,
            text=True,
            timeout=300,
        ).stdout
        exported = dict(item.split("=", 1) for item in out.split() if "=" in item)
        self.url = exported["HERALD_TEST_AMQP_URL"]
        self.pid_file = Path(exported["HERALD_TEST_AMQP_PID_FILE"])

    def kill(self) -> None:
        os.kill(int(self.pid_file.read_text().strip()), signal.SIGKILL)

    def stop(self) -> None:
        subprocess.run(
            [str(SCRIPT), "rabbitmq-stop", str(self.directory), str(self.port)], capture_output=True, timeout=120
        )


@pytest.fixture
def private_rabbit() -> Iterator[PrivateRabbit]:
    if shutil.which("rabbitmq-server") is None and not Path("/usr/sbin/rabbitmq-server").exists():
        pytest.skip("RabbitMQ is not installed: run scripts/test-services first")
    # NOTE: under /var/tmp: the node runs as the rabbitmq user when root, who cannot enter pytest's tmp_path.
    rabbit = PrivateRabbit(Path(tempfile.mkdtemp(prefix="herald-fault-rabbit-", dir="/var/tmp")), free_port())
    try:
        rabbit.start()
        yield rabbit
    finally:
        rabbit.stop()
        shutil.rmtree(rabbit.directory, ignore_errors=True)


def test_rabbitmq_killed_mid_stream_then_restarted(
    private_rabbit: PrivateRabbit, make_cluster: Callable[..., Cluster]
) -> None:
    # NOTE: private_rabbit first: set up before the cluster, so it is stopped after the cluster's clean-up.
    cluster = make_cluster(default="sync_power_state_interval = -1\n", transport_url=private_rabbit.url)
    servers = boot_servers(cluster, SERVERS_PER_HOST)
    probe = servers[0]
    sent: Sent = {}
    sender = threading.Thread(target=send_rounds, args=(cluster, servers, range(4), sent))
    sender.start()
    try:
        cluster.wait_until(lambda: any(r["state"] == "handled" for r in cluster.records(probe)), what="events flowing")
        private_rabbit.kill()  # confirmed messages are in quorum queues; the rest stays in the outbox
        sender.join()  # the API keeps answering 200 while RabbitMQ is away
    finally:
        sender.join()
        private_rabbit.start()
    send_rounds(cluster, servers, range(4, ROUNDS), sent)
    counts = check_exactly_once_in_order(cluster, sent)
    print(f"RabbitMQ kill -9: {counts}")
    assert counts["handled"] == counts["effects"] == counts["sent"] == len(servers) * ROUNDS


def test_an_api_worker_killed_with_requests_in_flight(cluster: Cluster) -> None:
    """Clients send at once; a worker is killed until one of them lost a request in flight (its
    connection broke before any answer), and each such client sends the event again."""
    servers = boot_servers(cluster, SERVERS_PER_HOST)
    probe = servers[0]
    sent: Sent = {}
    retried: set[str] = set()
    unanswered: set[str] = set()
    killed: list[int] = []
    rounds = 0
    # NOTE: a kill may fall between two requests of every client: then the clients send more rounds
    # and the next worker is killed, until one request was caught in flight.
    while not unanswered and rounds < KILL_ROUNDS_LIMIT:
        chunk = range(rounds, rounds + 4)
        rounds += 4
        senders = send_concurrently(cluster, servers, chunk, sent, retried, unanswered, clients=CLIENTS)
        try:
            cluster.wait_until(
                lambda: any(r["state"] == "handled" for r in cluster.records(probe)), what="events flowing"
            )
            while not unanswered and any(sender.is_alive() for sender in senders) and len(killed) < 20:
                # The supervisor replaces a killed worker: the newest one is alive (and takes connections).
                victim = next(pid for pid in reversed(cluster.api_workers()) if pid not in killed)
                os.kill(victim, signal.SIGKILL)  # its accepted but unpublished events wait in the outbox
                killed.append(victim)
                cluster.wait_until(
                    lambda: unanswered or len(set(cluster.api_workers()) - set(killed)) >= 2, what="a new API worker"
                )
        finally:
            for sender in senders:
                sender.join()
    assert unanswered, f"no request was in flight in {len(killed)} killed workers"
    for sender in send_concurrently(
        cluster, servers, range(rounds, rounds + 2), sent, retried, unanswered, clients=CLIENTS
    ):
        sender.join()
    rounds += 2
    counts = check_with_client_retries(cluster, sent, retried)
    counts["workers_killed"] = len(killed)
    counts["unanswered"] = len(unanswered)
    print(f"API worker kill -9: {counts}")
    assert counts["effects"] == len(servers) * rounds
    assert counts["handled"] == counts["effects"] + counts["no_op_copies"]
