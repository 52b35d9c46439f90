"""The composition root: Settings -> everything the processes run, wired explicitly."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from sqlalchemy.engine import Engine

from herald.adapters.accelerator.memory import InMemoryAccelerators
from herald.adapters.bus.memory import InMemoryBus
from herald.adapters.clock import SystemClock
from herald.adapters.network.memory import InMemoryNetwork
from herald.adapters.notifications import NullNotifier, make_notifier
from herald.adapters.sql.checkpointer import Checkpointer
from herald.adapters.sql.engine import is_sqlite, make_engine
from herald.adapters.sql.errors import is_transient
from herald.adapters.sql.uow import SqlUnitOfWork
from herald.adapters.volume.memory import InMemoryVolumes
from herald.config import Settings
from herald.domain.events import EventName
from herald.domain.messages import DeliverEvents
from herald.domain.records import EventEnvelope
from herald.service.command_relay import CommandRelay
from herald.service.external_events import ExternalEventsService
from herald.service.notifications import InstanceNotifications
from herald.service.ports import Bus, Clock, Notifier, UnitOfWork, UnitOfWorkFactory, VirtDriver
from herald.service.relay import Relay
from herald.service.writer import Writer
from herald.workers import WorkerPools

if TYPE_CHECKING:
    from herald.adapters.bus.rabbit import RabbitBus
    from herald.adapters.virt.redfish_client import RedfishClient
    from herald.agent.main import ComputeAgent

logger = logging.getLogger(__name__)

UNFINISHED_PAGE = 1000  # journal rows an agent process reads at a time at start


def redfish_client(settings: Settings) -> RedfishClient:
    """The Redfish service of ``[redfish]`` (the redfish driver and ``herald power-watch`` use it)."""
    from herald.adapters.virt.redfish_client import RedfishClient

    redfish = settings.redfish
    if not redfish.address:
        raise ValueError("[redfish] address is required")
    return RedfishClient(
        address=redfish.address,
        username=redfish.username,
        password=redfish.password,
        auth_type=redfish.auth_type,
        verify=redfish.verify,
    )


def redfish_driver(settings: Settings, host: str) -> VirtDriver:
    """The ``redfish`` driver for ``host``: the systems of ``[redfish]``."""
    from herald.adapters.virt.redfish import RedfishVirtDriver

    redfish = settings.redfish
    return RedfishVirtDriver(
        redfish_client(settings),
        systems=redfish.systems,
        power_state_change_timeout=redfish.power_state_change_timeout,
        power_poll_interval=redfish.power_poll_interval,
    )


def fake_driver(engine: Engine, host: str) -> VirtDriver:
    from herald.adapters.sql.fake_machines import SqlFakeMachines
    from herald.adapters.virt.fake import FakeVirtDriver

    return FakeVirtDriver(SqlFakeMachines(engine, host))


# Each factory gets the settings, the compute host and the process's engine.
DRIVERS: dict[str, Callable[[Settings, str, Engine], VirtDriver]] = {
    "fake": lambda settings, host, engine: fake_driver(engine, host),
    "redfish": lambda settings, host, engine: redfish_driver(settings, host),
}


@dataclass
class Deps:
    """Everything one process runs; built once, passed down, closed at exit."""

    settings: Settings
    engine: Engine
    uow_factory: UnitOfWorkFactory
    read_uow_factory: UnitOfWorkFactory
    clock: Clock
    bus: Bus
    network: InMemoryNetwork
    volumes: InMemoryVolumes
    writer: Writer
    relay: Relay
    events: ExternalEventsService
    # The server commands the API committed, on their way to the agents (one per process, like the relay).
    commands: CommandRelay
    notifier: Notifier = field(default_factory=NullNotifier)
    checkpointer: Checkpointer | None = None
    # API work vs agent operations and driver calls; start() makes the driver pool the loop's default.
    workers: WorkerPools = field(default_factory=WorkerPools)
    drivers: dict[str, VirtDriver] = field(default_factory=dict)
    agents: dict[str, ComputeAgent] = field(default_factory=dict)
    # The process's relay is the only one (embedded): at start, every claim is from a run that ended.
    sole_relay: bool = False
    accelerators: InMemoryAccelerators = field(default_factory=InMemoryAccelerators)


def build_embedded(
    settings: Settings,
    *,
    clock: Clock | None = None,
    bus: InMemoryBus | None = None,
    notifier: Notifier | None = None,
) -> Deps:
    """One process: SQLite (or the configured database), an in-memory bus, one agent per host."""
    sqlite = is_sqlite(settings.database_url)
    engine, uow_factory, read_uow_factory = _engine_and_units(settings)
    clock = clock or SystemClock()
    bus = bus or InMemoryBus(settings.host_queue_events)
    writer = build_writer(settings, uow_factory)
    workers = WorkerPools(settings.api_threads, settings.driver_threads)
    relay = Relay(bus, writer, clock, interval=settings.relay_interval, resend_after=settings.relay_resend_after)
    commands = CommandRelay(
        bus, writer, clock, interval=settings.relay_interval, resend_after=settings.relay_resend_after
    )
    deps = Deps(
        settings=settings,
        engine=engine,
        uow_factory=uow_factory,
        read_uow_factory=read_uow_factory,
        clock=clock,
        bus=bus,
        network=InMemoryNetwork(),
        volumes=InMemoryVolumes(),
        writer=writer,
        relay=relay,
        events=ExternalEventsService(writer, clock, relay),
        commands=commands,
        notifier=notifier or build_notifier(settings),
        checkpointer=Checkpointer(engine) if sqlite else None,
        workers=workers,
        sole_relay=True,
    )
    for host in settings.hosts:
        deps.drivers[host] = DRIVERS[settings.compute_driver](settings, host, engine)
        deps.agents[host] = build_agent(deps, host)
    return deps


def _engine_and_units(settings: Settings) -> tuple[Engine, UnitOfWorkFactory, UnitOfWorkFactory]:
    """The engine of ``[database] connection`` and its read-write and read-only units of work."""
    engine = make_engine(
        settings.database_url,
        sqlite_synchronous=settings.sqlite_synchronous,
        manual_checkpoints=is_sqlite(settings.database_url),
    )

    def uow_factory() -> UnitOfWork:
        return SqlUnitOfWork(engine)

    def read_uow_factory() -> UnitOfWork:
        return SqlUnitOfWork(engine, read_only=True)

    return engine, uow_factory, read_uow_factory


def build_rabbit_bus(settings: Settings, *, role: str) -> RabbitBus:
    """The bus of ``[DEFAULT] transport_url`` for the distributed shape (it must name RabbitMQ).

    :raises ValueError: the transport URL is ``memory://``, which cannot join separate processes.
    """
    from herald.adapters.bus.rabbit import RabbitBus
    from herald.adapters.bus.transport_url import TlsOptions, is_memory, parse_rabbit_url

    if is_memory(settings.transport_url):
        raise ValueError(
            "[DEFAULT] transport_url must name RabbitMQ (rabbit://USER:PASS@HOST:PORT/VHOST) for herald api and "
            "herald agent; memory:// only joins the parts of one process (herald serve)"
        )
    rabbit = settings.rabbit
    tls = TlsOptions(rabbit.ssl, rabbit.ssl_ca_file, rabbit.ssl_cert_file, rabbit.ssl_key_file)
    return RabbitBus(parse_rabbit_url(settings.transport_url, tls), tls, connection_name=f"herald-{role}")


def build_api_process(settings: Settings, *, clock: Clock | None = None, bus: Bus | None = None) -> Deps:
    """One API worker of the distributed shape: the API, its writer and its relay; no agent.

    Every worker runs a relay: one publishes what its own requests accepted; all of them re-send,
    now and then, what nobody delivered. A delivery sent twice is recognised by id by its agent.
    """
    settings = dataclasses.replace(settings, hosts=())
    engine, uow_factory, read_uow_factory = _engine_and_units(settings)
    clock = clock or SystemClock()
    bus = bus or build_rabbit_bus(settings, role="api")
    writer = build_writer(settings, uow_factory)
    workers = WorkerPools(settings.api_threads, settings.driver_threads)
    relay = Relay(bus, writer, clock, interval=settings.relay_interval, resend_after=settings.relay_resend_after)
    commands = CommandRelay(
        bus, writer, clock, interval=settings.relay_interval, resend_after=settings.relay_resend_after
    )
    return Deps(
        settings=settings,
        engine=engine,
        uow_factory=uow_factory,
        read_uow_factory=read_uow_factory,
        clock=clock,
        bus=bus,
        network=InMemoryNetwork(),
        volumes=InMemoryVolumes(),
        writer=writer,
        relay=relay,
        events=ExternalEventsService(writer, clock, relay),
        commands=commands,
        notifier=NullNotifier(),
        checkpointer=Checkpointer(engine) if is_sqlite(settings.database_url) else None,
        workers=workers,
    )


@dataclass
class AgentProcess:
    """One compute host's agent in a process of its own (``herald agent``), with its own writer."""

    settings: Settings
    engine: Engine
    uow_factory: UnitOfWorkFactory
    read_uow_factory: UnitOfWorkFactory
    clock: Clock
    bus: Bus
    network: InMemoryNetwork
    volumes: InMemoryVolumes
    writer: Writer
    notifier: Notifier
    workers: WorkerPools
    checkpointer: Checkpointer | None = None
    drivers: dict[str, VirtDriver] = field(default_factory=dict)
    agents: dict[str, ComputeAgent] = field(default_factory=dict)
    accelerators: InMemoryAccelerators = field(default_factory=InMemoryAccelerators)


