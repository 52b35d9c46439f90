"""The relay on the embedded shape: one path (outbox -> relay -> transport -> agent -> record), rows
marked ``dispatched`` only once the transport took them, passes that page through every unfinished
row, and a ``dispatched`` row nobody finished sent again while the process runs."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import Engine

from herald.adapters.bus.memory import InMemoryBus
from herald.domain.messages import DeliverEvents
from herald.domain.records import EventEnvelope
from tests.e2e.harness import settings_for, start_herald, stop_herald


class GatedBus(InMemoryBus):
    """Publishes of event deliveries wait until the test opens the gate (a broker slow to confirm)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    async def publish(self, host: str, messages: Sequence[object]) -> None:
        if any(isinstance(m, DeliverEvents) for m in messages):
            await self.gate.wait()
        await super().publish(host, messages)


class LosingBus(InMemoryBus):
    """Takes (confirms) event deliveries but loses the first ``lose`` of them, as a lost queue would."""

    def __init__(self, lose: int) -> None:
        super().__init__()
        self.lose = lose

    async def publish(self, host: str, messages: Sequence[object]) -> None:
        if self.lose and any(isinstance(m, DeliverEvents) for m in messages):
            self.lose -= 1
            return
        await super().publish(host, messages)


def _power_off(server_id: str) -> list[dict[str, str]]:
    return [{"name": "power-update", "server_uuid": server_id, "tag": "POWER_OFF"}]


async def test_a_row_is_dispatched_only_after_the_transport_took_it(db_url: str, engine: Engine) -> None:
    bus = GatedBus()
    herald, deps = await start_herald(settings_for(db_url), bus=bus)
    try:
        server_id = await herald.create_server(host="compute-1")
        assert (await herald.events(_power_off(server_id), version="2.76")).status_code == 200
        await asyncio.sleep(0)
        (record,) = await herald.records(server_uuid=server_id)
        assert (record["state"], record["dispatched_at"]) == ("accepted", None)
        bus.gate.set()
        await deps.relay.flush()
        await herald.settle()
        (record,) = await herald.records(server_uuid=server_id)
        assert record["state"] == "handled"
        assert record["dispatched_at"] is not None
    finally:
        bus.gate.set()
        await stop_herald(herald)


async def test_a_dispatched_row_nobody_finished_is_sent_again_while_running(db_url: str, engine: Engine) -> None:
    bus = LosingBus(lose=1)
    herald, deps = await start_herald(settings_for(db_url), bus=bus)
    try:
        server_id = await herald.create_server(host="compute-1")
        assert (await herald.events(_power_off(server_id), version="2.76")).status_code == 200
        await deps.relay.flush()
        await herald.settle()
        (record,) = await herald.records(server_uuid=server_id)
        assert record["state"] == "dispatched"  # the transport confirmed it, then lost it
        # Its claim has not lapsed yet: a pass leaves it alone.
        assert await deps.relay.redeliver() == 0
        # Once it has (``relay_resend_after`` later), the pass sends it again.
        later = deps.clock.now() + timedelta(seconds=deps.settings.relay_resend_after + 1)
        assert await deps.relay.redeliver(claimed_before=later) == 1
        await herald.settle()
        (record,) = await herald.records(server_uuid=server_id)
        assert record["state"] == "handled"
        assert herald.driver("compute-1").power_update_calls == [(server_id, "POWER_OFF")]
    finally:
        await stop_herald(herald)


async def test_a_pass_pages_through_every_unfinished_row_and_duplicates_are_suppressed(
    db_url: str, engine: Engine
) -> None:
    bus = LosingBus(lose=100)
    herald, deps = await start_herald(settings_for(db_url), bus=bus)
    try:
        servers = [await herald.create_server(host="compute-1") for _ in range(5)]
        for server_id in servers:
            assert (await herald.events(_power_off(server_id), version="2.76")).status_code == 200
        await deps.relay.flush()
        assert {r["state"] for r in await herald.records()} == {"dispatched"}

        # Pages of two: the pass still reaches all five.
        bus.lose = 0
        deps.relay._page_size = 2
        later = deps.clock.now() + timedelta(seconds=deps.settings.relay_resend_after + 1)
        assert await deps.relay.redeliver(claimed_before=later) == 5
        await herald.settle()
        assert {r["state"] for r in await herald.records()} == {"handled"}
        # Finished rows are never taken again.
        assert await deps.relay.redeliver(claimed_before=later + timedelta(seconds=1)) == 0

        # The agent gets a copy of every delivery (as after a redelivery): no second effect, each counted.
        with deps.uow_factory() as uow:
            replay = tuple(
                EventEnvelope(r.uuid, r.request_id, r.server_uuid, r.name, r.tag, r.status, r.host, id=r.id or 0)
                for r in uow.events.query()
            )
        await deps.bus.publish("compute-1", [DeliverEvents(replay, redelivery=True)])
        await herald.settle()
        assert deps.agents["compute-1"].duplicates_suppressed == len(servers)
        assert sorted(herald.driver("compute-1").power_update_calls) == sorted((s, "POWER_OFF") for s in servers)
    finally:
        await stop_herald(herald)


async def test_every_unfinished_row_is_sent_at_start_however_many(db_url: str, engine: Engine) -> None:
    """The embedded shape's relay is the only one: at start it claims every unfinished row, page by page."""
    bus = LosingBus(lose=100)
    herald, deps = await start_herald(settings_for(db_url), bus=bus)
    try:
        servers = [await herald.create_server(host="compute-2") for _ in range(7)]
        for server_id in servers:
            assert (await herald.events(_power_off(server_id), version="2.76")).status_code == 200
        await deps.relay.flush()
        assert {r["state"] for r in await herald.records()} == {"dispatched"}
    finally:
        await stop_herald(herald)
    herald, deps = await start_herald(settings_for(db_url))
    try:
        await herald.settle()
        assert {r["state"] for r in await herald.records()} == {"handled"}
    finally:
        await stop_herald(herald)


async def test_a_resent_event_kept_for_its_waiter_stays_kept(db_url: str, engine: Engine) -> None:
    """A waiter event kept for a waiter stays ``dispatched``: a pass re-sends it once its claim lapsed,
    and the copy must neither replace it (which would record it ``expired``) nor be kept twice."""
    herald, deps = await start_herald(settings_for(db_url))
    try:
        server_id = await herald.create_server(host="compute-1")
        event = {"name": "network-vif-plugged", "server_uuid": server_id, "tag": "port-1"}
        assert (await herald.events([event])).status_code == 200
        await deps.relay.flush()
        await herald.settle()
        (record,) = await herald.records(server_uuid=server_id)
        assert record["state"] == "dispatched"  # kept: no operation waits for it yet
        later = deps.clock.now() + timedelta(seconds=deps.settings.relay_resend_after + 1)
        assert await deps.relay.redeliver(claimed_before=later) == 1
        await herald.settle()
        await deps.agents["compute-1"].expire_early()  # records whatever left the buffer
        (record,) = await herald.records(server_uuid=server_id)
        assert record["state"] == "dispatched"
        assert deps.agents["compute-1"].duplicates_suppressed == 1
    finally:
        await stop_herald(herald)
