"""The bus codec: every agent message survives the trip to JSON bytes and back; bad bytes are refused."""

from __future__ import annotations

from typing import get_args

import orjson
import pytest

from herald.adapters.bus.codec import COMMANDS, CodecError, decode, encode
from herald.domain.messages import (
    AgentMessage,
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
    ShelveOffloadServer,
    ShelveServer,
    SoftDeleteServer,
    StartServer,
    StopServer,
    UnshelveServer,
)
from herald.domain.records import EventEnvelope

SERVER = "8b1f6f7e-3c1e-4b39-9d5e-1f0c2a3b4c5d"
ENVELOPE = EventEnvelope("e-1", "req-1", SERVER, "power-update", "POWER_OFF", "completed", "compute-1", "u", "p", 42)

MESSAGES = [
    DeliverEvents((ENVELOPE,)),
    DeliverEvents((ENVELOPE, EventEnvelope("e-2", "req-2", SERVER, "network-changed", None, "completed", "c")), True),
    DeliverEvents(()),
    BuildServer(SERVER, "req-b"),
    StopServer(SERVER, "req-s"),
    StopServer(SERVER, "req-s", from_power_sync=True),
    StartServer(SERVER, "req-st"),
    ShelveServer(SERVER, "req-sh", offload=False),
    ShelveOffloadServer(SERVER, "req-so"),
    UnshelveServer(SERVER, "req-u"),
    DeleteServer(SERVER, "req-d"),
    AttachInterface(SERVER, "req-ai", "port-1", None, "nic1"),
    AttachInterface(SERVER, "req-ai", "port-2", "net-1"),
    DetachInterface(SERVER, "req-di", "port-1"),
    AttachVolume(SERVER, "req-av", "vol-1"),
    DetachVolume(SERVER, "req-dv", "vol-1"),
    RebootServer(SERVER, "req-r", hard=True),
    RebuildServer(SERVER, "req-rb", was_stopped=True, reimage_volume_id="v-1", reimage_size_gb=2),
    SoftDeleteServer(SERVER, "req-sd"),
    RestoreServer(SERVER, "req-rs"),
    PrepResize(SERVER, "req-m", 7),
    ResizeInstance(SERVER, "req-m", 7),
    FinishResize(SERVER, "req-m", 7),
    ConfirmResize(SERVER, "req-c", 7),
    RevertResize(SERVER, "req-r", 7),
    FinishRevertResize(SERVER, "req-r", 7),
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_round_trip(message: object) -> None:
    data = encode(message)
    assert isinstance(data, bytes)
    assert decode(data) == message


def test_every_message_type_is_covered() -> None:
    assert {cls.__name__ for cls in get_args(AgentMessage)} == {type(m).__name__ for m in MESSAGES}
    assert set(COMMANDS) == {cls.__name__ for cls in get_args(AgentMessage)} - {"DeliverEvents"}


def test_the_format_is_versioned_json() -> None:
    document = orjson.loads(encode(StopServer(SERVER, "req-s")))
    assert document == {
        "v": 1,
        "type": "StopServer",
        "body": {"server_uuid": SERVER, "request_id": "req-s", "from_power_sync": False},
    }


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"not json", "not JSON"),
        (b"[1]", "JSON object"),
        (b'{"v": 2, "type": "StopServer", "body": {}}', "unsupported message version 2"),
        (b'{"v": 1, "type": "Reboot", "body": {}}', "unknown message type 'Reboot'"),
        (b'{"v": 1, "type": "StopServer"}', "no body"),
        (b'{"v": 1, "type": "StopServer", "body": {"server_uuid": "x"}}', "fields do not fit"),
        (b'{"v": 1, "type": "DeliverEvents", "body": {"events": [{"evil": 1}]}}', "unknown event fields"),
        (b'{"v": 1, "type": "DeliverEvents", "body": {"events": "x"}}', "list of event objects"),
    ],
)
def test_bad_bytes_are_refused(data: bytes, reason: str) -> None:
    with pytest.raises(CodecError, match=reason):
        decode(data)


def test_only_agent_messages_are_encoded() -> None:
    with pytest.raises(CodecError, match="not an agent message"):
        encode(object())
