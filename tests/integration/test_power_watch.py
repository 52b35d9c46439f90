"""herald power-watch: Redfish power (the emulator) against the compute API (real ``herald serve``, or a stand-in)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from unittest.mock import create_autospec

import httpx
import pytest

from herald.adapters.virt.redfish_client import RedfishClient
from herald.config import load_settings, new_conf
from herald.domain.events import PowerTag
from herald.power_watch import (
    ComputeApi,
    PowerUpdate,
    PowerWatch,
    WatchedServer,
    build_power_watch,
    compute_api_adapter,
)
from tests.e2e.stack.process import HeraldProcess
from tests.e2e.stack.process import wait_until as _until
from tests.redfish_emulator import RedfishEmulator

IMAGE = "70a599e0-31e7-49b7-b260-868f441e862b"
ADMIN = {"X-Auth-Token": "admin:admin", "OpenStack-API-Version": "compute 2.76"}


@pytest.fixture
def make_watch(tmp_path: Path) -> Iterator[Callable[[RedfishEmulator, str], PowerWatch]]:
    """Builds PowerWatches from a herald.conf, as ``herald power-watch --config-file`` does; closes them after."""
    built: list[PowerWatch] = []

    def make(emulator: RedfishEmulator, endpoint: str) -> PowerWatch:
        path = tmp_path / "power-watch.conf"
        path.write_text(
            f"[redfish]\naddress = {emulator.url}\nsystems = {','.join(emulator.system_ids)}\n"
            f"[compute_api]\nauth_type = admin_token\nendpoint = {endpoint}\ntoken = admin:admin\n"
        )
        conf = new_conf()
        built.append(build_power_watch(load_settings(conf, config_files=[str(path)]), conf))
        return built[-1]

    yield make
    for watch in built:
        watch.close()


@pytest.fixture
def herald_on_redfish(redfish_emulator: RedfishEmulator, db_url: str, tmp_path: Path) -> Iterator[HeraldProcess]:
    """``herald serve`` (on each database) with one compute host whose nodes are the emulator's systems."""
    path = tmp_path / "herald.conf"
    path.write_text(
        "[DEFAULT]\ncompute_driver = redfish\nsync_power_state_interval = -1\n"
        f"[redfish]\naddress = {redfish_emulator.url}\nsystems = {','.join(redfish_emulator.system_ids)}\n"
        "power_poll_interval = 0.2\n"
    )
    process = HeraldProcess(db_url, tmp_path / "herald.log", hosts="compute-1", config_file=path)
    try:
        process.wait_ready()
        yield process
    finally:
        process.stop()


@pytest.mark.stack
def test_a_node_switched_off_at_the_bmc_is_reported_once(
    herald_on_redfish: HeraldProcess,
    redfish_emulator: RedfishEmulator,
    make_watch: Callable[[RedfishEmulator, str], PowerWatch],
    request: pytest.FixtureRequest,
) -> None:
    api = httpx.Client(base_url=herald_on_redfish.url + "/v2.1", headers=ADMIN, timeout=10.0)
    request.addfinalizer(api.close)
    body = {"server": {"name": "bm-1", "imageRef": IMAGE, "flavorRef": "1", "networks": "none"}}
    server_id = api.post("/servers", json=body).json()["server"]["id"]

    def server() -> dict[str, Any]:
        found: dict[str, Any] = api.get(f"/servers/{server_id}").json()["server"]
        return found

    _until(lambda: server()["status"] == "ACTIVE")
    node = server()["OS-EXT-SRV-ATTR:hypervisor_hostname"]
    assert node == redfish_emulator.system_ids[0]
    assert redfish_emulator.power_of(node) == "On"  # spawn powered it on
    watch = make_watch(redfish_emulator, herald_on_redfish.url + "/v2.1")
    assert watch.poll_once() == []

    redfish_emulator.set_power(node, "Off", wait=True)
    assert watch.poll_once() == [PowerUpdate(server_id, PowerTag.POWER_OFF, accepted=True)]
    _until(lambda: server()["status"] == "SHUTOFF")
    assert server()["OS-EXT-STS:power_state"] == 4
    assert watch.poll_once() == []

    redfish_emulator.set_power(node, "On", wait=True)
    assert watch.poll_once() == [PowerUpdate(server_id, PowerTag.POWER_ON, accepted=True)]
    _until(lambda: server()["status"] == "ACTIVE")
    assert server()["OS-EXT-STS:power_state"] == 1
    assert watch.poll_once() == []
    actions = api.get(f"/servers/{server_id}/os-instance-actions").json()["instanceActions"]
    assert sorted(a["action"] for a in actions) == ["create", "start", "stop"]


