"""JSON-Schema validation with Nova's 400 message format."""

from __future__ import annotations

import base64
import binascii
import functools
from typing import TYPE_CHECKING, Any

from herald.api.faults import ApiFault
from herald.api.microversion import APIVersion
from herald.domain.uuids import is_uuid_like

if TYPE_CHECKING:
    import jsonschema


def is_base64(value: object) -> bool:
    """What Nova's base64 format accepts: anything Python's lenient decoder can decode."""
    if not isinstance(value, str):
        return True
    try:
        base64.b64decode(value)
    except (binascii.Error, ValueError):
        return False
    return True


def uuid_format(value: object) -> bool:
    """The ``uuid`` format: a string must be UUID-like; other types are the ``type`` keyword's business."""
    return not isinstance(value, str) or is_uuid_like(value)


@functools.cache
def format_checker() -> jsonschema.FormatChecker:
    """The formats Nova's schemas use, on top of jsonschema's own."""
    import jsonschema

    checker = jsonschema.FormatChecker()
    checker.checks("base64")(is_base64)
    checker.checks("uuid")(uuid_format)
    return checker


class SchemaValidator:
    """Validates a request body against one schema and raises Nova's 400 on the best error.

    jsonschema (about 10 MB in each API worker) is imported when a body first needs it: the hot
    routes check their common bodies without it.
    """

    def __init__(self, schema: dict[str, Any]) -> None:
        self._schema = schema
        self._validator: jsonschema.Draft202012Validator | None = None

    def _compiled(self) -> jsonschema.Draft202012Validator:
        if self._validator is None:
            import jsonschema

            jsonschema.Draft202012Validator.check_schema(self._schema)
            self._validator = jsonschema.Draft202012Validator(self._schema, format_checker=format_checker())
        return self._validator

    def validate(self, body: object) -> None:
        from jsonschema.exceptions import best_match

        error = best_match(self._compiled().iter_errors(body))
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
