"""Delete against an operation under way: serialised as in Nova, and never overwritten by its end."""

from __future__ import annotations

import asyncio

import pytest

from herald.adapters.bus.memory import InMemoryBus
from tests.e2e.gates import Gate, until_handled
from tests.e2e.harness import Herald

HOST = "compute-1"


async def _until_taken(herald: Herald) -> None:
    """Until the agent has taken every message published to it (its handler is now running)."""
    bus = herald.deps.bus
    assert isinstance(bus, InMemoryBus)
    for _ in range(10_000):
        if bus.pending(HOST) == 0:
            return
        await asyncio.sleep(0)
    raise AssertionError("the agent never took its messages")


async def test_a_delete_during_the_spawn_waits_for_it_and_leaves_no_machine_on(
    herald: Herald, monkeypatch: pytest.MonkeyPatch
) -> None:
    driver = herald.driver(HOST)
    neighbour = await herald.create_server(host=HOST, name="neighbour")
    spawn = Gate(driver, "spawn", monkeypatch)
    server_id = await herald.create_server(host=HOST, settle=False)
    await spawn.until_entered()  # the node is claimed and the build is powering it on

    resp = await herald.client.delete(f"/v2.1/servers/{server_id}", headers={"X-Auth-Token": "admin:admin"})
    assert resp.status_code == 204
    await _until_taken(herald)  # the delete has reached the agent while the spawn is under way
    # The waiting delete does not hold up the host's other messages.
    resp = await herald.events([{"name": "network-changed", "server_uuid": neighbour}])
    assert resp.status_code == 200
    assert (await until_handled(herald, neighbour, "network-changed"))["state"] == "handled"
    spawn.open()
    await herald.settle()

    assert (await herald.get(f"/v2.1/servers/{server_id}")).status_code == 404
    assert driver.machine(server_id) is None  # destroyed after the spawn, not before it


async def test_the_end_of_a_stop_leaves_a_delete_under_way_alone(
    herald: Herald, monkeypatch: pytest.MonkeyPatch
) -> None:
    driver = herald.driver(HOST)
    server_id = await herald.create_server(host=HOST)
    power_off = Gate(driver, "power_off", monkeypatch)
    destroy = Gate(driver, "destroy", monkeypatch)

    assert (await herald.action(server_id, {"os-stop": None})).status_code == 202
    await power_off.until_entered()
    resp = await herald.client.delete(f"/v2.1/servers/{server_id}", headers={"X-Auth-Token": "admin:admin"})
    assert resp.status_code == 204
    power_off.open()
    await destroy.until_entered()  # the stop has recorded its end; the delete is destroying the machine

    server = await herald.server(server_id)
    assert server["OS-EXT-STS:task_state"] == "deleting"
    destroy.open()
    await herald.settle()
    assert (await herald.get(f"/v2.1/servers/{server_id}")).status_code == 404
    assert driver.machine(server_id) is None
