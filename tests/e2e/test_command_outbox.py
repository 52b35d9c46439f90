"""Server commands through the command outbox on the embedded shape, over HTTP: a command is answered
as Nova answers it even when the transport refuses it, waits in the outbox, and reaches its agent once
the transport is back; a copy of an attach or detach the agent already carried out has no second effect."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from typing import Any

import pytest
from sqlalchemy import Engine

from herald.adapters.bus.memory import InMemoryBus
from herald.domain.errors import BusUnavailable
from herald.domain.messages import DetachInterface, ServerCommand
from tests.e2e.harness import Herald, crash_herald, settings_for, start_herald, stop_herald


class SwitchableBus(InMemoryBus):
    """Refuses server commands while ``down``, as RabbitMQ's bus does while no broker answers."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.commands: list[ServerCommand] = []

    async def publish(self, host: str, messages: Sequence[object]) -> None:
        if self.down and any(isinstance(m, ServerCommand) for m in messages):
            raise BusUnavailable("RabbitMQ is unreachable (test)")
        await super().publish(host, messages)
        self.commands.extend(m for m in messages if isinstance(m, ServerCommand))


async def _waiting(herald: Herald) -> int:
    def count() -> int:
        with herald.deps.read_uow_factory() as uow:
            return uow.commands.count()

    return await asyncio.to_thread(count)


async def _state(herald: Herald, server_id: str) -> tuple[str, str | None]:
    server = await herald.server(server_id)
    return server["status"], server["OS-EXT-STS:task_state"]


async def test_stop_start_and_reboot_go_through_the_outbox(herald: Herald) -> None:
    server_id = await herald.create_server(host="compute-1")
    assert await _waiting(herald) == 0
    for body, status in (
        ({"os-stop": None}, "SHUTOFF"),
        ({"os-start": None}, "ACTIVE"),
        ({"reboot": {"type": "SOFT"}}, "ACTIVE"),
    ):
        resp = await herald.action(server_id, body)
        assert resp.status_code == 202, resp.text
        await herald.settle()
        assert await _state(herald, server_id) == (status, None)
        assert await _waiting(herald) == 0


async def test_a_command_the_transport_refused_is_answered_and_delivered_once_it_is_back(
    db_url: str, engine: Engine
) -> None:
    bus = SwitchableBus()
    herald, deps = await start_herald(settings_for(db_url), bus=bus)
    try:
        first = await herald.create_server(host="compute-1", name="a")
        second = await herald.create_server(host="compute-1", name="b")
        bus.down = True
        resp = await herald.action(first, {"os-stop": None})
        assert resp.status_code == 202, resp.text
        await herald.settle()
        assert await _state(herald, first) == ("ACTIVE", "powering-off")
        assert await _waiting(herald) == 1
        # Still away: a newer command for the same host waits behind the older one.
        assert (await herald.action(second, {"os-stop": None})).status_code == 202
        await deps.commands.flush()
        await herald.settle()
        assert await _state(herald, second) == ("ACTIVE", "powering-off")
        assert await _waiting(herald) == 2
        # The transport is back: the relay's next pass sends both, in order.
        bus.down = False
        assert await deps.commands.redeliver() == 2
        await herald.settle()
        assert [c.server_uuid for c in bus.commands[-2:]] == [first, second]
        assert await _state(herald, first) == ("SHUTOFF", None)
        assert await _state(herald, second) == ("SHUTOFF", None)
        assert await _waiting(herald) == 0
    finally:
        await stop_herald(herald)


async def _request_id(herald: Herald, server_id: str, action: str) -> str:
    listed = (await herald.get(f"/v2.1/servers/{server_id}/os-instance-actions", version="2.84")).json()
    request_id: str = next(a["request_id"] for a in listed["instanceActions"] if a["action"] == action)
    return request_id


async def _attach(herald: Herald, server_id: str, port: str) -> Any:
    body = {"interfaceAttachment": {"port_id": port}}
    return await herald.post(f"/v2.1/servers/{server_id}/os-interface", body, version="2.70")


async def test_a_copy_of_a_detach_after_the_port_came_back_detaches_nothing(
    herald: Herald, caplog: pytest.LogCaptureFixture
) -> None:
    server_id = await herald.create_server(host="compute-1")
    port = str(uuid.uuid4())
    assert (await _attach(herald, server_id, port)).status_code == 200
    path = f"/v2.1/servers/{server_id}/os-interface/{port}"
    resp = await herald.client.delete(path, headers={"X-Auth-Token": "admin:admin"})
    assert resp.status_code == 202, resp.text
    await herald.settle()
    detach_request = await _request_id(herald, server_id, "detach_interface")
    assert (await _attach(herald, server_id, port)).status_code == 200
    await herald.settle()
    # The detach again, as a relay re-sends a command whose removal from the outbox was lost.
    with caplog.at_level(logging.WARNING, logger="herald.agent.command_copies"):
        await herald.deps.bus.publish("compute-1", [DetachInterface(server_id, detach_request, port)])
        await herald.settle()
    machine = herald.driver("compute-1").machine(server_id)
    assert machine is not None
    # The driver saw one detach, and both attaches: the copy reached no driver.
    assert (machine.detached_ports, machine.attached_ports) == ([port], [port, port])
    listed = (await herald.get(f"/v2.1/servers/{server_id}/os-interface", version="2.70")).json()
    assert [a["port_id"] for a in listed["interfaceAttachments"]] == [port]
    assert any("Duplicate command DetachInterface" in r.getMessage() for r in caplog.records)


async def test_a_stop_on_its_way_when_the_host_restarts_still_happens(db_url: str, engine: Engine) -> None:
    """As Nova's init_host: a server left powering-off is stopped at start-up (and the command, when it
    comes, finds the work done), not merely cleared."""
    bus = SwitchableBus()
    herald, _ = await start_herald(settings_for(db_url), bus=bus)
    try:
        server_id = await herald.create_server(host="compute-1")
        bus.down = True
        assert (await herald.action(server_id, {"os-stop": None})).status_code == 202
        await herald.settle()
        assert await _state(herald, server_id) == ("ACTIVE", "powering-off")
        stop_request = await _request_id(herald, server_id, "stop")
    finally:
        await crash_herald(herald)
    herald, _ = await start_herald(settings_for(db_url))
    try:
        await herald.settle()
        assert await _state(herald, server_id) == ("SHUTOFF", None)
        assert await _waiting(herald) == 0
        action = (
            await herald.get(f"/v2.1/servers/{server_id}/os-instance-actions/{stop_request}", version="2.84")
        ).json()["instanceAction"]
        # Stopped once, under the user's request (the command that came after found it done).
        assert [(e["event"], e["result"]) for e in action["events"]] == [("compute_stop_instance", "Success")]
    finally:
        await stop_herald(herald)
