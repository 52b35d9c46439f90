"""RabbitBus: the distributed shape's bus, one durable quorum queue per compute host (aio-pika).

What each guarantee rests on:

* a message :meth:`RabbitBus.publish` returned for is in its host's queue and survives a
  broker restart: the queue is a durable quorum queue (replicated in a cluster), the message
  is persistent, and ``publish`` waits for the broker's publisher confirm;
* a message is acknowledged only after its handler returned, i.e. after the agent committed
  its effect. A handler that raises has the message put back (after a short delay that grows
  with each attempt), a consumer that dies leaves it unacknowledged: either way the broker
  delivers it again. After ``delivery_limit`` attempts the broker moves it to the
  :data:`DEAD_LETTER_QUEUE` so that one poisoned message cannot hold a host forever;
* a host's messages reach its handler one batch at a time, in queue order (consecutive event
  deliveries merged into one); after a redelivery the agent restores each server's accept order
  from the journal (see ``prefetch``);
* while no broker of the transport URL can be reached, ``publish`` fails at once (callers keep
  their outbox) and a WARNING says so at each reconnection attempt, with a growing backoff;
  consumers resume by themselves once a broker is back. Publishing and consuming use two
  connections (as RabbitMQ advises), so that trouble on one never fails the other.

Every :class:`~herald.domain.messages.DeliverEvents` read from the broker may be a copy (several
relays may publish the same delivery, the broker redelivers), so it is handed on as a
redelivery: the agent then checks every event against the journal before any effect.

The transport URL's password never reaches a log line or an error message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

import aio_pika
import aiormq.exceptions
import pamqp.commands
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage, AbstractQueue

from herald.adapters.bus.codec import CONTENT_TYPE, CodecError, decode, encode
from herald.adapters.bus.transport_url import Broker, RabbitTransport, TlsOptions, ssl_context
from herald.domain.errors import BusUnavailable
from herald.domain.messages import DeliverEvents
from herald.service.ports import MessageHandler

logger = logging.getLogger(__name__)

QUEUE_PREFIX = "herald.compute."
DEAD_LETTER_QUEUE = "herald.dead-letters"
NACK_RETRY_DELAYS = (0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
QUEUE_SETTLE_DELAY = 0.3
CLOSE_TIMEOUT = 5.0  # seconds a connection may take to close
# Messages a consumer may hold unacknowledged. Consecutive event deliveries among those that
# arrived are handed to the agent as one batch (up to MAX_MERGED_EVENTS events): under load an
# agent then pays for one journal check, one read and one write per batch instead of per message.
PREFETCH = 32
MAX_MERGED_EVENTS = 1000


def queue_name(host: str) -> str:
    return QUEUE_PREFIX + host


class _Link:
    """One connection to the first reachable broker, re-established with backoff whenever it is lost.

    ``on_connected(connection)`` runs on each new connection; it returns when the link's work is
    set up. Whoever notices the connection is unusable calls :meth:`reset`.
    """

    def __init__(
        self,
        bus: RabbitBus,
        role: str,
        on_connected: Callable[[AbstractConnection], Awaitable[None]],
        on_lost: Callable[[], Awaitable[None]],
    ) -> None:
        self._bus = bus
        self._role = role
        self._on_connected = on_connected
        self._on_lost = on_lost
        self.connection: AbstractConnection | None = None
        self.connected = asyncio.Event()
        self._lost = asyncio.Event()
        self.attempts = 0  # connection rounds tried so far
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._supervise(), name=f"rabbit-{self._role}")

    def reset(self) -> None:
        self._lost.set()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self._drop()

    async def _supervise(self) -> None:
        bus = self._bus
        first, largest = bus.reconnect_delay
        delay = first
        while True:
            connection = await bus.connect_any(self._role)
            self.attempts += 1
            if connection is None:
                logger.warning(
                    "RabbitMQ is unreachable (%s) for %s; events wait in the outbox. Retrying in %.1f s",
                    bus.where,
                    self._role,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(largest, delay * 2)
                continue
            delay = first
            try:
                self._lost.clear()
                connection.close_callbacks.add(lambda *_: self._lost.set())
                self.connection = connection
                await self._on_connected(connection)
                self.connected.set()
                logger.info("Connected to RabbitMQ (%s) for %s", bus.where_connected, self._role)
                await self._lost.wait()
            except Exception as exc:
                logger.warning("RabbitMQ connection for %s failed: %s", self._role, bus.scrub(exc))
            finally:
                self.connected.clear()
                await self._on_lost()
                await self._drop()
            logger.warning("Lost the connection to RabbitMQ (%s) for %s; reconnecting", bus.where, self._role)

    async def _drop(self) -> None:
        connection, self.connection = self.connection, None
        if connection is not None:
            # NOTE: a broker that does not answer must not hold up a stop: the socket goes anyway.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), CLOSE_TIMEOUT)


class RabbitBus:
    """The :class:`~herald.service.ports.Bus` over RabbitMQ.

    :param prefetch: messages the broker may push to a consumer before it acknowledges them. A
        quorum queue may give back the unacknowledged messages of a dead consumer in another order;
        the agent keeps each server's events in accept order anyway (it handles a server's older
        unfinished events, read from the journal, before a newer one).
    :param publish_timeout: seconds to wait for the broker's confirm of one message.
    :param delivery_limit: deliveries of one message before it goes to the dead-letter queue.
    :param retry_delay: (first, largest) seconds before a message whose handler raised is put back.
    :param reconnect_delay: (first, largest) seconds between two connection attempts.
    """

    def __init__(
        self,
        transport: RabbitTransport,
        tls: TlsOptions | None = None,
        *,
        prefetch: int = PREFETCH,
        publish_timeout: float = 10.0,
        connect_timeout: float = 5.0,
        delivery_limit: int = 20,
        retry_delay: tuple[float, float] = (0.2, 5.0),
        reconnect_delay: tuple[float, float] = (0.5, 10.0),
        connection_name: str = "herald",
    ) -> None:
        self._transport = transport
        self._ssl = ssl_context(tls or TlsOptions()) if transport.tls else None
        self._prefetch = prefetch
        self._publish_timeout = publish_timeout
        self._connect_timeout = connect_timeout
        self._delivery_limit = delivery_limit
        self._retry_delay = retry_delay
        self.reconnect_delay = reconnect_delay
        self._connection_name = connection_name
        self._handlers: dict[str, MessageHandler] = {}
        self._consumers: dict[str, asyncio.Task[None]] = {}
        self._channel: AbstractChannel | None = None
        self._broker: Broker | None = None
        self._declared: set[str] = set()
        self._host_locks: dict[str, asyncio.Lock] = {}
        self._publisher = _Link(self, "publishing", self._open_publisher, self._publisher_lost)
        self._consumer = _Link(self, "consuming", self._open_consumers, self._stop_consumers)

    @property
    def where(self) -> str:
        """The brokers, for log lines (no password)."""
        return ", ".join(broker.display for broker in self._transport.brokers)

    @property
    def where_connected(self) -> str:
        return self._broker.display if self._broker is not None else self.where

    def scrub(self, exc: BaseException) -> str:
        """An exception's text without any broker password in it."""
        text = f"{type(exc).__name__}: {exc}"
        for broker in self._transport.brokers:
            if broker.password:
                text = text.replace(broker.password, "***")
        return text

    # -- Bus port ---------------------------------------------------------------------------------

    async def publish(self, host: str, messages: Sequence[object]) -> None:
        """Queue ``messages`` for ``host`` and return once the broker confirmed each of them.

        :raises BusUnavailable: no broker reachable, or one did not confirm (a failure after the
            first message may leave the earlier ones queued: consumers recognise copies by id).
        """
        bodies = [encode(message) for message in messages]
        channel = await self._ready_channel()
        # NOTE: one publish at a time per host, so that two calls never overtake each other
        # (a declare or a nack retry would let a later call pass an earlier one).
        lock = self._host_locks.setdefault(host, asyncio.Lock())
        try:
            async with lock:
                if host not in self._declared:
                    await self._declare(channel, host)
                    self._declared.add(host)
                for body in bodies:
                    await self._publish_one(channel, host, body)
        except Exception as exc:
            raise BusUnavailable(
                f"RabbitMQ ({self.where_connected}) did not confirm messages for host {host}: {self.scrub(exc)}"
            ) from None

    async def _publish_one(self, channel: AbstractChannel, host: str, body: bytes) -> None:
        # NOTE: a quorum queue nacks for a moment after it is created, until its leader is
        # elected; a nacked message was not queued, so sending it again cannot duplicate it.
        for delay in (*NACK_RETRY_DELAYS, None):
            try:
                await channel.default_exchange.publish(
                    aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT, content_type=CONTENT_TYPE),
                    routing_key=queue_name(host),
                    mandatory=True,
                    timeout=self._publish_timeout,
                )
                return
            except aiormq.exceptions.DeliveryError as exc:
                if delay is None or not isinstance(exc.frame, pamqp.commands.Basic.Nack):
                    raise
                await asyncio.sleep(delay)

    async def subscribe(self, host: str, handler: MessageHandler) -> None:
        """Consume ``host``'s queue (now, or as soon as a broker is reachable)."""
        if host in self._handlers:
            raise RuntimeError(f"host {host} already has a consumer")
        self._handlers[host] = handler
        self._consumer.start()
        connection = self._consumer.connection
        if connection is not None and self._consumer.connected.is_set():
            self._start_consumer(connection, host)

    async def close(self) -> None:
        await self._consumer.close()
        await self._stop_consumers()
        await self._publisher.close()

    # -- connections ------------------------------------------------------------------------------

    async def connect(self, wait: float | None = None) -> bool:
        """Start the publishing connection and wait up to ``wait`` seconds (default: the connect
        timeout) for it; whether it is up."""
        self._publisher.start()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._publisher.connected.wait(), wait or self._connect_timeout)
        return self.connected

    @property
    def connected(self) -> bool:
        """Whether messages can be published now."""
        return self._publisher.connected.is_set()

    async def connect_any(self, role: str) -> AbstractConnection | None:
        """A connection to the first broker of the transport URL that answers, or None."""
        for broker in self._transport.brokers:
            try:
                connection = await aio_pika.connect(
                    self._transport.amqp_url(broker),
                    ssl_context=self._ssl,
                    timeout=self._connect_timeout,
                    client_properties={"connection_name": f"{self._connection_name} ({role})"},
                )
            except Exception as exc:
                logger.debug("RabbitMQ broker %s not reachable: %s", broker.display, self.scrub(exc))
                continue
            self._broker = broker
            return connection
        return None

    async def _ready_channel(self) -> AbstractChannel:
        link = self._publisher
        if not link.connected.is_set():
            link.start()
            # NOTE: a first publish may come before the first connection is up: give it a moment,
            # but never wait while the broker is away (the caller keeps its outbox).
            wait = self._connect_timeout if link.attempts == 0 else 0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(link.connected.wait(), wait)
        channel = self._channel
        if channel is None or not link.connected.is_set():
            raise BusUnavailable(f"RabbitMQ is unreachable ({self.where})")
        return channel

    async def _open_publisher(self, connection: AbstractConnection) -> None:
        self._declared.clear()
        self._channel = await connection.channel(publisher_confirms=True)

    async def _publisher_lost(self) -> None:
        self._channel = None

    async def _open_consumers(self, connection: AbstractConnection) -> None:
        for host in self._handlers:
            self._start_consumer(connection, host)

    # -- consuming --------------------------------------------------------------------------------

    def _start_consumer(self, connection: AbstractConnection, host: str) -> None:
        if host not in self._consumers or self._consumers[host].done():
            self._consumers[host] = asyncio.create_task(
                self._consume(connection, host, self._handlers[host]), name=f"rabbit-consume-{host}"
            )

    async def _stop_consumers(self) -> None:
        consumers = list(self._consumers.values())
        for task in consumers:
            task.cancel()
        if consumers:
            # A consumer's unacknowledged message is given back by the broker when its channel goes.
            await asyncio.wait(consumers, timeout=CLOSE_TIMEOUT)
        self._consumers.clear()

    async def _declare(self, channel: AbstractChannel, host: str) -> AbstractQueue:
        await channel.declare_queue(DEAD_LETTER_QUEUE, durable=True, arguments={"x-queue-type": "quorum"})
        return await channel.declare_queue(
            queue_name(host),
            durable=True,
            arguments={
                "x-queue-type": "quorum",
                "x-delivery-limit": self._delivery_limit,
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": DEAD_LETTER_QUEUE,
            },
        )

    async def _consume(self, connection: AbstractConnection, host: str, handler: MessageHandler) -> None:
        try:
            channel = await connection.channel()
            await channel.set_qos(prefetch_count=self._prefetch)
            queue = await self._declare(channel, host)
            # NOTE: RabbitMQ 3.10 may answer a quorum queue's declare before the queue's process
            # runs; a consume in that moment kills the connection (INTERNAL_ERROR). Let it settle.
            await asyncio.sleep(QUEUE_SETTLE_DELAY)
            # NOTE: the broker's pushes are only queued here, in delivery order; it never pushes more
            # than ``prefetch`` unacknowledged ones (one slot more for the channel's end). The handler
            # runs below, one batch at a time.
            inbox: asyncio.Queue[AbstractIncomingMessage | None] = asyncio.Queue(maxsize=self._prefetch + 1)
            channel.close_callbacks.add(lambda *_: inbox.put_nowait(None))
            await queue.consume(inbox.put)
            while True:
                batch = [await inbox.get()]
                while not inbox.empty() and batch[-1] is not None:
                    batch.append(inbox.get_nowait())
                await self._deliver(host, handler, [message for message in batch if message is not None])
                if batch[-1] is None:
                    raise ConnectionError("the consuming channel closed")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # NOTE: whatever was not acknowledged is delivered again once the consumer is back.
            logger.warning("Consumer of host %s stopped: %s; reconnecting", host, self.scrub(exc))
            self._consumer.reset()

    async def _deliver(self, host: str, handler: MessageHandler, batch: Sequence[AbstractIncomingMessage]) -> None:
        """Hand ``batch`` to ``handler`` in order, consecutive event deliveries merged into one."""
        group: list[tuple[AbstractIncomingMessage, DeliverEvents]] = []
        merged = 0
        for message in batch:
            try:
                decoded = decode(message.body)
            except CodecError as exc:
                logger.error("Host %s: unreadable message moved to %s: %s", host, DEAD_LETTER_QUEUE, exc)
                await message.reject(requeue=False)
                continue
            if isinstance(decoded, DeliverEvents) and merged + len(decoded.events) <= MAX_MERGED_EVENTS:
                group.append((message, decoded))
                merged += len(decoded.events)
                continue
            if group:
                await self._hand_over(host, handler, group)
                group, merged = [], 0
            if isinstance(decoded, DeliverEvents):
                group, merged = [(message, decoded)], len(decoded.events)
            else:
                await self._hand_over(host, handler, [(message, decoded)])
        if group:
            await self._hand_over(host, handler, group)

    async def _hand_over(
        self, host: str, handler: MessageHandler, group: Sequence[tuple[AbstractIncomingMessage, object]]
    ) -> None:
        """Run the handler once for ``group``; acknowledge its messages after it returned, or put them back."""
        deliveries = [decoded for _, decoded in group if isinstance(decoded, DeliverEvents)]
        if deliveries:
            # NOTE: any of them may be a copy (see the module docstring): the agent checks the journal.
            payload: object = DeliverEvents(tuple(ev for d in deliveries for ev in d.events), redelivery=True)
        else:
            (_, payload) = group[0]
        messages = [message for message, _ in group]
        try:
            await handler(payload)
        except asyncio.CancelledError:
            raise
        except Exception:
            attempt = max(_delivery_count(message) for message in messages)
            first, largest = self._retry_delay
            delay = min(largest, first * 2**attempt)
            logger.exception(
                "Handler for host %s failed (delivery %d of at most %d); %d message(s) go back in %.1f s",
                host,
                attempt + 1,
                self._delivery_limit + 1,
                len(messages),
                delay,
            )
            await asyncio.sleep(delay)
            for message in messages:
                await message.nack(requeue=True)
            return
        # NOTE: one acknowledgement for the group: the channel's earlier deliveries are all settled
        # (this consumer settles each group before it takes the next).
        await messages[-1].ack(multiple=True)


def _delivery_count(message: AbstractIncomingMessage) -> int:
    """How many times the broker delivered this message before (quorum queues count them)."""
    count = (message.headers or {}).get("x-delivery-count", 0)
    return count if isinstance(count, int) else 0
