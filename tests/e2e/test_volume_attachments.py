"""``/servers/{id}/os-volume_attachments`` and ``volume-extended`` end to end; Cinder played by novaclient at 2.51."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from herald.domain.errors import DriverError
from tests.e2e.harness import Herald
from tests.e2e.novaclient_bridge import novaclient_for

GIB = 1024**3


async def _server(herald: Herald) -> str:
    return await herald.create_server(host="compute-1")


def _path(server_id: str, volume_id: str | None = None) -> str:
    base = f"/v2.1/servers/{server_id}/os-volume_attachments"
    return base if volume_id is None else f"{base}/{volume_id}"


async def _attach(herald: Herald, server_id: str, body: dict[str, Any], version: str = "2.79") -> Any:
    return await herald.post(_path(server_id), {"volumeAttachment": body}, version=version)


async def _actions(herald: Herald, server_id: str) -> dict[str, list[tuple[str, str]]]:
    """Each action of the server (by name, the latest of a name wins) with its steps."""
    listed = (await herald.get(f"/v2.1/servers/{server_id}/os-instance-actions", version="2.84")).json()
    steps: dict[str, list[tuple[str, str]]] = {}
    for action in reversed(listed["instanceActions"]):
        shown = await herald.get(
            f"/v2.1/servers/{server_id}/os-instance-actions/{action['request_id']}", version="2.84"
        )
        steps[action["action"]] = [(e["event"], e["result"]) for e in shown.json()["instanceAction"]["events"]]
    return steps


async def _cinder_events(herald: Herald, events: list[dict[str, str]]) -> tuple[list[dict[str, Any]], list[str]]:
    """As Cinder sends them: novaclient at 2.51; the replies and the request ids."""
    nova = novaclient_for(herald.client, "2.51")
    replies = await asyncio.to_thread(nova.server_external_events.create, events)
    await herald.settle()
    return list(replies), list(replies.request_ids)


async def test_attach_then_detach(herald: Herald) -> None:
    server_id = await _server(herald)
    volume = str(uuid.uuid4())
    resp = await _attach(herald, server_id, {"volumeId": volume, "tag": "data", "delete_on_termination": True})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {
        "volumeAttachment": {
            "id": volume,
            "serverId": server_id,
            "volumeId": volume,
            "device": "/dev/vdb",
            "tag": "data",
            "delete_on_termination": True,
        }
    }
    await herald.settle()
    old = (await herald.get(_path(server_id), version="2.1")).json()
    assert old == {
        "volumeAttachments": [{"id": volume, "volumeId": volume, "serverId": server_id, "device": "/dev/vdb"}]
    }
    (latest,) = (await herald.get(_path(server_id), version="2.89")).json()["volumeAttachments"]
    assert "id" not in latest
    assert (latest["tag"], latest["delete_on_termination"]) == ("data", True)
    assert latest["attachment_id"]
    assert latest["bdm_uuid"]
    shown = (await herald.get(_path(server_id, volume), version="2.89")).json()["volumeAttachment"]
    assert shown == latest
    machine = herald.driver("compute-1").machine(server_id)
    assert machine is not None
    assert machine.volumes == {volume: 1 * GIB}  # on demand: 1 GiB
    server = await herald.server(server_id, version="2.3")
    assert server["os-extended-volumes:volumes_attached"] == [{"id": volume, "delete_on_termination": True}]
    assert (await _actions(herald, server_id))["attach_volume"] == [("compute_attach_volume", "Success")]

    resp = await herald.client.delete(_path(server_id, volume), headers={"X-Auth-Token": "admin:admin"})
    assert (resp.status_code, resp.content) == (202, b"")
    await herald.settle()
    assert (await herald.get(_path(server_id))).json() == {"volumeAttachments": []}
    machine = herald.driver("compute-1").machine(server_id)
    assert machine is not None
    assert machine.volumes == {}
    assert (await _actions(herald, server_id))["detach_volume"] == [("compute_detach_volume", "Success")]
    missing = await herald.get(_path(server_id, volume))
    assert missing.json()["itemNotFound"]["message"] == f"Instance {server_id} is not attached to volume {volume}"


async def test_from_2_101_the_attach_answers_202_without_a_body(herald: Herald) -> None:
    server_id = await _server(herald)
    resp = await _attach(herald, server_id, {"volumeId": str(uuid.uuid4()), "device": "/dev/vdc"}, version="2.101")
    assert (resp.status_code, resp.content) == (202, b"")
    await herald.settle()
    (attached,) = (await herald.get(_path(server_id))).json()["volumeAttachments"]
    assert attached["device"] == "/dev/vdc"


async def test_refusals(herald: Herald) -> None:
    assert (await _attach(herald, str(uuid.uuid4()), {"volumeId": str(uuid.uuid4())})).status_code == 404
    server_id = await _server(herald)
    other = await _server(herald)
    volume = str(uuid.uuid4())
    assert (await _attach(herald, server_id, {"volumeId": volume})).status_code == 200
    again = await _attach(herald, server_id, {"volumeId": volume})
    # NOTE: Nova answers 400 (InvalidVolume) for a volume already attached, not 409.
    assert again.json() == {"badRequest": {"code": 400, "message": f"Invalid volume: volume {volume} already attached"}}
    elsewhere = await _attach(herald, other, {"volumeId": volume})
    message = f"Invalid volume: volume {volume} is already attached to instances: {server_id}"
    assert elsewhere.json() == {"badRequest": {"code": 400, "message": message}}
    taken = await _attach(herald, server_id, {"volumeId": str(uuid.uuid4()), "device": "/dev/vdb"})
    assert taken.json()["conflictingRequest"]["message"] == "The supplied device path (/dev/vdb) is in use."
    bad = await _attach(herald, server_id, {"volumeId": str(uuid.uuid4()), "device": "/dev/sd!"})
    assert bad.status_code == 400
    tag_too_early = await _attach(herald, server_id, {"volumeId": str(uuid.uuid4()), "tag": "x"}, version="2.48")
    assert tag_too_early.status_code == 400
    unknown = str(uuid.uuid4())
    resp = await herald.client.delete(_path(server_id, unknown), headers={"X-Auth-Token": "admin:admin"})
    assert resp.json()["itemNotFound"]["message"] == f"Volume {unknown} could not be found."
    with herald.deps.uow_factory() as uow:
        stored = uow.servers.get(server_id)
        assert stored is not None
        stored.task_state = "rebooting"  # another operation is under way
        uow.servers.save(stored)
        uow.commit()
    busy = await _attach(herald, server_id, {"volumeId": str(uuid.uuid4())})
    message = f"Cannot 'attach_volume' instance {server_id} while it is in task_state rebooting"
    assert busy.json() == {"conflictingRequest": {"code": 409, "message": message}}


async def test_a_failed_connection_removes_the_attachment(herald: Herald) -> None:
    server_id = await _server(herald)
    herald.driver("compute-1").fail_next("attach_volume", DriverError("no path to the volume"))
    assert (await _attach(herald, server_id, {"volumeId": str(uuid.uuid4())})).status_code == 200
    await herald.settle()
    assert (await herald.get(_path(server_id))).json() == {"volumeAttachments": []}
    assert (await _actions(herald, server_id))["attach_volume"] == [("compute_attach_volume", "Error")]


async def test_volume_extended_grows_the_attached_volume(herald: Herald) -> None:
    server_id = await _server(herald)
    volume = str(uuid.uuid4())
    assert (await _attach(herald, server_id, {"volumeId": volume})).status_code == 200
    await herald.settle()
    herald.deps.volumes.set_size_gb(volume, 5)  # Cinder extended it
    replies, request_ids = await _cinder_events(
        herald, [{"name": "volume-extended", "server_uuid": server_id, "tag": volume}]
    )
    assert [(r["code"], r["status"]) for r in replies] == [(200, "completed")]
    machine = herald.driver("compute-1").machine(server_id)
    assert machine is not None
    assert machine.volumes[volume] == 5 * GIB
    with herald.deps.uow_factory() as uow:
        stored = uow.servers.get(server_id)
    assert stored is not None
    assert [(v.volume_id, v.size_gb) for v in stored.volumes] == [(volume, 5)]
    listed = (await herald.get(f"/v2.1/servers/{server_id}/os-instance-actions")).json()["instanceActions"]
    (extend,) = [a for a in listed if a["action"] == "extend_volume"]
    assert extend["request_id"] in request_ids
    assert (await _actions(herald, server_id))["extend_volume"] == [("compute_extend_volume", "Success")]


async def test_volume_extended_for_an_unknown_volume_or_with_failed_status(herald: Herald) -> None:
    server_id = await _server(herald)
    volume = str(uuid.uuid4())
    assert (await _attach(herald, server_id, {"volumeId": volume})).status_code == 200
    await herald.settle()
    replies, _ = await _cinder_events(
        herald, [{"name": "volume-extended", "server_uuid": server_id, "tag": str(uuid.uuid4())}]
    )
    assert replies[0]["code"] == 200
    assert (await _actions(herald, server_id))["extend_volume"] == [("compute_extend_volume", "Error")]
    # As Nova's compute: the status is not looked at; the host reads the size the volume service has.
    herald.deps.volumes.set_size_gb(volume, 3)
    event = {"name": "volume-extended", "server_uuid": server_id, "tag": volume, "status": "failed"}
    replies, _ = await _cinder_events(herald, [event])
    assert (replies[0]["code"], replies[0]["status"]) == (200, "completed")  # as Nova answers an accepted event
    assert (await _actions(herald, server_id))["extend_volume"] == [("compute_extend_volume", "Success")]


async def test_a_duplicate_volume_extended_has_the_same_effect(herald: Herald) -> None:
    server_id = await _server(herald)
    volume = str(uuid.uuid4())
    assert (await _attach(herald, server_id, {"volumeId": volume})).status_code == 200
    await herald.settle()
    herald.deps.volumes.set_size_gb(volume, 2)
    event = {"name": "volume-extended", "server_uuid": server_id, "tag": volume}
    replies, _ = await _cinder_events(herald, [event, event])
    assert [r["code"] for r in replies] == [200, 200]
    machine = herald.driver("compute-1").machine(server_id)
    assert machine is not None
    assert machine.volumes[volume] == 2 * GIB
    assert [r["state"] for r in await herald.records(server_uuid=server_id)] == ["handled", "handled"]
