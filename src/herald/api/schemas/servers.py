"""Request schemas of the servers API, one per microversion that changes them (Nova's ``schemas/servers.py``).

Each version's schema is a deep copy of the previous one plus its change. Herald keeps the
properties Nova accepts, so a valid Nova request is valid here, and uses the ones it models.
"""

from __future__ import annotations

import copy
from typing import Any

from herald.api.microversion import APIVersion

# Nova's 'name' format: printable, no leading or trailing whitespace.
NAME: dict[str, Any] = {"type": "string", "pattern": r"^\S(?:.*\S)?$", "minLength": 1, "maxLength": 255}
NAME_WITH_SPACES: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": 255}
UUID: dict[str, Any] = {"type": "string", "format": "uuid"}
BOOLEAN: dict[str, Any] = {
    "type": ["boolean", "string"],
    "enum": [
        True,
        "True",
        "TRUE",
        "true",
        "1",
        "ON",
        "On",
        "on",
        "YES",
        "Yes",
        "yes",
        False,
        "False",
        "FALSE",
        "false",
        "0",
        "OFF",
        "Off",
        "off",
        "NO",
        "No",
        "no",
    ],
}
POSITIVE_INTEGER: dict[str, Any] = {"type": ["integer", "string"], "pattern": "^[0-9]*$", "minimum": 1, "minLength": 1}
VOLUME_SIZE: dict[str, Any] = {
    "type": ["integer", "string"],
    "pattern": "^[0-9]+$",
    "minimum": 1,
    "maximum": 0x7FFFFFFF,
}
TAG: dict[str, Any] = {"type": "string", "pattern": "^[^,/]*$", "minLength": 1, "maxLength": 60}
FQDN: dict[str, Any] = {"type": "string", "pattern": "^[a-zA-Z0-9-._]*$", "minLength": 1, "maxLength": 255}
HOSTNAME: dict[str, Any] = {
    "type": "string",
    "pattern": "^[a-zA-Z0-9]+[a-zA-Z0-9-]*[a-zA-Z0-9]+$",
    "minLength": 2,
    "maxLength": 63,
}
METADATA: dict[str, Any] = {
    "type": "object",
    "patternProperties": {"^[a-zA-Z0-9-_:. ]{1,255}$": {"type": "string", "maxLength": 255}},
    "additionalProperties": False,
}
IP_ADDRESS: dict[str, Any] = {"type": "string", "oneOf": [{"format": "ipv4"}, {"format": "ipv6"}]}

_BDM_V2: dict[str, Any] = {
    "type": "object",
    "properties": {
        "virtual_name": {"type": "string", "maxLength": 255},
        "volume_id": UUID,
        "snapshot_id": UUID,
        "volume_size": VOLUME_SIZE,
        "device_name": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[a-zA-Z0-9._/-]*$"},
        "delete_on_termination": BOOLEAN,
        "no_device": {},
        "connection_info": {"type": "string", "maxLength": 16777215},
        "source_type": {"type": "string", "enum": ["volume", "image", "snapshot", "blank"]},
        "uuid": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[a-zA-Z0-9._-]*$"},
        "image_id": UUID,
        "destination_type": {"type": "string", "enum": ["local", "volume"]},
        "guest_format": {"type": "string", "maxLength": 255},
        "device_type": {"type": "string", "maxLength": 255},
        "disk_bus": {"type": "string", "maxLength": 255},
        "boot_index": {"type": ["integer", "string", "null"], "pattern": "^-?[0-9]+$"},
    },
    "additionalProperties": False,
}
_LEGACY_BDM: dict[str, Any] = copy.deepcopy(_BDM_V2)
for _key in (
    "source_type",
    "uuid",
    "image_id",
    "destination_type",
    "guest_format",
    "device_type",
    "disk_bus",
    "boot_index",
):
    del _LEGACY_BDM["properties"][_key]

_NETWORK_ITEM: dict[str, Any] = {
    "type": "object",
    "properties": {
        "fixed_ip": IP_ADDRESS,
        "port": {"type": ["string", "null"], "format": "uuid"},
        "uuid": {"type": "string"},
    },
    "additionalProperties": False,
}
_HINTS: dict[str, Any] = {"type": "object", "additionalProperties": True}

