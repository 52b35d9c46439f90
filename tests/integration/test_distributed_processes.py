"""The distributed shape's processes in one event loop: an API worker and an agent joined by RabbitMQ.

The API worker runs no agent; the agent runs its own writer. A delivery published twice (two
relays, or a relay re-send after a lost confirm) has one effect.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from herald import bootstrap
from herald.adapters.sql import migrate
from herald.api.app import create_app
from herald.bootstrap import AgentProcess, Deps
from herald.domain.events import EventName, EventStatus
from herald.domain.messages import DeliverEvents
from herald.domain.records import EventEnvelope
from herald.service.accept import AcceptEvents, AcceptRequest, IncomingEvent
from tests.amqp import delete_queues
from tests.e2e.harness import ADMIN, IMAGE, settings_for

POWER_UPDATE, DONE = EventName("power-update"), EventStatus("completed")


@dataclass
class Pair:
    api: Deps
    agent: AgentProcess
    client: httpx.AsyncClient
    host: str

    async def get(self, path: str, version: str = "2.84") -> Any:
        response = await self.client.get(path, headers={**ADMIN, "OpenStack-API-Version": f"compute {version}"})
        assert response.status_code == 200, response.text
        return response.json()

    async def post(self, path: str, body: Any, version: str = "2.76") -> httpx.Response:
        headers = {**ADMIN, "OpenStack-API-Version": f"compute {version}"}
        return await self.client.post(path, json=body, headers=headers)


async def until(check: Callable[[], Any], limit: float = 30.0) -> None:
    async with asyncio.timeout(limit):
        while not await check():  # noqa: ASYNC110 - the state is another process's (the agent's)
            await asyncio.sleep(0.02)


@pytest.fixture
async def pair(db_url: str, amqp_url: str) -> AsyncIterator[Pair]:
    migrate.upgrade(db_url)
    host = f"agent-{uuid.uuid4().hex[:8]}"
    settings = settings_for(db_url, transport_url=amqp_url, relay_interval=3600)
    api = bootstrap.build_api_process(settings)
    agent = bootstrap.build_agent_process(settings, host)
    assert api.agents == {}
    assert agent.writer is not api.writer
    await bootstrap.start_agent_process(agent)
    await bootstrap.start(api)
    app = create_app(api, manage_lifecycle=False)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://herald.test/v2.1")
    try:
        yield Pair(api, agent, client, host)
    finally:
        await client.aclose()
        await bootstrap.stop(api)
        await bootstrap.stop_agent_process(agent)
        await delete_queues(amqp_url, [host])


async def _power_update(pair: Pair, server_id: str, tag: str) -> str:
    body = {"events": [{"name": "power-update", "server_uuid": server_id, "tag": tag}]}
    response = await pair.post("/os-server-external-events", body)
    assert response.status_code == 200, response.text
    request_id: str = response.headers["x-openstack-request-id"]
    return request_id


async def _handled(pair: Pair, server_id: str, count: int) -> list[dict[str, Any]]:
    async def done() -> bool:
        records = (await pair.get(f"/os-server-external-events?server_uuid={server_id}"))["events"]
        return len(records) == count and all(r["state"] == "handled" for r in records)

    await until(done)
    records: list[dict[str, Any]] = (await pair.get(f"/os-server-external-events?server_uuid={server_id}"))["events"]
    return records


async def _boot(pair: Pair) -> str:
    body = {"server": {"name": "vm", "imageRef": IMAGE, "flavorRef": "1", "networks": "none", "host": pair.host}}
    response = await pair.post("/servers", body, version="2.74")
    assert response.status_code == 202, response.text
    server_id: str = response.json()["server"]["id"]

    async def active() -> bool:
        return bool((await pair.get(f"/servers/{server_id}"))["server"]["status"] == "ACTIVE")

    await until(active)
    return server_id


async def test_a_delivery_published_twice_has_one_effect(pair: Pair) -> None:
    server_id = await _boot(pair)

    first = await _power_update(pair, server_id, "POWER_OFF")
    (record,) = await _handled(pair, server_id, 1)
    # A second relay publishes the same delivery again, as a first-time publish and as a re-send.
    with pair.api.read_uow_factory() as uow:
        (row,) = uow.events.query(server_uuid=server_id)
    envelope = EventEnvelope(row.uuid, first, server_id, "power-update", "POWER_OFF", "completed", pair.host, id=row.id)
    await pair.api.bus.publish(pair.host, [DeliverEvents((envelope,)), DeliverEvents((envelope,), redelivery=True)])
    # Queued behind the copies: once this one is handled, the copies were dealt with.
    second = await _power_update(pair, server_id, "POWER_ON")
    records = await _handled(pair, server_id, 2)

    # The listing is newest first: the first event's record is the older one.
    assert [r["outcome"] for r in records if r["request_id"] == first] == [record["outcome"]]
    for request_id in (first, second):
        action = (await pair.get(f"/servers/{server_id}/os-instance-actions/{request_id}"))["instanceAction"]
        assert [e["result"] for e in action["events"] if e["event"] == "compute_power_update"] == ["Success"]
    server = (await pair.get(f"/servers/{server_id}"))["server"]
    assert (server["status"], server["OS-EXT-STS:power_state"]) == ("ACTIVE", 1)


async def test_an_event_that_overtook_an_older_one_waits_for_it(pair: Pair) -> None:
    """The relay that accepted the older event could not publish it (it crashed, RabbitMQ was away):
    the newer one, published by another relay, must not be applied first."""
    server_id = await _boot(pair)
    older = AcceptRequest("req-older", "admin", "admin", [IncomingEvent(POWER_UPDATE, server_id, "POWER_OFF", DONE)])
    await pair.api.writer.submit(AcceptEvents(pair.api.clock), older)  # recorded, never handed to the relay

    newer = await _power_update(pair, server_id, "POWER_ON")
    records = await _handled(pair, server_id, 2)

    assert [r["request_id"] for r in records] == [newer, "req-older"]  # newest first
    assert not [r for r in records if r["outcome"].startswith("no-op")], records
    server = (await pair.get(f"/servers/{server_id}"))["server"]
    assert (server["status"], server["OS-EXT-STS:power_state"]) == ("ACTIVE", 1)


async def test_a_server_s_events_published_newest_first_in_one_batch_apply_oldest_first(pair: Pair) -> None:
    """After a broker outage two relays may publish a server's events out of accept order, and the
    consumer may merge those deliveries into one batch: the agent still applies them in accept order."""
    server_id = await _boot(pair)
    for request_id, tag in (("req-older", "POWER_OFF"), ("req-newer", "POWER_ON")):
        accept = AcceptRequest(request_id, "admin", "admin", [IncomingEvent(POWER_UPDATE, server_id, tag, DONE)])
        await pair.api.writer.submit(AcceptEvents(pair.api.clock), accept)  # recorded, never handed to a relay
    with pair.api.read_uow_factory() as uow:
        rows = uow.events.query(server_uuid=server_id)
    envelopes = sorted(
        (EventEnvelope(r.uuid, r.request_id, server_id, r.name, r.tag, r.status, pair.host, id=r.id) for r in rows),
        key=lambda envelope: envelope.id or 0,
        reverse=True,
    )
    await pair.api.bus.publish(pair.host, [DeliverEvents(tuple(envelopes))])
    records = await _handled(pair, server_id, 2)

    assert [r["request_id"] for r in records] == ["req-newer", "req-older"]  # newest first
    assert not [r for r in records if r["outcome"].startswith("no-op")], records
    server = (await pair.get(f"/servers/{server_id}"))["server"]
    assert (server["status"], server["OS-EXT-STS:power_state"]) == ("ACTIVE", 1)


async def test_an_event_kept_for_a_waiter_is_not_forgotten_by_a_restart(pair: Pair) -> None:
    """The agent acknowledged it and kept it in memory for an operation that has not started
    waiting yet; after a restart it is held again, and expires with its reason."""
    server_id = await _boot(pair)
    event = {"name": "network-vif-plugged", "server_uuid": server_id, "tag": "port-1"}
    response = await pair.post("/os-server-external-events", {"events": [event]})
    assert response.status_code == 200, response.text

    async def state_is(state: str) -> bool:
        records = (await pair.get(f"/os-server-external-events?server_uuid={server_id}"))["events"]
        return [r["state"] for r in records] == [state]

    await until(lambda: state_is("dispatched"))  # held for a waiter: not finished
    await bootstrap.stop_agent_process(pair.agent)
    settings = dataclasses.replace(pair.agent.settings, early_event_ttl=1)
    pair.agent = bootstrap.build_agent_process(settings, pair.host)
    await bootstrap.start_agent_process(pair.agent)

    await until(lambda: state_is("expired"))
    (record,) = (await pair.get(f"/os-server-external-events?server_uuid={server_id}"))["events"]
    assert record["outcome"] == "no operation waited for it before it expired"


async def test_the_agent_registers_as_a_compute_service(pair: Pair) -> None:
    services = (await pair.get("/os-services"))["services"]
    assert [(s["binary"], s["state"]) for s in services if s["host"] == pair.host] == [("nova-compute", "up")]


def test_the_api_process_needs_rabbitmq(db_url: str) -> None:
    with pytest.raises(ValueError, match="transport_url must name RabbitMQ"):
        bootstrap.build_api_process(settings_for(db_url, transport_url="memory://"))
