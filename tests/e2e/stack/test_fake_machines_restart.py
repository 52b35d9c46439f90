"""A killed ``herald serve`` restarted on the same database finds its fake machines as they were."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.stack.process import HeraldProcess, wait_until

pytestmark = pytest.mark.stack

HEADERS = {"X-Auth-Token": "admin:admin", "OpenStack-API-Version": "compute 2.76"}
IMAGE = "70a599e0-31e7-49b7-b260-868f441e862b"


def _server(process: HeraldProcess, server_id: str) -> dict[str, Any]:
    server: dict[str, Any] = httpx.get(f"{process.url}/v2.1/servers/{server_id}", headers=HEADERS).json()["server"]
    return server


def _power_update(process: HeraldProcess, server_id: str, tag: str) -> None:
    body = {"events": [{"name": "power-update", "server_uuid": server_id, "tag": tag}]}
    resp = httpx.post(f"{process.url}/v2.1/os-server-external-events", json=body, headers=HEADERS)
    assert resp.status_code == 200, resp.text


def test_power_states_survive_kill_9(db_url: str, tmp_path: Path) -> None:
    config = tmp_path / "herald.conf"
    # NOTE: no grace: the sync acts on a disagreement at once, as Nova does, so each phase ends quickly.
    config.write_text("[DEFAULT]\nsync_power_state_interval = 1\npower_state_change_grace = 0\n")
    first = HeraldProcess(db_url, tmp_path / "first.log", hosts="compute-1", config_file=config)
    try:
        first.wait_ready()
        server = {"name": "vm", "imageRef": IMAGE, "flavorRef": "1", "networks": "none"}
        resp = httpx.post(f"{first.url}/v2.1/servers", json={"server": server}, headers=HEADERS)
        assert resp.status_code == 202, resp.text
        server_id: str = resp.json()["server"]["id"]
        wait_until(lambda: _server(first, server_id)["status"] == "ACTIVE")
        # Said to be off while the machine still runs: the next power sync powers the machine off.
        _power_update(first, server_id, "POWER_OFF")
        wait_until(lambda: "has a pending power state change" in first.log_path.read_text())
        wait_until(lambda: _server(first, server_id)["OS-EXT-STS:task_state"] is None)
    finally:
        first.process.kill()
        first.stop()

    second = HeraldProcess(db_url, tmp_path / "second.log", hosts="compute-1", config_file=config)
    try:
        second.wait_ready()
        # Said to be on while the machine is off: the sync stops the server again, and its power
        # state is the machine's (4), not NOSTATE (0) as when the restart had forgotten the machine.
        _power_update(second, server_id, "POWER_ON")
        wait_until(lambda: "record 1, driver" in second.log_path.read_text())
        wait_until(lambda: _server(second, server_id)["status"] == "SHUTOFF")
        assert _server(second, server_id)["OS-EXT-STS:power_state"] == 4
        assert "record 1, driver 4" in second.log_path.read_text()
    finally:
        second.stop()