def build_agent_process(
    settings: Settings, host: str, *, clock: Clock | None = None, bus: Bus | None = None
) -> AgentProcess:
    """``herald agent --host HOST``: the agent of one compute host, consuming its queue."""
    settings = dataclasses.replace(settings, host=host, hosts=(host,))
    engine, uow_factory, read_uow_factory = _engine_and_units(settings)
    process = AgentProcess(
        settings=settings,
        engine=engine,
        uow_factory=uow_factory,
        read_uow_factory=read_uow_factory,
        clock=clock or SystemClock(),
        bus=bus or build_rabbit_bus(settings, role=f"agent-{host}"),
        network=InMemoryNetwork(),
        volumes=InMemoryVolumes(),
        writer=build_writer(settings, uow_factory),
        notifier=build_notifier(settings),
        workers=WorkerPools(settings.api_threads, settings.driver_threads),
        checkpointer=Checkpointer(engine) if is_sqlite(settings.database_url) else None,
    )
    process.drivers[host] = DRIVERS[settings.compute_driver](settings, host, engine)
    process.agents[host] = build_agent(process, host)
    return process


async def start_agent_process(process: AgentProcess) -> None:
    process.workers.install(asyncio.get_running_loop())
    process.writer.start()
    if process.checkpointer is not None:
        process.checkpointer.start()
    for host, agent in process.agents.items():
        await agent.start()
        waiting = await asyncio.to_thread(_unfinished_waiter_events, process.read_uow_factory, host)
        if waiting:
            # NOTE: an earlier run acknowledged them but kept them in memory for a waiter that never
            # came: held again, each meets a waiter or expires with its reason, never stays open.
            logger.info("Host %s: %d external events still wait for an operation", host, len(waiting))
            await agent.handle(DeliverEvents(tuple(waiting), redelivery=True))


