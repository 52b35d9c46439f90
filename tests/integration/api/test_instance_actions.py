"""GET /servers/{id}/os-instance-actions[/{request_id}]: actions, and their events per microversion and role."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from herald.domain.records import ActionEvent
from tests.integration.api.conftest import ADMIN, ALICE, BOB, T0, Compute


async def _stopped_with_event(compute: Compute) -> tuple[str, str]:
    uuid = await compute.active_server()
    response = await compute.action(uuid, {"os-stop": None})
    request_id = response.headers["x-openstack-request-id"]
    later = T0 + timedelta(seconds=3)
    with compute.uow_factory() as uow:
        event = ActionEvent("compute_stop_instance", later, later, "Success", "trace", "compute-1", "detail")
        uow.actions.add_event(uuid, request_id, event)
        uow.commit()
    return uuid, request_id


async def test_list_actions(compute: Compute) -> None:
    uuid, request_id = await _stopped_with_event(compute)
    actions = (await compute.get(f"/v2.1/servers/{uuid}/os-instance-actions")).json()["instanceActions"]
    assert [a["action"] for a in actions] == ["stop", "create"]
    assert actions[0] == {
        "action": "stop",
        "instance_uuid": uuid,
        "request_id": request_id,
        "user_id": "alice",
        "project_id": "0b0b",
        "start_time": "2025-03-04T05:06:07.000000",
        "message": None,
    }
    v258 = (await compute.get(f"/v2.1/servers/{uuid}/os-instance-actions", version="2.58")).json()
    assert v258["instanceActions"][0]["updated_at"] == "2025-03-04T05:06:07.000000"
    page = (await compute.get(f"/v2.1/servers/{uuid}/os-instance-actions?limit=1", version="2.58")).json()
    assert [a["action"] for a in page["instanceActions"]] == ["stop"]
    assert page["links"][0]["rel"] == "next"
    assert (await compute.get(f"/v2.1/servers/{uuid}/os-instance-actions", BOB)).status_code == 404


async def test_events_are_for_admins_before_2_51(compute: Compute) -> None:
    uuid, request_id = await _stopped_with_event(compute)
    path = f"/v2.1/servers/{uuid}/os-instance-actions/{request_id}"
    user = (await compute.get(path)).json()["instanceAction"]
    assert "events" not in user
    admin = (await compute.get(path, ADMIN)).json()["instanceAction"]
    assert admin["events"] == [
        {
            "event": "compute_stop_instance",
            "start_time": "2025-03-04T05:06:10.000000",
            "finish_time": "2025-03-04T05:06:10.000000",
            "result": "Success",
            "traceback": "trace",
        }
    ]


async def test_events_by_microversion(compute: Compute) -> None:
    uuid, request_id = await _stopped_with_event(compute)
    path = f"/v2.1/servers/{uuid}/os-instance-actions/{request_id}"
    (user_event,) = (await compute.get(path, version="2.51")).json()["instanceAction"]["events"]
    assert "traceback" not in user_event
    assert "hostId" not in user_event
    host_id = hashlib.sha224(b"0b0bcompute-1").hexdigest()
    (user_event,) = (await compute.get(path, version="2.62")).json()["instanceAction"]["events"]
    assert (user_event["hostId"], "host" in user_event) == (host_id, False)
    (admin_event,) = (await compute.get(path, ADMIN, version="2.62")).json()["instanceAction"]["events"]
    assert (admin_event["host"], admin_event["hostId"], "details" in admin_event) == ("compute-1", host_id, False)
    (admin_event,) = (await compute.get(path, ADMIN, version="2.84")).json()["instanceAction"]["events"]
    assert admin_event["details"] == "detail"
    (user_event,) = (await compute.get(path, version="2.84")).json()["instanceAction"]["events"]
    assert "details" not in user_event
    action = (await compute.get(path, version="2.58")).json()["instanceAction"]
    assert action["updated_at"] == "2025-03-04T05:06:10.000000"


async def test_unknown_action(compute: Compute) -> None:
    uuid = await compute.active_server()
    response = await compute.get(f"/v2.1/servers/{uuid}/os-instance-actions/req-nope")
    assert response.json() == {"itemNotFound": {"code": 404, "message": "Action req-nope not found"}}
    response = await compute.get(f"/v2.1/servers/{uuid}/os-instance-actions/req%00")
    assert response.json() == {"itemNotFound": {"code": 404, "message": "Action req\x00 not found"}}


async def test_deleted_servers_actions_from_2_21(compute: Compute) -> None:
    compute.clock.advance(61)
    uuid = await compute.create()  # no host: deleted locally
    await compute.client.delete(f"/v2.1/servers/{uuid}", headers=ALICE)
    assert (await compute.get(f"/v2.1/servers/{uuid}/os-instance-actions")).status_code == 404
    actions = (await compute.get(f"/v2.1/servers/{uuid}/os-instance-actions", version="2.21")).json()
    assert [a["action"] for a in actions["instanceActions"]] == ["delete", "create"]
    assert (await compute.get(f"/v2.1/servers/{uuid}/os-instance-actions", BOB, version="2.21")).status_code == 404
