"""GET /os-services: compute hosts as nova-compute services, up or down from their heartbeats."""

from __future__ import annotations

import uuid as uuidlib

from sqlalchemy import Engine, text

from tests.integration.api.conftest import ADMIN, ALICE, Compute


async def test_services_up_and_down(compute: Compute) -> None:
    services = (await compute.get("/v2.1/os-services", ADMIN)).json()["services"]
    assert [(s["host"], s["state"], s["status"]) for s in services] == [
        ("compute-1", "up", "enabled"),
        ("compute-2", "up", "enabled"),
    ]
    first = services[0]
    assert isinstance(first["id"], int)
    assert (first["binary"], first["zone"], first["disabled_reason"]) == ("nova-compute", "nova", None)
    assert first["updated_at"] == "2025-03-04T05:06:07.000000"
    assert "forced_down" not in first
    compute.clock.advance(61)
    compute.heartbeat("compute-2")
    services = (await compute.get("/v2.1/os-services", ADMIN, version="2.11")).json()["services"]
    assert [(s["host"], s["state"], s["forced_down"]) for s in services] == [
        ("compute-1", "down", False),
        ("compute-2", "up", False),
    ]


async def test_service_ids_are_uuids_from_2_53(compute: Compute) -> None:
    services = (await compute.get("/v2.1/os-services", ADMIN, version="2.53")).json()["services"]
    ids = [s["id"] for s in services]
    assert all(uuidlib.UUID(i) for i in ids)
    assert len(set(ids)) == 2
    again = (await compute.get("/v2.1/os-services", ADMIN, version="2.53")).json()["services"]
    assert [s["id"] for s in again] == ids


async def test_filters_and_disabled(compute: Compute, engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE services SET disabled = :t, disabled_reason = 'maint' WHERE host = 'compute-2'"), {"t": True}
        )
    only = (await compute.get("/v2.1/os-services?host=compute-2&binary=nova-compute", ADMIN)).json()["services"]
    assert [(s["host"], s["status"], s["disabled_reason"]) for s in only] == [("compute-2", "disabled", "maint")]
    assert (await compute.get("/v2.1/os-services?binary=nova-scheduler", ADMIN)).json() == {"services": []}


async def test_services_are_admin_only(compute: Compute) -> None:
    response = await compute.get("/v2.1/os-services", ALICE)
    assert response.status_code == 403
    assert response.json()["forbidden"]["message"] == (
        "Policy doesn't allow os_compute_api:os-services:list to be performed."
    )
