"""The hand-written fast parser and the jsonschema validator of the events body agree on every input."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings

from herald.api.faults import ApiFault
from herald.api.schemas.server_external_events import request_schema
from herald.api.server_external_events import _fast_parse, _parse
from herald.api.validation import SchemaValidator
from herald.domain.events import SCHEMA_VERSIONS, EventName, names_for_version
from herald.service.accept import IncomingEvent
from tests.event_bodies import SOME_UUID, canonical_uuids, events_bodies, json_values

RULES = {
    version: (SchemaValidator(request_schema(version)), {n: EventName(n) for n in names_for_version(version)})
    for version in SCHEMA_VERSIONS
}


def _schema_verdict(version: tuple[int, int], body: Any) -> list[IncomingEvent] | None:
    validator, names = RULES[version]
    try:
        validator.validate(body)
    except ApiFault as fault:
        status = fault.status
    else:
        return _parse(body, names)
    assert status == 400
    return None


def _agree(body: Any) -> None:
    for version, (_, names) in RULES.items():
        fast = _fast_parse(body, names)
        full = _schema_verdict(version, body)
        if fast is not None:
            assert full == fast, (version, body)
        # The fast path only leaves valid bodies to the validator for their UUID spellings.
        assert _fast_parse(canonical_uuids(body), names) == full, (version, body)


@settings(max_examples=200, deadline=None)
@given(body=events_bodies())
def test_the_two_parsers_agree_on_bodies_shaped_like_events(body: Any) -> None:
    _agree(body)


@settings(max_examples=200, deadline=None)
@given(body=json_values)
def test_the_two_parsers_agree_on_any_json(body: Any) -> None:
    _agree(body)


@pytest.mark.parametrize(
    "event",
    [
        {"name": "network-changed", "server_uuid": "\u0660" * 32},
        {"name": "network-changed", "server_uuid": SOME_UUID + "\n"},
        {"name": "network-changed", "server_uuid": SOME_UUID, "tag": "a\x00b"},
        {"name": "network-changed", "server_uuid": SOME_UUID, "tag": "t" * 256},
        {"name": "network-changed", "server_uuid": SOME_UUID, "tag": None},
    ],
)
def test_both_refuse(event: dict[str, object]) -> None:
    for version, (_, names) in RULES.items():
        assert _fast_parse({"events": [event]}, names) is None
        assert _schema_verdict(version, {"events": [event]}) is None


def test_both_accept_a_canonical_event_and_the_validator_other_spellings() -> None:
    _, names = RULES[(2, 0)]
    event = {"name": "network-changed", "server_uuid": SOME_UUID, "tag": "t" * 255}
    assert _fast_parse({"events": [event]}, names) == _schema_verdict((2, 0), {"events": [event]})
    upper = {**event, "server_uuid": "{" + SOME_UUID.upper() + "}"}
    assert _fast_parse({"events": [upper]}, names) is None
    assert _schema_verdict((2, 0), {"events": [upper]}) == _fast_parse({"events": [event]}, names)
