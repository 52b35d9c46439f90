"""Ports: what the use cases need from the outside world, by role.

Everything here is synchronous on purpose: a unit of work is one database
transaction run on a worker thread (see ``service/pipeline.py``), and the
drivers it calls are blocking clients. The asyncio edges (API, agent loop,
buses) hand work to these ports through threads.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self

from herald.domain.flavors import Flavor
from herald.domain.messages import AgentMessage
from herald.domain.model import ComputeHost, KeyPair, Migration, Server
from herald.domain.power_sync import PowerObservation, SyncChange, SyncRow
from herald.domain.records import ActionEvent, ActionStep, EventEnvelope, EventRecord, EventWaitRecord, ServerAction


@dataclass(frozen=True, slots=True)
class ServerTargets:
    """Where events for one server go: its host and, during a migration, both ends."""

    host: str | None
    hosts: tuple[str, ...]


class ServerRepository(Protocol):
    def get(self, uuid: str, *, for_update: bool = False) -> Server | None:
        """A non-deleted server, or None. ``for_update`` locks the row until commit (PostgreSQL)."""

    def get_many(self, uuids: Iterable[str], *, for_update: bool = False) -> dict[str, Server]:
        """The named non-deleted servers by uuid, in one query; ``for_update`` locks them in uuid order."""

    def targets(self, uuids: Iterable[str]) -> dict[str, ServerTargets]:
        """Hosts of every named non-deleted server in one query (the accept hot path)."""

    def add(self, server: Server) -> None: ...

    def save(self, server: Server) -> None:
        """Write every field of ``server`` back."""

    def save_states(self, changed: Sequence[Server]) -> None:
        """Write back only vm_state, power_state, task_state and updated_at of each (rows locked)."""

    def save_if_task_state(self, server: Server, expected: Sequence[str | None]) -> bool:
        """Write ``server`` only if the stored task_state is one of ``expected``; False if it was not."""

    def list(
        self,
        *,
        project_id: str | None = None,
        host: str | None = None,
        include_deleted: bool = False,
        limit: int | None = None,
    ) -> list[Server]: ...

    def sync_rows(self, host: str) -> Sequence[SyncRow]:
        """The host's non-deleted servers, newest first, as the power sync reads them (one query)."""

    def sync_rows_of(self, uuids: Sequence[str], *, for_update: bool = False) -> dict[str, SyncRow]:
        """The named non-deleted servers, whatever their host, by uuid; ``for_update`` locks their rows."""

    def save_sync_changes(self, changes: Sequence[SyncChange]) -> None:
        """Write the power sync's changes (power_state, task_state, updated_at), one statement for all."""


@dataclass(frozen=True, slots=True)
class MigrationQuery:
    """Filters of a migration listing (None: any); ``host`` matches the source or the destination."""

    host: str | None = None
    source_compute: str | None = None
    status: str | None = None
    statuses: tuple[str, ...] | None = None
    server_uuid: str | None = None
    migration_type: str | None = None
    user_id: str | None = None
    project_id: str | None = None
    changes_since: datetime | None = None
    changes_before: datetime | None = None
    limit: int | None = None
    marker: str | None = None  # a migration uuid: only those listed after it


class MigrationRepository(Protocol):
    def add(self, migration: Migration) -> Migration:
        """Store it and return it with its id, uuid and timestamps."""

    def get(self, migration_id: int) -> Migration | None: ...

    def save(self, migration: Migration) -> Migration:
        """Write it back; returns it with its new ``updated_at``."""

    def list(self, query: MigrationQuery) -> list[Migration]:
        """Newest first. :raises MarkerNotFound: no migration has the uuid ``query.marker``."""


class KeyPairRepository(Protocol):
    def add(self, keypair: KeyPair) -> KeyPair | None:
        """Store it and return it with its id; None when the user already has a key pair of that name."""

    def get(self, user_id: str, name: str) -> KeyPair | None: ...

    def list(self, user_id: str, *, limit: int | None = None, after: str | None = None) -> list[KeyPair]:
        """The user's key pairs by name; ``after``: only those whose name sorts after it."""

    def count(self, user_id: str) -> int: ...

    def delete(self, user_id: str, name: str) -> bool:
        """Remove it; False when there was none."""


