"""The fake driver's machines outlive the process: a restarted stack finds them as they were."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from herald.domain.model import PowerState
from tests.e2e.harness import Herald, crash_herald, settings_for, start_herald, stop_herald


async def _status(herald: Herald, server_id: str) -> tuple[str, int]:
    server = await herald.server(server_id)
    return server["status"], server["OS-EXT-STS:power_state"]


async def _sync_all(herald: Herald) -> None:
    for agent in herald.deps.agents.values():
        await agent.power_sync.sync_all()
    await herald.settle()


async def _power_update(herald: Herald, server_id: str, tag: str) -> None:
    resp = await herald.events([{"name": "power-update", "server_uuid": server_id, "tag": tag}], version="2.76")
    assert resp.status_code == 200, resp.text
    await herald.settle()


@pytest.mark.parametrize("crash", [False, True], ids=["stopped", "killed"])
async def test_power_states_survive_a_restart(db_url: str, engine: Engine, crash: bool) -> None:
    herald, _ = await start_herald(settings_for(db_url))
    try:
        running = await herald.create_server(host="compute-1")
        stopped = await herald.create_server(host="compute-2")
        # The node powers off by itself (its BMC), and the bare-metal service says so.
        herald.driver("compute-2").set_power(stopped, PowerState.SHUTDOWN)
        await _power_update(herald, stopped, "POWER_OFF")
        assert await _status(herald, stopped) == ("SHUTOFF", PowerState.SHUTDOWN)
    finally:
        await (crash_herald(herald) if crash else stop_herald(herald))

    herald, _ = await start_herald(settings_for(db_url))
    try:
        machine = herald.driver("compute-2").machine(stopped)
        assert machine is not None
        assert machine.power is PowerState.SHUTDOWN
        await _sync_all(herald)
        assert await _status(herald, running) == ("ACTIVE", PowerState.RUNNING)
        assert await _status(herald, stopped) == ("SHUTOFF", PowerState.SHUTDOWN)

        # Later power-updates still change what compute records.
        herald.driver("compute-2").set_power(stopped, PowerState.RUNNING)
        await _power_update(herald, stopped, "POWER_ON")
        assert await _status(herald, stopped) == ("ACTIVE", PowerState.RUNNING)
        await _sync_all(herald)
        assert await _status(herald, stopped) == ("ACTIVE", PowerState.RUNNING)
        # A machine deleted before the restart stays gone.
        assert (
            await herald.client.delete(f"/v2.1/servers/{running}", headers={"X-Auth-Token": "admin:admin"})
        ).status_code == 204
        await herald.settle()
        assert herald.driver("compute-1").machine(running) is None
    finally:
        await stop_herald(herald)


async def test_each_host_has_its_own_machines(herald: Herald) -> None:
    server_id = await herald.create_server(host="compute-1")
    assert herald.driver("compute-1").machine(server_id) is not None
    assert herald.driver("compute-2").machine(server_id) is None
