"""power-update end to end: HTTP -> record -> bus -> agent -> server state, as Nova's functional test."""

from __future__ import annotations

from herald.domain.model import PowerState
from tests.e2e.harness import Herald


async def test_power_off_then_on(herald: Herald) -> None:
    server_id = await herald.create_server(host="compute-1")
    assert (await herald.server(server_id))["status"] == "ACTIVE"
    herald.driver("compute-1").set_power(server_id, PowerState.SHUTDOWN)

    resp = await herald.events([{"name": "power-update", "server_uuid": server_id, "tag": "POWER_OFF"}], version="2.76")
    assert resp.status_code == 200
    assert resp.json() == {
        "events": [
            {"name": "power-update", "server_uuid": server_id, "tag": "POWER_OFF", "status": "completed", "code": 200}
        ]
    }
    await herald.settle()
    server = await herald.server(server_id)
    assert server["status"] == "SHUTOFF"
    assert server["OS-EXT-STS:vm_state"] == "stopped"
    assert server["OS-EXT-STS:power_state"] == 4
    assert server["OS-EXT-STS:task_state"] is None

    herald.driver("compute-1").set_power(server_id, PowerState.RUNNING)
    resp = await herald.events([{"name": "power-update", "server_uuid": server_id, "tag": "POWER_ON"}], version="2.76")
    assert resp.status_code == 200
    await herald.settle()
    server = await herald.server(server_id)
    assert (server["status"], server["OS-EXT-STS:power_state"]) == ("ACTIVE", 1)

    actions = (await herald.get(f"/v2.1/servers/{server_id}/os-instance-actions", version="2.76")).json()
    assert [a["action"] for a in actions["instanceActions"]] == ["start", "stop", "create"]
    stop = next(a for a in actions["instanceActions"] if a["action"] == "stop")
    detail = (
        await herald.get(f"/v2.1/servers/{server_id}/os-instance-actions/{stop['request_id']}", version="2.76")
    ).json()["instanceAction"]
    assert [(e["event"], e["result"]) for e in detail["events"]] == [("compute_power_update", "Success")]

    records = await herald.records(server_uuid=server_id)
    assert [(r["name"], r["tag"], r["state"]) for r in records if r["name"] == "power-update"] == [
        ("power-update", "POWER_ON", "handled"),  # newest first
        ("power-update", "POWER_OFF", "handled"),
    ]


async def test_power_update_noop_is_recorded_as_noop(herald: Herald) -> None:
    server_id = await herald.create_server(host="compute-2")
    resp = await herald.events([{"name": "power-update", "server_uuid": server_id, "tag": "POWER_ON"}], version="2.76")
    assert resp.status_code == 200
    await herald.settle()
    server = await herald.server(server_id)
    assert (server["status"], server["OS-EXT-STS:power_state"]) == ("ACTIVE", 1)
    actions = (await herald.get(f"/v2.1/servers/{server_id}/os-instance-actions", version="2.76")).json()
    start = next(a for a in actions["instanceActions"] if a["action"] == "start")
    detail = (
        await herald.get(f"/v2.1/servers/{server_id}/os-instance-actions/{start['request_id']}", version="2.76")
    ).json()["instanceAction"]
    assert [(e["event"], e["result"]) for e in detail["events"]] == [("compute_power_update", "No-op")]
    (record,) = [r for r in await herald.records(server_uuid=server_id) if r["name"] == "power-update"]
    assert record["state"] == "handled"
    assert record["outcome"].startswith("no-op")
