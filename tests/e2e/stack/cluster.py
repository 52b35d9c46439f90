"""The README's "Run a cluster" recipe as real processes: ``herald db upgrade``, ``herald api --workers 2``
and one ``herald agent`` per host, on PostgreSQL and RabbitMQ."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.stack.process import free_port

ADMIN = {"X-Auth-Token": "admin:admin"}
IMAGE = "70a599e0-31e7-49b7-b260-868f441e862b"
HERALD = Path(sys.executable).with_name("herald")


def write_config(path: Path, *, database_url: str, transport_url: str) -> Path:
    """The herald.conf of the recipe (noauth2 on loopback, fast heartbeats and relay passes)."""
    path.write_text(
        "[DEFAULT]\n"
        f"transport_url = {transport_url}\n"
        "report_interval = 1\n"
        "[database]\n"
        f"connection = {database_url}\n"
        "[api]\n"
        "auth_strategy = noauth2\n"
        "[herald]\n"
        "relay_interval = 1\n"
    )
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

    def __init__(self, tmp_path: Path, *, database_url: str, transport_url: str, hosts: int = 3) -> None:
        self.tmp_path = tmp_path
        self.config = write_config(tmp_path / "herald.conf", database_url=database_url, transport_url=transport_url)
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

    def start_agent(self, host: str) -> None:
        self.agents[host] = Command(
            ["agent", "--config-file", str(self.config), "--host", host], self.tmp_path / f"agent-{host}.log"
        )

    def stop(self) -> None:
        for command in [*self.agents.values(), *([self.api] if self.api else [])]:
            command.stop()

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
        records: list[dict[str, Any]] = self.get(f"/os-server-external-events?server_uuid={server_id}")["events"]
        return records
