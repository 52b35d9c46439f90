from __future__ import annotations

import orjson
import pytest

from herald.api.faults import ApiFault, fault_body, fault_name


@pytest.mark.parametrize(
    ("status", "name"),
    [
        (400, "badRequest"),
        (401, "unauthorized"),
        (403, "forbidden"),
        (404, "itemNotFound"),
        (405, "badMethod"),
        (409, "conflictingRequest"),
        (413, "overLimit"),
        (415, "badMediaType"),
        (429, "overLimit"),
        (501, "notImplemented"),
        (503, "serviceUnavailable"),
        (406, "computeFault"),
        (422, "computeFault"),
        (500, "computeFault"),
    ],
)
def test_fault_names_follow_nova(status: int, name: str) -> None:
    assert fault_name(status) == name
    assert orjson.loads(fault_body(status, "m")) == {name: {"code": status, "message": "m"}}


def test_retry_after_only_for_over_limit() -> None:
    assert orjson.loads(fault_body(429, "slow down", "30")) == {
        "overLimit": {"code": 429, "message": "slow down", "retryAfter": "30"}
    }
    assert orjson.loads(fault_body(400, "m", "30")) == {"badRequest": {"code": 400, "message": "m"}}
    fault = ApiFault(413, "too big", headers=[(b"retry-after", b"5")])
    assert orjson.loads(fault.body())["overLimit"]["retryAfter"] == "5"


def test_api_fault_carries_status_message_and_headers() -> None:
    fault = ApiFault(404, "gone")
    assert (fault.status, fault.message, fault.headers) == (404, "gone", [])
    assert str(fault) == "404 itemNotFound: gone"