create: dict[str, Any] = {
    "type": "object",
    "properties": {
        "server": {
            "type": "object",
            "properties": {
                "name": NAME,
                "imageRef": {"oneOf": [UUID, {"type": "string", "maxLength": 0}]},
                "flavorRef": {"type": ["string", "integer"], "minLength": 1},
                "adminPass": {"type": "string"},
                "metadata": METADATA,
                "networks": {"type": "array", "items": _NETWORK_ITEM},
                "OS-DCF:diskConfig": {"type": "string", "enum": ["AUTO", "MANUAL"]},
                "accessIPv4": {"type": "string", "format": "ipv4"},
                "accessIPv6": {"type": "string", "format": "ipv6"},
                "personality": {"type": "array", "items": {"type": "object"}},
                "availability_zone": NAME,
                "block_device_mapping": {"type": "array", "items": _LEGACY_BDM},
                "block_device_mapping_v2": {"type": "array", "items": _BDM_V2},
                "config_drive": BOOLEAN,
                "key_name": NAME,
                "min_count": POSITIVE_INTEGER,
                "max_count": POSITIVE_INTEGER,
                "return_reservation_id": BOOLEAN,
                "security_groups": {
                    "type": "array",
                    "items": {"type": "object", "properties": {"name": NAME}, "additionalProperties": False},
                },
                "user_data": {"type": "string", "format": "base64", "maxLength": 65535},
            },
            "required": ["name", "flavorRef"],
            "additionalProperties": False,
        },
        "os:scheduler_hints": _HINTS,
        "OS-SCH-HNT:scheduler_hints": _HINTS,
    },
    "required": ["server"],
    "additionalProperties": False,
}


def _derive(previous: dict[str, Any], **properties: Any) -> dict[str, Any]:
    schema = copy.deepcopy(previous)
    schema["properties"]["server"]["properties"].update(copy.deepcopy(properties))
    return schema


def _server(schema: dict[str, Any]) -> dict[str, Any]:
    props: dict[str, Any] = schema["properties"]["server"]["properties"]
    return props


create_v20 = _derive(create, name=NAME_WITH_SPACES, availability_zone=NAME_WITH_SPACES, key_name=NAME_WITH_SPACES)
_server(create_v20)["user_data"]["type"] = ["string", "null"]
create_v219 = _derive(create, description={"type": ["string", "null"], "minLength": 0, "maxLength": 255})
create_v232 = copy.deepcopy(create_v219)
_server(create_v232)["networks"]["items"]["properties"]["tag"] = TAG
_server(create_v232)["block_device_mapping_v2"]["items"]["properties"]["tag"] = TAG
create_v233 = copy.deepcopy(create_v219)
_server(create_v233)["networks"]["items"]["properties"]["tag"] = TAG
# 2.37: networks is required, and is "auto", "none" or a list whose uuids are UUIDs.
_NETWORKS_V237 = copy.deepcopy(_NETWORK_ITEM)
_NETWORKS_V237["properties"]["uuid"] = UUID
create_v237 = _derive(
    create_v233,
    networks={"oneOf": [{"type": "array", "items": _NETWORKS_V237}, {"type": "string", "enum": ["none", "auto"]}]},
)
_server_required = create_v237["properties"]["server"]["required"]
_server_required.append("networks")
create_v242 = copy.deepcopy(create_v237)
_server(create_v242)["networks"]["oneOf"][0]["items"]["properties"]["tag"] = TAG
_server(create_v242)["block_device_mapping_v2"]["items"]["properties"]["tag"] = TAG
create_v252 = _derive(create_v242, tags={"type": "array", "items": TAG, "maxItems": 50})
create_v257 = copy.deepcopy(create_v252)
del _server(create_v257)["personality"]
create_v263 = _derive(
    create_v257,
    trusted_image_certificates={
        "type": ["array", "null"],
        "minItems": 1,
        "maxItems": 50,
        "uniqueItems": True,
        "items": {"type": "string", "minLength": 1},
    },
)
create_v267 = copy.deepcopy(create_v263)
_server(create_v267)["block_device_mapping_v2"]["items"]["properties"]["volume_type"] = {
    "type": ["string", "null"],
    "minLength": 0,
    "maxLength": 255,
}
create_v274 = _derive(create_v267, host=FQDN, hypervisor_hostname=FQDN)
create_v290 = _derive(create_v274, hostname=HOSTNAME)
create_v294 = _derive(create_v290, hostname=FQDN)

# (first version, schema), oldest first: a request uses the last one at or below its version.
CREATE_SCHEMAS: tuple[tuple[APIVersion, dict[str, Any]], ...] = (
    (APIVersion(2, 0), create_v20),
    (APIVersion(2, 1), create),
    (APIVersion(2, 19), create_v219),
    (APIVersion(2, 32), create_v232),
    (APIVersion(2, 33), create_v233),
    (APIVersion(2, 37), create_v237),
    (APIVersion(2, 42), create_v242),
    (APIVersion(2, 52), create_v252),
    (APIVersion(2, 57), create_v257),
    (APIVersion(2, 63), create_v263),
    (APIVersion(2, 67), create_v267),
    (APIVersion(2, 74), create_v274),
    (APIVersion(2, 90), create_v290),
    (APIVersion(2, 94), create_v294),
)

