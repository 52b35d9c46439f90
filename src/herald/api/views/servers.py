"""Nova's server views (``nova/api/openstack/compute/views/servers.py``) for Herald's servers.

Fields Herald does not model (key pairs, locks, tags, server groups,
trusted certificates) are shown with the values Nova shows for a server that has none,
so clients parse every microversion's shape.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
from dataclasses import dataclass
from typing import Any

from herald.api.edge import ApiRequest
from herald.api.microversion import APIVersion
from herald.api.views.common import bookmark, isotime, links, strtime
from herald.domain.model import Server, VmState
from herald.domain.naming import availability_zone, fixed_ip, server_hostname, server_reservation_id
from herald.service.server_queries import HostStatusName, ServerDetail

_PROGRESS_STATUSES = frozenset({"ACTIVE", "BUILD", "REBUILD", "RESIZE", "VERIFY_RESIZE", "MIGRATING"})
_FAULT_STATUSES = frozenset({"ERROR", "DELETED"})


@dataclass(frozen=True, slots=True)
class ViewOptions:
    """What the caller may see, decided once per request by policy."""

    extended_attributes: bool = False  # os_compute_api:os-extended-server-attributes
    host_status: bool = False  # show:host_status
    host_status_unknown_only: bool = False  # show:host_status:unknown-only
    flavor_extra_specs: bool = False  # show:flavor-extra-specs (2.47)
    server_groups: bool = False  # GET /servers/{id} only (2.71)
    is_admin: bool = False  # fault details of 500 faults


def v(req: ApiRequest, major: int, minor: int) -> bool:
    return req.version >= APIVersion(major, minor)


def host_id(project_id: str, host: str | None) -> str:
    """Nova's ``generate_hostid``: sha224 of project id and host; empty without a host."""
    return hashlib.sha224((project_id + host).encode()).hexdigest() if host else ""


def basic(req: ApiRequest, server: Server) -> dict[str, Any]:
    """``GET /servers``: id, name and links."""
    return {"id": server.uuid, "name": server.name, "links": links(req, "servers", server.uuid)}


def created(req: ApiRequest, server: Server, admin_pass: str | None) -> dict[str, Any]:
    """The 202 body of ``POST /servers``."""
    body: dict[str, Any] = {
        "id": server.uuid,
        "links": links(req, "servers", server.uuid),
        "OS-DCF:diskConfig": disk_config(server),
        "security_groups": [{"name": "default"}],
    }
    if admin_pass is not None:
        body["adminPass"] = admin_pass
    return body


def disk_config(server: Server) -> str:
    """``OS-DCF:diskConfig``: what the create request asked for."""
    return "AUTO" if server.auto_disk_config else "MANUAL"


def show(req: ApiRequest, detail: ServerDetail, options: ViewOptions) -> dict[str, Any]:
    """``GET /servers/{id}`` and each entry of ``GET /servers/detail``."""
    server = detail.server
    status = server.status if not server.deleted else "DELETED"
    body: dict[str, Any] = {
        "id": server.uuid,
        "name": server.name,
        "status": status,
        "tenant_id": server.project_id,
        "user_id": server.user_id,
        "metadata": dict(server.metadata),
        "hostId": host_id(server.project_id, server.host),
        "image": _image(req, server),
        "flavor": _flavor(req, server, options),
        "created": isotime(server.created_at),
        "updated": isotime(server.updated_at or server.created_at),
        "addresses": addresses(server),
        "accessIPv4": server.access_ip_v4 or "",
        "accessIPv6": server.access_ip_v6 or "",
        "links": links(req, "servers", server.uuid),
        "OS-DCF:diskConfig": disk_config(server),
        "OS-EXT-AZ:availability_zone": _availability_zone(server),
        "config_drive": "True" if server.config_drive else "",
        "key_name": server.key_name,
        "OS-SRV-USG:launched_at": strtime(server.launched_at),
        "OS-SRV-USG:terminated_at": strtime(server.terminated_at),
        "OS-EXT-STS:task_state": server.task_state,
        "OS-EXT-STS:vm_state": server.vm_state,
        "OS-EXT-STS:power_state": server.power_state,
        "os-extended-volumes:volumes_attached": _volumes(req, server),
    }
    if status in _FAULT_STATUSES and server.fault:
        body["fault"] = _fault(server, options.is_admin)
    if status in _PROGRESS_STATUSES:
        body["progress"] = 0
    if server.vifs and server.security_groups:
        body["security_groups"] = [{"name": name} for name in server.security_groups]
    if options.extended_attributes:
        body.update(_extended_attributes(req, server))
    body.update(_microversion_fields(req, detail, options))
    return body


def _microversion_fields(req: ApiRequest, detail: ServerDetail, options: ViewOptions) -> dict[str, Any]:
    # Fields Herald does not model get the value Nova shows for a server without them.
    fields: dict[str, Any] = {
        name: copy.copy(value) for (major, minor), name, value in _UNMODELLED if v(req, major, minor)
    }
    if v(req, 2, 16) and _shows_host_status(options, detail.host_status):
        fields["host_status"] = detail.host_status
    if options.server_groups and v(req, 2, 71):
        fields["server_groups"] = []
    if v(req, 2, 9):
        fields["locked"] = detail.server.locked
    if v(req, 2, 19):
        fields["description"] = detail.server.description
    if v(req, 2, 26):
        fields["tags"] = list(detail.server.tags)
    if v(req, 2, 63):
        certificates = detail.server.trusted_image_certificates
        fields["trusted_image_certificates"] = None if certificates is None else list(certificates)
    if v(req, 2, 100):
        fields["scheduler_hints"] = copy.deepcopy(detail.server.scheduler_hints)
    if v(req, 2, 73):
        fields["locked_reason"] = detail.server.locked_reason
    if v(req, 2, 90) and not options.extended_attributes:
        fields["OS-EXT-SRV-ATTR:hostname"] = server_hostname(detail.server)
    return fields


