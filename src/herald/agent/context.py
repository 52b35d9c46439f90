"""What an agent's handlers work with."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime

from herald.domain.events import DeliveryState
from herald.domain.model import Server
from herald.domain.records import ActionEvent, ActionStep
from herald.service.notifications import NO_NOTIFICATIONS, InstanceNotifications, Notification
from herald.service.ports import NetworkBackend, UnitOfWork, VirtDriver, VolumeBackend


@dataclass(frozen=True, slots=True)
class Outcome:
    """How the agent dealt with one event delivery; written to the event's record.

    ``notifications`` are sent once the outcome is committed, never from inside the transaction.
    """

    state: DeliveryState
    text: str
    notifications: tuple[Notification, ...] = field(default=(), compare=False)

    @classmethod
    def handled(cls, text: str, notifications: tuple[Notification, ...] = ()) -> Outcome:
        return cls(DeliveryState.HANDLED, text, notifications)

    @classmethod
    def failed(cls, text: str, notifications: tuple[Notification, ...] = ()) -> Outcome:
        return cls(DeliveryState.FAILED, text, notifications)


@dataclass(frozen=True, slots=True)
class Backends:
    """What an event's driver step works with: no database, no lock."""

    host: str
    driver: VirtDriver
    network: NetworkBackend
    volumes: VolumeBackend


@dataclass(frozen=True, slots=True)
class Prepared:
    """What an event's driver step did, before its transaction.

    ``basis`` is what the step was decided on (e.g. whether the port is attached); the
    transaction re-reads the server and, when the basis changed meanwhile, the step runs again.
    """

    basis: object
    error: str | None = None
    value: object = None


@dataclass(frozen=True, slots=True)
class EventContext:
    """One open transaction on one host, for the database effect of one event.

    The driver is here for what it declares (``supports_extend_volume``), never to be called:
    driver calls happen in the handler's ``prepare``, outside the transaction.
    """

    uow: UnitOfWork
    host: str
    driver: VirtDriver
    network: NetworkBackend
    volumes: VolumeBackend
    now: datetime
    notifications: InstanceNotifications = NO_NOTIFICATIONS
    # Steps recorded by the effect, written with the other events' steps when the pass ends.
    action_steps: list[ActionStep] = field(default_factory=list)
    # Servers whose states the effect changed, written with the others' in one statement.
    changed_states: list[Server] = field(default_factory=list)

    def save_states(self, server: Server) -> None:
        """Have the server's vm_state, power_state, task_state and updated_at written before the
        transaction commits (the row is locked; nothing reads it back in between)."""
        self.changed_states.append(server)

    def record_action_event(
        self, server_uuid: str, request_id: str, event: str, result: str, details: str | None = None
    ) -> None:
        """File a finished step under the instance action the API started for ``request_id``."""
        step = ActionEvent(event, self.now, self.now, result, None, self.host, details)
        self.action_steps.append((server_uuid, request_id, step))


class ServerLocks:
    """One short "record" lock per server, taken on the writer's thread around a read-decide-write
    of the server's row (event effects, power sync, the end of an operation).

    Never held across a driver call. Entries are never freed, which costs one small object
    per server the host ever had.
    """

    def __init__(self) -> None:
        self._locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
        self._guard = threading.Lock()

    def __call__(self, server_uuid: str) -> threading.Lock:
        with self._guard:
            return self._locks[server_uuid]


class OperationLocks:
    """One lock per server around a whole operation step (build, stop, delete...), driver call included.

    So build and terminate of one server never overlap (Nova's per-instance lock). Only
    operations take it, on the loop: event handlers and the power sync never wait for it.
    A server's lock is dropped once nobody holds it or waits for it.
    """

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: dict[str, int] = {}

    @contextlib.asynccontextmanager
    async def hold(self, server_uuid: str) -> AsyncIterator[None]:
        """Wait for the server's lock (first come, first served) and hold it for the body."""
        self._users[server_uuid] = self._users.get(server_uuid, 0) + 1
        lock = self._locks.setdefault(server_uuid, asyncio.Lock())
        try:
            async with lock:
                yield
        finally:
            self._users[server_uuid] -= 1
            if not self._users[server_uuid]:
                del self._users[server_uuid]
                del self._locks[server_uuid]

    def busy(self, server_uuid: str) -> bool:
        """Whether an operation on the server holds its lock or waits for it."""
        return server_uuid in self._users
