"""The periodic power sync against power-update: Nova's decisions, and Herald's fix of their race.

Here ``power_state_change_grace`` is 0, Nova's behaviour: the sync acts on the first pass that sees a
disagreement (``test_power_grace.py`` has the grace).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import pytest
from sqlalchemy import Engine

from herald.adapters.bus.memory import InMemoryBus
from herald.domain.errors import DriverError
from herald.domain.model import PowerState
from herald.domain.power_sync import SyncAction, SyncRow
from tests.e2e.harness import Herald, settings_for, start_herald, stop_herald


class GatedBus(InMemoryBus):
    """Holds what is published to closed hosts until ``release``: a slow network, on demand."""

    def __init__(self) -> None:
        super().__init__()
        self.closed: set[str] = set()
        self.held: list[tuple[str, Sequence[object]]] = []

    async def publish(self, host: str, messages: Sequence[object]) -> None:
        if host in self.closed:
            self.held.append((host, messages))
            return
        await super().publish(host, messages)

    async def release(self, host: str) -> None:
        self.closed.discard(host)
        held, self.held = self.held, []
        for target, messages in held:
            await self.publish(target, messages)


@pytest.fixture
async def herald(db_url: str, engine: Engine) -> AsyncIterator[Herald]:
    service, _ = await start_herald(settings_for(db_url, power_state_change_grace=0))
    try:
        yield service
    finally:
        await stop_herald(service)


@pytest.fixture
async def gated(db_url: str, engine: Engine) -> AsyncIterator[tuple[Herald, GatedBus]]:
    bus = GatedBus()
    herald, _ = await start_herald(settings_for(db_url, power_state_change_grace=0), bus=bus)
    try:
        yield herald, bus
    finally:
        await stop_herald(herald)


async def _status(herald: Herald, server_id: str) -> tuple[str, int]:
    server = await herald.server(server_id)
    return server["status"], server["OS-EXT-STS:power_state"]


async def _stopped_server(herald: Herald) -> str:
    server_id = await herald.create_server(host="compute-1")
    assert (await herald.action(server_id, {"os-stop": None})).status_code == 202
    await herald.settle()
    assert await _status(herald, server_id) == ("SHUTOFF", PowerState.SHUTDOWN)
    return server_id


async def _sync(herald: Herald, host: str = "compute-1") -> dict[str, object]:
    outcomes = await herald.deps.agents[host].power_sync.sync_all()
    await herald.settle()
    return {o.server_uuid: o for o in outcomes}


async def test_a_machine_that_stopped_by_itself_is_recorded_stopped(herald: Herald) -> None:
    server_id = await herald.create_server(host="compute-1")
    herald.driver("compute-1").set_power(server_id, PowerState.SHUTDOWN)
    outcome = (await _sync(herald))[server_id]
    assert outcome.decision.action is SyncAction.STOP  # type: ignore[attr-defined]
    assert await _status(herald, server_id) == ("SHUTOFF", PowerState.SHUTDOWN)
    actions = (await herald.get(f"/v2.1/servers/{server_id}/os-instance-actions")).json()["instanceActions"]
    assert [a["action"] for a in actions] == ["stop", "create"]


async def test_without_power_update_the_sync_forces_computes_view_onto_the_machine(herald: Herald) -> None:
    """The problem power-update solves: powered on outside compute, the machine is switched off again."""
    server_id = await _stopped_server(herald)
    driver = herald.driver("compute-1")
    driver.set_power(server_id, PowerState.RUNNING)  # the operator powers the node on at its BMC
    outcome = (await _sync(herald))[server_id]
    assert outcome.decision.action is SyncAction.FORCE_STOP  # type: ignore[attr-defined]
    machine = driver.machine(server_id)
    assert machine is not None
    assert machine.power is PowerState.SHUTDOWN
    assert await _status(herald, server_id) == ("SHUTOFF", PowerState.SHUTDOWN)


async def test_with_power_update_the_sync_leaves_the_machine_alone(herald: Herald) -> None:
    server_id = await _stopped_server(herald)
    driver = herald.driver("compute-1")
    driver.set_power(server_id, PowerState.RUNNING)
    resp = await herald.events([{"name": "power-update", "server_uuid": server_id, "tag": "POWER_ON"}], version="2.76")
    assert resp.status_code == 200
    await herald.settle()
    outcome = (await _sync(herald))[server_id]
    assert outcome.decision.action is SyncAction.NOTHING  # type: ignore[attr-defined]
    machine = driver.machine(server_id)
    assert machine is not None
    assert machine.power is PowerState.RUNNING
    assert await _status(herald, server_id) == ("ACTIVE", PowerState.RUNNING)


async def test_sync_while_the_event_is_in_flight_defers_to_it(gated: tuple[Herald, GatedBus]) -> None:
    """Order: event accepted -> sync -> event handled. The sync sees the accepted event and waits for it."""
    herald, bus = gated
    server_id = await _stopped_server(herald)
    driver = herald.driver("compute-1")
    driver.set_power(server_id, PowerState.RUNNING)
    bus.closed.add("compute-1")
    resp = await herald.events([{"name": "power-update", "server_uuid": server_id, "tag": "POWER_ON"}], version="2.76")
    assert resp.status_code == 200
    outcome = (await _sync(herald))[server_id]
    assert outcome.skipped == "a power-update for it is on its way"
    await bus.release("compute-1")
    await herald.settle()
    assert await _status(herald, server_id) == ("ACTIVE", PowerState.RUNNING)
    machine = driver.machine(server_id)
    assert machine is not None
    assert machine.power is PowerState.RUNNING


async def test_a_stop_decided_before_the_event_yields_to_it(gated: tuple[Herald, GatedBus]) -> None:
    """Order: sync decides to force a stop -> event accepted -> stop runs. The stop sees the event and cancels."""
    herald, bus = gated
    server_id = await _stopped_server(herald)
    driver = herald.driver("compute-1")
    driver.set_power(server_id, PowerState.RUNNING)
    bus.closed.add("compute-1")
    outcome = (await herald.deps.agents["compute-1"].power_sync.sync_all())[0]
    assert outcome.decision.action is SyncAction.FORCE_STOP  # type: ignore[union-attr]
    resp = await herald.events([{"name": "power-update", "server_uuid": server_id, "tag": "POWER_ON"}], version="2.76")
    assert resp.status_code == 200
    await bus.release("compute-1")
    await herald.settle()
    machine = driver.machine(server_id)
    assert machine is not None
    assert machine.power is PowerState.RUNNING
    assert await _status(herald, server_id) == ("ACTIVE", PowerState.RUNNING)
    # And the next sync agrees with everyone.
    assert (await _sync(herald))[server_id].decision.action is SyncAction.NOTHING  # type: ignore[attr-defined]


async def test_event_handled_then_sync(herald: Herald) -> None:
    """Order: event handled -> sync: the sync decides on the record the event wrote."""
    server_id = await herald.create_server(host="compute-1")
    driver = herald.driver("compute-1")
    driver.set_power(server_id, PowerState.SHUTDOWN)
    resp = await herald.events([{"name": "power-update", "server_uuid": server_id, "tag": "POWER_OFF"}], version="2.76")
    assert resp.status_code == 200
    await herald.settle()
    outcome = (await _sync(herald))[server_id]
    assert outcome.decision.action is SyncAction.NOTHING  # type: ignore[attr-defined]
    actions = (await herald.get(f"/v2.1/servers/{server_id}/os-instance-actions")).json()["instanceActions"]
    assert [a["action"] for a in actions] == ["stop", "create"]  # only the event's stop, no second one


async def test_a_server_with_a_task_is_skipped_without_asking_the_driver(herald: Herald) -> None:
    server_id = await herald.create_server(host="compute-1")
    with herald.deps.uow_factory() as uow:
        server = uow.servers.get(server_id)
        assert server is not None
        server.task_state = "powering-off"
        uow.servers.save(server)
        uow.commit()
    herald.driver("compute-1").fail_next("get_power_state", DriverError("must not be asked"))
    outcome = (await _sync(herald))[server_id]
    assert outcome.skipped == "pending task (powering-off)"


async def test_the_record_follows_the_hypervisor_for_power_state(herald: Herald) -> None:
    server_id = await herald.create_server(host="compute-2")
    herald.driver("compute-2").set_power(server_id, PowerState.PAUSED)
    outcome = (await _sync(herald, "compute-2"))[server_id]
    assert outcome.decision.action is SyncAction.NOTHING  # type: ignore[attr-defined]
    assert await _status(herald, server_id) == ("ACTIVE", PowerState.PAUSED)


async def test_failures_are_counted_and_fault_the_server_after_three(herald: Herald) -> None:
    server_id = await herald.create_server(host="compute-1")
    other = await herald.create_server(host="compute-1")
    driver = herald.driver("compute-1")
    for attempt in range(3):
        driver.fail_next("get_power_state", DriverError(f"BMC timeout {attempt}"))
        outcomes = await _sync(herald)
        # One server failing does not stop the loop: the other one was synced.
        assert len(outcomes) == 1
    with herald.deps.uow_factory() as uow:
        faulted = [s for s in uow.servers.list(host="compute-1") if s.fault]
    assert len(faulted) == 1
    assert faulted[0].uuid in {server_id, other}
    assert "Power state sync failed 3 times" in str(faulted[0].fault["message"])


async def test_the_sync_asks_the_driver_for_at_most_pool_size_servers_at_once(db_url: str, engine: Engine) -> None:
    """A driver that reads machine by machine (a BMC each) is asked for one server per call, pool_size at once."""
    import threading

    herald, _ = await start_herald(settings_for(db_url, sync_power_state_pool_size=2, power_state_change_grace=0))
    try:
        servers = [await herald.create_server(host="compute-1") for _ in range(5)]
        driver = herald.driver("compute-1")
        real = driver.get_power_states
        lock, too_many = threading.Lock(), threading.Event()
        active, most, sizes = 0, 0, []

        def slow_bmc(rows: Sequence[SyncRow]) -> dict[str, int | Exception]:
            nonlocal active, most
            with lock:
                sizes.append(len(rows))
                active += 1
                most = max(most, active)
                if active > 2:
                    too_many.set()
            # A slow BMC: each call stays a while, so that more calls would pile up if allowed.
            too_many.wait(timeout=0.3)
            try:
                return real(rows)
            finally:
                with lock:
                    active -= 1

        driver.batches_power_reads = False  # type: ignore[misc]
        driver.get_power_states = slow_bmc  # type: ignore[method-assign]
        outcomes = await herald.deps.agents["compute-1"].power_sync.sync_all()
        assert sorted(o.server_uuid for o in outcomes) == sorted(servers)
        assert most == 2
        assert sizes == [1] * 5
    finally:
        await stop_herald(herald)


async def test_a_server_with_nothing_to_change_still_defers_to_an_event_on_its_way(
    gated: tuple[Herald, GatedBus],
) -> None:
    """The pass decides most servers without the writer; one with a power-update accepted is still left alone."""
    herald, bus = gated
    server_id = await herald.create_server(host="compute-1")
    quiet = await herald.create_server(host="compute-1")
    bus.closed.add("compute-1")
    resp = await herald.events([{"name": "power-update", "server_uuid": server_id, "tag": "POWER_ON"}], version="2.76")
    assert resp.status_code == 200
    outcomes = {o.server_uuid: o for o in await herald.deps.agents["compute-1"].power_sync.sync_all()}
    assert outcomes[server_id].skipped == "a power-update for it is on its way"
    assert outcomes[quiet].decision.action is SyncAction.NOTHING  # type: ignore[union-attr]
    await bus.release("compute-1")
    await herald.settle()
    assert await _status(herald, server_id) == ("ACTIVE", PowerState.RUNNING)
