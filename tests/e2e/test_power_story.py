"""The story power-update exists for, on a real Redfish service (sushy-tools' emulator).

A bare-metal node changes power outside compute; ``herald power-watch`` (Ironic's role) sees
it and posts power-update; the server follows; the periodic power sync then leaves the node
alone. Without the event, the same sync forces compute's stale view back onto the node.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import uvicorn
from keystoneauth1 import adapter, session
from keystoneauth1.token_endpoint import Token
from sqlalchemy import Engine

from herald.adapters.virt.redfish_client import RedfishClient
from herald.config import RedfishSettings
from herald.domain.power_sync import SyncAction
from herald.power_watch import ComputeApi, PowerWatch
from tests.e2e.harness import Herald, settings_for, start_herald, stop_herald
from tests.redfish_emulator import RedfishEmulator

pytestmark = pytest.mark.stack

HOST = "bm-1"


@dataclass
class Story:
    herald: Herald
    emulator: RedfishEmulator
    watch: PowerWatch

    async def boot(self) -> tuple[str, str]:
        server_id = await self.herald.create_server(host=HOST)
        server = await self.herald.server(server_id)
        assert server["status"] == "ACTIVE"
        node: str = server["OS-EXT-SRV-ATTR:hypervisor_hostname"]
        assert node in self.emulator.system_ids
        assert self.emulator.power_of(node) == "On"
        return server_id, node

    async def state(self, server_id: str) -> tuple[str, int]:
        server = await self.herald.server(server_id)
        return server["status"], server["OS-EXT-STS:power_state"]

    async def sync(self) -> SyncAction:
        (outcome,) = await self.herald.deps.agents[HOST].power_sync.sync_all()
        await self.herald.settle()
        assert outcome.decision is not None
        return outcome.decision.action

    async def watcher_tick(self) -> list[tuple[str, str]]:
        posted = await asyncio.to_thread(self.watch.poll_once)
        await self.herald.settle()
        return [(p.server_uuid, str(p.tag)) for p in posted if p.accepted]

    async def action_events(self, server_id: str, action: str) -> list[tuple[str, str]]:
        actions = (await self.herald.get(f"/v2.1/servers/{server_id}/os-instance-actions")).json()["instanceActions"]
        request_id = next(a["request_id"] for a in actions if a["action"] == action)
        detail = (
            await self.herald.get(f"/v2.1/servers/{server_id}/os-instance-actions/{request_id}", version="2.76")
        ).json()["instanceAction"]
        return [(e["event"], e["result"]) for e in detail["events"]]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
async def story(db_url: str, engine: Engine, redfish_emulator: RedfishEmulator) -> AsyncIterator[Story]:
    redfish = RedfishSettings(
        address=redfish_emulator.url,
        systems=tuple(redfish_emulator.system_ids),
        power_state_change_timeout=30,
        power_poll_interval=0.2,
    )
    settings = dataclasses.replace(settings_for(db_url, hosts=(HOST,)), compute_driver="redfish", redfish=redfish)
    herald, _ = await start_herald(settings)
    # The watcher talks to the API over TCP, as Ironic does: serve the same app on a port.
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(herald.app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    )
    serving = asyncio.create_task(server.serve())
    for _ in range(1000):  # uvicorn.Server exposes a flag, not an event
        if server.started:
            break
        await asyncio.sleep(0.01)
    api = adapter.Adapter(
        session.Session(auth=Token(f"http://127.0.0.1:{port}/v2.1", "admin:admin")), service_type="compute"
    )
    watch = PowerWatch(
        ComputeApi(api), RedfishClient(address=redfish_emulator.url), systems=redfish_emulator.system_ids
    )
    try:
        yield Story(herald, redfish_emulator, watch)
    finally:
        watch.close()
        server.should_exit = True
        await serving
        await stop_herald(herald)


async def test_with_power_update_the_server_follows_the_node_and_the_sync_leaves_it(story: Story) -> None:
    server_id, node = await story.boot()

    # The node is powered off behind compute's back (BMC, operator, power cut).
    await asyncio.to_thread(story.emulator.set_power, node, "Off", wait=True)
    assert await story.watcher_tick() == [(server_id, "POWER_OFF")]
    assert await story.state(server_id) == ("SHUTOFF", 4)
    assert await story.action_events(server_id, "stop") == [("compute_power_update", "Success")]
    assert await story.watcher_tick() == []  # reported once

    # The periodic sync then agrees: nothing to do, and the node stays off.
    assert await story.sync() is SyncAction.NOTHING
    assert story.emulator.power_of(node) == "Off"

    # And back on, the same way.
    await asyncio.to_thread(story.emulator.set_power, node, "On", wait=True)
    assert await story.watcher_tick() == [(server_id, "POWER_ON")]
    assert await story.state(server_id) == ("ACTIVE", 1)
    assert await story.sync() is SyncAction.NOTHING
    assert story.emulator.power_of(node) == "On"


async def test_without_power_update_the_sync_forces_computes_view_back_onto_the_node(story: Story) -> None:
    server_id, node = await story.boot()
    assert (await story.herald.action(server_id, {"os-stop": None})).status_code == 202
    await story.herald.settle()
    assert await story.state(server_id) == ("SHUTOFF", 4)
    assert story.emulator.power_of(node) == "Off"

    # An operator powers the node on at its BMC; nobody tells compute.
    await asyncio.to_thread(story.emulator.set_power, node, "On", wait=True)
    assert await story.sync() is SyncAction.FORCE_STOP
    # Compute switched the node off again: its stale view won over the operator's action.
    assert story.emulator.power_of(node) == "Off"
    assert await story.state(server_id) == ("SHUTOFF", 4)


async def test_without_power_update_a_node_that_went_off_is_stopped_by_the_sync(story: Story) -> None:
    server_id, node = await story.boot()
    await asyncio.to_thread(story.emulator.set_power, node, "Off", wait=True)
    assert await story.sync() is SyncAction.STOP
    assert await story.state(server_id) == ("SHUTOFF", 4)
    # The record got there through the stop API, not through the event.
    assert await story.action_events(server_id, "stop") == [("compute_stop_instance", "Success")]
