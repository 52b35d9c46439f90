"""The composition root: Settings -> everything the processes run, wired explicitly."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine

from herald.adapters.bus.memory import InMemoryBus
from herald.adapters.clock import SystemClock
from herald.adapters.network.memory import InMemoryNetwork
from herald.adapters.notifications import NullNotifier, make_notifier
from herald.adapters.sql.checkpointer import Checkpointer
from herald.adapters.sql.engine import is_sqlite, make_engine
from herald.adapters.sql.errors import is_transient
from herald.adapters.sql.uow import SqlUnitOfWork
from herald.adapters.virt.fake import FakeVirtDriver
from herald.adapters.volume.memory import InMemoryVolumes
from herald.agent.context import ServerLocks
from herald.agent.event_delivery import ApplyEvents, EventDelivery
from herald.agent.main import ComputeAgent
from herald.agent.power_sync import PowerSync
from herald.agent.server_ops import BuildPolicy, ServerOps
from herald.agent.waiters import WaiterRegistry
from herald.config import Settings
from herald.service.external_events import ExternalEventsService
from herald.service.notifications import InstanceNotifications
from herald.service.ports import Bus, Clock, Notifier, UnitOfWork, UnitOfWorkFactory, VirtDriver
from herald.service.relay import Relay
from herald.service.writer import Writer
from herald.workers import WorkerPools

if TYPE_CHECKING:
    from herald.adapters.virt.redfish_client import RedfishClient

logger = logging.getLogger(__name__)


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


DRIVERS: dict[str, Callable[[Settings, str], VirtDriver]] = {
    "fake": lambda settings, host: FakeVirtDriver(),
    "redfish": redfish_driver,
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
    notifier: Notifier = field(default_factory=NullNotifier)
    checkpointer: Checkpointer | None = None
    # API work vs agent operations and driver calls; start() makes the driver pool the loop's default.
    workers: WorkerPools = field(default_factory=WorkerPools)
    drivers: dict[str, VirtDriver] = field(default_factory=dict)
    agents: dict[str, ComputeAgent] = field(default_factory=dict)


def build_embedded(
    settings: Settings,
    *,
    clock: Clock | None = None,
    bus: InMemoryBus | None = None,
    notifier: Notifier | None = None,
) -> Deps:
    """One process: SQLite (or the configured database), an in-memory bus, one agent per host."""
    sqlite = is_sqlite(settings.database_url)
    engine = make_engine(
        settings.database_url, sqlite_synchronous=settings.sqlite_synchronous, manual_checkpoints=sqlite
    )

    def uow_factory() -> UnitOfWork:
        return SqlUnitOfWork(engine)

    def read_uow_factory() -> UnitOfWork:
        return SqlUnitOfWork(engine, read_only=True)

    clock = clock or SystemClock()
    bus = bus or InMemoryBus(settings.host_queue_events)
    writer = build_writer(settings, uow_factory)
    workers = WorkerPools(settings.api_threads, settings.driver_threads)
    relay = Relay(
        bus,
        writer,
        read_uow_factory,
        clock,
        interval=settings.relay_interval,
        volatile_bus=bus.volatile,
        executor=workers.api,
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
        notifier=notifier or build_notifier(settings),
        checkpointer=Checkpointer(engine) if sqlite else None,
        workers=workers,
    )
    for host in settings.hosts:
        deps.drivers[host] = DRIVERS[settings.compute_driver](settings, host)
        deps.agents[host] = build_agent(deps, host)
    return deps


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


def build_agent(deps: Deps, host: str) -> ComputeAgent:
    settings = deps.settings
    waiters = WaiterRegistry(
        clock=deps.clock.monotonic,
        early_buffer_size=settings.early_event_buffer_size,
        early_ttl=float(settings.early_event_ttl),
    )
    locks = ServerLocks()
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
        notifications=notifications,
    )
    delivery = EventDelivery(writer=deps.writer, clock=deps.clock, apply=apply, waiters=waiters, notifier=deps.notifier)
    waiters.on_early_consumed = delivery.early_event_consumed
    ops = ServerOps(
        host=host,
        uow_factory=deps.uow_factory,
        read_uow_factory=deps.read_uow_factory,
        clock=deps.clock,
        driver=driver,
        network=deps.network,
        waiters=waiters,
        locks=locks,
        build_policy=BuildPolicy(settings.vif_plugging_timeout, settings.vif_plugging_is_fatal),
        notifier=deps.notifier,
        notifications=notifications,
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
        ),
        sync_power_state_interval=float(settings.sync_power_state_interval),
    )


async def start(deps: Deps) -> None:
    deps.workers.install(asyncio.get_running_loop())
    deps.writer.start()
    if deps.checkpointer is not None:
        deps.checkpointer.start()
    for agent in deps.agents.values():
        await agent.start()
    await deps.relay.start()


async def stop(deps: Deps) -> None:
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
