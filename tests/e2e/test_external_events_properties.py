"""POST /os-server-external-events never answers 5xx: any body, any version or Content-Type header.

Requests go straight to the ASGI app, so header values may hold any byte (an HTTP server in
front refuses control characters before Herald sees them).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from herald.api.faults import fault_name
from tests.e2e.harness import Herald
from tests.event_bodies import events_bodies, json_values, stored_events_bodies

PATHS = ("/v2.1/os-server-external-events", "/v2/os-server-external-events")
PROPERTIES = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

header_values = (
    st.binary(max_size=40)
    | st.sampled_from([b"compute 2.93", b"compute latest", b"2.76", b"compute 2." + b"9" * 5000])
    | st.text(alphabet="compute 0123456789.,latest", max_size=30).map(str.encode)
)
content_types = st.none() | st.binary(max_size=40) | st.sampled_from([b"application/json", b"text/plain", b""])


def _json(value: Any) -> bytes:
    # NOTE: the standard library's encoder, as clients use: orjson refuses integers past 64 bits.
    return json.dumps(value).encode()


async def _post(herald: Herald, path: str, body: bytes, headers: list[tuple[bytes, bytes]]) -> tuple[int, bytes]:
    """One request through the ASGI app; the status and the body."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"herald.test"), (b"x-auth-token", b"admin:admin"), *headers],
        "server": ("herald.test", 80),
        "client": ("127.0.0.1", 1234),
    }
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await herald.app(scope, receive, send)
    status: int = sent[0]["status"]
    return status, b"".join(m.get("body", b"") for m in sent[1:])


def _check_answer(status: int, body: bytes) -> None:
    assert status < 500, body
    payload = orjson.loads(body)
    if status >= 400:
        assert payload == {fault_name(status): {"code": status, "message": payload[fault_name(status)]["message"]}}
    else:
        assert status in (200, 207)
        assert {e["code"] for e in payload["events"]} <= {200, 400, 404, 422}


async def _in_thread(herald: Herald, check: Callable[[Callable[..., Coroutine[Any, Any, Any]]], None]) -> None:
    """Run a hypothesis test on a worker thread; its requests run on this loop."""
    loop = asyncio.get_running_loop()

    def call(coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout=60)

    await asyncio.to_thread(check, call)


async def test_any_body_gets_a_fault_or_an_answer(herald: Herald) -> None:
    known = (await herald.create_server(),)

    @PROPERTIES
    @given(
        path=st.sampled_from(PATHS),
        body=st.one_of(events_bodies(known), stored_events_bodies(known), json_values).map(_json)
        | st.binary(max_size=200),
    )
    def check(call: Any, path: str, body: bytes) -> None:
        _check_answer(*call(_post(herald, path, body, [(b"content-type", b"application/json")])))

    await _in_thread(herald, lambda call: check(call))


async def test_valid_bodies_naming_real_servers_are_recorded_or_refused(herald: Herald) -> None:
    """What passes validation reaches the database: any tag text must be stored, or refused first."""
    known = (await herald.create_server(), await herald.create_server())

    @PROPERTIES
    @given(body=stored_events_bodies(known).map(_json))
    def check(call: Any, body: bytes) -> None:
        _check_answer(*call(_post(herald, PATHS[0], body, [(b"content-type", b"application/json")])))

    await _in_thread(herald, lambda call: check(call))


async def test_any_version_or_content_type_header_gets_a_fault_or_an_answer(herald: Herald) -> None:
    known = (await herald.create_server(),)

    @PROPERTIES
    @given(
        standard=st.none() | header_values,
        legacy=st.none() | header_values,
        content_type=content_types,
        body=events_bodies(known).map(_json),
    )
    def check(call: Any, standard: bytes | None, legacy: bytes | None, content_type: bytes | None, body: bytes) -> None:
        headers = [
            (name, value)
            for name, value in (
                (b"openstack-api-version", standard),
                (b"x-openstack-nova-api-version", legacy),
                (b"content-type", content_type),
            )
            if value is not None
        ]
        _check_answer(*call(_post(herald, PATHS[0], body, headers)))

    await _in_thread(herald, lambda call: check(call))


async def test_escaped_lone_surrogates_are_a_malformed_body(herald: Herald) -> None:
    known = await herald.create_server()
    body = b'{"events": [{"name": "network-changed", "server_uuid": "%s", "tag": "\\ud800"}]}' % known.encode()
    status, answer = await _post(herald, PATHS[0], body, [(b"content-type", b"application/json")])
    assert (status, orjson.loads(answer)) == (400, {"badRequest": {"code": 400, "message": "Malformed request body"}})


async def test_a_tag_with_a_nul_character_is_400(herald: Herald) -> None:
    known = await herald.create_server()
    resp = await herald.events([{"name": "network-changed", "server_uuid": known, "tag": "a\x00b"}])
    assert resp.status_code == 400, resp.text
    assert "tag" in resp.json()["badRequest"]["message"]
    assert await herald.records(server_uuid=known) == []
