"""What network-changed, network-vif-deleted and volume-extended do on the server's host."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from herald.domain.errors import DriverError
from tests.e2e.harness import IMAGE, Herald


async def _server_with(herald: Herald, extra: dict[str, Any], networks: Any = "none") -> str:
    body = {
        "server": {
            "name": "vm",
            "imageRef": IMAGE,
            "flavorRef": "1",
            "networks": networks,
            "host": "compute-1",
            **extra,
        }
    }
    resp = await herald.post("/v2.1/servers", body, version="2.76")
    assert resp.status_code == 202, resp.text
    server_id: str = resp.json()["server"]["id"]
    await herald.settle()
    return server_id


async def _actions(herald: Herald, server_id: str, request_id: str) -> list[tuple[str, str]]:
    resp = await herald.get(f"/v2.1/servers/{server_id}/os-instance-actions/{request_id}", version="2.76")
    return [(e["event"], e["result"]) for e in resp.json()["instanceAction"]["events"]]


async def test_volume_extended_updates_the_size_and_the_guest(herald: Herald) -> None:
    volume = str(uuid.uuid4())
    herald.deps.volumes.set_size_gb(volume, 10)
    server_id = await _server_with(
        herald,
        {
            "block_device_mapping_v2": [
                {"source_type": "volume", "destination_type": "volume", "uuid": volume, "boot_index": 1}
            ]
        },
    )
    herald.deps.volumes.set_size_gb(volume, 20)  # Cinder grew it

    resp = await herald.events([{"name": "volume-extended", "server_uuid": server_id, "tag": volume}], version="2.51")
    assert resp.status_code == 200
    await herald.settle()
    machine = herald.driver("compute-1").machine(server_id)
    assert machine is not None
    assert machine.volumes[volume] == 20 * 1024**3
    request_id = resp.headers["x-openstack-request-id"]
    assert await _actions(herald, server_id, request_id) == [("compute_extend_volume", "Success")]
    with herald.deps.uow_factory() as uow:
        server = uow.servers.get(server_id)
    assert server is not None
    assert [(v.volume_id, v.size_gb) for v in server.volumes] == [(volume, 20)]


async def test_volume_extended_for_a_volume_not_attached_is_an_error(herald: Herald) -> None:
    server_id = await herald.create_server(host="compute-1")
    resp = await herald.events([{"name": "volume-extended", "server_uuid": server_id, "tag": "nope"}], version="2.51")
    assert resp.status_code == 200
    await herald.settle()
    request_id = resp.headers["x-openstack-request-id"]
    assert await _actions(herald, server_id, request_id) == [("compute_extend_volume", "Error")]
    (record,) = await herald.records(server_uuid=server_id)
    assert record["state"] == "failed"


async def test_vif_deleted_detaches_the_port(herald: Herald) -> None:
    server_id = await _server_with(herald, {}, networks="auto")
    server = await herald.server(server_id)
    with herald.deps.uow_factory() as uow:
        stored = uow.servers.get(server_id)
    assert stored is not None
    (vif,) = stored.vifs
    assert server["addresses"]

    resp = await herald.events([{"name": "network-vif-deleted", "server_uuid": server_id, "tag": vif.port_id}])
    assert resp.status_code == 200
    await herald.settle()
    machine = herald.driver("compute-1").machine(server_id)
    assert machine is not None
    assert machine.detached_ports == [vif.port_id]
    with herald.deps.uow_factory() as uow:
        stored = uow.servers.get(server_id)
    assert stored is not None
    assert stored.vifs == []


async def test_vif_deleted_keeps_the_cache_when_detach_fails(herald: Herald) -> None:
    server_id = await _server_with(herald, {}, networks="auto")
    with herald.deps.uow_factory() as uow:
        stored = uow.servers.get(server_id)
    assert stored is not None
    herald.driver("compute-1").fail_next("detach_interface", DriverError("guest busy"))
    resp = await herald.events(
        [{"name": "network-vif-deleted", "server_uuid": server_id, "tag": stored.vifs[0].port_id}]
    )
    assert resp.status_code == 200
    await herald.settle()
    with herald.deps.uow_factory() as uow:
        after = uow.servers.get(server_id)
    assert after is not None
    assert [v.port_id for v in after.vifs] == [stored.vifs[0].port_id]
    (record,) = await herald.records(server_uuid=server_id)
    assert record["state"] == "failed"
    assert "guest busy" in record["outcome"]


async def test_an_unexpected_error_is_recorded_without_its_internals(
    herald: Herald, caplog: pytest.LogCaptureFixture
) -> None:
    server_id = await _server_with(herald, {}, networks="auto")
    with herald.deps.uow_factory() as uow:
        stored = uow.servers.get(server_id)
    assert stored is not None
    secret = "connection to 10.0.0.7:5432 as herald with password hunter2 refused"
    herald.driver("compute-1").fail_next("detach_interface", OSError(secret))  # type: ignore[arg-type]
    resp = await herald.events(
        [{"name": "network-vif-deleted", "server_uuid": server_id, "tag": stored.vifs[0].port_id}]
    )
    assert resp.status_code == 200
    await herald.settle()
    (record,) = await herald.records(server_uuid=server_id)
    assert record["state"] == "failed"
    assert record["outcome"] == "internal error (OSError)"
    # The detail is for the operator: in the log, with its traceback.
    assert any(secret in (r.exc_text or "") or secret in str(r.exc_info) for r in caplog.records)


async def test_network_changed_refreshes_the_cache(herald: Herald) -> None:
    server_id = await _server_with(herald, {}, networks="auto")
    port = herald.deps.network.create_port(port_id=str(uuid.uuid4()), active=True)
    port.server_uuid = server_id  # Neutron bound another port to the server
    resp = await herald.events([{"name": "network-changed", "server_uuid": server_id, "tag": port.id}])
    assert resp.status_code == 200
    await herald.settle()
    with herald.deps.uow_factory() as uow:
        stored = uow.servers.get(server_id)
    assert stored is not None
    assert port.id in [v.port_id for v in stored.vifs]
    assert len(stored.vifs) == 2


async def test_an_effect_that_raises_fails_alone(herald: Herald, monkeypatch: pytest.MonkeyPatch) -> None:
    broken = await _server_with(herald, {}, networks="auto")
    fine = await _server_with(herald, {}, networks="auto")
    with herald.deps.uow_factory() as uow:
        before = uow.servers.get(broken)
    assert before is not None
    real_refresh = herald.deps.network.refresh

    def refresh(server_uuid: str, port_id: str | None) -> list[dict[str, object]]:
        if server_uuid == broken:
            raise RuntimeError("the network service answered nonsense")
        return real_refresh(server_uuid, port_id)

    monkeypatch.setattr(herald.deps.network, "refresh", refresh)
    # One request: the three effects go to the host together and may share one write.
    resp = await herald.events(
        [
            {"name": "power-update", "server_uuid": fine, "tag": "POWER_OFF"},
            {"name": "network-changed", "server_uuid": broken},
            {"name": "network-changed", "server_uuid": fine},
        ],
        version="2.76",
    )
    assert resp.status_code == 200, resp.text
    await herald.settle()
    states = {(r["name"], r["server_uuid"]): (r["state"], r["outcome"]) for r in await herald.records()}
    assert states[("network-changed", broken)] == ("failed", "internal error (RuntimeError)")
    assert states[("power-update", fine)][0] == "handled"
    assert states[("network-changed", fine)][0] == "handled"
    server = (await herald.get(f"/v2.1/servers/{fine}", version="2.76")).json()["server"]
    assert (server["status"], server["OS-EXT-STS:power_state"]) == ("SHUTOFF", 4)
    with herald.deps.uow_factory() as uow:
        after = uow.servers.get(broken)
    assert after is not None
    assert after.vifs == before.vifs
