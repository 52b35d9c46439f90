"""Parsing ``POST /servers``: schema, Nova's policy checks in Nova's order, networks and volumes."""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from herald.api.deps import own_target
from herald.api.edge import ApiRequest
from herald.api.faults import ApiFault
from herald.api.ip_addresses import normal_ip
from herald.api.microversion import APIVersion
from herald.api.schemas import servers as schemas
from herald.api.validation import SchemaValidator
from herald.domain.uuids import is_uuid_like
from herald.service.servers import RequestedVolume, ServerSpec

SERVERS = "os_compute_api:servers:"
REQUESTED_DESTINATION = "compute:servers:create:requested_destination"
DEFAULT_ZONE = "nova"
DEFAULT_SECURITY_GROUP = "default"
_PASSWORD_CHARS = string.ascii_letters + string.digits
_VALIDATORS: dict[int, SchemaValidator] = {}


@dataclass(frozen=True, slots=True)
class CreateRequest:
    spec: ServerSpec
    admin_pass: str
    return_reservation_id: bool = False


def _validator(version: APIVersion) -> SchemaValidator:
    schema = schemas.for_version(schemas.CREATE_SCHEMAS, version)
    validator = _VALIDATORS.get(id(schema))
    if validator is None:
        validator = _VALIDATORS[id(schema)] = SchemaValidator(schema)
    return validator


def id_from_href(href: object) -> str:
    """Nova's ``get_id_from_href``: the last path segment of a URL, or the value itself."""
    return urlsplit(str(href)).path.split("/")[-1]


def _strip_unknown(body: Any) -> Any:
    """Legacy /v2 requests: unknown server attributes are ignored, not rejected."""
    if isinstance(body, dict) and isinstance(body.get("server"), dict):
        known = schemas.create_v20["properties"]["server"]["properties"]
        body = {**body, "server": {k: v for k, v in body["server"].items() if k in known}}
    return body


def parse_create(req: ApiRequest) -> CreateRequest:
    """Validate the body and run the create policy checks.

    :raises ApiFault: 400 for a malformed request, 403 when a policy refuses part of it.
    """
    body: Any = _strip_unknown(req.body) if req.legacy_v2 else req.body
    _validator(req.version).validate(body)
    server: dict[str, Any] = body["server"]
    count = _count(server)
    target = {**own_target(req), "availability_zone": server.get("availability_zone")}
    req.authorize(SERVERS + "create", target)
    forced_host = _forced_host(req, server.get("availability_zone"), target)
    requested_host = None
    if req.version >= APIVersion(2, 74) and (server.get("host") or server.get("hypervisor_hostname")):
        req.authorize(REQUESTED_DESTINATION, target)
        if forced_host is not None:
            raise ApiFault(
                400,
                "One mechanism with host and/or hypervisor_hostname and another mechanism with zone:host:node "
                "are mutually exclusive.",
            )
        requested_host = server.get("host") or server.get("hypervisor_hostname")
        if server.get("host") and server.get("hypervisor_hostname") not in (None, server["host"]):
            raise ApiFault(400, f"Compute host {server['hypervisor_hostname']} could not be found.")
    _check_security_groups(server)
    volumes = _volumes(server)
    if volumes:
        req.authorize(SERVERS + "create:attach_volume", target)
    image_ref = _image_ref(server, bool(volumes))
    networks = _networks(server.get("networks"))
    if isinstance(networks, tuple) and networks:
        req.authorize(SERVERS + "create:attach_network", target)
    spec = ServerSpec(
        name=server["name"].strip(),
        image_ref=image_ref,
        flavor_id=id_from_href(server["flavorRef"]),
        networks=networks,
        volumes=volumes,
        metadata=dict(server.get("metadata") or {}),
        requested_host=requested_host,
        forced_host=forced_host,
        description=server.get("description"),
        access_ip_v4=server.get("accessIPv4") or None,
        access_ip_v6=normal_ip(server.get("accessIPv6")) or None,
        auto_disk_config=server.get("OS-DCF:diskConfig") == "AUTO",
        tags=tuple(server.get("tags") or ()),
        hostname=server.get("hostname"),
        key_name=server.get("key_name"),
        count=count,
        user_data=server.get("user_data"),
        config_drive=_truthy(server.get("config_drive", False)),
        trusted_image_certificates=_certificates(server.get("trusted_image_certificates")),
        scheduler_hints=dict(body.get("os:scheduler_hints") or body.get("OS-SCH-HNT:scheduler_hints") or {}),
    )
    admin_pass = server.get("adminPass") or "".join(secrets.choice(_PASSWORD_CHARS) for _ in range(12))
    return CreateRequest(spec, admin_pass, _truthy(server.get("return_reservation_id", False)))