class HostRepository(Protocol):
    def list(self) -> list[ComputeHost]: ...

    def get(self, host: str) -> ComputeHost | None: ...

    def heartbeat(self, host: str, now: datetime) -> None:
        """Create the host's service record if missing and mark it seen at ``now``."""


class ActionRepository(Protocol):
    def start(self, actions: Sequence[ServerAction]) -> None:
        """Record new actions (batched: one statement for many)."""

    def add_event(self, server_uuid: str, request_id: str, event: ActionEvent) -> None:
        """Attach an event to the server's action for ``request_id`` (no-op if that action is unknown)."""

    def add_events(self, steps: Sequence[ActionStep]) -> None:
        """:meth:`add_event` for several (server uuid, request id, event) at once."""

    def finish_event(self, server_uuid: str, request_id: str, event: ActionEvent) -> None:
        """Set finish_time/result/traceback of the newest event of that name under that action."""

    def list_for_server(self, server_uuid: str) -> list[ServerAction]:
        """Newest first, without events."""

    def get(self, server_uuid: str, request_id: str) -> ServerAction | None:
        """With its events."""


class EventJournal(Protocol):
    """The durable record of accepted external events: one row per event and target host.

    Rows are known by their integer id, which the envelope of the delivery carries.
    """

    def reserve_ids(self, count: int) -> list[int]:
        """Ids for ``count`` new rows, unique in the journal (inside the current transaction)."""

    def record(self, records: Sequence[EventRecord]) -> None:
        """Insert accepted deliveries, with their reserved ids (one statement for the batch)."""

    def mark_dispatched(self, ids: Sequence[int], now: datetime) -> None:
        """Deliveries handed to the bus; only rows still ``accepted`` move (each is stamped once)."""

    def claim(self, *, after_id: int, claimed_before: datetime, now: datetime, limit: int) -> list[EventEnvelope]:
        """Claim, for this relay, unfinished deliveries above ``after_id`` nobody holds a claim on
        newer than ``claimed_before`` (at most ``limit``, by id)."""

    def release(self, ids: Sequence[int]) -> None:
        """Drop the claims of deliveries whose publish failed."""

    def finished(self, ids: Sequence[int]) -> set[int]:
        """Which of these deliveries are already handled, failed or expired."""

    def mark_finished(self, results: Sequence[tuple[int, str, str | None]], now: datetime) -> None:
        """(id, state, outcome) for deliveries the agent has dealt with."""

    def pending(self, server_uuid: str, name: str, host: str) -> bool:
        """Whether an event of this name for the server is accepted or dispatched to ``host`` but not finished."""

    def pending_servers(self, name: str, host: str) -> set[str]:
        """The servers with an event of this name accepted or dispatched to ``host`` but not finished."""

    def unfinished_before(self, host: str, server_uuids: Sequence[str], before_id: int) -> list[EventEnvelope]:
        """Deliveries to ``host`` for these servers, accepted or dispatched but not finished, whose id
        is below ``before_id`` (accepted earlier), oldest first."""

    def unfinished_on(self, host: str, *, after_id: int, limit: int) -> list[EventEnvelope]:
        """A page of the deliveries to ``host`` not finished yet, by id, above ``after_id``."""

    def query(
        self,
        *,
        server_uuid: str | None = None,
        request_id: str | None = None,
        state: str | None = None,
        limit: int = 1000,
        marker: str | None = None,
    ) -> list[EventRecord]:
        """Deliveries matching every filter, newest first, after the event ``marker``; never half an event.

        :raises MarkerNotFound: no event has the id ``marker``.
        """


