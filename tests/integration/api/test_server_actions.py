"""POST /servers/{id}/action: os-stop, os-start, shelve, shelveOffload, unshelve; Nova's state rules (409)."""

from __future__ import annotations

import pytest

from herald.config import Settings
from herald.domain.messages import (
    ShelveOffloadServer,
    ShelveServer,
    StartServer,
    StopServer,
    UnshelveServer,
)
from herald.domain.model import PowerState, VmState
from tests.integration.api.conftest import ADMIN, ALICE, BOB, READER, Compute


def _conflict(uuid: str, action: str, attr: str, state: object) -> dict[str, object]:
    message = f"Cannot '{action}' instance {uuid} while it is in {attr} {state}"
    return {"conflictingRequest": {"code": 409, "message": message}}


def _actions(compute: Compute, uuid: str) -> list[str]:
    with compute.uow_factory() as uow:
        return [a.action for a in uow.actions.list_for_server(uuid)]


async def test_stop_then_start(compute: Compute) -> None:
    uuid = await compute.active_server()
    response = await compute.action(uuid, {"os-stop": None})
    assert (response.status_code, response.content) == (202, b"")
    request_id = response.headers["x-openstack-request-id"]
    assert await compute.messages() == [("compute-1", StopServer(uuid, request_id))]
    assert compute.server(uuid).task_state == "powering-off"
    again = await compute.action(uuid, {"os-stop": None})
    assert again.status_code == 409
    assert again.json() == _conflict(uuid, "stop", "task_state", "powering-off")
    compute.force(uuid, vm_state=VmState.STOPPED.value, power_state=PowerState.SHUTDOWN.value, task_state=None)
    stopped = await compute.action(uuid, {"os-stop": None})
    assert stopped.json() == _conflict(uuid, "stop", "vm_state", "stopped")
    started = await compute.action(uuid, {"os-start": None})
    assert started.status_code == 202
    assert await compute.messages() == [("compute-1", StartServer(uuid, started.headers["x-openstack-request-id"]))]
    assert compute.server(uuid).task_state == "powering-on"
    assert _actions(compute, uuid) == ["start", "stop", "create"]


async def test_start_an_active_server_conflicts(compute: Compute) -> None:
    uuid = await compute.active_server()
    response = await compute.action(uuid, {"os-start": {}})
    assert response.json() == _conflict(uuid, "start", "vm_state", "active")


async def test_a_server_that_never_launched_cannot_stop(compute: Compute) -> None:
    building = await compute.create()
    response = await compute.action(building, {"os-stop": None})
    assert response.json() == _conflict(building, "stop", "vm_state", "building")
    compute.force(building, vm_state=VmState.ERROR.value, task_state=None)
    response = await compute.action(building, {"os-stop": None})
    assert response.json() == _conflict(building, "stop", "launched_at", None)
    compute.clock.advance(61)
    unscheduled = await compute.create()
    response = await compute.action(unscheduled, {"os-stop": None})
    assert response.json() == {"conflictingRequest": {"code": 409, "message": f"Instance {unscheduled} is not ready"}}


async def test_stop_an_errored_server_that_launched(compute: Compute) -> None:
    uuid = await compute.active_server()
    compute.force(uuid, vm_state=VmState.ERROR.value)
    assert (await compute.action(uuid, {"os-stop": None})).status_code == 202


async def test_shelve_offloads_by_default(compute: Compute) -> None:
    uuid = await compute.active_server()
    response = await compute.action(uuid, {"shelve": None})
    assert response.status_code == 202
    request_id = response.headers["x-openstack-request-id"]
    assert await compute.messages() == [("compute-1", ShelveServer(uuid, request_id, offload=True))]
    assert compute.server(uuid).task_state == "shelving"
    assert _actions(compute, uuid) == ["shelve", "create"]


@pytest.mark.parametrize("settings", [Settings(shelved_offload_time=-1)])
async def test_shelve_without_offload(compute: Compute) -> None:
    uuid = await compute.active_server()
    await compute.action(uuid, {"shelve": None})
    ((_, message),) = await compute.messages()
    assert message == ShelveServer(uuid, message.request_id, offload=False)  # type: ignore[attr-defined]


async def test_shelve_offload_is_admin_only_and_needs_shelved(compute: Compute) -> None:
    uuid = await compute.active_server()
    refused = await compute.action(uuid, {"shelveOffload": None})
    assert refused.status_code == 403
    assert refused.json()["forbidden"]["message"] == (
        "Policy doesn't allow os_compute_api:os-shelve:shelve_offload to be performed."
    )
    active = await compute.action(uuid, {"shelveOffload": None}, ADMIN)
    assert active.json() == _conflict(uuid, "shelveOffload", "vm_state", "active")
    compute.force(uuid, vm_state=VmState.SHELVED.value, power_state=PowerState.SHUTDOWN.value)
    response = await compute.action(uuid, {"shelveOffload": None}, ADMIN)
    assert response.status_code == 202
    request_id = response.headers["x-openstack-request-id"]
    assert await compute.messages() == [("compute-1", ShelveOffloadServer(uuid, request_id))]
    assert compute.server(uuid).task_state == "shelving_offloading"


