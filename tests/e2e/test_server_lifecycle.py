"""A server's life over HTTP with the embedded shape's real agents: build, stop, start, shelve, unshelve, delete."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import httpx
import pytest
from oslo_config import cfg
from sqlalchemy import Engine

from herald import bootstrap
from herald.api.app import compute_deps, starlette_app
from herald.api.auth import NoAuth2Authenticator
from herald.api.compute import compute_routes
from herald.api.edge import Edge
from herald.api.policy import PolicyEnforcer
from herald.api.versions import exception_handlers
from herald.config import Settings

TOKEN = {"X-Auth-Token": "alice:0b0b", "OpenStack-API-Version": "compute 2.37"}
ADMIN = {"X-Auth-Token": "admin:0a0a", "OpenStack-API-Version": "compute 2.37"}
IMAGE = "70a599e0-31e7-49b7-b260-868f441e862b"


@dataclasses.dataclass
class Cloud:
    client: httpx.AsyncClient
    deps: bootstrap.Deps

    async def settle(self) -> None:
        """Until every message is handled and every build the agents started is done."""
        for _ in range(3):
            await self.deps.bus.join()  # type: ignore[attr-defined]
            for agent in self.deps.agents.values():
                await agent.run_until_idle()

    async def server(self, uuid: str) -> dict[str, object]:
        response = await self.client.get(f"/v2.1/servers/{uuid}", headers=ADMIN)
        assert response.status_code == 200, response.text
        server: dict[str, object] = response.json()["server"]
        return server

    async def act(self, uuid: str, body: dict[str, object]) -> None:
        response = await self.client.post(f"/v2.1/servers/{uuid}/action", json=body, headers=TOKEN)
        assert response.status_code == 202, response.text
        await self.settle()


@pytest.fixture
async def cloud(engine: Engine, db_url: str) -> AsyncIterator[Cloud]:
    settings = Settings(database_url=db_url, hosts=("compute-1", "compute-2"), vif_plugging_timeout=5)
    deps = bootstrap.build_embedded(settings)
    await bootstrap.start(deps)
    compute = compute_deps(deps)
    conf = cfg.ConfigOpts()
    conf([], project="herald", default_config_files=[], default_config_dirs=[])
    edge = Edge(settings=settings, authenticator=NoAuth2Authenticator(), policy=PolicyEnforcer(conf))
    app = starlette_app(compute_routes(edge, compute), exception_handlers(edge))
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            yield Cloud(client, deps)
    finally:
        await bootstrap.stop(deps)


async def test_lifecycle(cloud: Cloud) -> None:
    body = {"server": {"name": "vm", "imageRef": IMAGE, "flavorRef": "2", "networks": "auto"}}
    response = await cloud.client.post("/v2.1/servers", json=body, headers=TOKEN)
    assert response.status_code == 202
    uuid = response.json()["server"]["id"]
    await cloud.settle()
    server = await cloud.server(uuid)
    assert (server["status"], server["OS-EXT-STS:power_state"]) == ("ACTIVE", 1)
    host = server["OS-EXT-SRV-ATTR:host"]
    assert host in ("compute-1", "compute-2")

    await cloud.act(uuid, {"os-stop": None})
    assert (await cloud.server(uuid))["status"] == "SHUTOFF"
    await cloud.act(uuid, {"os-start": None})
    assert (await cloud.server(uuid))["status"] == "ACTIVE"

    await cloud.act(uuid, {"shelve": None})
    shelved = await cloud.server(uuid)
    assert (shelved["status"], shelved["OS-EXT-SRV-ATTR:host"]) == ("SHELVED_OFFLOADED", None)

    await cloud.act(uuid, {"unshelve": None})
    unshelved = await cloud.server(uuid)
    assert unshelved["status"] == "ACTIVE"
    assert unshelved["OS-EXT-SRV-ATTR:host"] in ("compute-1", "compute-2")

    actions = (await cloud.client.get(f"/v2.1/servers/{uuid}/os-instance-actions", headers=TOKEN)).json()
    assert [a["action"] for a in actions["instanceActions"]] == ["unshelve", "shelve", "start", "stop", "create"]

    assert (await cloud.client.delete(f"/v2.1/servers/{uuid}", headers=TOKEN)).status_code == 204
    await cloud.settle()
    assert (await cloud.client.get(f"/v2.1/servers/{uuid}", headers=TOKEN)).status_code == 404
    services = (await cloud.client.get("/v2.1/os-services", headers=ADMIN)).json()["services"]
    assert [(s["host"], s["state"]) for s in services] == [("compute-1", "up"), ("compute-2", "up")]
