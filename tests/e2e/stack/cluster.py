"""The README's "Run a cluster" recipe as real processes: ``herald db upgrade``, ``herald api --workers 2``
and one ``herald agent`` per host, on PostgreSQL and RabbitMQ."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.stack.process import free_port

ADMIN = {"X-Auth-Token": "admin:admin"}
IMAGE = "70a599e0-31e7-49b7-b260-868f441e862b"
HERALD = Path(sys.executable).with_name("herald")


def write_config(path: Path, *, database_url: str, transport_url: str, default: str = "", fast: bool = True) -> Path:
    """The herald.conf of the recipe (noauth2 on loopback), with ``default`` added to its [DEFAULT]
    section; ``fast``: heartbeats and relay passes quickened for the fault tests (without it, the
    README's defaults, as the benchmark measures them)."""
    quick = ["report_interval = 1"] if fast else []
    # NOTE: the claims of a killed API worker's relay lapse soon: its orphans are re-sent quickly.
    relay = ["[herald]", "relay_interval = 1", "relay_resend_after = 5"] if fast else []
    lines = [
        "[DEFAULT]",
        f"transport_url = {transport_url}",
        *quick,
        *default.splitlines(),
        "[database]",
        f"connection = {database_url}",
        "[api]",
        "auth_strategy = noauth2",
        *relay,
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


class Command:
    """One herald process; its output goes to ``log_path``."""

    def __init__(self, args: list[str], log_path: Path) -> None:
        self.args = args
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            [str(HERALD), *args],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    def kill(self) -> None:
        """``kill -9``: no clean-up of any kind."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self._log.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()


class Cluster:
    """Two API workers and an agent per host, started as the README says."""

    def __init__(
        self,
        tmp_path: Path,
        *,
        database_url: str,
        transport_url: str,
        hosts: int = 3,
        default: str = "",
        fast: bool = True,
    ) -> None:
        self.tmp_path = tmp_path
        self.transport_url = transport_url
        self.config = write_config(
            tmp_path / "herald.conf", database_url=database_url, transport_url=transport_url, default=default, fast=fast
        )
        # NOTE: host names of their own: the RabbitMQ node (and its queues) is shared by test runs.
        prefix = f"c{uuid.uuid4().hex[:6]}"
        self.hosts = [f"{prefix}-compute-{n}" for n in range(1, hosts + 1)]
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v2.1"
        self.api: Command | None = None
        self.agents: dict[str, Command] = {}
        subprocess.run(
            [str(HERALD), "db", "upgrade", "--config-file", str(self.config)], check=True, capture_output=True
        )

    def start(self) -> None:
        self.api = Command(
            [
                "api",
                "--config-file",
                str(self.config),
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                "2",
            ],
            self.tmp_path / "api.log",
        )
        for host in self.hosts:
            self.start_agent(host)
        self.wait_until(self._all_up, what="the API and every agent up")
        self.wait_until(lambda: self._api_log().count("Application startup complete") == 2, what="both API workers")

    def start_agent(self, host: str) -> None:
        self.agents[host] = Command(
            ["agent", "--config-file", str(self.config), "--host", host], self.tmp_path / f"agent-{host}.log"
        )

    def stop(self) -> None:
        for command in [*self.agents.values(), *([self.api] if self.api else [])]:
            command.stop()

    def api_workers(self) -> list[int]:
        """Pids of the API worker processes started so far (uvicorn logs each)."""
        return [int(pid) for pid in re.findall(r"Started server process \[(\d+)\]", self._api_log())]

    def _api_log(self) -> str:
        return (self.tmp_path / "api.log").read_text()

    def duplicates_suppressed(self) -> int:
        """Deliveries the agents received again after finishing them and gave no second effect (their logs)."""
        return sum(path.read_text().count("Duplicate delivery of event") for path in self.tmp_path.glob("agent-*.log"))

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-4000:]}" for p in sorted(self.tmp_path.glob("*.log")))

    def wait_until(self, check: Any, *, what: str, limit: float = 90.0) -> None:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            for command in [*self.agents.values(), *([self.api] if self.api else [])]:
                if command.process.poll() is not None:
                    raise AssertionError(f"{command.args[0]} exited while waiting for {what}:\n{self.logs()}")
            try:
                if check():
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"not reached in {limit} s: {what}\n{self.logs()}")

    # -- the compute API ---------------------------------------------------------------------------

    def get(self, path: str, version: str = "2.76") -> Any:
        response = httpx.get(self.url + path, headers={**ADMIN, "OpenStack-API-Version": f"compute {version}"})
        assert response.status_code == 200, response.text
        return response.json()

    def post(self, path: str, body: Any, version: str = "2.76") -> httpx.Response:
        return httpx.post(
            self.url + path, json=body, headers={**ADMIN, "OpenStack-API-Version": f"compute {version}"}, timeout=30
        )

    def _all_up(self) -> bool:
        services = self.get("/os-services")["services"]
        up = {s["host"] for s in services if s["binary"] == "nova-compute" and s["state"] == "up"}
        return up >= set(self.hosts)

    def create_server(self, name: str, host: str) -> str:
        body = {"server": {"name": name, "imageRef": IMAGE, "flavorRef": "1", "networks": "none", "host": host}}
        response = self.post("/servers", body, version="2.74")
        assert response.status_code == 202, response.text
        server_id: str = response.json()["server"]["id"]
        return server_id

    def server(self, server_id: str) -> dict[str, Any]:
        server: dict[str, Any] = self.get(f"/servers/{server_id}")["server"]
        return server

    def records(self, server_id: str) -> list[dict[str, Any]]:
        """The server's event records in accept order (the listing is newest first)."""
        records: list[dict[str, Any]] = self.get(f"/os-server-external-events?server_uuid={server_id}")["events"]
        return records[::-1]


# -- power-update streams and what must hold after them ------------------------------------------

Sent = dict[str, list[tuple[str, str]]]  # server -> [(request id, tag)] in the order accepted


def boot_servers(cluster: Cluster, per_host: int) -> list[str]:
    """``per_host`` ACTIVE servers on each of the cluster's hosts."""
    servers = [cluster.create_server(f"vm-{host}-{n}", host) for host in cluster.hosts for n in range(per_host)]
    cluster.wait_until(lambda: all(cluster.server(s)["status"] == "ACTIVE" for s in servers), what="servers ACTIVE")
    assert {cluster.server(s)["OS-EXT-SRV-ATTR:host"] for s in servers} == set(cluster.hosts)
    return servers


def send_rounds(cluster: Cluster, servers: list[str], rounds: range, sent: Sent) -> None:
    """One power-update per server per round, POWER_OFF on even rounds, POWER_ON on odd ones: each one
    is a real transition if, and only if, the events of a server are applied in order."""
    for n in rounds:
        tag = "POWER_OFF" if n % 2 == 0 else "POWER_ON"
        for server_id in servers:
            body = {"events": [{"name": "power-update", "server_uuid": server_id, "tag": tag}]}
            response = cluster.post("/os-server-external-events", body)
            assert response.status_code == 200, response.text
            assert response.json()["events"][0]["code"] == 200
            sent.setdefault(server_id, []).append((response.headers["x-openstack-request-id"], tag))


def _power_update_steps(cluster: Cluster, server_id: str, request_id: str) -> list[str]:
    """Results of the agent's power-update steps under the event's instance action (one per effect)."""
    action = cluster.get(f"/servers/{server_id}/os-instance-actions/{request_id}", version="2.84")
    return [e["result"] for e in action["instanceAction"]["events"] if e["event"] == "compute_power_update"]


def _in_final_state(cluster: Cluster, server_id: str, stream: list[tuple[str, str]]) -> bool:
    server = cluster.server(server_id)
    expected = ("SHUTOFF", 4) if stream[-1][1] == "POWER_OFF" else ("ACTIVE", 1)
    return (server["status"], server["OS-EXT-STS:power_state"]) == expected


def check_exactly_once_in_order(cluster: Cluster, sent: Sent) -> dict[str, int]:
    """Wait for every event to finish, then check: each handled, once (one instance-action step),
    in accept order, and each server in the state of its last event. Returns the counts."""

    def all_finished() -> bool:
        return all(
            len(records := cluster.records(s)) == len(stream)
            and all(r["state"] in {"handled", "failed", "expired"} for r in records)
            for s, stream in sent.items()
        )

    cluster.wait_until(all_finished, what="every event finished", limit=180)
    counts = {"sent": 0, "acknowledged": 0, "handled": 0, "effects": 0, "in_final_state": 0}
    for server_id, stream in sent.items():
        counts["sent"] += len(stream)
        counts["acknowledged"] += len(stream)  # every request above was answered 200
        records = cluster.records(server_id)
        assert [r["request_id"] for r in records] == [request_id for request_id, _ in stream]
        assert {r["state"] for r in records} == {"handled"}, records
        # Out of order, an event finds the server already in its target state: a no-op.
        assert not [r for r in records if r["outcome"].startswith("no-op")], records
        counts["handled"] += len(records)
        for request_id, _ in stream:
            steps = _power_update_steps(cluster, server_id, request_id)
            assert steps == ["Success"], (request_id, steps)
            counts["effects"] += len(steps)
        assert _in_final_state(cluster, server_id, stream)
        counts["in_final_state"] += 1
    counts["duplicates_suppressed"] = cluster.duplicates_suppressed()
    return counts


def send_rounds_retrying(
    cluster: Cluster,
    servers: list[str],
    rounds: range,
    sent: Sent,
    retried: set[str],
    unanswered: set[str] | None = None,
) -> None:
    """:func:`send_rounds` as a real client does it: a request that got no answer is sent again (a new
    event; the first one may have been committed). ``retried`` collects "server/round" of those;
    ``unanswered`` those whose connection broke before any answer (a request in flight).

    One kept-alive connection, as an SDK keeps it: it stays with one API worker, so killing that
    worker while it works on the request breaks it (a fresh connection per request would mostly
    be between requests)."""
    headers = {**ADMIN, "OpenStack-API-Version": "compute 2.76"}
    with httpx.Client(headers=headers, timeout=30) as client:
        _send_rounds_on(client, cluster.url, servers, rounds, sent, retried, unanswered)


def _send_rounds_on(
    client: httpx.Client,
    url: str,
    servers: list[str],
    rounds: range,
    sent: Sent,
    retried: set[str],
    unanswered: set[str] | None,
) -> None:
    for n in rounds:
        tag = "POWER_OFF" if n % 2 == 0 else "POWER_ON"
        for server_id in servers:
            body = {"events": [{"name": "power-update", "server_uuid": server_id, "tag": tag}]}
            while True:
                try:
                    response = client.post(url + "/os-server-external-events", json=body)
                except httpx.TransportError:
                    retried.add(f"{server_id}/{n}")
                    if unanswered is not None:
                        unanswered.add(f"{server_id}/{n}")
                    continue
                if response.status_code == 200:
                    break
                assert response.status_code >= 500, response.text
                retried.add(f"{server_id}/{n}")
            sent.setdefault(server_id, []).append((response.headers["x-openstack-request-id"], tag))


def check_with_client_retries(cluster: Cluster, sent: Sent, retried: set[str]) -> dict[str, int]:
    """Like :func:`check_exactly_once_in_order`, where a retried request may have been accepted twice:
    its second copy must then be a recorded no-op (the state is already the target), nothing else."""

    def all_finished() -> bool:
        return all(
            len(records := cluster.records(s)) >= len(stream)
            and all(r["state"] in {"handled", "failed", "expired"} for r in records)
            for s, stream in sent.items()
        )

    cluster.wait_until(all_finished, what="every event finished", limit=180)
    counts = {"sent": 0, "retried": len(retried), "handled": 0, "effects": 0, "no_op_copies": 0, "in_final_state": 0}
    for server_id, stream in sent.items():
        counts["sent"] += len(stream)
        records = cluster.records(server_id)
        assert {r["state"] for r in records} == {"handled"}, records
        answered = {request_id for request_id, _ in stream}
        assert answered <= {r["request_id"] for r in records}  # nothing answered 200 was lost
        rounds: list[list[dict[str, Any]]] = []
        for record in records:  # consecutive records of one tag are one round
            if rounds and rounds[-1][0]["tag"] == record["tag"]:
                rounds[-1].append(record)
            else:
                rounds.append([record])
        assert [group[0]["tag"] for group in rounds] == [tag for _, tag in stream], records
        for n, group in enumerate(rounds):
            assert len(group) == 1 or f"{server_id}/{n}" in retried, group
            first, *copies = group
            assert not first["outcome"].startswith("no-op"), group
            assert all(copy["outcome"].startswith("no-op") for copy in copies), group
            counts["no_op_copies"] += len(copies)
            for record in group:
                steps = _power_update_steps(cluster, server_id, record["request_id"])
                assert len(steps) == 1, (record, steps)
                counts["effects"] += steps[0] == "Success"
        counts["handled"] += len(records)
        assert _in_final_state(cluster, server_id, stream)
        counts["in_final_state"] += 1
    counts["duplicates_suppressed"] = cluster.duplicates_suppressed()
    return counts


def send_concurrently(
    cluster: Cluster,
    servers: list[str],
    rounds: range,
    sent: Sent,
    retried: set[str],
    unanswered: set[str],
    *,
    clients: int,
) -> list[threading.Thread]:
    """:func:`send_rounds_retrying` from ``clients`` threads at once, each with its own servers (so each
    server's events still go one after the other); returns the started threads."""
    threads = [
        threading.Thread(
            target=send_rounds_retrying, args=(cluster, servers[n::clients], rounds, sent, retried, unanswered)
        )
        for n in range(clients)
    ]
    for thread in threads:
        thread.start()
    return threads
