"""Request schemas of ``os-keypairs``, one per microversion that changes them."""

from __future__ import annotations

from typing import Any

from herald.api.microversion import APIVersion
from herald.api.schemas.servers import NAME, NAME_WITH_SPACES

_NAME_CHARS: dict[str, Any] = {"type": "string", "pattern": r"^[_\- a-zA-Z0-9]+$", "minLength": 1, "maxLength": 255}
_NAME_CHARS_V292: dict[str, Any] = {
    "type": "string",
    "pattern": r"^[_\-\@\. a-zA-Z0-9]+$",
    "minLength": 1,
    "maxLength": 255,
}
KEY_TYPE: dict[str, Any] = {"type": "string", "enum": ["ssh", "x509"]}


def _create(
    name: dict[str, Any], *, key_type: bool = False, user_id: bool = False, public_key_required: bool = False
) -> dict[str, Any]:
    properties: dict[str, Any] = {"name": name, "public_key": {"type": "string"}}
    if key_type:
        properties["type"] = KEY_TYPE
    if user_id:
        properties["user_id"] = {"type": "string"}
    return {
        "type": "object",
        "properties": {
            "keypair": {
                "type": "object",
                "properties": properties,
                "required": ["name", "public_key"] if public_key_required else ["name"],
                "additionalProperties": False,
            }
        },
        "required": ["keypair"],
        "additionalProperties": False,
    }


_NAME = {"allOf": [NAME, _NAME_CHARS]}
_NAME_V292 = {"allOf": [NAME, _NAME_CHARS_V292]}

# (first version, schema), oldest first.
CREATE_SCHEMAS: tuple[tuple[APIVersion, dict[str, Any]], ...] = (
    (APIVersion(2, 0), _create(NAME_WITH_SPACES)),
    (APIVersion(2, 1), _create(_NAME)),
    (APIVersion(2, 2), _create(_NAME, key_type=True)),
    (APIVersion(2, 10), _create(_NAME, key_type=True, user_id=True)),
    (APIVersion(2, 92), _create(_NAME_V292, key_type=True, user_id=True, public_key_required=True)),
)