class PowerObservationRepository(Protocol):
    """The power sync's watched disagreements, at most one per server."""

    def get(self, server_uuid: str) -> PowerObservation | None: ...

    def put(self, observation: PowerObservation) -> None:
        """Keep ``observation``, replacing the server's previous one."""

    def delete(self, server_uuids: Iterable[str], *, host: str | None = None) -> None:
        """Forget the servers' observations (only those ``host`` keeps, when given)."""

    def server_uuids(self, host: str) -> set[str]:
        """The servers ``host`` watches a disagreement of."""

    def of_servers_on(self, host: str) -> dict[str, PowerObservation]:
        """The observations of the non-deleted servers on ``host``, whichever host keeps them."""


class FlavorRepository(Protocol):
    def get(self, flavorid: str) -> Flavor | None:
        """The flavor with that API id, with its extra specs."""

    def list(self, *, min_ram: int = 0, min_disk: int = 0) -> list[Flavor]:
        """By API id."""

    def name_taken(self, name: str) -> bool: ...

    def add(self, flavor: Flavor) -> bool:
        """False when its id or name is taken."""

    def set_description(self, flavorid: str, description: str | None) -> None: ...

    def delete(self, flavorid: str) -> bool:
        """False when there was none."""

    def update_extra_specs(self, flavorid: str, specs: Mapping[str, str]) -> bool:
        """False when there is no such flavor."""

    def delete_extra_spec(self, flavorid: str, key: str) -> bool:
        """False when the flavor has no such key."""


class EventWaitRepository(Protocol):
    def put(self, waits: Sequence[EventWaitRecord]) -> None:
        """Record waits (replacing the same server, host and key)."""

    def remove(self, waits: Sequence[EventWaitRecord]) -> None: ...

    def clear_host(self, host: str) -> None: ...

    def list(self, *, server_uuid: str | None = None, limit: int | None = None) -> list[EventWaitRecord]:
        """Oldest first."""


@dataclass(frozen=True, slots=True)
class QueuedCommand:
    """A committed server command waiting in the outbox for its host's transport (``id``: its row)."""

    id: int
    host: str
    message: AgentMessage


class CommandOutbox(Protocol):
    """Server commands recorded with the state change that asked for them, until a relay published them.

    A row is *claimed* by the relay publishing it; a claim older than a relay's lease has lapsed
    (its relay died, or never finished), and any relay may take the row again.
    """

    def add(self, commands: Sequence[tuple[str, AgentMessage]], now: datetime) -> list[int]:
        """Record ``(host, message)`` pairs, claimed at ``now`` by the recording process; their ids, in order."""

    def claim(self, *, after_id: int, claimed_before: datetime, now: datetime, limit: int) -> list[QueuedCommand]:
        """Take up to ``limit`` rows above ``after_id`` (by id) that nobody claimed since ``claimed_before``.

        Rows another relay is claiming at the same moment are skipped (PostgreSQL).
        """

    def release(self, ids: Sequence[int]) -> None:
        """Free these rows for the next pass of any relay (their publish failed)."""

    def remove(self, ids: Sequence[int]) -> None:
        """Forget these rows: their host's transport has them."""

    def count(self) -> int:
        """How many commands wait (published or not)."""


class UnitOfWork(Protocol):
    """One transaction. ``with uow:`` rolls back whatever was not committed."""

    servers: ServerRepository
    migrations: MigrationRepository
    hosts: HostRepository
    actions: ActionRepository
    events: EventJournal
    power_observations: PowerObservationRepository
    keypairs: KeyPairRepository
    flavors: FlavorRepository
    event_waits: EventWaitRepository
    commands: CommandOutbox

    def __enter__(self) -> Self: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    def commit(self) -> None: ...

    def savepoint(self) -> AbstractContextManager[None]:
        """A nested transaction: an exception inside undoes only what was done inside, then propagates."""

    def rollback(self) -> None: ...


UnitOfWorkFactory = Callable[[], UnitOfWork]


class Clock(Protocol):
    def now(self) -> datetime:
        """Naive UTC, as Nova stores it."""

    def monotonic(self) -> float: ...


MessageHandler = Callable[[object], Awaitable[None]]


