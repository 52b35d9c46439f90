"""Fixtures for the API edge e2e tests: an httpx client on the app of :mod:`edge_app`."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.e2e.api.edge_app import build_app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_app())
    async with httpx.AsyncClient(
        transport=transport, base_url="http://compute.test:8774", headers={"X-Auth-Token": "alice:p1"}
    ) as c:
        yield c
