"""Agent messages as JSON bytes and back (what travels through RabbitMQ).

A message is ``{"v": 1, "type": <class name>, "body": {...}}``. ``v`` changes only when a
body's meaning changes; a reader refuses a version or a type it does not know (the message
is then dead-lettered, never half-understood).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson

from herald.domain.errors import HeraldError
from herald.domain.messages import (
    AttachInterface,
    AttachVolume,
    BuildServer,
    ConfirmResize,
    DeleteServer,
    DeliverEvents,
    DetachInterface,
    DetachVolume,
    FinishResize,
    FinishRevertResize,
    PrepResize,
    RebootServer,
    RebuildServer,
    ResizeInstance,
    RestoreServer,
    RevertResize,
    ServerCommand,
    ShelveOffloadServer,
    ShelveServer,
    SoftDeleteServer,
    StartServer,
    StopServer,
    UnshelveServer,
)
from herald.domain.records import EventEnvelope

VERSION = 1
CONTENT_TYPE = "application/json"

COMMANDS: dict[str, type[ServerCommand]] = {
    cls.__name__: cls
    for cls in (
        BuildServer,
        StopServer,
        StartServer,
        ShelveServer,
        ShelveOffloadServer,
        UnshelveServer,
        DeleteServer,
        AttachInterface,
        DetachInterface,
        AttachVolume,
        DetachVolume,
        RebootServer,
        RebuildServer,
        SoftDeleteServer,
        RestoreServer,
        PrepResize,
        ResizeInstance,
        FinishResize,
        ConfirmResize,
        RevertResize,
        FinishRevertResize,
    )
}
_ENVELOPE_FIELDS = frozenset(f.name for f in dataclasses.fields(EventEnvelope))


class CodecError(HeraldError):
    """Bytes that are not an agent message this version of Herald knows."""


def encode(message: object) -> bytes:
    """:raises CodecError: ``message`` is not an agent message."""
    # NOTE: orjson writes a dataclass as the object of its fields, nested ones too, without the
    # deep copy of dataclasses.asdict (the relay's hot path).
    if not isinstance(message, DeliverEvents) and not (
        type(message).__name__ in COMMANDS and isinstance(message, ServerCommand)
    ):
        raise CodecError(f"not an agent message: {type(message).__name__}")
    return orjson.dumps({"v": VERSION, "type": type(message).__name__, "body": message})


def decode(data: bytes) -> object:
    """:raises CodecError: not JSON, another version, an unknown type or fields that do not fit it."""
    try:
        document = orjson.loads(data)
        if not isinstance(document, dict):
            raise CodecError("an agent message is a JSON object")
        if document.get("v") != VERSION:
            raise CodecError(f"unsupported message version {document.get('v')!r} (this reader knows {VERSION})")
        kind = document.get("type")
        body = document.get("body")
        if not isinstance(body, dict):
            raise CodecError("the message has no body object")
        if kind == "DeliverEvents":
            return _deliver_events(body)
        command = COMMANDS.get(kind) if isinstance(kind, str) else None
        if command is None:
            raise CodecError(f"unknown message type {kind!r}")
        return command(**body)
    except orjson.JSONDecodeError as exc:
        raise CodecError(f"not JSON: {exc}") from None
    except TypeError as exc:
        raise CodecError(f"fields do not fit the message type: {exc}") from None


def _deliver_events(body: dict[str, Any]) -> DeliverEvents:
    events = body.get("events")
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        raise CodecError("DeliverEvents needs a list of event objects")
    for event in events:
        unknown = set(event) - _ENVELOPE_FIELDS
        if unknown:
            raise CodecError(f"unknown event fields {sorted(unknown)}")
    return DeliverEvents(tuple(EventEnvelope(**e) for e in events), redelivery=bool(body.get("redelivery", False)))