class Bus(Protocol):
    """Carries messages to the agent of one compute host, in order.

    A message is acknowledged only when its handler returns; a handler that raises
    leaves the message for redelivery (durable buses) or the dead-letter list (memory).
    """

    async def publish(self, host: str, messages: Sequence[object]) -> None:
        """Queue ``messages`` for ``host`` in order.

        :raises herald.domain.errors.HeraldError: the bus could not take them; nothing was queued.
        """

    async def subscribe(self, host: str, handler: MessageHandler) -> None:
        """Start delivering ``host``'s messages to ``handler``, one at a time."""

    async def close(self) -> None: ...


class VirtDriver(Protocol):
    """What an agent asks of the hypervisor or bare-metal controller behind its servers.

    Methods block (they may talk to a BMC); agents call them from worker threads.
    """

    supports_extend_volume: bool

    def allocate_node(self, server: Server, in_use: set[str]) -> str:
        """Choose the node (hypervisor or bare-metal machine) that will run ``server``.

        :param in_use: nodes that other servers of this host already occupy.
        :raises herald.domain.errors.NoValidHost: no free node.
        """

    def spawn(self, server: Server) -> None:
        """Create and power on the machine for ``server``.

        :raises herald.domain.errors.DriverError: the machine could not be created.
        """

    def destroy(self, server: Server) -> None:
        """Power off and remove the machine; a missing machine is not an error."""

    def power_off(self, server: Server) -> None:
        """:raises herald.domain.errors.DriverError: the power could not be changed."""

    def power_on(self, server: Server) -> None:
        """:raises herald.domain.errors.DriverError: the power could not be changed."""

    def get_power_state(self, server: Server) -> int:
        """The machine's power as a :class:`~herald.domain.model.PowerState` value; NOSTATE if unknown."""

    # True: :meth:`get_power_states` reads many machines at the cost of a few (the power sync hands it
    # chunks); False: it asks machine by machine (a BMC each), and the power sync asks for one at a time,
    # at most ``sync_power_state_pool_size`` at once.
    batches_power_reads: bool

    def get_power_states(self, servers: Sequence[SyncRow]) -> dict[str, int | Exception]:
        """The power of each server's machine, as :meth:`get_power_state` reads it, by uuid.

        A server whose read failed maps to its error; the others are still read.
        :func:`herald.adapters.virt.power_reads.one_by_one` is the per-server implementation.
        """

    def power_update_event(self, server: Server, target: str) -> None:
        """Accept that the machine's power was changed outside compute (``POWER_ON``/``POWER_OFF``).

        :raises herald.domain.errors.NotSupportedByDriver: the driver cannot be told (not bare metal).
        """

    def extend_volume(self, server: Server, volume_id: str, new_size_bytes: int) -> None:
        """:raises herald.domain.errors.DriverError: the guest could not see the new size."""

    def detach_interface(self, server: Server, port_id: str) -> None:
        """:raises herald.domain.errors.NotSupportedByDriver: interfaces cannot be detached."""

    def attach_interface(self, server: Server, port_id: str) -> None:
        """Plug the port into the machine (hotplug); does not wait for the port to become active.

        :raises herald.domain.errors.DriverError: the port could not be plugged (NotSupportedByDriver: never).
        """

    def attach_volume(self, server: Server, volume_id: str, device_name: str | None) -> None:
        """:raises herald.domain.errors.DriverError: the volume could not be connected."""

    def detach_volume(self, server: Server, volume_id: str) -> None:
        """:raises herald.domain.errors.DriverError: the volume could not be disconnected."""

    # --- cold moves: each end's share, as Nova's driver interface splits them ------------------
    def migrate_disk_and_power_off(self, server: Server) -> None:
        """On the source: power the machine off and send its disk; the machine stays until confirm or revert.

        :raises herald.domain.errors.DriverError: the machine could not be moved.
        """

    def finish_migration(self, server: Server, power_on: bool) -> None:
        """On the destination: create the machine from the moved disk (with ``server``'s new flavor).

        :raises herald.domain.errors.DriverError: the machine could not be created.
        """

    def confirm_migration(self, server: Server) -> None:
        """On the source: remove the machine the move left behind; a missing machine is not an error."""

    def finish_revert_migration(self, server: Server, power_on: bool) -> None:
        """On the source: start the old machine again (it was powered off, not removed).

        :raises herald.domain.errors.DriverError: the machine could not be started.
        """