def _certificates(value: object) -> tuple[str, ...] | None:
    return tuple(str(item) for item in value) if isinstance(value, list) else None


def _truthy(value: object) -> bool:
    return value is True or (isinstance(value, str) and value.lower() in ("true", "1", "on", "yes"))


def _count(server: dict[str, Any]) -> int:
    """How many servers to make: ``max_count`` (Herald has no quota that could make it fewer)."""
    min_count = int(server.get("min_count", 1))
    max_count = int(server.get("max_count", min_count))
    if min_count > max_count:
        raise ApiFault(400, "min_count must be <= max_count")
    return max_count


def _check_security_groups(server: dict[str, Any]) -> None:
    """Without a security group service only Nova's implicit ``default`` group exists."""
    for group in server.get("security_groups") or ():
        name = group.get("name")
        if name is not None and name != DEFAULT_SECURITY_GROUP:
            raise ApiFault(400, f"Security group {name} not found.")


def _forced_host(req: ApiRequest, zone: str | None, target: dict[str, object]) -> str | None:
    """Nova's ``parse_availability_zone``: ``zone:host[:node]`` forces a host (an admin-only rule)."""
    if not zone:
        return None
    name, _, rest = zone.partition(":")
    host, _, node = rest.partition(":")
    if name != DEFAULT_ZONE:
        raise ApiFault(400, "The requested availability zone is not available")
    if not (host or node):
        return None
    req.authorize(SERVERS + "create:forced_host", target)
    return host or node


def _image_ref(server: dict[str, Any], has_volumes: bool) -> str:
    image = server.get("imageRef")
    if not image:
        if has_volumes:
            return ""
        raise ApiFault(400, "Missing imageRef attribute")
    return id_from_href(image)


def _networks(requested: object) -> str | tuple[dict[str, str], ...]:
    """Nova's ``_get_requested_networks``; before 2.37 no ``networks`` means every available one ("auto")."""
    if requested is None:
        return "auto"
    if isinstance(requested, str):
        return requested
    assert isinstance(requested, list)
    parsed: list[dict[str, str]] = []
    ports: set[str] = set()
    for item in requested:
        port = item.get("port")
        if port:
            if port in ports:
                raise ApiFault(400, f"Port ID '{port}' was specified twice: you cannot attach a port multiple times.")
            if item.get("fixed_ip") is not None:
                raise ApiFault(
                    400,
                    f"Specified Fixed IP '{item['fixed_ip']}' cannot be used with port '{port}': "
                    "the two cannot be specified together.",
                )
            ports.add(port)
            parsed.append({"port": port})
            continue
        if "uuid" not in item:
            raise ApiFault(400, "Bad network format: missing 'uuid'")
        _check_network_id(item["uuid"])
        parsed.append({"uuid": item["uuid"]})
    return tuple(parsed)


def _check_network_id(network_id: str) -> None:
    if not is_uuid_like(network_id):
        raise ApiFault(400, f"Bad networks format: network uuid is not in proper format ({network_id})")


def _volumes(server: dict[str, Any]) -> tuple[RequestedVolume, ...]:
    legacy = server.get("block_device_mapping") or []
    mappings = server.get("block_device_mapping_v2") or []
    if legacy and mappings:
        raise ApiFault(400, "Using different block_device_mapping syntaxes is not allowed in the same request.")
    if legacy:
        return tuple(
            RequestedVolume(bdm["volume_id"], _size(bdm), 0 if _is_root(bdm.get("device_name")) else None)
            for bdm in legacy
            if bdm.get("volume_id")
        )
    return tuple(volume for bdm in mappings if (volume := _volume(bdm)) is not None)


def _volume(bdm: dict[str, Any]) -> RequestedVolume | None:
    source = bdm.get("source_type")
    boot_index = None if bdm.get("boot_index") is None else int(bdm["boot_index"])
    if source == "volume":
        volume_id = bdm.get("uuid") or bdm.get("volume_id")
        if not volume_id:
            raise ApiFault(400, "Block Device Mapping is Invalid: Missing volume uuid.")
        return RequestedVolume(str(volume_id), _size(bdm), boot_index)
    if bdm.get("destination_type") == "volume":
        if _size(bdm) is None:
            raise ApiFault(400, "Block Device Mapping is Invalid: You specified a new volume without volume_size.")
        return RequestedVolume(None, _size(bdm), boot_index)
    return None


def _size(bdm: dict[str, Any]) -> int | None:
    size = bdm.get("volume_size")
    return None if size is None else int(size)


def _is_root(device_name: object) -> bool:
    return isinstance(device_name, str) and device_name.removeprefix("/dev/") in ("vda", "sda", "xvda", "hda")