@dataclass
class FakeComputeApi:
    """A stand-in compute API over real HTTP: fixed servers, scripted replies to posted events."""

    servers: list[dict[str, Any]]
    replies: list[tuple[int, dict[str, Any] | None]]
    posts: list[tuple[dict[str, str], Any]] = field(default_factory=list)

    def handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                assert self.path.startswith("/v2.1/servers/detail?"), self.path
                self._reply(200, {"servers": fake.servers})

            def do_POST(self) -> None:
                assert self.path == "/v2.1/os-server-external-events", self.path
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.posts.append((dict(self.headers), body))
                status, reply = fake.replies.pop(0)
                self._reply(status, reply)

            def _reply(self, status: int, body: dict[str, Any] | None) -> None:
                data = json.dumps(body).encode() if body is not None else b"oops"
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                del format, args

        return Handler


@pytest.fixture
def fake_compute_api() -> Iterator[tuple[FakeComputeApi, str]]:
    fake = FakeComputeApi(servers=[], replies=[])
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), fake.handler())
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{httpd.server_address[1]}/v2.1"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def _server(uuid: str, node: str, status: str, task_state: str | None = None, power_state: int = 1) -> dict[str, Any]:
    return {
        "id": uuid,
        "status": status,
        "OS-EXT-SRV-ATTR:hypervisor_hostname": node,
        "OS-EXT-STS:power_state": power_state,
        "OS-EXT-STS:task_state": task_state,
    }


