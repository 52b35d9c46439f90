"""An event's driver call runs on a worker thread with no transaction held: a slow driver stalls nobody else."""

from __future__ import annotations

import asyncio

import pytest

from herald.domain.model import PowerState
from tests.e2e.gates import BOUND, Gate, until_handled
from tests.e2e.harness import Herald


async def test_a_blocked_power_update_call_stalls_no_other_write(
    herald: Herald, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow = await herald.create_server(host="compute-1", name="slow")
    other = await herald.create_server(host="compute-2", name="other")
    driver = herald.driver("compute-1")
    gate = Gate(driver, "power_update_event", monkeypatch)
    driver.set_power(slow, PowerState.SHUTDOWN)

    resp = await herald.events([{"name": "power-update", "server_uuid": slow, "tag": "POWER_OFF"}])
    assert resp.status_code == 200
    await gate.until_entered()
    assert gate.thread != "herald-writer"

    # While the driver call is under way: another host's event is answered and handled, heartbeats go on.
    resp = await asyncio.wait_for(herald.events([{"name": "network-changed", "server_uuid": other}]), timeout=BOUND)
    assert resp.status_code == 200
    assert (await until_handled(herald, other, "network-changed"))["state"] == "handled"
    await asyncio.wait_for(herald.deps.agents["compute-2"].heartbeat(), timeout=BOUND)

    gate.open()
    await herald.settle()
    server = await herald.server(slow)
    assert (server["status"], server["OS-EXT-STS:power_state"]) == ("SHUTOFF", 4)
    assert driver.power_update_calls == [(slow, "POWER_OFF")]


async def test_a_power_update_decided_on_a_stale_row_is_decided_again(
    herald: Herald, monkeypatch: pytest.MonkeyPatch
) -> None:
    server_id = await herald.create_server(host="compute-1")
    driver = herald.driver("compute-1")
    gate = Gate(driver, "power_update_event", monkeypatch)

    resp = await herald.events([{"name": "power-update", "server_uuid": server_id, "tag": "POWER_OFF"}])
    assert resp.status_code == 200
    await gate.until_entered()
    # The server is stopped by the API while the driver is being told: the event is a no-op now.
    assert (await herald.action(server_id, {"os-stop": None})).status_code == 202
    gate.open()
    await herald.settle()

    server = await herald.server(server_id)
    assert (server["status"], server["OS-EXT-STS:task_state"]) == ("SHUTOFF", None)
    (record,) = await herald.records(server_uuid=server_id, name="power-update")
    assert record["state"] == "handled"
    assert str(record["outcome"]).startswith("no-op: ")
    assert driver.power_update_calls == [(server_id, "POWER_OFF")]  # told once, not again on the second look
