"""An embedded Herald in the test's event loop, driven over HTTP (ASGI transport)."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime, timedelta
from typing import Any

import httpx
from starlette.applications import Starlette

from herald import bootstrap
from herald.adapters.bus.memory import InMemoryBus
from herald.adapters.clock import SystemClock
from herald.adapters.virt.fake import FakeVirtDriver
from herald.api.app import create_app
from herald.bootstrap import Deps
from herald.config import Settings
from herald.service.ports import Clock, Notifier

ADMIN = {"X-Auth-Token": "admin:admin"}
IMAGE = "70a599e0-31e7-49b7-b260-868f441e862b"


class Herald:
    """The service plus helpers to make runs deterministic (no sleeps)."""

    def __init__(self, deps: Deps, client: httpx.AsyncClient, app: Starlette) -> None:
        self.deps = deps
        self.client = client
        self.app = app

    def driver(self, host: str) -> FakeVirtDriver:
        driver = self.deps.drivers[host]
        assert isinstance(driver, FakeVirtDriver)
        return driver

    async def settle(self) -> None:
        """Wait until the bus is drained and no agent has an operation running."""
        bus = self.deps.bus
        assert isinstance(bus, InMemoryBus)
        for _ in range(50):
            await bus.join()
            for agent in self.deps.agents.values():
                await agent.run_until_idle()
            await asyncio.sleep(0)
            if all(bus.pending(h) == 0 for h in self.deps.agents):
                await bus.join()
                if not any(agent.busy for agent in self.deps.agents.values()):
                    await self.deps.relay.flush()
                    await self.deps.writer.flush()
                    return

    async def post(
        self,
        path: str,
        body: Any,
        *,
        version: str | None = None,
        token: str = "admin:admin",
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        all_headers = {"X-Auth-Token": token}
        if version:
            all_headers["OpenStack-API-Version"] = f"compute {version}"
        all_headers.update(headers or {})
        return await self.client.post(path, json=body, headers=all_headers)

    async def get(self, path: str, *, version: str | None = None, token: str = "admin:admin") -> httpx.Response:
        headers = {"X-Auth-Token": token}
        if version:
            headers["OpenStack-API-Version"] = f"compute {version}"
        return await self.client.get(path, headers=headers)

    async def events(self, events: list[dict[str, Any]], *, version: str = "2.93", **kw: Any) -> httpx.Response:
        return await self.post("/v2.1/os-server-external-events", {"events": events}, version=version, **kw)

    async def create_server(
        self, *, host: str | None = None, networks: Any = "none", name: str = "vm", settle: bool = True
    ) -> str:
        server: dict[str, Any] = {"name": name, "imageRef": IMAGE, "flavorRef": "1", "networks": networks}
        if host is not None:
            server["host"] = host
        resp = await self.post("/v2.1/servers", {"server": server}, version="2.76")
        assert resp.status_code == 202, resp.text
        server_id: str = resp.json()["server"]["id"]
        if settle:
            await self.settle()
        return server_id

    async def server(self, server_id: str, *, version: str = "2.76") -> dict[str, Any]:
        resp = await self.get(f"/v2.1/servers/{server_id}", version=version)
        assert resp.status_code == 200, resp.text
        body: dict[str, Any] = resp.json()["server"]
        return body

    async def action(self, server_id: str, body: dict[str, Any]) -> httpx.Response:
        return await self.post(f"/v2.1/servers/{server_id}/action", body, version="2.76")

    async def records(self, **query: str) -> list[dict[str, Any]]:
        resp = await self.client.get("/v2.1/os-server-external-events", params=query, headers=ADMIN)
        assert resp.status_code == 200, resp.text
        events: list[dict[str, Any]] = resp.json()["events"]
        return events


class ShiftedClock(SystemClock):
    """The real clock, whose wall time a test moves forward (timeouts, on ``monotonic``, are not moved)."""

    def __init__(self) -> None:
        self.shift = timedelta()

    def now(self) -> datetime:
        return super().now() + self.shift

    def advance(self, seconds: float) -> None:
        self.shift += timedelta(seconds=seconds)


def settings_for(db_url: str, **overrides: Any) -> Settings:
    base = Settings(
        database_url=db_url,
        hosts=("compute-1", "compute-2"),
        vif_plugging_timeout=5,
        report_interval=3600,
        relay_interval=3600,
        early_event_ttl=300,
        # Tests run the power sync themselves (agent.power_sync.sync_all()), at the moment they choose.
        sync_power_state_interval=-1,
    )
    return dataclasses.replace(base, **overrides)


async def start_herald(
    settings: Settings, *, bus: InMemoryBus | None = None, notifier: Notifier | None = None, clock: Clock | None = None
) -> tuple[Herald, Deps]:
    deps = bootstrap.build_embedded(settings, bus=bus, notifier=notifier, clock=clock)
    app = create_app(deps, manage_lifecycle=False)
    await bootstrap.start(deps)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://herald.test")
    return Herald(deps, client, app), deps


async def crash_herald(herald: Herald) -> None:
    """Stop like a killed process: nothing finishes, no waiter is woken, nothing more is written."""
    await herald.client.aclose()
    for agent in herald.deps.agents.values():
        await agent.abandon()
    await herald.deps.bus.close()
    herald.deps.writer.stop()
    # The process is "dead"; its threads still hold pool connections until they return.
    herald.deps.workers.shutdown()
    herald.deps.engine.dispose()


async def stop_herald(herald: Herald) -> None:
    await herald.client.aclose()
    await bootstrap.stop(herald.deps)