def _shows_host_status(options: ViewOptions, status: str) -> bool:
    """Nova's rule: all of them with show:host_status, else only UNKNOWN with show:host_status:unknown-only."""
    return options.host_status or (options.host_status_unknown_only and status == HostStatusName.UNKNOWN)


_UNMODELLED: tuple[tuple[tuple[int, int], str, object], ...] = (((2, 96), "pinned_availability_zone", None),)


def _extended_attributes(req: ApiRequest, server: Server) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        "OS-EXT-SRV-ATTR:host": server.host,
        "OS-EXT-SRV-ATTR:instance_name": instance_name(server.uuid),
        "OS-EXT-SRV-ATTR:hypervisor_hostname": server.node,
    }
    if v(req, 2, 3):
        attrs.update(
            {
                "OS-EXT-SRV-ATTR:hostname": server_hostname(server),
                "OS-EXT-SRV-ATTR:kernel_id": "",
                "OS-EXT-SRV-ATTR:launch_index": server.launch_index,
                "OS-EXT-SRV-ATTR:ramdisk_id": "",
                "OS-EXT-SRV-ATTR:reservation_id": server_reservation_id(server),
                "OS-EXT-SRV-ATTR:root_device_name": "/dev/vda" if server.launched_at else None,
                "OS-EXT-SRV-ATTR:user_data": server.user_data,
            }
        )
    return attrs


def instance_name(uuid: str) -> str:
    """Nova's default ``instance-%08x`` name, from the uuid since Herald has no integer id."""
    return f"instance-{uuid[:8]}"


def _image(req: ApiRequest, server: Server) -> dict[str, Any] | str:
    if not server.image_ref:
        return ""  # booted from a volume
    image: dict[str, Any] = {"id": server.image_ref, "links": bookmark(req, "images", server.image_ref)}
    if v(req, 2, 98):
        image["properties"] = {}
    return image


def _flavor(req: ApiRequest, server: Server, options: ViewOptions) -> dict[str, Any]:
    flavor = server.flavor
    if flavor is None:
        return {}
    if not v(req, 2, 47):
        return {"id": flavor.flavorid, "links": bookmark(req, "flavors", flavor.flavorid)}
    embedded: dict[str, Any] = {
        "vcpus": flavor.vcpus,
        "ram": flavor.memory_mb,
        "disk": flavor.root_gb,
        "ephemeral": flavor.ephemeral_gb,
        "swap": flavor.swap,
        "original_name": flavor.name,
    }
    if options.flavor_extra_specs:
        embedded["extra_specs"] = dict(flavor.extra_specs)
    return embedded


def _availability_zone(server: Server) -> str:
    return availability_zone(server) or ""


# What a PUT /servers/{id} reply leaves out before 2.75 (Nova shows every attribute from then on).
_NOT_IN_UPDATE_REPLY = (
    "OS-EXT-AZ:availability_zone",
    "config_drive",
    "key_name",
    "OS-SRV-USG:launched_at",
    "OS-SRV-USG:terminated_at",
    "security_groups",
    "OS-EXT-STS:task_state",
    "OS-EXT-STS:vm_state",
    "OS-EXT-STS:power_state",
    "os-extended-volumes:volumes_attached",
    "host_status",
)


def updated(req: ApiRequest, detail: ServerDetail, options: ViewOptions) -> dict[str, Any]:
    """The reply to ``PUT /servers/{id}``: the full view from 2.75, a reduced one before."""
    if v(req, 2, 75):
        return show(req, detail, options)
    body = show(req, detail, dataclasses.replace(options, extended_attributes=False, host_status=False))
    for key in _NOT_IN_UPDATE_REPLY:
        body.pop(key, None)
    body["addresses"] = basic_addresses(detail.server)
    return body


def basic_addresses(server: Server) -> dict[str, list[dict[str, Any]]]:
    """Addresses without the OS-EXT-IPS fields: ``/servers/{id}/ips`` and older PUT replies."""
    return {
        network: [{"version": ip["version"], "addr": ip["addr"]} for ip in ips]
        for network, ips in addresses(server).items()
    }


def addresses(server: Server) -> dict[str, list[dict[str, Any]]]:
    """Nova's ``addresses``, one fixed IPv4 per port, by network (hidden while building)."""
    if server.vm_state == VmState.BUILDING:
        return {}
    result: dict[str, list[dict[str, Any]]] = {}
    for vif in server.vifs:
        ip = fixed_ip(vif.port_id)
        result.setdefault(vif.network_id or "private", []).append(
            {"version": ip.version, "addr": ip.address, "OS-EXT-IPS:type": "fixed", "OS-EXT-IPS-MAC:mac_addr": ip.mac}
        )
    return result


def _volumes(req: ApiRequest, server: Server) -> list[dict[str, Any]]:
    if v(req, 2, 3):
        return [{"id": vol.volume_id, "delete_on_termination": vol.delete_on_termination} for vol in server.volumes]
    return [{"id": vol.volume_id} for vol in server.volumes]


def _fault(server: Server, is_admin: bool) -> dict[str, Any]:
    fault = server.fault or {}
    code = fault.get("code", 500)
    stamp = fault.get("created")
    body: dict[str, Any] = {
        "code": code,
        "created": stamp if isinstance(stamp, str) else isotime(server.updated_at or server.created_at),
        "message": fault.get("message", ""),
    }
    details = fault.get("details")
    if details and (is_admin or code != 500):
        body["details"] = details
    return body
