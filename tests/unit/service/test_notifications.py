"""Nova's versioned instance-action notifications, built from Herald's servers."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest

from herald.domain.flavors import FLAVORS
from herald.domain.model import PowerState, Server, Vif, VolumeAttachment
from herald.service.notifications import (
    Initiator,
    InstanceNotifications,
    NotificationAction,
    Phase,
    instance_action_payload,
)

UUID = "178b0921-8f85-4257-88b6-2e743b5a975c"
PORT = "ce531f90-199f-48c0-816c-13e38010b442"
CREATED = datetime(2012, 10, 29, 13, 42, 11, 123456)


def _ovo(name: str, version: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "nova_object.name": name,
        "nova_object.namespace": "nova",
        "nova_object.version": version,
        "nova_object.data": data,
    }


# The shape of Nova 34's doc samples doc/notification_samples/instance-power_off-start.json and -end.json
# (with the common_payloads they refer to: InstanceActionPayload 1.9 = InstancePayload 1.9 + fault,
# FlavorPayload 1.4, IpPayload 1.0, BlockDevicePayload 1.0). Values are placeholders: only keys,
# nesting and object versions are compared.
NOVA_SAMPLE_SHAPE: dict[str, Any] = {
    "event_type": "",
    "priority": "",
    "publisher_id": "",
    "payload": _ovo(
        "InstanceActionPayload",
        "1.9",
        {
            **dict.fromkeys(
                [
                    "uuid",
                    "user_id",
                    "tenant_id",
                    "reservation_id",
                    "display_name",
                    "display_description",
                    "host_name",
                    "host",
                    "node",
                    "os_type",
                    "architecture",
                    "availability_zone",
                    "image_uuid",
                    "key_name",
                    "kernel_id",
                    "ramdisk_id",
                    "created_at",
                    "launched_at",
                    "terminated_at",
                    "deleted_at",
                    "updated_at",
                    "state",
                    "power_state",
                    "task_state",
                    "progress",
                    "metadata",
                    "locked",
                    "auto_disk_config",
                    "request_id",
                    "action_initiator_user",
                    "action_initiator_project",
                    "locked_reason",
                    "shares",
                    "fault",
                ]
            ),
            "flavor": _ovo(
                "FlavorPayload",
                "1.4",
                dict.fromkeys(
                    [
                        "flavorid",
                        "name",
                        "memory_mb",
                        "vcpus",
                        "root_gb",
                        "ephemeral_gb",
                        "swap",
                        "rxtx_factor",
                        "vcpu_weight",
                        "disabled",
                        "is_public",
                        "extra_specs",
                        "projects",
                        "description",
                    ]
                ),
            ),
            "ip_addresses": [
                _ovo(
                    "IpPayload",
                    "1.0",
                    dict.fromkeys(["label", "mac", "meta", "port_uuid", "version", "address", "device_name"]),
                )
            ],
            "block_devices": [
                _ovo(
                    "BlockDevicePayload",
                    "1.0",
                    dict.fromkeys(["device_name", "boot_index", "delete_on_termination", "volume_id", "tag"]),
                )
            ],
        },
    ),
}


def shape(value: Any) -> Any:
    """Keys, nesting and object identity (name, namespace, version) of versioned objects; other values become None."""
    if isinstance(value, dict) and "nova_object.name" in value:
        head = {k: v for k, v in value.items() if k != "nova_object.data"}
        return {**head, "nova_object.data": {k: shape(v) for k, v in value["nova_object.data"].items()}}
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return [shape(value[0])]
    return None


def envelope_shape(envelope: dict[str, Any]) -> dict[str, Any]:
    return {key: shape(value) for key, value in envelope.items()}


def server(**changes: Any) -> Server:
    base = Server(
        uuid=UUID,
        name="Some Server_1",
        project_id="6f70656e737461636b20342065766572",
        user_id="fake",
        flavor_id="1",
        flavor=FLAVORS[0],
        image_ref="155d900f-4e14-4e4c-a73d-069cbf4541e6",
        vm_state="active",
        power_state=PowerState.RUNNING.value,
        task_state="powering-off",
        host="compute",
        node="fake-mini",
        vifs=[Vif(PORT, True, "private-network")],
        volumes=[VolumeAttachment("a0e1c2d3-0000-4000-8000-000000000001", 1, "/dev/vdb")],
        metadata={"k": "v"},
        created_at=CREATED,
        updated_at=CREATED,
        launched_at=CREATED,
    )
    for key, value in changes.items():
        setattr(base, key, value)
    return base


ADMIN = Initiator("req-5b6c791d-5709-4f36-8fbe-c3e02869e35d", "admin-user", "admin-project")


def test_notification_has_nova_sample_shape() -> None:
    notes = InstanceNotifications(host="compute", enabled=True, bdms=True)
    (note,) = notes.action(server(), NotificationAction.POWER_OFF, Phase.START, ADMIN)
    envelope = {
        "event_type": note.event_type,
        "priority": note.priority,
        "publisher_id": note.publisher_id,
        "payload": note.payload,
    }
    assert envelope_shape(envelope) == envelope_shape(NOVA_SAMPLE_SHAPE)
    json.dumps(envelope)  # plain JSON, as oslo.messaging sends it


def test_envelope_fields_as_nova_compute_sends_them() -> None:
    notes = InstanceNotifications(host="compute-7", enabled=True)
    (start,) = notes.action(server(), NotificationAction.POWER_OFF, Phase.START, ADMIN)
    (end,) = notes.action(server(), NotificationAction.POWER_ON, Phase.END, ADMIN)
    assert (start.event_type, start.priority, start.publisher_id) == (
        "instance.power_off.start",
        "INFO",
        "nova-compute:compute-7",
    )
    assert end.event_type == "instance.power_on.end"
    assert start.context["request_id"] == ADMIN.request_id
    assert start.context["user_id"] == "admin-user"


def test_payload_values() -> None:
    data = instance_action_payload(server(), initiator=ADMIN)["nova_object.data"]
    assert isinstance(data, dict)
    assert data["uuid"] == UUID
    assert (data["user_id"], data["tenant_id"]) == ("fake", "6f70656e737461636b20342065766572")
    assert (data["state"], data["power_state"], data["task_state"]) == ("active", "running", "powering-off")
    assert (data["host"], data["node"], data["availability_zone"]) == ("compute", "fake-mini", "nova")
    assert data["display_name"] == "Some Server_1"
    assert data["host_name"] == "some-server-1"
    assert data["reservation_id"] == f"r-{UUID[-8:]}"
    assert data["created_at"] == "2012-10-29T13:42:11Z"
    assert data["terminated_at"] is None
    assert data["deleted_at"] is None
    assert (data["kernel_id"], data["ramdisk_id"], data["auto_disk_config"]) == ("", "", "MANUAL")
    assert (data["locked"], data["progress"], data["fault"]) == (False, 0, None)
    assert data["metadata"] == {"k": "v"}
    assert data["block_devices"] is None  # Nova's [notifications] bdms_in_notifications is off by default
    assert data["request_id"] == ADMIN.request_id
    assert (data["action_initiator_user"], data["action_initiator_project"]) == ("admin-user", "admin-project")
    flavor = data["flavor"]["nova_object.data"]
    assert (flavor["flavorid"], flavor["name"], flavor["memory_mb"], flavor["vcpus"]) == ("1", "m1.tiny", 512, 1)
    (ip,) = data["ip_addresses"]
    ip_data = ip["nova_object.data"]
    assert (ip_data["port_uuid"], ip_data["label"], ip_data["version"]) == (PORT, "private-network", 4)
    assert ip_data["mac"].startswith("fa:16:3e:")
    assert ip_data["device_name"] == "tapce531f90-19"


@pytest.mark.parametrize(
    ("power", "name"),
    [
        (PowerState.NOSTATE, "pending"),
        (PowerState.RUNNING, "running"),
        (PowerState.PAUSED, "paused"),
        (PowerState.SHUTDOWN, "shutdown"),
        (PowerState.CRASHED, "crashed"),
        (PowerState.SUSPENDED, "suspended"),
    ],
)
def test_power_state_is_named_as_nova_names_it(power: PowerState, name: str) -> None:
    data = instance_action_payload(server(power_state=power.value), initiator=ADMIN)["nova_object.data"]
    assert isinstance(data, dict)
    assert data["power_state"] == name


def test_no_request_id_without_a_user_as_for_nova_periodic_tasks() -> None:
    data = instance_action_payload(server(), initiator=Initiator("req-1"))["nova_object.data"]
    assert isinstance(data, dict)
    assert (data["request_id"], data["action_initiator_user"], data["action_initiator_project"]) == (None, None, None)


def test_deleted_server_has_deleted_at() -> None:
    gone = server(deleted=True, terminated_at=datetime(2013, 1, 2, 3, 4, 5))
    data = instance_action_payload(gone, initiator=ADMIN)["nova_object.data"]
    assert isinstance(data, dict)
    assert data["deleted_at"] == data["terminated_at"] == "2013-01-02T03:04:05Z"


def test_unknown_flavor_keeps_the_payload_shape() -> None:
    data = instance_action_payload(server(flavor_id="gone", flavor=None), initiator=ADMIN)["nova_object.data"]
    assert isinstance(data, dict)
    flavor = data["flavor"]
    assert flavor["nova_object.data"]["flavorid"] == "gone"
    assert shape(flavor) == shape(NOVA_SAMPLE_SHAPE["payload"]["nova_object.data"]["flavor"])


def test_disabled_builds_nothing() -> None:
    assert InstanceNotifications(host="compute").action(server(), NotificationAction.POWER_ON, Phase.START, ADMIN) == ()
