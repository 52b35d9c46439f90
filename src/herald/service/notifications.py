"""Nova's versioned notifications about servers, built as a compute host sends them.

``instance.<action>.<phase>`` carries an ``InstanceActionPayload`` serialized the way
oslo.versionedobjects does it (``nova_object.name/namespace/version/data``). Every field
of Nova 34's payload version is present: the ones Herald models are filled from the
server, the others get the value Nova sends for a server without them (``null``, ``""``
or ``false``), so consumers written for Nova parse these unchanged.

Builders are pure; :func:`send` hands what was built to the :class:`Notifier` port.
Callers build inside their transaction and send after its commit (see
``agent/power_update.py``).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from herald.domain.flavors import Flavor
from herald.domain.model import PowerState, Server
from herald.domain.naming import availability_zone, fixed_ip, server_hostname, server_reservation_id
from herald.service.ports import Notifier

# Nova's NotificationSource.COMPUTE: versioned notifications are published as "nova-compute:<host>".
PUBLISHER_SOURCE = "nova-compute"
INSTANCE_ACTION_PAYLOAD_VERSION = "1.9"  # nova/notifications/objects/instance.py, Nova 34
FLAVOR_PAYLOAD_VERSION = "1.4"
IP_PAYLOAD_VERSION = "1.0"
BLOCK_DEVICE_PAYLOAD_VERSION = "1.0"

# Nova's InstancePowerState: the payload names the power state instead of giving its number.
POWER_STATE_NAMES: Mapping[PowerState, str] = MappingProxyType(
    {
        PowerState.NOSTATE: "pending",
        PowerState.RUNNING: "running",
        PowerState.PAUSED: "paused",
        PowerState.SHUTDOWN: "shutdown",
        PowerState.CRASHED: "crashed",
        PowerState.SUSPENDED: "suspended",
    }
)


class NotificationAction(enum.StrEnum):
    """The ``<action>`` of ``instance.<action>.<phase>`` (Nova's NotificationActionField)."""

    POWER_ON = "power_on"  # start API, power-update POWER_ON
    POWER_OFF = "power_off"  # stop API, power-update POWER_OFF


class Phase(enum.StrEnum):
    START = "start"  # before the work
    END = "end"  # after it succeeded; a failed action has a start and no end


@dataclass(frozen=True, slots=True)
class Initiator:
    """Who asked for the action (the request context Nova would carry)."""

    request_id: str | None = None
    user_id: str | None = None
    project_id: str | None = None

    def context(self) -> dict[str, str | None]:
        """The context sent next to the payload: the part of Nova's ``RequestContext.to_dict()`` Herald knows."""
        return {
            "request_id": self.request_id,
            "global_request_id": None,
            "user_id": self.user_id,
            "project_id": self.project_id,
            "user": self.user_id,
            "project": self.project_id,
            "user_identity": f"{self.user_id or '-'} {self.project_id or '-'} - - -",
        }


@dataclass(frozen=True, slots=True)
class Notification:
    """One versioned notification, ready for :meth:`Notifier.notify`."""

    event_type: str
    payload: dict[str, object]
    publisher_id: str
    priority: str = "INFO"
    context: Mapping[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class InstanceNotifications:
    """Builds the ``instance.*`` notifications one compute host sends.

    :param host: the compute host; the publisher is ``nova-compute:<host>``.
    :param enabled: False builds nothing (notifications are off), so callers need no check.
    :param bdms: Nova's ``[notifications] bdms_in_notifications``: list volume attachments.
    """

    host: str = ""
    enabled: bool = False
    bdms: bool = False

    def action(
        self, server: Server, action: NotificationAction, phase: Phase, initiator: Initiator
    ) -> tuple[Notification, ...]:
        """``instance.<action>.<phase>`` about ``server`` as it is now (Nova's ``notify_about_instance_action``)."""
        if not self.enabled:
            return ()
        payload = instance_action_payload(server, initiator=initiator, bdms=self.bdms)
        return (
            Notification(
                event_type=f"instance.{action}.{phase}",
                payload=payload,
                publisher_id=f"{PUBLISHER_SOURCE}:{self.host}",
                context=MappingProxyType(initiator.context()),
            ),
        )


NO_NOTIFICATIONS = InstanceNotifications()


def send(notifier: Notifier, notifications: Iterable[Notification]) -> None:
    """Send in order. Blocking (a broker may be slow): call it from a worker thread, after the commit."""
    for note in notifications:
        notifier.notify(
            note.event_type, note.payload, publisher_id=note.publisher_id, priority=note.priority, context=note.context
        )


def _ovo(name: str, version: str, data: dict[str, object]) -> dict[str, object]:
    """oslo.versionedobjects' ``obj_to_primitive`` envelope (no ``nova_object.changes``: Nova resets them)."""
    return {
        "nova_object.name": name,
        "nova_object.namespace": "nova",
        "nova_object.version": version,
        "nova_object.data": data,
    }


def isotime(at: datetime | None) -> str | None:
    """oslo.versionedobjects' DateTimeField for naive UTC: ``2012-10-29T13:42:11Z``."""
    return None if at is None else at.strftime("%Y-%m-%dT%H:%M:%SZ")


def instance_action_payload(server: Server, *, initiator: Initiator, bdms: bool = False) -> dict[str, object]:
    """Nova's ``InstanceActionPayload`` for ``server``, serialized."""
    data: dict[str, object] = {
        "uuid": server.uuid,
        "user_id": server.user_id,
        "tenant_id": server.project_id,
        "reservation_id": server_reservation_id(server),
        "display_name": server.name,
        "display_description": None,
        "host_name": server_hostname(server),
        "host": server.host,
        "node": server.node,
        "os_type": None,
        "architecture": None,
        "availability_zone": availability_zone(server),
        "flavor": flavor_payload(server.flavor_id, server.flavor),
        "image_uuid": server.image_ref,
        "key_name": server.key_name,
        "kernel_id": "",
        "ramdisk_id": "",
        "created_at": isotime(server.created_at),
        "launched_at": isotime(server.launched_at),
        "terminated_at": isotime(server.terminated_at),
        "deleted_at": isotime(server.terminated_at) if server.deleted else None,
        "updated_at": isotime(server.updated_at),
        "state": server.vm_state,
        "power_state": _power_state_name(server.power_state),
        "task_state": server.task_state,
        "progress": 0,
        "ip_addresses": ip_payloads(server),
        "block_devices": block_device_payloads(server) if bdms else None,
        "metadata": dict(server.metadata),
        "locked": False,
        "auto_disk_config": "MANUAL",
        # NOTE: Nova leaves request_id out when the context has no user (periodic tasks); so does Herald.
        "request_id": initiator.request_id if initiator.user_id and initiator.project_id else None,
        "action_initiator_user": initiator.user_id,
        "action_initiator_project": initiator.project_id,
        "locked_reason": None,
        "shares": None,  # Nova's [notifications] include_share_mapping is off by default; Herald has no shares
        "fault": None,
    }
    return _ovo("InstanceActionPayload", INSTANCE_ACTION_PAYLOAD_VERSION, data)


def flavor_payload(flavor_id: str, flavor: Flavor | None) -> dict[str, object]:
    """Nova's ``FlavorPayload`` of a server's flavor copy (``projects`` is not loaded for an instance's flavor)."""
    data: dict[str, object]
    if flavor is None:
        data = {"flavorid": flavor_id, "name": "", "swap": 0, "disabled": False, "is_public": True}
        data |= dict.fromkeys(("memory_mb", "vcpus", "root_gb", "ephemeral_gb", "rxtx_factor", "vcpu_weight"))
        data |= {"extra_specs": None, "projects": None, "description": None}
        return _ovo("FlavorPayload", FLAVOR_PAYLOAD_VERSION, data)
    data = {
        "flavorid": flavor.flavorid,
        "name": flavor.name,
        "memory_mb": flavor.memory_mb,
        "vcpus": flavor.vcpus,
        "root_gb": flavor.root_gb,
        "ephemeral_gb": flavor.ephemeral_gb,
        "swap": flavor.swap,
        "rxtx_factor": flavor.rxtx_factor,
        "vcpu_weight": None,
        "disabled": flavor.disabled,
        "is_public": flavor.is_public,
        "extra_specs": dict(flavor.extra_specs),
        "projects": None,
        "description": flavor.description,
    }
    return _ovo("FlavorPayload", FLAVOR_PAYLOAD_VERSION, data)


def ip_payloads(server: Server) -> list[dict[str, object]]:
    """Nova's ``IpPayload`` per fixed IP: one per port, as the API's ``addresses`` shows them."""
    result: list[dict[str, object]] = []
    for vif in server.vifs:
        ip = fixed_ip(vif.port_id)
        data: dict[str, object] = {
            "label": vif.network_id or "private",
            "mac": ip.mac,
            "meta": {},
            "port_uuid": vif.port_id,
            "version": ip.version,
            "address": ip.address,
            "device_name": f"tap{vif.port_id[:11]}",  # Nova's "tap" + port id, 14 characters
        }
        result.append(_ovo("IpPayload", IP_PAYLOAD_VERSION, data))
    return result


def block_device_payloads(server: Server) -> list[dict[str, object]]:
    """Nova's ``BlockDevicePayload`` per attached volume."""
    return [
        _ovo(
            "BlockDevicePayload",
            BLOCK_DEVICE_PAYLOAD_VERSION,
            {
                "device_name": volume.device_name,
                "boot_index": None,
                "delete_on_termination": False,
                "volume_id": volume.volume_id,
                "tag": None,
            },
        )
        for volume in server.volumes
    ]


def _power_state_name(value: int) -> str | None:
    try:
        return POWER_STATE_NAMES[PowerState(value)]
    except ValueError:
        return None
