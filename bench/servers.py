"""Create the servers the events target, through Herald's own API, and wait until they are ACTIVE."""

from __future__ import annotations

import time
from collections import Counter

import httpx

IMAGE_REF = "70a599e0-31e7-49b7-b260-868f441e862b"
HEADERS = {
    "X-Auth-Token": "admin:admin",
    "Content-Type": "application/json",
    "OpenStack-API-Version": "compute 2.76",
}
HOST_ATTR = "OS-EXT-SRV-ATTR:host"


class SetupError(RuntimeError):
    """The servers could not be created or did not become ACTIVE."""


def create_servers(base_url: str, count: int, *, timeout: float = 120.0) -> tuple[list[str], Counter[str]]:
    """Boot ``count`` servers; returns their uuids and how many landed on each host."""
    with httpx.Client(base_url=base_url, headers=HEADERS, timeout=10.0) as client:
        uuids = [_create(client, f"b{i}") for i in range(count)]
        hosts = _wait_active(client, uuids, deadline=time.monotonic() + timeout)
    return uuids, hosts


def _create(client: httpx.Client, name: str) -> str:
    body = {"server": {"name": name, "imageRef": IMAGE_REF, "flavorRef": "1", "networks": "none"}}
    reply = client.post("/v2.1/servers", json=body)
    if reply.status_code != 202:
        raise SetupError(f"POST /v2.1/servers -> {reply.status_code}: {reply.text[:300]}")
    uuid: str = reply.json()["server"]["id"]
    return uuid


def _wait_active(client: httpx.Client, uuids: list[str], *, deadline: float) -> Counter[str]:
    pending = list(uuids)
    hosts: Counter[str] = Counter()
    while pending:
        still: list[str] = []
        for uuid in pending:
            server = _get(client, uuid)
            status = server.get("status")
            if status == "ERROR":
                raise SetupError(f"server {uuid} went to ERROR: {server.get('fault')}")
            if status == "ACTIVE":
                hosts[str(server.get(HOST_ATTR))] += 1
            else:
                still.append(uuid)
        pending = still
        if pending and time.monotonic() > deadline:
            raise SetupError(f"{len(pending)} of {len(uuids)} servers not ACTIVE in time, e.g. {pending[0]}")
        if pending:
            time.sleep(0.2)
    return hosts


def _get(client: httpx.Client, uuid: str) -> dict[str, object]:
    reply = client.get(f"/v2.1/servers/{uuid}")
    if reply.status_code != 200:
        raise SetupError(f"GET /v2.1/servers/{uuid} -> {reply.status_code}: {reply.text[:300]}")
    server: dict[str, object] = reply.json()["server"]
    return server
