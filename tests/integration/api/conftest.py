"""The compute API (servers, flavors, instance actions, services) over HTTP, on a real database.

The app is the edge (noauth2, the real policy rules) with :func:`compute_routes`; the bus is an
``InMemoryBus`` whose per-host subscribers only collect what the API publishes, so tests assert
on the messages an agent would get. Server states an agent would reach are written with
:meth:`Compute.force`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from oslo_config import cfg

from herald.adapters.bus.memory import InMemoryBus
from herald.adapters.network.memory import InMemoryNetwork
from herald.adapters.sql.uow import SqlUnitOfWork
from herald.adapters.volume.memory import InMemoryVolumes
from herald.api.app import starlette_app
from herald.api.auth import NoAuth2Authenticator
from herald.api.compute import ComputeDeps, compute_routes
from herald.api.edge import Edge
from herald.api.policy import PolicyEnforcer
from herald.api.versions import exception_handlers
from herald.bootstrap import build_writer
from herald.config import Settings
from herald.domain.model import PowerState, Server, VmState
from herald.service.command_relay import CommandRelay

T0 = datetime(2025, 3, 4, 5, 6, 7)
HOSTS = ("compute-1", "compute-2", "compute-3")
ADMIN = {"X-Auth-Token": "admin:0a0a"}
ALICE = {"X-Auth-Token": "alice:0b0b"}
BOB = {"X-Auth-Token": "bob:0c0c"}
READER = {"X-Auth-Token": "rita:0b0b", "X-Roles": "reader"}
IMAGE = "70a599e0-31e7-49b7-b260-868f441e862b"

UowFactory = Callable[[], SqlUnitOfWork]


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self._now = now

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return (self._now - T0).total_seconds()

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)


@dataclasses.dataclass
class Compute:
    """What a test drives: the HTTP client, the clock, the messages per host and the database."""

    client: httpx.AsyncClient
    clock: FakeClock
    bus: InMemoryBus
    uow_factory: UowFactory
    network: InMemoryNetwork
    volumes: InMemoryVolumes
    settings: Settings
    sent: list[tuple[str, object]] = dataclasses.field(default_factory=list)

    def heartbeat(self, *hosts: str, at: datetime | None = None) -> None:
        with self.uow_factory() as uow:
            for host in hosts:
                uow.hosts.heartbeat(host, at or self.clock.now())
            uow.commit()

    async def messages(self) -> list[tuple[str, object]]:
        """Everything published so far (after the bus delivered it), then forget it."""
        await self.bus.join()
        sent, self.sent = self.sent, []
        return sent

    def server(self, uuid: str) -> Server:
        with self.uow_factory() as uow:
            server = uow.servers.get(uuid)
            if server is None:
                found = [s for s in uow.servers.list(include_deleted=True) if s.uuid == uuid]
                server = found[0]
        return server

    def force(self, uuid: str, **fields: Any) -> Server:
        """Write states an agent would have reached."""
        with self.uow_factory() as uow:
            server = uow.servers.get(uuid)
            assert server is not None
            for name, value in fields.items():
                setattr(server, name, value)
            uow.servers.save(server)
            uow.commit()
        return server

    def activate(self, uuid: str) -> Server:
        """What a successful build leaves behind."""
        return self.force(
            uuid,
            vm_state=VmState.ACTIVE.value,
            power_state=PowerState.RUNNING.value,
            task_state=None,
            launched_at=self.clock.now(),
        )

    async def create(self, headers: dict[str, str] | None = None, version: str = "2.1", **server: Any) -> str:
        if tuple(int(part) for part in version.split(".")) >= (2, 37):
            server.setdefault("networks", "auto")
        body = {"server": {"name": "vm", "imageRef": IMAGE, "flavorRef": "1", **server}}
        response = await self.client.post(
            "/v2.1/servers", json=body, headers={**(headers or ALICE), "OpenStack-API-Version": f"compute {version}"}
        )
        assert response.status_code == 202, response.text
        return str(response.json()["server"]["id"])

    async def active_server(self, headers: dict[str, str] | None = None, **server: Any) -> str:
        uuid = await self.create(headers, **server)
        await self.messages()
        self.activate(uuid)
        return uuid

    async def action(
        self, uuid: str, body: dict[str, Any], headers: dict[str, str] | None = None, version: str = "2.1"
    ) -> httpx.Response:
        return await self.client.post(
            f"/v2.1/servers/{uuid}/action",
            json=body,
            headers={**(headers or ALICE), "OpenStack-API-Version": f"compute {version}"},
        )

    async def get(self, path: str, headers: dict[str, str] | None = None, version: str = "2.1") -> httpx.Response:
        return await self.client.get(
            path, headers={**(headers or ALICE), "OpenStack-API-Version": f"compute {version}"}
        )


def _conf() -> cfg.ConfigOpts:
    conf = cfg.ConfigOpts()
    conf([], project="herald", default_config_files=[], default_config_dirs=[])
    return conf


@pytest.fixture
def settings() -> Settings:
    return Settings(service_down_time=60, shelved_offload_time=0)


@pytest.fixture
async def compute(uow_factory: UowFactory, settings: Settings) -> AsyncIterator[Compute]:
    clock = FakeClock(T0)
    bus = InMemoryBus()
    network = InMemoryNetwork()
    volumes = InMemoryVolumes()
    writer = build_writer(settings, uow_factory)
    writer.start()
    commands = CommandRelay(
        bus, writer, clock, interval=settings.relay_interval, resend_after=settings.relay_resend_after
    )
    deps = ComputeDeps(
        uow_factory=uow_factory,
        read_uow_factory=uow_factory,
        bus=bus,
        clock=clock,
        network=network,
        volumes=volumes,
        settings=settings,
        commands=commands,
    )
    edge = Edge(settings=settings, authenticator=NoAuth2Authenticator(), policy=PolicyEnforcer(_conf()))
    app = starlette_app(compute_routes(edge, deps), exception_handlers(edge))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://compute.test:8774") as client:
        harness = Compute(client, clock, bus, uow_factory, network, volumes, settings)

        def collector(host: str) -> Callable[[object], Any]:
            async def collect(message: object) -> None:
                harness.sent.append((host, message))

            return collect

        for host in HOSTS:
            await bus.subscribe(host, collector(host))
        harness.heartbeat("compute-1", "compute-2")
        yield harness
        await bus.close()
    writer.stop()
