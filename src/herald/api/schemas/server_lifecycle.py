"""Request schemas of reboot, rebuild, restore, forceDelete and the security group actions (Nova's)."""

from __future__ import annotations

import copy
from typing import Any

from herald.api.microversion import APIVersion
from herald.api.schemas.servers import (
    BOOLEAN,
    DESCRIPTION,
    FQDN,
    HOSTNAME,
    METADATA,
    NAME,
    NAME_WITH_SPACES,
    UUID,
)

reboot: dict[str, Any] = {
    "type": "object",
    "properties": {
        "reboot": {
            "type": "object",
            "properties": {"type": {"type": "string", "enum": ["HARD", "Hard", "hard", "SOFT", "Soft", "soft"]}},
            "required": ["type"],
            "additionalProperties": False,
        }
    },
    "required": ["reboot"],
    "additionalProperties": False,
}

restore: dict[str, Any] = {
    "type": "object",
    "properties": {"restore": {}},
    "required": ["restore"],
    "additionalProperties": False,
}
force_delete: dict[str, Any] = {
    "type": "object",
    "properties": {"forceDelete": {}},
    "required": ["forceDelete"],
    "additionalProperties": False,
}


def _security_group(action: str) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            action: {
                "type": "object",
                "properties": {"name": {"type": "string", "minLength": 1}},
                "required": ["name"],
                "additionalProperties": False,
            }
        },
        "required": [action],
        "additionalProperties": True,
    }


add_security_group = _security_group("addSecurityGroup")
remove_security_group = _security_group("removeSecurityGroup")

rebuild: dict[str, Any] = {
    "type": "object",
    "properties": {
        "rebuild": {
            "type": "object",
            "properties": {
                "name": NAME,
                "imageRef": UUID,
                "adminPass": {"type": "string"},
                "metadata": METADATA,
                "preserve_ephemeral": BOOLEAN,
                "OS-DCF:diskConfig": {"type": "string", "enum": ["AUTO", "MANUAL"]},
                "accessIPv4": {"type": "string", "format": "ipv4"},
                "accessIPv6": {"type": "string", "format": "ipv6"},
                "personality": {"type": "array", "items": {"type": "object"}},
            },
            "required": ["imageRef"],
            "additionalProperties": False,
        }
    },
    "required": ["rebuild"],
    "additionalProperties": False,
}


def _derive(previous: dict[str, Any], **properties: Any) -> dict[str, Any]:
    schema = copy.deepcopy(previous)
    schema["properties"]["rebuild"]["properties"].update(copy.deepcopy(properties))
    return schema


rebuild_v20 = _derive(rebuild, name=NAME_WITH_SPACES)
rebuild_v219 = _derive(rebuild, description=DESCRIPTION)
rebuild_v254 = _derive(rebuild_v219, key_name={"oneOf": [NAME, {"type": "null"}]})
rebuild_v257 = _derive(rebuild_v254, user_data={"type": ["string", "null"], "format": "base64", "maxLength": 65535})
del rebuild_v257["properties"]["rebuild"]["properties"]["personality"]
rebuild_v263 = _derive(
    rebuild_v257,
    trusted_image_certificates={
        "type": ["array", "null"],
        "minItems": 1,
        "maxItems": 50,
        "uniqueItems": True,
        "items": {"type": "string", "minLength": 1},
    },
)
rebuild_v290 = _derive(rebuild_v263, hostname=HOSTNAME)
rebuild_v294 = _derive(rebuild_v290, hostname=FQDN)

REBUILD_SCHEMAS: tuple[tuple[APIVersion, dict[str, Any]], ...] = (
    (APIVersion(2, 0), rebuild_v20),
    (APIVersion(2, 1), rebuild),
    (APIVersion(2, 19), rebuild_v219),
    (APIVersion(2, 54), rebuild_v254),
    (APIVersion(2, 57), rebuild_v257),
    (APIVersion(2, 63), rebuild_v263),
    (APIVersion(2, 90), rebuild_v290),
    (APIVersion(2, 94), rebuild_v294),
)