class NetworkBackend(Protocol):
    """The networking service as the agent and the API need it (Neutron's role)."""

    def allocate_for_server(self, server_uuid: str, requested: Sequence[dict[str, str]]) -> list[dict[str, object]]:
        """Bind the requested ports (``{"port": id}``) or create ones (``{"uuid": net}``; ``{"auto": ""}``).

        :returns: VIF dicts ``{"port_id", "network_id", "active"}`` in request order.
        :raises herald.domain.errors.Invalid: a requested port does not exist or is in use.
        """

    def refresh(self, server_uuid: str, port_id: str | None) -> list[dict[str, object]]:
        """The server's current VIFs (one port's, or all of them when ``port_id`` is None)."""

    def deallocate_for_server(self, server_uuid: str) -> None: ...

    def bind_port(self, server_uuid: str, port_id: str, network_id: str | None) -> dict[str, object]:
        """Bind ``port_id`` to the server; with ``network_id``, create the port on that network first.

        :returns: the port's VIF dict, as :meth:`allocate_for_server` gives them.
        :raises herald.domain.errors.PortInUse: the port is bound to another server.
        """

    def unbind_port(self, server_uuid: str, port_id: str) -> None:
        """Release the port if the server holds it (a port created by :meth:`bind_port` is deleted)."""

    def port_owner(self, port_id: str) -> str | None:
        """The server the port is bound to, if it exists and is bound."""


class VolumeBackend(Protocol):
    """The block storage service as the agent needs it (Cinder's role)."""

    def get_size_gb(self, volume_id: str) -> int:
        """:raises herald.domain.errors.NotFound: there is no such volume."""

    def reserve(self, volume_id: str) -> int:
        """The size of a volume a server is about to attach.

        :raises herald.domain.errors.NotFound: there is no such volume.
        """


class Notifier(Protocol):
    """Sends Nova's versioned notifications (``[oslo_messaging_notifications]``, ``[notifications]``).

    Delivery is best effort, as in Nova: a notification that cannot be delivered is logged,
    never raised, and never undoes what it reports.
    """

    enabled: bool  # False when nothing would be sent: callers may skip building payloads

    def notify(
        self,
        event_type: str,
        payload: Mapping[str, object],
        *,
        publisher_id: str,
        priority: str = "INFO",
        context: Mapping[str, str | None] | None = None,
    ) -> None:
        """Send one notification to every configured driver and topic.

        :param event_type: e.g. ``instance.power_off.start``.
        :param payload: the serialized versioned object (``nova_object.*`` keys).
        :param publisher_id: e.g. ``nova-compute:<host>``.
        :param priority: ``INFO``, ``WARN``, ``ERROR``, ... (oslo.messaging's upper-case names).
        :param context: request context fields sent alongside (oslo.messaging's ``ctxt``).
        """

    def close(self) -> None:
        """Release the transport (connections to the broker)."""


@dataclass(frozen=True, slots=True)
class AcceleratorRequest:
    """One accelerator request (Cyborg's ARQ) of a server."""

    uuid: str
    device_profile: str
    server_uuid: str
    state: str  # Cyborg's arq state: "Initial", "Bound", "BindFailed", ...


class AcceleratorBackend(Protocol):
    """The accelerator service (Cyborg): accelerator requests for a server's boot.

    Cyborg tells compute that a request is bound with ``accelerator-request-bound`` (tag: its uuid).
    """

    def create_for_server(self, server_uuid: str, device_profile: str) -> list[AcceleratorRequest]:
        """Make the requests the device profile asks for, and start binding them to the server.

        :raises Invalid: no such device profile.
        """

    def for_server(self, server_uuid: str) -> list[AcceleratorRequest]:
        """The server's requests, oldest first."""

    def delete_for_server(self, server_uuid: str) -> None:
        """Delete the server's requests (a failed boot, a deleted server); none is fine."""
