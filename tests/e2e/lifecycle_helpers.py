"""Helpers shared by the reboot, rebuild and deferred-delete tests."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from tests.e2e.harness import Herald, settings_for, start_herald, stop_herald


async def until_waiting(herald: Herald, server_id: str, count: int = 1) -> None:
    """Let the agent register its waiters (an asyncio task that awaits worker threads)."""
    for _ in range(1000):
        if any(a.waiters.pending(server_id) >= count for a in herald.deps.agents.values()):
            return
        await asyncio.sleep(0.005)
    raise AssertionError("the operation never started waiting")


async def until_status(herald: Herald, server_id: str, status: str) -> dict[str, Any]:
    for _ in range(1000):
        server = await herald.server(server_id)
        if server["status"] == status:
            return server
        await asyncio.sleep(0.005)
    raise AssertionError(f"the server never reached {status}")


async def vif_states(herald: Herald, server_id: str) -> dict[str, bool]:
    """Each port's cached ``active`` flag, as the agent's operations see it."""

    def read() -> dict[str, bool]:
        with herald.deps.read_uow_factory() as uow:
            server = uow.servers.get(server_id)
        assert server is not None
        return {vif.port_id: vif.active for vif in server.vifs}

    return await asyncio.to_thread(read)


async def server_with_unplugged_port(db_url: str) -> tuple[str, str]:
    """A server made ACTIVE by a build whose port never got its plug event (non-fatal timeout)."""
    herald, _ = await start_herald(settings_for(db_url, vif_plugging_timeout=1, vif_plugging_is_fatal=False))
    try:
        port = str(uuid.uuid4())
        server_id = await herald.create_server(networks=[{"port": port}], host="compute-1")
        assert (await herald.server(server_id))["status"] == "ACTIVE"
        assert await vif_states(herald, server_id) == {port: False}
    finally:
        await stop_herald(herald)
    return server_id, port


async def plug(herald: Herald, server_id: str, port: str, status: str = "completed") -> None:
    event = {"name": "network-vif-plugged", "server_uuid": server_id, "tag": port, "status": status}
    resp = await herald.events([event])
    assert resp.status_code == 200, resp.text


async def action_events(herald: Herald, server_id: str, action: str) -> list[tuple[str, str]]:
    """(event, result) of the server's newest instance action named ``action``."""
    resp = await herald.get(f"/v2.1/servers/{server_id}/os-instance-actions", version="2.84")
    assert resp.status_code == 200, resp.text
    request_id = next(a["request_id"] for a in resp.json()["instanceActions"] if a["action"] == action)
    resp = await herald.get(f"/v2.1/servers/{server_id}/os-instance-actions/{request_id}", version="2.84")
    assert resp.status_code == 200, resp.text
    return [(e["event"], e["result"]) for e in resp.json()["instanceAction"]["events"]]