async def _offloaded(compute: Compute) -> str:
    uuid = await compute.active_server()
    compute.force(uuid, vm_state=VmState.SHELVED_OFFLOADED.value, power_state=PowerState.SHUTDOWN.value, host=None,
                  node=None)  # fmt: skip
    return uuid


async def test_unshelve_offloaded_schedules_a_host(compute: Compute) -> None:
    uuid = await _offloaded(compute)
    await compute.create()  # compute-1 now has one server, compute-2 none
    await compute.messages()
    response = await compute.action(uuid, {"unshelve": None})
    assert response.status_code == 202
    request_id = response.headers["x-openstack-request-id"]
    assert await compute.messages() == [("compute-2", UnshelveServer(uuid, request_id))]
    server = compute.server(uuid)
    assert (server.host, server.node, server.task_state) == ("compute-2", "compute-2", "unshelving")


async def test_unshelve_shelved_stays_on_its_host(compute: Compute) -> None:
    uuid = await compute.active_server()
    compute.force(uuid, vm_state=VmState.SHELVED.value)
    response = await compute.action(uuid, {"unshelve": None})
    assert await compute.messages() == [("compute-1", UnshelveServer(uuid, response.headers["x-openstack-request-id"]))]
    to_host = await compute.action(uuid, {"unshelve": {"host": "compute-2"}}, ADMIN, version="2.91")
    assert to_host.status_code == 409


async def test_unshelve_to_a_host(compute: Compute) -> None:
    uuid = await _offloaded(compute)
    refused = await compute.action(uuid, {"unshelve": {"host": "compute-2"}}, version="2.91")
    assert refused.status_code == 403
    old = await compute.action(uuid, {"unshelve": {"host": "compute-2"}}, ADMIN, version="2.90")
    assert old.status_code == 400
    unknown = await compute.action(uuid, {"unshelve": {"host": "nope"}}, ADMIN, version="2.91")
    assert unknown.json() == {"badRequest": {"code": 400, "message": "Compute host nope could not be found."}}
    response = await compute.action(uuid, {"unshelve": {"host": "compute-2"}}, ADMIN, version="2.91")
    assert response.status_code == 202
    ((host, _),) = await compute.messages()
    assert host == "compute-2"


async def test_unshelve_a_shelved_server_to_a_host_conflicts(compute: Compute) -> None:
    uuid = await compute.active_server()
    compute.force(uuid, vm_state=VmState.SHELVED.value)
    response = await compute.action(uuid, {"unshelve": {"host": "compute-2"}}, ADMIN, version="2.91")
    assert response.json()["conflictingRequest"]["message"] == (
        f'Specifying an availability zone or a host when unshelving server "{uuid}" with status "shelved" is '
        "not supported. The server status must be SHELVED_OFFLOADED."
    )


async def test_unshelve_with_no_host_up_leaves_it_offloaded(compute: Compute) -> None:
    uuid = await _offloaded(compute)
    compute.clock.advance(61)
    response = await compute.action(uuid, {"unshelve": None})
    assert response.status_code == 202
    assert await compute.messages() == []
    server = compute.server(uuid)
    assert (server.vm_state, server.task_state, server.host) == ("shelved_offloaded", None, None)
    request_id = response.headers["x-openstack-request-id"]
    action = (await compute.get(f"/v2.1/servers/{uuid}/os-instance-actions/{request_id}", ADMIN)).json()
    assert [(e["event"], e["result"]) for e in action["instanceAction"]["events"]] == [
        ("conductor_unshelve_instance", "Error")
    ]


async def test_delete_an_offloaded_server_is_local(compute: Compute) -> None:
    uuid = await _offloaded(compute)
    assert (await compute.client.delete(f"/v2.1/servers/{uuid}", headers=ALICE)).status_code == 204
    assert compute.server(uuid).deleted
    assert await compute.messages() == []


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"evacuate": {}}, 400, "There is no such action: evacuate"),
        ({"os-stop": None, "os-start": None}, 400, "Malformed request body"),
        ([], 400, "Malformed request body"),
    ],
)
async def test_unknown_or_malformed_actions(compute: Compute, body: object, status: int, message: str) -> None:
    uuid = await compute.active_server()
    response = await compute.client.post(f"/v2.1/servers/{uuid}/action", json=body, headers=ALICE)
    assert (response.status_code, response.json()["badRequest"]["message"]) == (status, message)


async def test_actions_on_another_projects_server(compute: Compute) -> None:
    uuid = await compute.active_server()
    response = await compute.action(uuid, {"os-stop": None}, BOB)
    assert response.status_code == 404
    reader = await compute.action(uuid, {"os-stop": None}, READER)
    assert reader.json()["forbidden"]["message"] == "Policy doesn't allow os_compute_api:servers:stop to be performed."
    admin = await compute.action(uuid, {"os-stop": None}, ADMIN)
    assert admin.status_code == 202