DESCRIPTION: dict[str, Any] = {"type": ["string", "null"], "minLength": 0, "maxLength": 255}


def _update(**server: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"server": {"type": "object", "properties": server, "additionalProperties": False}},
        "required": ["server"],
        "additionalProperties": False,
    }


_UPDATE_FIELDS: dict[str, Any] = {
    "name": NAME,
    "OS-DCF:diskConfig": {"type": "string", "enum": ["AUTO", "MANUAL"]},
    "accessIPv4": {"type": "string", "format": "ipv4"},
    "accessIPv6": {"type": "string", "format": "ipv6"},
}
UPDATE_SCHEMAS: tuple[tuple[APIVersion, dict[str, Any]], ...] = (
    (APIVersion(2, 0), _update(**{**_UPDATE_FIELDS, "name": NAME_WITH_SPACES})),
    (APIVersion(2, 1), _update(**_UPDATE_FIELDS)),
    (APIVersion(2, 19), _update(**_UPDATE_FIELDS, description=DESCRIPTION)),
    (APIVersion(2, 90), _update(**_UPDATE_FIELDS, description=DESCRIPTION, hostname=HOSTNAME)),
    (APIVersion(2, 94), _update(**_UPDATE_FIELDS, description=DESCRIPTION, hostname=FQDN)),
)


def _wrapped(name: str, value: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": {name: value}, "required": [name], "additionalProperties": False}


metadata_create = _wrapped("metadata", METADATA)
metadata_update_all = _wrapped("metadata", METADATA)
metadata_update = _wrapped("meta", {**METADATA, "minProperties": 1, "maxProperties": 1})
tags_update_all = _wrapped("tags", {"type": "array", "items": TAG, "maxItems": 50})


def _action(name: str, value: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {name: value if value is not None else {}},
        "required": [name],
        "additionalProperties": False,
    }


start = _action("os-start")
stop = _action("os-stop")
shelve = _action("shelve")
shelve_offload = _action("shelveOffload")
unshelve = _action("unshelve")
unshelve_v277 = _action(
    "unshelve",
    {
        "type": ["object", "null"],
        "properties": {"availability_zone": NAME},
        "required": ["availability_zone"],
        "additionalProperties": False,
    },
)
unshelve_v291 = _action(
    "unshelve",
    {
        "type": ["object", "null"],
        "properties": {"availability_zone": {"type": ["string", "null"]}, "host": {"type": "string"}},
        "additionalProperties": False,
    },
)
lock = _action("lock")
lock_v273 = _action(
    "lock",
    {
        "type": ["object", "null"],
        "properties": {"locked_reason": {"type": "string", "minLength": 1, "maxLength": 255}},
        "additionalProperties": False,
    },
)
unlock = _action("unlock")
reset_state = _action(
    "os-resetState",
    {
        "type": "object",
        "properties": {"state": {"type": "string", "enum": ["active", "error"]}},
        "required": ["state"],
        "additionalProperties": False,
    },
)
UNSHELVE_SCHEMAS: tuple[tuple[APIVersion, dict[str, Any]], ...] = (
    (APIVersion(2, 0), unshelve),
    (APIVersion(2, 77), unshelve_v277),
    (APIVersion(2, 91), unshelve_v291),
)


def for_version(schemas: tuple[tuple[APIVersion, dict[str, Any]], ...], version: APIVersion) -> dict[str, Any]:
    """The schema in force at ``version``."""
    chosen = schemas[0][1]
    for first, schema in schemas:
        if version >= first:
            chosen = schema
    return chosen


# --- cold moves --------------------------------------------------------------------------------
# NOTE: Nova validates migrate's body only from 2.56 (the host); before, the body is not looked at.
migrate_v256 = _action(
    "migrate",
    {
        "type": ["object", "null"],
        "properties": {"host": {**FQDN, "type": ["string", "null"]}},
        "additionalProperties": False,
    },
)
resize = _action(
    "resize",
    {
        "type": "object",
        "properties": {
            "flavorRef": {"type": ["string", "integer"], "minLength": 1},
            "OS-DCF:diskConfig": {"type": "string", "enum": ["AUTO", "MANUAL"]},
        },
        "required": ["flavorRef"],
        "additionalProperties": False,
    },
)
confirm_resize = _action("confirmResize")
revert_resize = _action("revertResize")
