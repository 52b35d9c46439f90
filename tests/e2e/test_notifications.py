"""Versioned notifications over oslo.messaging's in-memory bus: HTTP -> agent -> notifier -> listener."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from oslo_config import cfg
from sqlalchemy import Engine

from herald.adapters.notifications.oslo import OsloMessagingNotifier, import_oslo_messaging
from herald.domain.errors import DriverError
from tests.e2e.harness import Herald, settings_for, start_herald, stop_herald

TOPIC = "versioned_notifications"


@dataclass(frozen=True)
class Received:
    ctxt: dict[str, Any]
    publisher_id: str
    event_type: str
    payload: dict[str, Any]

    @property
    def data(self) -> dict[str, Any]:
        data: dict[str, Any] = self.payload["nova_object.data"]
        return data


class Collector:
    """A notification listener endpoint (oslo.messaging calls ``info`` from its own thread)."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self._changed = threading.Condition()

    def info(self, ctxt: dict[str, Any], publisher_id: str, event_type: str, payload: Any, metadata: Any) -> None:
        with self._changed:
            self.received.append(Received(ctxt, publisher_id, event_type, payload))
            self._changed.notify_all()

    async def wait_for(self, count: int) -> list[Received]:
        def wait() -> list[Received]:
            with self._changed:
                assert self._changed.wait_for(lambda: len(self.received) >= count, timeout=10), self.received
                return list(self.received)

        return await asyncio.to_thread(wait)


@dataclass
class Notified:
    herald: Herald
    collector: Collector

    async def event_types(self, count: int) -> list[str]:
        return [r.event_type for r in await self.collector.wait_for(count)]


@pytest.fixture
async def notified(db_url: str, engine: Engine) -> AsyncIterator[Notified]:
    """Herald whose notifier sends with messagingv2 on a fake:// transport, and a listener on that transport."""
    messaging = import_oslo_messaging()
    transport = messaging.get_notification_transport(cfg.ConfigOpts(), url="fake://")
    notifier = OsloMessagingNotifier(transport, drivers=["messagingv2"], topics=[TOPIC])
    collector = Collector()
    listener = messaging.get_notification_listener(
        transport, [messaging.Target(topic=TOPIC)], [collector], executor="threading"
    )
    listener.start()
    herald, _ = await start_herald(settings_for(db_url), notifier=notifier)
    try:
        yield Notified(herald, collector)
    finally:
        listener.stop()
        listener.wait()
        await stop_herald(herald)  # closes the notifier, and so the transport


async def _power_update(herald: Herald, server_id: str, tag: str) -> str:
    resp = await herald.events([{"name": "power-update", "server_uuid": server_id, "tag": tag}], version="2.76")
    assert resp.status_code == 200, resp.text
    await herald.settle()
    return resp.headers["x-openstack-request-id"]


async def test_power_update_sends_start_then_end(notified: Notified) -> None:
    herald = notified.herald
    server_id = await herald.create_server(host="compute-1")
    request_id = await _power_update(herald, server_id, "POWER_OFF")

    start, end = await notified.collector.wait_for(2)
    assert (start.event_type, end.event_type) == ("instance.power_off.start", "instance.power_off.end")
    assert start.publisher_id == end.publisher_id == "nova-compute:compute-1"
    assert start.payload["nova_object.name"] == "InstanceActionPayload"
    assert start.payload["nova_object.version"] == "1.9"
    assert start.data["uuid"] == end.data["uuid"] == server_id
    assert (start.data["state"], start.data["power_state"], start.data["task_state"]) == (
        "active",
        "running",
        "powering-off",
    )
    assert (end.data["state"], end.data["power_state"], end.data["task_state"]) == ("stopped", "shutdown", None)
    assert end.data["host"] == "compute-1"
    assert end.data["request_id"] == request_id
    assert (end.data["action_initiator_user"], end.data["action_initiator_project"]) == ("admin", "admin")
    assert end.ctxt["request_id"] == request_id


async def test_noop_sends_nothing(notified: Notified) -> None:
    herald = notified.herald
    server_id = await herald.create_server(host="compute-2")
    await _power_update(herald, server_id, "POWER_ON")  # already on: a no-op
    await _power_update(herald, server_id, "POWER_OFF")  # the first thing anyone hears about

    assert await notified.event_types(2) == ["instance.power_off.start", "instance.power_off.end"]


async def test_driver_failure_sends_the_start_alone(notified: Notified) -> None:
    herald = notified.herald
    server_id = await herald.create_server(host="compute-1")
    herald.driver("compute-1").fail_next("power_update_event", DriverError("BMC unreachable"))
    await _power_update(herald, server_id, "POWER_OFF")
    await _power_update(herald, server_id, "POWER_OFF")

    assert await notified.event_types(3) == [
        "instance.power_off.start",
        "instance.power_off.start",
        "instance.power_off.end",
    ]


async def test_power_on_after_power_off(notified: Notified) -> None:
    herald = notified.herald
    server_id = await herald.create_server(host="compute-1")
    await _power_update(herald, server_id, "POWER_OFF")
    await _power_update(herald, server_id, "POWER_ON")

    received = await notified.collector.wait_for(4)
    assert [r.event_type for r in received][2:] == ["instance.power_on.start", "instance.power_on.end"]
    assert (received[2].data["state"], received[2].data["task_state"]) == ("stopped", "powering-on")
    assert (received[3].data["state"], received[3].data["power_state"]) == ("active", "running")


async def test_stop_and_start_apis_send_the_same_pairs(notified: Notified) -> None:
    herald = notified.herald
    server_id = await herald.create_server(host="compute-1")
    resp = await herald.action(server_id, {"os-stop": None})
    assert resp.status_code == 202, resp.text
    await herald.settle()
    stop_request = resp.headers["x-openstack-request-id"]
    resp = await herald.action(server_id, {"os-start": None})
    assert resp.status_code == 202, resp.text
    await herald.settle()

    received = await notified.collector.wait_for(4)
    assert [r.event_type for r in received] == [
        "instance.power_off.start",
        "instance.power_off.end",
        "instance.power_on.start",
        "instance.power_on.end",
    ]
    start, end = received[:2]
    assert (start.data["state"], start.data["task_state"]) == ("active", "powering-off")
    assert (end.data["state"], end.data["power_state"], end.data["task_state"]) == ("stopped", "shutdown", None)
    assert start.data["request_id"] == end.data["request_id"] == stop_request
    assert end.data["action_initiator_user"] == "admin"


async def test_failed_stop_sends_the_start_alone(notified: Notified) -> None:
    herald = notified.herald
    server_id = await herald.create_server(host="compute-1")
    herald.driver("compute-1").fail_next("power_off", DriverError("BMC unreachable"))
    resp = await herald.action(server_id, {"os-stop": None})
    assert resp.status_code == 202, resp.text
    await herald.settle()
    await _power_update(herald, server_id, "POWER_OFF")

    assert await notified.event_types(3) == [
        "instance.power_off.start",
        "instance.power_off.start",
        "instance.power_off.end",
    ]
