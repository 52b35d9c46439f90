"""``herald power-watch`` as a real process, logging in to Keystone with a password (``auth_type = password``)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.keystone.identity import Keystone, User
from tests.e2e.stack.process import HeraldProcess, wait_until
from tests.redfish_emulator import RedfishEmulator

pytestmark = pytest.mark.stack

IMAGE = "70a599e0-31e7-49b7-b260-868f441e862b"


@pytest.fixture
def herald_on_redfish(keystone: Keystone, redfish_emulator: RedfishEmulator, tmp_path: Path) -> Iterator[HeraldProcess]:
    """``herald serve`` with Keystone auth and one compute host whose nodes are the emulator's systems."""
    conf = keystone.write_herald_conf(
        tmp_path / "herald.conf",
        "[DEFAULT]\ncompute_driver = redfish\nsync_power_state_interval = -1\n"
        f"[redfish]\naddress = {redfish_emulator.url}\nsystems = {','.join(redfish_emulator.system_ids)}\n"
        "power_poll_interval = 0.2\n",
    )
    with HeraldProcess(f"sqlite:///{tmp_path / 'herald.sqlite'}", tmp_path / "herald.log", config_file=conf) as process:
        yield process


@pytest.fixture
def power_watch(
    keystone: Keystone, herald_on_redfish: HeraldProcess, redfish_emulator: RedfishEmulator, tmp_path: Path
) -> Iterator[Path]:
    """``herald power-watch`` as the Ironic-like service user; yields the path of its log."""
    conf = tmp_path / "power-watch.conf"
    conf.write_text(
        f"[redfish]\naddress = {redfish_emulator.url}\nsystems = {','.join(redfish_emulator.system_ids)}\n"
        f"[compute_api]\n{keystone.auth_options(User.IRONIC)}endpoint_override = {herald_on_redfish.url}/v2.1\n"
    )
    log = tmp_path / "power-watch.log"
    herald = Path(sys.executable).with_name("herald")
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(herald), "power-watch", "--config-file", str(conf), "--interval", "0.5"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    try:
        yield log
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_power_watch_logs_in_with_a_password_and_its_power_update_lands(
    keystone: Keystone,
    herald_on_redfish: HeraldProcess,
    redfish_emulator: RedfishEmulator,
    power_watch: Path,
    tokens: dict[User, str],
) -> None:
    headers = {"X-Auth-Token": tokens[User.MEMBER], "OpenStack-API-Version": "compute 2.76"}
    api = httpx.Client(base_url=herald_on_redfish.url + "/v2.1", headers=headers, timeout=30.0)
    admin = {**headers, "X-Auth-Token": tokens[User.ADMIN]}
    try:
        body = {"server": {"name": "metal", "imageRef": IMAGE, "flavorRef": "1", "networks": "none"}}
        server_id = api.post("/servers", json=body).json()["server"]["id"]

        def server() -> dict[str, object]:
            found: dict[str, object] = api.get(f"/servers/{server_id}").json()["server"]
            return found

        wait_until(lambda: server()["status"] == "ACTIVE")
        node = api.get(f"/servers/{server_id}", headers=admin).json()["server"]["OS-EXT-SRV-ATTR:hypervisor_hostname"]
        redfish_emulator.set_power(node, "Off", wait=True)

        wait_until(lambda: server()["status"] == "SHUTOFF", timeout=60.0)
        assert server()["OS-EXT-STS:power_state"] == 4
        records = api.get(f"/os-server-external-events?server_uuid={server_id}", headers=admin).json()["events"]
        assert [(r["name"], r["tag"]) for r in records] == [("power-update", "POWER_OFF")]
        log = power_watch.read_text()
        assert "Sent power-update" in log, log
    finally:
        api.close()
