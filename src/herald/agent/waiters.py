"""Waiters: how a long operation on the agent waits for an external event.

A boot registers a waiter per port for ``network-vif-plugged``, starts the guest, then waits
for all of them under one deadline; the agent's event consumer hands each incoming event to
:meth:`WaiterRegistry.deliver`. Nova's ``InstanceEvents`` semantics, with these changes:

* Early events are kept (Nova weakness 2): an event with no waiter is buffered for
  ``early_ttl`` seconds (at most ``early_buffer_size`` of them, oldest evicted first), and a
  later ``prepare`` for its key resolves at once. :meth:`WaiterRegistry.expire` hands back
  every buffered event that left unclaimed, so the agent can journal it as ``expired``.
* No stale waiters (weakness 3): when :meth:`WaiterRegistry.wait_for_events` ends, by any
  path, it removes the waiters it registered that no event took, and remembers their keys for
  ``early_ttl`` seconds. An event for such a key is consumed quietly (``LATE_AFTER_TIMEOUT``),
  as a still-registered Nova waiter would, instead of being buffered for some later wait.
* ``clear`` wakes the waiters it removes with a synthetic failed event instead of letting
  them sleep until their timeout (weakness 3), like ``cancel_all`` does at shutdown.
* An event that did arrive is never reported as a timeout, even once the deadline passed.

Concurrency: every method runs on the agent's event loop and none awaits while it changes
the registry, so asyncio's run-to-completion ordering replaces Nova's per-server locks.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import NoReturn

from herald.agent.early_buffer import EarlyBuffer
from herald.domain.errors import EventWaitFailed, EventWaitTimeout, ShuttingDown
from herald.domain.events import EventName, EventStatus, event_key
from herald.domain.records import EventEnvelope

logger = logging.getLogger(__name__)

ErrorCallback = Callable[[str, EventEnvelope], bool | None]
EventKeys = Sequence[tuple[str, str | None]]

# Task states in which an unmatched network-vif-unplugged is normal and logged at debug only.
EXPECTED_UNPLUG_TASK_STATES = frozenset({"deleting", "migrating"})


class Resolution(enum.StrEnum):
    EVENT = "event"  # an event was delivered (possibly from the early buffer)
    CLEARED = "cleared"  # clear(server_uuid) removed the waiter: the server was deleted or left
    SHUTDOWN = "shutdown"  # cancel_all(): the agent is stopping


class Delivery(enum.StrEnum):
    """What :meth:`WaiterRegistry.deliver` did with an event."""

    WOKE_WAITER = "woke-waiter"  # a waiter was registered for it and now has it
    BUFFERED = "buffered"  # no waiter yet: kept as early for early_ttl seconds
    LATE_AFTER_TIMEOUT = "late-after-timeout"  # its wait already ended (timeout, failure, exit early)
    DISCARDED = "discarded"  # no waiter and not buffered (buffer size 0, or shutting down)


def synthetic_failure(server_uuid: str, name: str, tag: str | None) -> EventEnvelope:
    """The failed event a cleared or cancelled waiter wakes with; its ``uuid`` is empty."""
    return EventEnvelope(
        uuid="", request_id="", server_uuid=server_uuid, name=name, tag=tag, status=EventStatus.FAILED.value, host=""
    )


class Waiter:
    """One wait for (server, name, tag). Resolves once; awaited by any number of tasks."""

    def __init__(self, server_uuid: str, name: str, tag: str | None) -> None:
        self.server_uuid = server_uuid
        self.name = name
        self.tag = tag
        self.key = event_key(name, tag)
        self.event: EventEnvelope | None = None
        self.resolution: Resolution | None = None
        self.holders = 0  # wait_for_events blocks using it; the last one out unregisters it
        self._flag = asyncio.Event()

    def is_set(self) -> bool:
        return self.event is not None

    def set(self, event: EventEnvelope, resolution: Resolution = Resolution.EVENT) -> None:
        """Resolve with ``event``; again with the same result is a no-op, a different one a ValueError."""
        if self.event is not None:
            if (event, resolution) != (self.event, self.resolution):
                raise ValueError(f"Waiter {self.key} of server {self.server_uuid} already has a different result")
            return
        self.event, self.resolution = event, resolution
        self._flag.set()

    async def wait(self, timeout: float | None = None) -> EventEnvelope | None:  # noqa: ASYNC109 (Nova's API)
        """The event, or None when ``timeout`` seconds pass first (at once if ``timeout`` <= 0)."""
        if self.event is None and (timeout is None or timeout > 0):
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._flag.wait()
        return self.event


class _ExitEarly(Exception):
    """Leaves the body of ``wait_for_events`` (raised by ``exit_wait_early``)."""


@dataclass(slots=True)
class EventWait:
    """The handle ``wait_for_events`` yields to its body."""

    server_uuid: str
    waiters: dict[str, Waiter] = field(default_factory=dict)  # by key, in registration order
    early: set[str] = field(default_factory=set)

    def exit_wait_early(self, keys: EventKeys) -> NoReturn:
        """Leave the body now; ``keys`` are known to be received already and are not waited for."""
        self.early.update(event_key(name, tag) for name, tag in keys)
        raise _ExitEarly


def raise_event_failed(key: str, event: EventEnvelope) -> bool | None:
    """The default error callback of ``wait_for_events``."""
    raise EventWaitFailed(f"Event {key} for server {event.server_uuid} failed with status {event.status}.")


class WaiterRegistry:
    """Registered waiters by server and event key, the early-event buffer, and shutdown."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        early_buffer_size: int,
        early_ttl: float,
        late_record_size: int = 256,
        on_early_consumed: Callable[[EventEnvelope], None] | None = None,
    ) -> None:
        self._clock = clock
        self.on_early_consumed = on_early_consumed
        # Told (server uuid, event key) when an event satisfies a wait, from the buffer or on arrival.
        self.on_satisfied: Callable[[str, str], None] | None = None
        self._waiters: dict[str, dict[str, Waiter]] = {}
        self._early: EarlyBuffer[EventEnvelope] = EarlyBuffer(size=early_buffer_size, ttl=early_ttl)
        self._ended: EarlyBuffer[str] = EarlyBuffer(size=late_record_size, ttl=early_ttl, keep_dropped=False)
        self._shut_down = False

    def pending(self, server_uuid: str) -> int:
        """How many waiters the server has registered (operators and tests look at this)."""
        return len(self._waiters.get(server_uuid, {}))

    def early(self, server_uuid: str) -> list[str]:
        """The keys of the server's events kept for a waiter not registered yet (operators and tests look)."""
        return [key for _, key in self._early.slots_of(server_uuid)]

    def prepare(self, server_uuid: str, name: str, tag: str | None) -> Waiter:
        """Get or create the waiter for the key; resolved at once if its event came early.

        A waiter resolved from the buffer is not registered (its event is consumed), so a
        second ``prepare`` returns a new pending waiter.

        :raises ShuttingDown: after :meth:`cancel_all`.
        """
        if self._shut_down:
            raise ShuttingDown()
        key = event_key(name, tag)
        waiter = self._waiters.get(server_uuid, {}).get(key)
        if waiter is not None:
            return waiter
        waiter = Waiter(server_uuid, name, tag)
        now = self._clock()
        self._ended.take((server_uuid, key), now)  # a new wait owns the key now
        early = self._early.take((server_uuid, key), now)
        if early is not None:
            logger.info("[server %s] Event %s arrived %.2f seconds before its waiter", server_uuid, key, now - early[1])
            waiter.set(early[0])
            if self.on_early_consumed is not None:
                self.on_early_consumed(early[0])
            self._satisfied(server_uuid, key)
            return waiter
        logger.debug("[server %s] Preparing to wait for external event %s", server_uuid, key)
        self._waiters.setdefault(server_uuid, {})[key] = waiter
        return waiter

    def _satisfied(self, server_uuid: str, key: str) -> None:
        if self.on_satisfied is not None:
            try:
                self.on_satisfied(server_uuid, key)
            except Exception:
                logger.exception("[server %s] Could not report event %s as received", server_uuid, key)

    def pop(self, server_uuid: str, name: str, tag: str | None) -> Waiter | None:
        """Unregister and return the waiter for the key, if there is one."""
        key = event_key(name, tag)
        server = self._waiters.get(server_uuid)
        if not server:
            logger.debug("[server %s] No waiting events found dispatching %s", server_uuid, key)
            return None
        waiter = server.pop(key, None)
        if waiter is None:
            logger.debug("[server %s] No event matching %s in %s", server_uuid, key, list(server))
        elif not server:
            del self._waiters[server_uuid]
        return waiter

    def clear(self, server_uuid: str) -> dict[str, Waiter]:
        """Forget a server: its waiters (woken as failed, ``CLEARED``), early events and ended keys."""
        waiters = self._waiters.pop(server_uuid, {})
        self._early.discard_server(server_uuid)
        self._ended.discard_server(server_uuid)
        for waiter in waiters.values():
            waiter.set(synthetic_failure(server_uuid, waiter.name, waiter.tag), Resolution.CLEARED)
        if waiters:
            logger.debug("[server %s] Cleared waiters for %s", server_uuid, ", ".join(waiters))
        return waiters

    def cancel_all(self) -> None:
        """Block new waiters and wake every pending one as failed (``SHUTDOWN``); idempotent."""
        if self._shut_down:
            logger.debug("Waiters already cancelled (shutting down)")
            return
        self._shut_down = True
        waiters, self._waiters = self._waiters, {}
        self._early.discard_all()
        self._ended.discard_all()
        for server_uuid, server in waiters.items():
            for waiter in server.values():
                logger.debug("[server %s] Cancelling wait for %s: shutting down", server_uuid, waiter.key)
                waiter.set(synthetic_failure(server_uuid, waiter.name, waiter.tag), Resolution.SHUTDOWN)

    def holds(self, event: EventEnvelope) -> bool:
        """Whether this very delivery (same journal row) is already kept for a waiter: a re-sent copy
        must not replace it, or the replaced one would be recorded ``expired``."""
        kept = self._early.peek((event.server_uuid, event_key(event.name, event.tag)))
        return kept is not None and kept.id == event.id

    def deliver(self, event: EventEnvelope, *, vm_state: str | None = None, task_state: str | None = None) -> Delivery:
        """Hand an event to its waiter, or buffer it; ``vm_state``/``task_state`` only shape the log."""
        uuid, key = event.server_uuid, event_key(event.name, event.tag)
        waiter = self.pop(uuid, event.name, event.tag)
        if waiter is not None:
            logger.debug("[server %s] Processing event %s", uuid, key)
            waiter.set(event)
            self._satisfied(uuid, key)
            return Delivery.WOKE_WAITER
        now = self._clock()
        self._ended.expire(now)
        if (uuid, key) in self._ended:
            logger.info("[server %s] Received event %s after its wait ended; ignoring it", uuid, key)
            return Delivery.LATE_AFTER_TIMEOUT
        if self._shut_down or self._early.size == 0:
            self._log_unexpected(event, key, vm_state, task_state)
            return Delivery.DISCARDED
        # NOTE: not Nova's warning yet: the event is kept, and only becomes unexpected if it expires.
        logger.debug("[server %s] No waiter for event %s yet; keeping it for one", uuid, key)
        self._early.put((uuid, key), event, now)
        return Delivery.BUFFERED

    @staticmethod
    def _log_unexpected(event: EventEnvelope, key: str, vm_state: str | None, task_state: str | None) -> None:
        uuid = event.server_uuid
        if event.name == EventName.NETWORK_VIF_UNPLUGGED and task_state in EXPECTED_UNPLUG_TASK_STATES:
            logger.debug("[server %s] Received event %s for instance with task_state %s.", uuid, key, task_state)
        else:
            logger.warning(
                "[server %s] Received unexpected event %s for instance with vm_state %s and task_state %s.",
                uuid,
                key,
                vm_state,
                task_state,
            )

    def expire(self, now: float | None = None) -> list[EventEnvelope]:
        """Early events that left the buffer unclaimed since the last call: too old, evicted or cleared."""
        now = self._clock() if now is None else now
        self._early.expire(now)
        self._ended.expire(now)
        dropped = self._early.drain_dropped()
        for event in dropped:
            logger.debug(
                "[server %s] Nobody waited for early event %s", event.server_uuid, event_key(event.name, event.tag)
            )
        return dropped

    @contextlib.asynccontextmanager
    async def wait_for_events(
        self,
        server_uuid: str,
        keys: EventKeys,
        *,
        timeout: float,  # noqa: ASYNC109 (one deadline after the body, not a timeout around this call)
        error_callback: ErrorCallback | None = None,
    ) -> AsyncIterator[EventWait]:
        """Register waiters for ``keys``, run the body, then wait for them all under one deadline.

        ``timeout`` <= 0 registers nothing and waits for nothing. A status other than
        ``completed`` calls ``error_callback(key, event)`` (default: raise EventWaitFailed);
        if it returns False, the rest is not waited for. At shutdown the callback is called
        with a synthetic failed event for the first key and the body runs without a wait.

        :raises EventWaitTimeout: the deadline passed first; the message gives each key's state.
        """
        callback = error_callback or raise_event_failed
        wait = EventWait(server_uuid)
        try:
            should_wait = timeout > 0 and self._register(wait, keys, callback)
            with contextlib.suppress(_ExitEarly):
                yield wait
            if should_wait:
                await self._await_all(wait, timeout, callback)
        finally:
            self._release(wait)

    def _register(self, wait: EventWait, keys: EventKeys, callback: ErrorCallback) -> bool:
        for name, tag in dict.fromkeys(keys):
            try:
                waiter = self.prepare(wait.server_uuid, name, tag)
            except ShuttingDown:
                callback(event_key(name, tag), synthetic_failure(wait.server_uuid, name, tag))
                return False
            waiter.holders += 1
            wait.waiters[waiter.key] = waiter
        return True

    async def _await_all(self, wait: EventWait, seconds: float, callback: ErrorCallback) -> None:
        start = self._clock()
        deadline = start + seconds
        received: dict[str, float] = {}
        for key, waiter in wait.waiters.items():
            if key in wait.early:
                continue
            event = await waiter.wait(deadline - self._clock())
            if event is None:
                self._raise_timeout(wait, received, key, self._clock() - start)
            received[key] = self._clock() - start
            if event.status != EventStatus.COMPLETED and callback(key, event) is False:
                break
        elapsed = self._clock() - start
        logger.debug("[server %s] Event wait completed in %.2f seconds for %s", wait.server_uuid, elapsed, [*received])

    def _raise_timeout(self, wait: EventWait, received: dict[str, float], late: str, elapsed: float) -> NoReturn:
        states = []
        for key, waiter in wait.waiters.items():
            if key in wait.early:
                state = "received early"
            elif key in received:
                state = f"received after waiting {received[key]:.2f} seconds"
            elif key == late:
                state = f"timed out after {elapsed:.2f} seconds"
            else:
                state = "received but not processed" if waiter.is_set() else "expected but not received"
            states.append(f"{key}: {state}")
        message = (
            f"Timeout waiting for [{', '.join(wait.waiters)}] for server {wait.server_uuid}. "
            f"Event states are: {', '.join(states)}"
        )
        logger.warning("%s", message)  # names the server
        raise EventWaitTimeout(message)

    def _release(self, wait: EventWait) -> None:
        """Unregister the waiters of a finished wait that no event took, and remember their keys."""
        now = self._clock()
        for key, waiter in wait.waiters.items():
            waiter.holders -= 1
            server = self._waiters.get(wait.server_uuid, {})
            if waiter.holders > 0 or server.get(key) is not waiter:
                continue
            del server[key]
            if not server:
                del self._waiters[wait.server_uuid]
            self._ended.put((wait.server_uuid, key), key, now)
            logger.debug("[server %s] Stopped waiting for %s", wait.server_uuid, key)