def _unfinished_waiter_events(read_uow_factory: UnitOfWorkFactory, host: str) -> list[EventEnvelope]:
    """Every unfinished waiter event of ``host``, read page by page (no cap)."""
    from herald.agent.event_handlers import WAITER_EVENTS

    found: list[EventEnvelope] = []
    after_id = 0
    while True:
        with read_uow_factory() as uow:
            page = uow.events.unfinished_on(host, after_id=after_id, limit=UNFINISHED_PAGE)
        found.extend(ev for ev in page if EventName(ev.name) in WAITER_EVENTS)
        if len(page) < UNFINISHED_PAGE:
            return found
        after_id = page[-1].id


async def stop_agent_process(process: AgentProcess) -> None:
    for agent in process.agents.values():
        await agent.stop()
    await process.bus.close()
    process.writer.stop()
    process.workers.shutdown()
    if process.checkpointer is not None:
        process.checkpointer.stop()
    process.notifier.close()
    process.engine.dispose()


def build_writer(settings: Settings, uow_factory: UnitOfWorkFactory) -> Writer:
    """The process's database writer, bounded by ``[herald] writer_pass_rows`` and ``writer_queue_rows``."""
    return Writer(
        uow_factory,
        gather_delay=settings.commit_gather_delay,
        max_pass_rows=settings.writer_pass_rows,
        max_queue_rows=settings.writer_queue_rows,
        transient=is_transient,
    )


def build_notifier(settings: Settings) -> Notifier:
    """Nova's versioned notifier from ``[notifications]`` and ``[oslo_messaging_notifications]``.

    Only agents send notifications: a process without any gets none (and skips oslo.messaging).
    """
    options = settings.notifications
    if not settings.hosts:
        return NullNotifier()
    return make_notifier(
        notification_format=options.notification_format,
        drivers=options.drivers,
        topics=options.topics,
        transport_url=options.transport_url,
        config_files=settings.config_files,
    )


