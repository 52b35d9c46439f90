"""The story power-update exists for, on a real Redfish service (sushy-tools' emulator).

A bare-metal node changes power outside compute; ``herald power-watch`` (Ironic's role) sees
it and posts power-update; the server follows; the periodic power sync then leaves the node
alone. Without the event, the same sync forces compute's stale view back onto the node: at once
with ``power_state_change_grace`` 0 (Nova), only once the grace has passed otherwise.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
import uvicorn
from keystoneauth1 import adapter, session
from keystoneauth1.token_endpoint import Token
from sqlalchemy import Engine

from herald.adapters.virt.redfish_client import RedfishClient
from herald.agent.power_sync import GRACE_EVENT
from herald.config import RedfishSettings
from herald.domain.power_sync import SyncAction
from herald.power_watch import ComputeApi, PowerWatch
from tests.e2e.harness import Herald, settings_for, start_herald, stop_herald
from tests.redfish_emulator import RedfishEmulator

pytestmark = pytest.mark.stack

HOST = "bm-1"
SYNC_INTERVAL = 1  # a power sync much faster than the watcher: the race the grace closes
WATCH_INTERVAL = 4.0
GRACE = 10


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


@asynccontextmanager
async def _story(db_url: str, redfish_emulator: RedfishEmulator, **overrides: Any) -> AsyncIterator[Story]:
    redfish = RedfishSettings(
        address=redfish_emulator.url,
        systems=tuple(redfish_emulator.system_ids),
        power_state_change_timeout=30,
        power_poll_interval=0.2,
    )
    settings = dataclasses.replace(
        settings_for(db_url, hosts=(HOST,)), compute_driver="redfish", redfish=redfish, **overrides
    )
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
        ComputeApi(api),
        RedfishClient(address=redfish_emulator.url),
        systems=redfish_emulator.system_ids,
        interval=WATCH_INTERVAL,
    )
    try:
        yield Story(herald, redfish_emulator, watch)
    finally:
        watch.close()
        server.should_exit = True
        await serving
        await stop_herald(herald)


@pytest.fixture
async def story(db_url: str, engine: Engine, redfish_emulator: RedfishEmulator) -> AsyncIterator[Story]:
    """Nova's behaviour (grace 0); the tests run the sync and the watcher themselves."""
    async with _story(db_url, redfish_emulator, power_state_change_grace=0) as made:
        yield made


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


# --- power_state_change_grace, with the sync and power-watch running on their own -------------------


@pytest.fixture
async def graced(db_url: str, engine: Engine, redfish_emulator: RedfishEmulator) -> AsyncIterator[Story]:
    """The power sync every second with a grace of a few seconds; power-watch is started by the test."""
    async with _story(
        db_url, redfish_emulator, sync_power_state_interval=SYNC_INTERVAL, power_state_change_grace=GRACE
    ) as made:
        yield made


@asynccontextmanager
async def _watcher_running(story: Story) -> AsyncIterator[None]:
    """``herald power-watch`` ticking every WATCH_INTERVAL seconds in its own thread."""
    stop = threading.Event()
    thread = threading.Thread(target=story.watch.run_forever, args=(stop,), name="power-watch")
    thread.start()
    try:
        yield
    finally:
        stop.set()
        await asyncio.to_thread(thread.join, 30)


async def _until(check: Callable[[], Awaitable[bool]], what: str, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached in {within} s: {what}")
        await asyncio.sleep(0.2)


async def _node_power(story: Story, node: str) -> str:
    return await asyncio.to_thread(story.emulator.power_of, node)


async def _events(story: Story, server_id: str) -> list[dict[str, Any]]:
    """Every instance action event of the server, with its action's name under "action"."""
    actions = (await story.herald.get(f"/v2.1/servers/{server_id}/os-instance-actions")).json()["instanceActions"]
    events = []
    for action in actions:
        path = f"/v2.1/servers/{server_id}/os-instance-actions/{action['request_id']}"
        detail = (await story.herald.get(path, version="2.84")).json()["instanceAction"]
        events.extend({**e, "action": action["action"]} for e in detail["events"])
    return events


async def _stop_through_the_api(story: Story, server_id: str, node: str) -> None:
    assert (await story.herald.action(server_id, {"os-stop": None})).status_code == 202

    async def stopped() -> bool:
        return await story.state(server_id) == ("SHUTOFF", 4) and await _node_power(story, node) == "Off"

    await _until(stopped, "stopped through the API")


async def test_out_of_band_power_changes_are_kept_until_power_watch_reports_them(graced: Story) -> None:
    story = graced
    server_id, node = await story.boot()
    await _stop_through_the_api(story, server_id, node)
    async with _watcher_running(story):
        for _ in range(3):
            # Powered on at the BMC while the server is SHUTOFF: the sync (every second) sees it long
            # before power-watch does, records the power and waits; power-watch's POWER_ON then wins.
            await asyncio.to_thread(story.emulator.set_power, node, "On", wait=True)

            async def on() -> bool:
                return await story.state(server_id) == ("ACTIVE", 1)

            await _until(on, "the server follows the power-on")
            assert await _node_power(story, node) == "On"
            # And off again at the BMC: the same, the other way round.
            await asyncio.to_thread(story.emulator.set_power, node, "Off", wait=True)

            async def off() -> bool:
                return await story.state(server_id) == ("SHUTOFF", 4)

            await _until(off, "the server follows the power-off")
            assert await _node_power(story, node) == "Off"

    async def watches_ended() -> bool:  # the pass after an event ends the watch it answered
        return all(e["result"] for e in await _events(story, server_id) if e["event"] == GRACE_EVENT)

    await _until(watches_ended, "the sync's next passes end the watches")
    events = await _events(story, server_id)
    # Every change came through power-update; the only stop that ran is the API's...
    assert len([e for e in events if e["event"] == "compute_stop_instance"]) == 1
    assert [e["result"] for e in events if e["event"] == "compute_power_update"] == ["Success"] * 6
    # ...though it saw the disagreements first and watched them, each ended by the event.
    watched = [e for e in events if e["event"] == GRACE_EVENT]
    assert watched
    assert {e["result"] for e in watched} == {"Cancelled"}


async def test_an_unreported_power_on_is_undone_once_the_grace_has_passed(graced: Story) -> None:
    story = graced
    server_id, node = await story.boot()
    await _stop_through_the_api(story, server_id, node)
    # power-watch is not running: nobody tells compute.
    await asyncio.to_thread(story.emulator.set_power, node, "On", wait=True)

    async def watched() -> bool:
        return any(e["event"] == GRACE_EVENT for e in await _events(story, server_id))

    await _until(watched, "the sync watches the disagreement")
    assert await story.state(server_id) == ("SHUTOFF", 1)  # power_state recorded at once

    async def forced_off() -> bool:
        return await _node_power(story, node) == "Off" and await story.state(server_id) == ("SHUTOFF", 4)

    # Nova's rule still protects a stopped server, only later.
    await _until(forced_off, "the sync stops the node after the grace")
    events = await _events(story, server_id)
    (grace,) = [e for e in events if e["event"] == GRACE_EVENT]
    assert grace["result"] == "Success"
    lasted = datetime.fromisoformat(grace["finish_time"]) - datetime.fromisoformat(grace["start_time"])
    assert lasted.total_seconds() >= GRACE
    stops = [e for e in events if e["event"] == "compute_stop_instance"]
    assert [e["result"] for e in stops] == ["Success", "Success"]  # the API's stop, then the sync's
