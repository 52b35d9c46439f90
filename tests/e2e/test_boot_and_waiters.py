"""A boot waits for network-vif-plugged of each port it was given, with Nova's timeout rules."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import Engine

from tests.e2e.harness import Herald, crash_herald, settings_for, start_herald, stop_herald


async def _boot_with_ports(herald: Herald, count: int = 2) -> tuple[str, list[str]]:
    ports = [str(uuid.uuid4()) for _ in range(count)]
    server_id = await herald.create_server(networks=[{"port": p} for p in ports], settle=False)
    await herald.deps.bus.join()  # type: ignore[attr-defined]
    return server_id, ports


async def _until_waiting(herald: Herald, server_id: str, count: int) -> None:
    """Let the agent register its waiters (it is an asyncio task that awaits worker threads)."""
    import asyncio

    for _ in range(500):
        agents = [a for a in herald.deps.agents.values() if a.waiters.pending(server_id) >= count]
        if agents:
            return
        await asyncio.sleep(0.005)
    raise AssertionError("the build never started waiting")


async def test_boot_completes_only_after_every_port_is_plugged(herald: Herald) -> None:
    server_id, ports = await _boot_with_ports(herald)
    await _until_waiting(herald, server_id, 2)
    assert (await herald.server(server_id))["status"] == "BUILD"

    resp = await herald.events([{"name": "network-vif-plugged", "server_uuid": server_id, "tag": ports[0]}])
    assert resp.status_code == 200
    await herald.deps.bus.join()  # type: ignore[attr-defined]
    assert (await herald.server(server_id))["status"] == "BUILD"

    resp = await herald.events([{"name": "network-vif-plugged", "server_uuid": server_id, "tag": ports[1]}])
    assert resp.status_code == 200
    await herald.settle()
    server = await herald.server(server_id)
    assert (server["status"], server["OS-EXT-STS:power_state"]) == ("ACTIVE", 1)
    records = await herald.records(server_uuid=server_id)
    assert [(r["tag"], r["state"], r["outcome"]) for r in records] == [  # newest first
        (ports[1], "handled", "woke the operation waiting for it"),
        (ports[0], "handled", "woke the operation waiting for it"),
    ]


async def test_an_event_that_comes_before_the_waiter_is_not_lost(herald: Herald) -> None:
    """Nova drops it ("unexpected event") and the boot times out; Herald keeps it for the waiter."""
    server_id = await herald.create_server(host="compute-1")
    port = str(uuid.uuid4())
    resp = await herald.events([{"name": "network-vif-plugged", "server_uuid": server_id, "tag": port}])
    assert resp.status_code == 200
    await herald.settle()
    (record,) = await herald.records(server_uuid=server_id)
    assert (record["state"], record["outcome"]) == ("dispatched", None)
    waiter = herald.deps.agents["compute-1"].waiters.prepare(server_id, "network-vif-plugged", port)
    assert waiter.is_set()
    assert waiter.event is not None
    assert waiter.event.tag == port
    await herald.deps.writer.flush()
    (record,) = await herald.records(server_uuid=server_id)
    assert record["state"] == "handled"
    assert record["outcome"] == "woke the operation waiting for it (the event came before the wait)"


@pytest.mark.parametrize("fatal", [True, False])
async def test_boot_without_its_plug_event(db_url: str, engine: Engine, fatal: bool) -> None:
    herald, _ = await start_herald(settings_for(db_url, vif_plugging_timeout=1, vif_plugging_is_fatal=fatal))
    try:
        server_id, _ = await _boot_with_ports(herald, 1)
        await herald.settle()
        server = await herald.server(server_id)
        if fatal:
            assert server["status"] == "ERROR"
            assert server["OS-EXT-STS:task_state"] is None
            assert server["fault"]["message"] == (
                f"Build of instance {server_id} aborted: Failed to allocate the network(s), not rescheduling."
            )
            # Nova nils host and node on a build abort.
            assert (server["OS-EXT-SRV-ATTR:host"], server["OS-EXT-SRV-ATTR:hypervisor_hostname"]) == (None, None)
            assert all(herald.driver(h).machine(server_id) is None for h in ("compute-1", "compute-2"))
        else:
            assert server["status"] == "ACTIVE"
    finally:
        await stop_herald(herald)


async def test_a_failed_plug_event_fails_the_boot(herald: Herald) -> None:
    server_id, ports = await _boot_with_ports(herald, 1)
    await _until_waiting(herald, server_id, 1)
    resp = await herald.events(
        [{"name": "network-vif-plugged", "server_uuid": server_id, "tag": ports[0], "status": "failed"}]
    )
    assert resp.status_code == 200
    await herald.settle()
    server = await herald.server(server_id)
    assert (server["status"], server["OS-EXT-STS:task_state"]) == ("ERROR", None)
    assert server["fault"]["message"] == (
        f"Build of instance {server_id} aborted: Failed to allocate the network(s), not rescheduling."
    )
    assert (server["OS-EXT-SRV-ATTR:host"], server["OS-EXT-SRV-ATTR:hypervisor_hostname"]) == (None, None)
    # Nova deallocates a failed build's ports: they are free again and the server shows no address.
    assert server["addresses"] == {}
    port = herald.deps.network.port(ports[0])
    assert port is not None
    assert port.server_uuid is None


async def test_timeout_zero_does_not_wait(db_url: str, engine: Engine) -> None:
    herald, _ = await start_herald(settings_for(db_url, vif_plugging_timeout=0))
    try:
        server_id, _ = await _boot_with_ports(herald, 1)
        await herald.settle()
        assert (await herald.server(server_id))["status"] == "ACTIVE"
    finally:
        await stop_herald(herald)


async def test_unmatched_plug_event_expires_and_is_recorded(db_url: str, engine: Engine) -> None:
    herald, _ = await start_herald(settings_for(db_url, early_event_ttl=0))
    try:
        server_id = await herald.create_server(host="compute-2")
        resp = await herald.events([{"name": "network-vif-unplugged", "server_uuid": server_id, "tag": "p"}])
        assert resp.status_code == 200
        await herald.settle()
        await herald.deps.agents["compute-2"].expire_early()
        (record,) = await herald.records(server_uuid=server_id)
        assert record["state"] == "expired"
    finally:
        await stop_herald(herald)


async def test_a_build_cut_short_by_a_restart_ends_in_error(db_url: str, engine: Engine) -> None:
    herald, _ = await start_herald(settings_for(db_url))
    try:
        server_id, _ = await _boot_with_ports(herald, 1)
        await _until_waiting(herald, server_id, 1)
    finally:
        await crash_herald(herald)
    herald, _ = await start_herald(settings_for(db_url))
    try:
        await herald.settle()
        server = await herald.server(server_id)
        assert server["status"] == "ERROR"
        assert server["fault"]["message"] == "The compute host restarted while the instance was being built."
    finally:
        await stop_herald(herald)