class AgentDeps(Protocol):
    """What :func:`build_agent` takes from its process (:class:`Deps` or :class:`AgentProcess`)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def uow_factory(self) -> UnitOfWorkFactory: ...

    @property
    def read_uow_factory(self) -> UnitOfWorkFactory: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def bus(self) -> Bus: ...

    @property
    def network(self) -> InMemoryNetwork: ...

    @property
    def volumes(self) -> InMemoryVolumes: ...

    @property
    def writer(self) -> Writer: ...

    @property
    def notifier(self) -> Notifier: ...

    @property
    def drivers(self) -> dict[str, VirtDriver]: ...

    @property
    def accelerators(self) -> InMemoryAccelerators: ...


def build_agent(deps: AgentDeps, host: str) -> ComputeAgent:
    """The agent of ``host``: the same for both shapes.

    A relay's pass may re-send an event after newer ones of its server went (its first publish
    failed): an event first applies its server's older unfinished events from the journal (see
    ``OlderUnfinished``)."""
    # NOTE: imported here, not at the top: an API worker (herald api) runs no agent, and the agent's
    # modules would cost each worker about 1.5 MB of memory.
    from herald.agent.attachments import AttachmentOps
    from herald.agent.build import BuildPolicy
    from herald.agent.context import Backends, ServerLocks
    from herald.agent.current_waits import CurrentWaits
    from herald.agent.event_delivery import ApplyEvents, EventDelivery, OlderUnfinished, Prepare
    from herald.agent.main import ComputeAgent
    from herald.agent.moves import Moves
    from herald.agent.operation import OperationTools
    from herald.agent.power_sync import PowerSync
    from herald.agent.server_ops import ServerOps
    from herald.agent.waiters import WaiterRegistry

    settings = deps.settings
    waiters = WaiterRegistry(
        clock=deps.clock.monotonic,
        early_buffer_size=settings.early_event_buffer_size,
        early_ttl=float(settings.early_event_ttl),
    )
    locks = ServerLocks()
    current_waits = CurrentWaits(host=host, registry=waiters, writer=deps.writer, clock=deps.clock)
    driver = deps.drivers[host]
    notifications = InstanceNotifications(
        host=host, enabled=deps.notifier.enabled, bdms=settings.notifications.bdms_in_notifications
    )
    apply = ApplyEvents(
        host=host,
        clock=deps.clock,
        driver=driver,
        network=deps.network,
        volumes=deps.volumes,
        locks=locks,
        is_transient=is_transient,
        notifications=notifications,
    )
    prepare = Prepare(
        backends=Backends(host, driver, deps.network, deps.volumes), read_uow_factory=deps.read_uow_factory
    )
    delivery = EventDelivery(
        writer=deps.writer,
        clock=deps.clock,
        apply=apply,
        prepare=prepare,
        waiters=waiters,
        is_transient=is_transient,
        notifier=deps.notifier,
        catch_up=OlderUnfinished(host=host, read_uow_factory=deps.read_uow_factory),
    )
    waiters.on_early_consumed = delivery.early_event_consumed
    tools = OperationTools(
        host=host,
        writer=deps.writer,
        read_uow_factory=deps.read_uow_factory,
        clock=deps.clock,
        driver=driver,
        locks=locks,
        is_transient=is_transient,
    )
    build_policy = BuildPolicy(
        settings.vif_plugging_timeout, settings.vif_plugging_is_fatal, settings.arq_binding_timeout
    )
    ops = ServerOps(
        tools=tools,
        network=deps.network,
        waiters=waiters,
        build_policy=build_policy,
        notifier=deps.notifier,
        notifications=notifications,
        hard_reboot_vnic_types=settings.wait_for_vif_plugged_event_during_hard_reboot,
        reimage_timeout_per_gb=settings.reimage_timeout_per_gb,
        reclaim_instance_interval=settings.reclaim_instance_interval,
        current_waits=current_waits,
        accelerators=deps.accelerators,
    )
    return ComputeAgent(
        host=host,
        bus=deps.bus,
        uow_factory=deps.uow_factory,
        writer=deps.writer,
        clock=deps.clock,
        waiters=waiters,
        delivery=delivery,
        ops=ops,
        report_interval=float(settings.report_interval),
        early_ttl=float(settings.early_event_ttl),
        power_sync=PowerSync(
            host=host,
            uow_factory=deps.read_uow_factory,
            writer=deps.writer,
            driver=driver,
            bus=deps.bus,
            clock=deps.clock,
            locks=locks,
            pool_size=settings.sync_power_state_pool_size,
            grace=float(settings.power_state_change_grace),
        ),
        sync_power_state_interval=float(settings.sync_power_state_interval),
        attachments=AttachmentOps(tools=tools, network=deps.network, volumes=deps.volumes),
        moves=Moves(tools=tools, waiters=waiters, bus=deps.bus, policy=build_policy, network=deps.network),
        current_waits=current_waits,
    )


async def start(deps: Deps) -> None:
    deps.workers.install(asyncio.get_running_loop())
    deps.writer.start()
    if deps.checkpointer is not None:
        deps.checkpointer.start()
    for agent in deps.agents.values():
        await agent.start()
    await deps.relay.start(reclaim_all=deps.sole_relay)
    await deps.commands.start(reclaim_all=deps.sole_relay)


async def stop(deps: Deps) -> None:
    await deps.commands.stop()
    await deps.relay.stop()
    for agent in deps.agents.values():
        await agent.stop()
    await deps.bus.close()
    deps.writer.stop()
    # NOTE: a worker thread may still be finishing an operation the cancelled tasks started:
    # wait for it, so that it gives its database connection back before the pool is disposed.
    deps.workers.shutdown()
    if deps.checkpointer is not None:
        deps.checkpointer.stop()
    deps.notifier.close()
    deps.engine.dispose()