def test_a_failed_post_is_logged_and_retried_on_the_next_tick_only(
    fake_compute_api: tuple[FakeComputeApi, str],
    redfish_emulator: RedfishEmulator,
    make_watch: Callable[[RedfishEmulator, str], PowerWatch],
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake, endpoint = fake_compute_api
    off_node, _, on_node = redfish_emulator.system_ids  # the emulator starts them Off, Off, On
    uuid = "0b5a7c1e-3f0e-4d55-9d4e-1f2a3b4c5d6e"
    fake.servers = [
        _server(uuid, off_node, "ACTIVE"),  # the API says ACTIVE, the node is Off
        _server("c0ffee00-0000-4000-8000-000000000001", on_node, "ACTIVE"),  # in agreement
        _server("c0ffee00-0000-4000-8000-000000000002", off_node, "ACTIVE", task_state="powering-off"),  # busy
        _server("c0ffee00-0000-4000-8000-000000000003", "compute-1", "ACTIVE"),  # not a Redfish node
        _server("c0ffee00-0000-4000-8000-000000000004", off_node, "PAUSED"),  # another status: left alone
    ]
    ok = {
        "events": [
            {"name": "power-update", "server_uuid": uuid, "tag": "POWER_OFF", "status": "completed", "code": 200}
        ]
    }
    fake.replies = [(500, None), (200, ok)]
    watch = make_watch(redfish_emulator, endpoint)

    assert watch.poll_once() == [PowerUpdate(uuid, PowerTag.POWER_OFF, accepted=False)]
    assert "The compute API refused" in caplog.text
    assert watch.poll_once() == [PowerUpdate(uuid, PowerTag.POWER_OFF, accepted=True)]
    assert watch.poll_once() == []  # the API still says ACTIVE, but this change was reported

    assert len(fake.posts) == 2
    headers, body = fake.posts[-1]
    assert body == {"events": [{"name": "power-update", "server_uuid": uuid, "tag": "POWER_OFF"}]}
    assert headers["OpenStack-API-Version"] == "compute 2.76"
    assert headers["X-Auth-Token"] == "admin:admin"


def _compute_api(endpoint: str, tmp_path: Path) -> ComputeApi:
    conf = new_conf()
    path = tmp_path / "api.conf"
    path.write_text(f"[compute_api]\nauth_type = admin_token\nendpoint = {endpoint}\ntoken = admin:admin\n")
    conf(["--config-file", str(path)])
    return ComputeApi(compute_api_adapter(conf))


def test_a_per_event_failure_is_not_taken(fake_compute_api: tuple[FakeComputeApi, str], tmp_path: Path) -> None:
    fake, endpoint = fake_compute_api
    uuid = "0b5a7c1e-3f0e-4d55-9d4e-1f2a3b4c5d6e"
    fake.servers = [_server(uuid, "n1", "SHUTOFF", power_state=4)]
    gone = {
        "events": [{"name": "power-update", "server_uuid": uuid, "tag": "POWER_ON", "status": "failed", "code": 404}]
    }
    fake.replies = [(207, gone)]
    redfish = create_autospec(RedfishClient, instance=True, spec_set=True)
    redfish.power.return_value = "On"
    api = _compute_api(endpoint, tmp_path)
    try:
        assert PowerWatch(api, redfish, systems=["n1"]).poll_once() == [
            PowerUpdate(uuid, PowerTag.POWER_ON, accepted=False)
        ]
    finally:
        api.close()


@pytest.mark.parametrize("transition", ["PoweringOn", "PoweringOff", "Paused", None])
def test_nodes_in_transition_or_unknown_are_skipped(transition: str | None) -> None:
    api = create_autospec(ComputeApi, instance=True, spec_set=True)
    api.servers.return_value = [WatchedServer("s1", "n1", "ACTIVE", None)]
    redfish = create_autospec(RedfishClient, instance=True, spec_set=True)
    redfish.power.return_value = transition
    assert PowerWatch(api, redfish).poll_once() == []
    api.power_update.assert_not_called()


def test_the_power_watch_command_posts_and_stops_on_sigterm(
    fake_compute_api: tuple[FakeComputeApi, str], redfish_emulator: RedfishEmulator, tmp_path: Path
) -> None:
    fake, endpoint = fake_compute_api
    uuid = "0b5a7c1e-3f0e-4d55-9d4e-1f2a3b4c5d6e"
    fake.servers = [_server(uuid, redfish_emulator.system_ids[0], "ACTIVE")]  # the node is Off
    ok = {
        "events": [
            {"name": "power-update", "server_uuid": uuid, "tag": "POWER_OFF", "status": "completed", "code": 200}
        ]
    }
    fake.replies = [(200, ok)]
    path = tmp_path / "herald.conf"
    path.write_text(
        f"[redfish]\naddress = {redfish_emulator.url}\nsystems = {redfish_emulator.system_ids[0]}\n"
        "[power_watch]\ninterval = 600\n"
        f"[compute_api]\nauth_type = admin_token\nendpoint = {endpoint}\ntoken = admin:admin\n"
    )
    herald = Path(sys.executable).with_name("herald")
    log = tmp_path / "power-watch.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(herald), "power-watch", "--config-file", str(path), "--interval", "0.2"], stdout=out, stderr=out
        )
        try:
            _until(lambda: len(fake.posts) == 1, timeout=20.0)
            time.sleep(0.5)  # NOTE: a few more ticks, to see that they post nothing more.
        finally:
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=10) == 0
    assert len(fake.posts) == 1
    assert "Sent power-update POWER_OFF for server " + uuid in log.read_text()


@pytest.mark.parametrize(
    ("status", "power_state", "node", "tag"),
    [
        # The power sync read the node first and recorded its power_state: compute was still not told.
        ("SHUTOFF", 1, "On", PowerTag.POWER_ON),
        ("ACTIVE", 4, "Off", PowerTag.POWER_OFF),
        ("SHUTOFF", 4, "On", PowerTag.POWER_ON),
        ("ACTIVE", 1, "Off", PowerTag.POWER_OFF),
        ("SHUTOFF", 1, "Off", None),
        ("ACTIVE", 4, "On", None),
    ],
)
def test_the_status_decides_not_the_power_state(
    fake_compute_api: tuple[FakeComputeApi, str],
    tmp_path: Path,
    status: str,
    power_state: int,
    node: str,
    tag: PowerTag | None,
) -> None:
    fake, endpoint = fake_compute_api
    uuid = "0b5a7c1e-3f0e-4d55-9d4e-1f2a3b4c5d6e"
    fake.servers = [_server(uuid, "n1", status, power_state=power_state)]
    ok = {
        "events": [{"name": "power-update", "server_uuid": uuid, "tag": str(tag), "status": "completed", "code": 200}]
    }
    fake.replies = [(200, ok)]
    redfish = create_autospec(RedfishClient, instance=True, spec_set=True)
    redfish.power.return_value = node
    api = _compute_api(endpoint, tmp_path)
    try:
        expected = [] if tag is None else [PowerUpdate(uuid, tag, accepted=True)]
        assert PowerWatch(api, redfish, systems=["n1"]).poll_once() == expected
    finally:
        api.close()
