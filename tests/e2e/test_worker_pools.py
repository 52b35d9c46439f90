"""Hung driver calls hold only the driver threads: the API keeps answering."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import Engine

from tests.e2e.blocking_driver import blocking_drivers
from tests.e2e.harness import settings_for, start_herald, stop_herald

# A broken pool shows as a request that never ends; this only turns the hang into a failure.
HANG = 30.0


async def test_the_api_answers_while_every_driver_thread_hangs(
    db_url: str, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    with blocking_drivers(monkeypatch, {"spawn"}) as gate:
        herald, deps = await start_herald(settings_for(db_url))
        try:
            threads = deps.settings.driver_threads
            # More builds than driver threads: every driver thread ends up in a spawn that hangs.
            servers = [await herald.create_server(name=f"vm-{i}", settle=False) for i in range(threads + 1)]
            await gate.wait_held(threads)

            show = await asyncio.wait_for(herald.get(f"/v2.1/servers/{servers[0]}", version="2.76"), HANG)
            assert show.status_code == 200, show.text
            listing = await asyncio.wait_for(herald.get("/v2.1/servers/detail", version="2.76"), HANG)
            assert len(listing.json()["servers"]) == threads + 1
            event = {"name": "network-changed", "server_uuid": servers[0], "tag": "port-1"}
            posted = await asyncio.wait_for(herald.events([event]), HANG)
            assert posted.status_code == 200, posted.text
            records = await asyncio.wait_for(herald.records(server_uuid=servers[0]), HANG)
            assert [r["tag"] for r in records] == ["port-1"]

            gate.release()
            await herald.settle()
            for server in servers:
                assert (await herald.server(server))["status"] == "ACTIVE"
        finally:
            gate.release()
            await stop_herald(herald)
