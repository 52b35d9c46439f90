"""Hypothesis strategies for ``POST /os-server-external-events`` bodies: any JSON, and bodies close to valid."""

from __future__ import annotations

import uuid
from typing import Any

from hypothesis import strategies as st

from herald.domain.events import EventName, EventStatus

SOME_UUID = "7e3f8c62-5c4c-4e9e-a0b6-2f0d8b6d8c11"

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
# Any JSON value (what a parsed body can be).
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


def uuid_spellings(known: tuple[str, ...] = ()) -> st.SearchStrategy[str]:
    """UUIDs in the spellings an API meets: canonical, other cases and forms, and near misses."""
    base = st.sampled_from(known or (SOME_UUID,)) | st.sampled_from((SOME_UUID, *known)) | st.uuids().map(str)
    return st.one_of(
        base,
        base,
        base,
        base.map(str.upper),
        base.map(lambda u: u.replace("-", "")),
        base.map(lambda u: "{" + u + "}"),
        base.map(lambda u: "urn:uuid:" + u),
        base.map(lambda u: u + "\n"),
        base.map(lambda u: " " + u[1:]),
        base.map(lambda u: u.replace("-", "")[:-1] + "_"),
        base.map(lambda u: "+" + u.replace("-", "")[1:]),
        st.just("\u0660" * 32),
        st.text(max_size=40),
    )


def _mostly(right: st.SearchStrategy[Any], wrong: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Three draws in four from ``right``: most examples get far enough for the next field to matter."""
    return st.one_of(right, right, right, wrong)


def events_bodies(known_servers: tuple[str, ...] = ()) -> st.SearchStrategy[Any]:
    """Bodies shaped like an events request, each field right or wrong in many ways."""
    names = _mostly(st.sampled_from([n.value for n in EventName]), st.text(max_size=30) | json_scalars)
    statuses = _mostly(st.sampled_from([s.value for s in EventStatus]), st.text(max_size=10) | json_scalars)
    tags = _mostly(
        st.text(max_size=20),
        st.text(min_size=250, max_size=260) | st.text(alphabet="ab\x00", min_size=1, max_size=5) | json_scalars,
    )
    fields = st.fixed_dictionaries(
        {"server_uuid": _mostly(uuid_spellings(known_servers), json_scalars), "name": names},
        optional={"status": statuses, "tag": tags},
    )
    with_other_keys = st.tuples(fields, st.dictionaries(st.text(max_size=8), json_values, max_size=2)).map(
        lambda pair: {**pair[1], **pair[0]}
    )
    events = st.lists(_mostly(fields, with_other_keys | json_values), max_size=3)
    body = st.fixed_dictionaries({"events": events})
    return _mostly(body, body.map(lambda b: {**b, "extra": 1}) | json_values)


def stored_events_bodies(known_servers: tuple[str, ...]) -> st.SearchStrategy[Any]:
    """Valid bodies naming servers that exist: what the database then has to store (any tag text)."""
    event = st.fixed_dictionaries(
        {"server_uuid": st.sampled_from(known_servers), "name": st.sampled_from([n.value for n in EventName])},
        optional={
            "status": st.sampled_from([s.value for s in EventStatus]),
            "tag": st.text(max_size=255) | st.text(alphabet="\x00\x01a\u00e9\U0001f600", min_size=1, max_size=8),
        },
    )
    return st.fixed_dictionaries({"events": st.lists(event, min_size=1, max_size=3)})


def canonical_uuids(body: Any) -> Any:
    """``body`` with every UUID-like ``server_uuid`` spelt canonically (what the fast parser takes)."""
    from herald.domain.uuids import is_uuid_like

    if not (isinstance(body, dict) and isinstance(body.get("events"), list)):
        return body
    events = []
    for item in body["events"]:
        if isinstance(item, dict) and is_uuid_like(item.get("server_uuid")):
            item = {**item, "server_uuid": str(uuid.UUID(item["server_uuid"]))}
        events.append(item)
    return {**body, "events": events}
