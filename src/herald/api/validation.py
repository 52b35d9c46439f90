"""JSON-Schema validation with Nova's 400 message format."""

from __future__ import annotations

import base64
import binascii
from typing import Any

import jsonschema
from jsonschema.exceptions import best_match

from herald.api.faults import ApiFault
from herald.api.microversion import APIVersion
from herald.domain.uuids import is_uuid_like

FORMAT_CHECKER = jsonschema.FormatChecker()


@FORMAT_CHECKER.checks("base64")
def is_base64(value: object) -> bool:
    """What Nova's base64 format accepts: anything Python's lenient decoder can decode."""
    if not isinstance(value, str):
        return True
    try:
        base64.b64decode(value)
    except (binascii.Error, ValueError):
        return False
    return True


@FORMAT_CHECKER.checks("uuid")
def uuid_format(value: object) -> bool:
    """The ``uuid`` format: a string must be UUID-like; other types are the ``type`` keyword's business."""
    return not isinstance(value, str) or is_uuid_like(value)


class SchemaValidator:
    """Validates a request body against one schema and raises Nova's 400 on the best error."""

    def __init__(self, schema: dict[str, Any]) -> None:
        jsonschema.Draft202012Validator.check_schema(schema)
        self._validator = jsonschema.Draft202012Validator(schema, format_checker=FORMAT_CHECKER)

    def validate(self, body: object) -> None:
        error = best_match(self._validator.iter_errors(body))
        if error is None:
            return
        if error.path:
            detail = f"Invalid input for field/attribute {error.path[-1]}. Value: {error.instance}. {error.message}"
        else:
            detail = error.message
        raise ApiFault(400, detail)


class VersionedValidator:
    """One validator per microversion range: ``schemas`` is (first version, schema), oldest first."""

    def __init__(self, schemas: tuple[tuple[APIVersion, dict[str, Any]], ...]) -> None:
        self._validators = [(first, SchemaValidator(schema)) for first, schema in schemas]

    def validate(self, version: APIVersion, body: object) -> None:
        chosen = self._validators[0][1]
        for first, validator in self._validators:
            if version >= first:
                chosen = validator
        chosen.validate(body)
