"""JSON-Schema validation with Nova's 400 message format."""

from __future__ import annotations

from typing import Any

import jsonschema
from jsonschema.exceptions import best_match

from herald.api.faults import ApiFault
from herald.domain.uuids import is_uuid_like

FORMAT_CHECKER = jsonschema.FormatChecker()


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
