"""Bounded host queues: a host that falls behind gets 503s for its events, others do not, nothing is lost."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from herald.adapters.bus.memory import InMemoryBus
from herald.agent.main import EXPIRE_SLICE
from tests.e2e.blocking_driver import Gate, blocking_drivers
from tests.e2e.harness import Herald, settings_for, start_herald, stop_herald
from tests.e2e.test_database_unavailable import assert_unavailable, events


async def _hold_queue(herald: Herald, gate: Gate, server: str) -> None:
    """A stop whose BMC does not answer holds the server's host's queue: its events pile up."""
    assert (await herald.action(server, {"os-stop": None})).status_code == 202
    await gate.wait_held(1)


async def _states(herald: Herald, server: str) -> dict[str, str]:
    return {r["tag"]: r["state"] for r in await herald.records(server_uuid=server)}


async def test_a_host_that_falls_behind_refuses_its_events_and_others_go_on(
    db_url: str, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    with blocking_drivers(monkeypatch, {"power_off"}) as gate:
        # Room for 4 events: admission stops at 3 queued.
        herald, _ = await start_herald(settings_for(db_url, host_queue_events=4))
        try:
            stuck = await herald.create_server(host="compute-1")
            other = await herald.create_server(host="compute-2")
            await _hold_queue(herald, gate, stuck)
            for n in range(3):
                assert (await herald.events(events(stuck, f"a{n}"))).status_code == 200
            assert_unavailable(await herald.events(events(stuck, "refused")))
            assert (await herald.events(events(other, "elsewhere"))).status_code == 200

            gate.release()
            await herald.settle()
            assert await _states(herald, stuck) == dict.fromkeys(("a0-0", "a1-0", "a2-0"), "handled")
            assert await _states(herald, other) == {"elsewhere-0": "handled"}
        finally:
            gate.release()
            await stop_herald(herald)


class UnguardedBus(InMemoryBus):
    """Admission control off: only the queue's own bound stands between the accept path and memory."""

    def has_room(self, host: str, events: int) -> bool:
        return True

    def widen(self, max_events: int) -> None:
        self._max_events = max_events


async def test_events_a_full_queue_refused_wait_in_the_journal_for_the_relay(
    db_url: str, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    with blocking_drivers(monkeypatch, {"power_off"}) as gate:
        bus = UnguardedBus(max_events=5)
        herald, deps = await start_herald(settings_for(db_url), bus=bus)
        try:
            stuck = await herald.create_server(host="compute-1")
            await _hold_queue(herald, gate, stuck)
            for n in range(4):
                assert (await herald.events(events(stuck, f"a{n}"))).status_code == 200
            # Committed and answered, but three more overflow the queue: the bus refuses them.
            assert (await herald.events(events(stuck, "b", 3))).status_code == 200
            await deps.relay.flush()
            assert (await herald.events(events(stuck, "c"))).status_code == 200
            assert {tag: state for tag, state in (await _states(herald, stuck)).items() if tag.startswith("b")} == (
                dict.fromkeys(("b-0", "b-1", "b-2"), "accepted")
            )

            # The relay's pass sends them once there is room, and records the hand-off: its next
            # pass does not send them again.
            bus.widen(10)
            assert await deps.relay.redeliver() == 3
            assert {tag: state for tag, state in (await _states(herald, stuck)).items() if tag.startswith("b")} == (
                dict.fromkeys(("b-0", "b-1", "b-2"), "dispatched")
            )
            assert await deps.relay.redeliver() == 0

            gate.release()
            await herald.settle()
            answered = ("a0-0", "a1-0", "a2-0", "a3-0", "b-0", "b-1", "b-2", "c-0")
            assert await _states(herald, stuck) == dict.fromkeys(answered, "handled")
        finally:
            gate.release()
            await stop_herald(herald)


async def test_early_events_pushed_out_of_the_buffer_are_recorded_by_their_delivery(
    db_url: str, engine: Engine
) -> None:
    """They count in the host's queue until recorded, so a flood of them meets admission control."""
    herald, _ = await start_herald(settings_for(db_url, early_event_buffer_size=2))
    try:
        server = await herald.create_server(host="compute-1")
        count = EXPIRE_SLICE + 10
        plugged = [{"name": "network-vif-plugged", "server_uuid": server, "tag": f"port-{i}"} for i in range(count)]
        assert (await herald.events(plugged)).status_code == 200
        await herald.settle()
        states = await _states(herald, server)
        # The buffer keeps the two newest for a waiter; those it pushed out are already recorded.
        assert states == {f"port-{i}": "expired" if i < count - 2 else "dispatched" for i in range(count)}
    finally:
        await stop_herald(herald)
