"""RabbitBus beyond the contract: brokers that go away and come back, several brokers, secrets, bad messages."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from urllib.parse import urlsplit

import aio_pika
import pytest

from herald.adapters.bus.rabbit import queue_name
from herald.domain.errors import BusUnavailable
from herald.domain.messages import DeliverEvents, StopServer
from herald.domain.records import EventEnvelope
from tests.amqp import delete_queues
from tests.integration.adapters.bus.conftest import Recorder, new_host, rabbit_bus, until

SERVER = "0f8e2a51-5c1b-4f0e-9b76-3d2c1a0b9e8f"
SECRET = "hunter2-not-in-logs"
UNUSED_PORT = 18598  # nothing listens here


class Proxy:
    """A TCP relay to the broker that can drop every connection and refuse new ones (a broker outage)."""

    def __init__(self, target_port: int) -> None:
        self._target_port = target_port
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def start(self, port: int = 0) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", port or self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        await self._server.wait_closed()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._target_port)
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers -= {writer, up_writer}


def _url_with(amqp_url: str, *, password: str, port: int, extra_host: str = "") -> str:
    parts = urlsplit(amqp_url)
    hosts = f"{extra_host}guest:{password}@127.0.0.1:{port}"
    return f"rabbit://{hosts}{parts.path}"


async def test_an_unreachable_broker_fails_publishes_fast_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    bus = rabbit_bus(f"rabbit://guest:{SECRET}@127.0.0.1:{UNUSED_PORT}/", connect_timeout=1.0)
    try:
        for _ in range(2):
            with pytest.raises(BusUnavailable, match="RabbitMQ is unreachable") as info:
                await bus.publish("compute-1", [StopServer(SERVER, "req-1")])
            assert SECRET not in str(info.value)
        await until(lambda: "RabbitMQ is unreachable" in caplog.text)
        assert any(r.levelno == logging.WARNING and "retrying in" in r.getMessage().lower() for r in caplog.records)
    finally:
        await bus.close()
    assert SECRET not in caplog.text


async def test_the_first_reachable_broker_is_used(amqp_url: str) -> None:
    port = urlsplit(amqp_url).port
    assert port is not None
    url = _url_with(amqp_url, password="guest", port=port, extra_host=f"guest:guest@127.0.0.1:{UNUSED_PORT},")
    bus = rabbit_bus(url)
    host = new_host()
    record = Recorder()
    seen = record.seen

    try:
        await bus.subscribe(host, record)
        await bus.publish(host, [StopServer(SERVER, "req-1")])
        await until(lambda: len(seen) == 1)
    finally:
        await bus.close()
        await delete_queues(amqp_url, [host])


# NOTE: connections cut under aiormq's feet leave it a socket writer that the garbage collector reports.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_both_sides_reconnect_after_the_broker_was_away(amqp_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    port = urlsplit(amqp_url).port
    assert port is not None
    proxy = Proxy(port)
    await proxy.start()
    # The test node's guest password is "guest": the secret to hide is that one here.
    bus = rabbit_bus(_url_with(amqp_url, password="guest", port=proxy.port))
    host = new_host()
    record = Recorder()
    seen = record.seen

    try:
        await bus.subscribe(host, record)
        await bus.publish(host, [StopServer(SERVER, "req-1")])
        await until(lambda: len(seen) == 1)

        await proxy.stop()  # the broker goes away
        await until(lambda: not bus.connected)
        with pytest.raises(BusUnavailable):
            await bus.publish(host, [StopServer(SERVER, "req-lost")])
        await until(lambda: "RabbitMQ is unreachable" in caplog.text)

        await proxy.start()  # and comes back on the same address
        assert await bus.connect(wait=20)
        await bus.publish(host, [StopServer(SERVER, "req-2")])
        await until(lambda: StopServer(SERVER, "req-2") in seen)
        assert seen[0] == StopServer(SERVER, "req-1")
        assert "Lost the connection to RabbitMQ" in caplog.text
    finally:
        await bus.close()
        with contextlib.suppress(Exception):
            await proxy.stop()
        await delete_queues(amqp_url, [host])
    for record_ in caplog.records:
        assert ":guest@" not in record_.getMessage()


async def test_an_unreadable_message_is_dead_lettered_and_the_rest_go_on(amqp_url: str) -> None:
    bus = rabbit_bus(amqp_url)
    host = new_host()
    record = Recorder()
    seen = record.seen

    try:
        await bus.publish(host, [StopServer(SERVER, "req-0")])  # declares the queue
        connection = await aio_pika.connect(amqp_url)
        async with connection:
            channel = await connection.channel()
            await channel.default_exchange.publish(aio_pika.Message(b'{"v": 99}'), routing_key=queue_name(host))
        await bus.publish(host, [StopServer(SERVER, "req-1")])
        await bus.subscribe(host, record)
        await until(lambda: len(seen) == 2)
        assert seen == [StopServer(SERVER, "req-0"), StopServer(SERVER, "req-1")]
    finally:
        await bus.close()
        await delete_queues(amqp_url, [host])


async def test_event_batches_are_handed_on_as_possible_copies(amqp_url: str) -> None:
    """Several relays may publish one delivery: the agent must check each event against the journal."""
    bus = rabbit_bus(amqp_url)
    host = new_host()
    envelope = EventEnvelope("e-1", "req-1", SERVER, "network-vif-plugged", "port-1", "completed", host, id=7)
    record = Recorder()
    seen = record.seen

    try:
        await bus.subscribe(host, record)
        await bus.publish(host, [DeliverEvents((envelope,)), DeliverEvents((envelope,))])
        await until(lambda: sum(len(d.events) for d in seen if isinstance(d, DeliverEvents)) == 2)
        assert all(isinstance(d, DeliverEvents) and d.redelivery for d in seen)
    finally:
        await bus.close()
        await delete_queues(amqp_url, [host])


async def test_waiting_event_deliveries_reach_the_agent_as_one_batch_in_order(amqp_url: str) -> None:
    """Deliveries that queued up while the agent was busy come as one batch; a command splits them."""
    bus = rabbit_bus(amqp_url)
    host = new_host()
    envelopes = [
        EventEnvelope(f"e-{n}", "req-1", SERVER, "network-vif-plugged", f"port-{n}", "completed", host, id=n)
        for n in range(1, 5)
    ]
    busy = asyncio.Event()
    seen: list[object] = []

    async def handler(message: object) -> None:
        seen.append(message)
        await asyncio.wait_for(busy.wait(), 30)

    try:
        await bus.subscribe(host, handler)
        await bus.publish(host, [DeliverEvents(envelopes[:1])])
        await until(lambda: len(seen) == 1)
        stop = StopServer(SERVER, "req-2")
        await bus.publish(
            host,
            [DeliverEvents((envelopes[1],)), DeliverEvents((envelopes[2],)), stop, DeliverEvents((envelopes[3],))],
        )
        await asyncio.sleep(0.5)  # the broker pushes them to the busy consumer (prefetch)
        busy.set()
        await until(lambda: len(seen) == 4)
        assert seen == [
            DeliverEvents(tuple(envelopes[:1]), redelivery=True),
            DeliverEvents(tuple(envelopes[1:3]), redelivery=True),
            stop,
            DeliverEvents(tuple(envelopes[3:]), redelivery=True),
        ]
    finally:
        await bus.close()
        await delete_queues(amqp_url, [host])
