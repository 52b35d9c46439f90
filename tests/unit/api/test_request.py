from __future__ import annotations

import pytest

from herald.api.faults import ApiFault
from herald.api.request import (
    MAX_JSON_DEPTH,
    application_url,
    apply_link_prefix,
    check_content_type,
    json_depth,
    parse_json,
    read_body,
)
from herald.api.versions import url_join


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def test_empty_body_is_none() -> None:
    assert parse_json(b"") is None


@pytest.mark.parametrize("raw", [b"{", b"{'a': 1}", b"  ", b"nan", b"\xff", b"{} {}"])
def test_malformed_json_is_400(raw: bytes) -> None:
    with pytest.raises(ApiFault) as info:
        parse_json(raw)
    assert (info.value.status, info.value.message) == (400, "Malformed request body")


def test_nesting_up_to_the_limit_is_fine_and_deeper_is_400() -> None:
    assert json_depth(parse_json(nested(MAX_JSON_DEPTH))) == MAX_JSON_DEPTH
    with pytest.raises(ApiFault) as info:
        parse_json(nested(MAX_JSON_DEPTH + 1))
    assert info.value.status == 400
    deep_object = b'{"a":' * (MAX_JSON_DEPTH + 1) + b"1" + b"}" * (MAX_JSON_DEPTH + 1)
    with pytest.raises(ApiFault):
        parse_json(deep_object)


def test_many_shallow_containers_are_fine() -> None:
    events = b'{"events": [' + b",".join([b'{"name": "network-changed", "tags": []}'] * 500) + b"]}"
    body = parse_json(events)
    assert isinstance(body, dict)
    assert len(body["events"]) == 500
    assert json_depth(body) == 4


def test_brackets_inside_strings_do_not_count() -> None:
    assert parse_json(b'{"tag": "' + b"[" * 100 + b'"}') == {"tag": "[" * 100}


@pytest.mark.parametrize(
    "value",
    [
        None,
        b"",
        b"application/json",
        b"application/json; charset=UTF-8",
        b"text/plain",
        b"text/plain;charset=utf-8",
        b"application/vnd.openstack.compute+json",
    ],
)
def test_accepted_content_types(value: bytes | None) -> None:
    check_content_type(value)


@pytest.mark.parametrize(
    "value",
    [b"application/xml", b"text/html", b"multipart/form-data; boundary=x", b"application/x-www-form-urlencoded"],
)
def test_other_content_types_are_415(value: bytes) -> None:
    with pytest.raises(ApiFault) as info:
        check_content_type(value)
    assert (info.value.status, info.value.message) == (415, "Unsupported Content-Type")


async def test_read_body_joins_chunks_under_the_limit() -> None:
    messages = iter(
        [
            {"type": "http.request", "body": b"ab", "more_body": True},
            {"type": "http.request", "body": b"cd", "more_body": True},
            {"type": "http.request", "body": b"", "more_body": False},
        ]
    )

    async def receive() -> dict[str, object]:
        return next(messages)

    assert await read_body(receive, 4) == b"abcd"


async def test_read_body_stops_at_the_first_chunk_over_the_limit() -> None:
    sent = [{"type": "http.request", "body": b"x" * 3, "more_body": True}] * 3
    received = 0

    async def receive() -> dict[str, object]:
        nonlocal received
        received += 1
        return sent[received - 1]

    with pytest.raises(ApiFault) as info:
        await read_body(receive, 5)
    assert info.value.status == 413
    assert info.value.message == "Request is too large. Larger than max_request_body_size (5)."
    assert received == 2


def test_application_url_prefers_host_header() -> None:
    scope = {"scheme": "http", "server": ("10.0.0.1", 8774), "root_path": "", "headers": [(b"host", b"api:8774")]}
    assert application_url(scope) == "http://api:8774"
    scope = {"scheme": "https", "server": ("10.0.0.1", 443), "root_path": "/compute", "headers": []}
    assert application_url(scope) == "https://10.0.0.1/compute"


@pytest.mark.parametrize(
    ("url", "prefix", "expected"),
    [
        ("http://10.0.0.1:8774", None, "http://10.0.0.1:8774"),
        ("http://10.0.0.1:8774", "https://cloud.example.com/compute", "https://cloud.example.com/compute"),
        ("http://10.0.0.1:8774/v2.1", "https://cloud.example.com/compute/", "https://cloud.example.com/compute//v2.1"),
        ("http://10.0.0.1:8774/v2.1", "https://cloud.example.com", "https://cloud.example.com/v2.1"),
    ],
)
def test_link_prefix_like_nova(url: str, prefix: str | None, expected: str) -> None:
    assert apply_link_prefix(url, prefix) == expected


def test_url_join_like_nova() -> None:
    assert url_join("http://h", "v2", "") == "http://h/v2/"
    assert url_join("http://h/", "v2.1", "/foo/bar") == "http://h/v2.1/foo/bar"
