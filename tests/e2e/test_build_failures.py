"""A failed build ends in ERROR with Nova's fault and leaves the rest of the process alone."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from sqlalchemy import Engine

from herald.config import RedfishSettings
from herald.domain.errors import DriverError
from tests.e2e.harness import Herald, settings_for, start_herald, stop_herald
from tests.redfish_emulator import RedfishEmulator

HOST = "bm-1"
# Bounds a wait that hangs when the process is wedged, so the test fails instead of hanging.
WEDGED = 30.0


async def _refused_without_host(herald: Herald, server_id: str) -> None:
    """A failed build leaves the server without a host (as Nova does): its events get Nova's 422."""
    server = await herald.server(server_id)
    assert (server["OS-EXT-SRV-ATTR:host"], server["OS-EXT-SRV-ATTR:hypervisor_hostname"]) == (None, None)
    resp = await asyncio.wait_for(
        herald.events([{"name": "network-changed", "server_uuid": server_id}]), timeout=WEDGED
    )
    assert resp.status_code == 207, resp.text
    assert resp.json()["events"][0]["code"] == 422


async def _answered(herald: Herald, server_id: str) -> None:
    """An event for ``server_id`` is answered and its effect handled."""
    resp = await asyncio.wait_for(
        herald.events([{"name": "network-changed", "server_uuid": server_id}]), timeout=WEDGED
    )
    assert resp.status_code == 200, resp.text
    await asyncio.wait_for(herald.settle(), timeout=WEDGED)
    (record,) = await herald.records(server_uuid=server_id, name="network-changed")
    assert record["state"] == "handled"


@pytest.mark.stack
async def test_no_free_node_fails_the_build_and_nothing_else(
    db_url: str, engine: Engine, redfish_emulator: RedfishEmulator
) -> None:
    # One Redfish system for the host: the second server finds no free node.
    redfish = RedfishSettings(
        address=redfish_emulator.url,
        systems=(redfish_emulator.system_ids[0],),
        power_state_change_timeout=30,
        power_poll_interval=0.2,
    )
    settings = dataclasses.replace(settings_for(db_url, hosts=(HOST,)), compute_driver="redfish", redfish=redfish)
    herald, _ = await start_herald(settings)
    try:
        first = await herald.create_server(host=HOST, name="first")
        assert (await herald.server(first))["status"] == "ACTIVE"

        second = await herald.create_server(host=HOST, name="second", settle=False)
        await asyncio.wait_for(herald.settle(), timeout=WEDGED)
        server = await herald.server(second)
        assert server["status"] == "ERROR"
        assert server["OS-EXT-STS:task_state"] is None
        assert server["fault"]["code"] == 500
        assert server["fault"]["message"].startswith(f"Build of instance {second} aborted: No free Redfish system")

        # An event for the failed server and one for another server are answered and handled.
        await _refused_without_host(herald, second)
        await _answered(herald, first)
        # Heartbeats still get through the writer.
        await asyncio.wait_for(herald.deps.agents[HOST].heartbeat(), timeout=WEDGED)
    finally:
        await stop_herald(herald)


async def test_a_build_whose_teardown_fails_still_ends_in_error(herald: Herald) -> None:
    driver = herald.driver("compute-1")
    driver.fail_next("spawn", DriverError("BMC unreachable"))
    driver.fail_next("destroy", DriverError("BMC unreachable"))

    server_id = await herald.create_server(host="compute-1")

    server = await herald.server(server_id)
    assert server["status"] == "ERROR"
    assert server["OS-EXT-STS:task_state"] is None
    assert server["fault"]["message"] == f"Build of instance {server_id} aborted: BMC unreachable"
    await _refused_without_host(herald, server_id)
