"""Request and response schemas of ``POST /os-server-external-events``, one per microversion range.

Each version's schema is the previous one with its name enum widened; the names come
from ``domain.events`` so the list is never written twice.
"""

from __future__ import annotations

import copy
from typing import Any

from herald.api.microversion import APIVersion
from herald.domain.events import SCHEMA_VERSIONS, EventStatus, names_for_version

TAG_MAX_LENGTH = 255
# NOTE: stricter than Nova: a tag is stored, and PostgreSQL cannot store a NUL character.
TAG_PATTERN = "^[^\\x00]*$"

create: dict[str, Any] = {
    "type": "object",
    "properties": {
        "events": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "properties": {
                    "server_uuid": {"type": "string", "format": "uuid"},
                    "name": {"type": "string", "enum": names_for_version((2, 0))},
                    "status": {"type": "string", "enum": [s.value for s in EventStatus]},
                    "tag": {"type": "string", "maxLength": TAG_MAX_LENGTH, "pattern": TAG_PATTERN},
                },
                "required": ["server_uuid", "name"],
                "additionalProperties": False,
            },
        },
    },
    "required": ["events"],
    "additionalProperties": False,
}


def _widen(previous: dict[str, Any], version: tuple[int, int]) -> dict[str, Any]:
    schema = copy.deepcopy(previous)
    schema["properties"]["events"]["items"]["properties"]["name"]["enum"] = names_for_version(version)
    return schema


create_v251 = _widen(create, (2, 51))
create_v276 = _widen(create_v251, (2, 76))
create_v282 = _widen(create_v276, (2, 82))
create_v293 = _widen(create_v282, (2, 93))

# (first version, schema), oldest first; a request uses the last entry at or below its version.
REQUEST_SCHEMAS: tuple[tuple[tuple[int, int], dict[str, Any]], ...] = (
    ((2, 0), create),
    ((2, 51), create_v251),
    ((2, 76), create_v276),
    ((2, 82), create_v282),
    ((2, 93), create_v293),
)
assert tuple(v for v, _ in REQUEST_SCHEMAS) == SCHEMA_VERSIONS

create_response: dict[str, Any] = {
    "type": "object",
    "properties": {
        "events": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "code": {"type": "integer", "enum": [200, 400, 404, 422]},
                    "name": {"type": "string"},
                    "server_uuid": {"type": "string", "format": "uuid"},
                    "status": {"type": "string", "enum": [s.value for s in EventStatus]},
                    "tag": {"type": "string"},
                },
                "required": ["code", "name", "server_uuid", "status"],
                "additionalProperties": False,
            },
        },
    },
    "required": ["events"],
    "additionalProperties": False,
}


def request_schema(version: APIVersion | tuple[int, int]) -> dict[str, Any]:
    chosen = REQUEST_SCHEMAS[0][1]
    for since, schema in REQUEST_SCHEMAS:
        if tuple(version) >= since:
            chosen = schema
    return chosen
