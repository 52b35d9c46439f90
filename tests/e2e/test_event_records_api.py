"""GET /os-server-external-events: filters checked, newest first, paged by limit and marker as Nova's lists are."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.e2e.harness import ADMIN, Herald

PATH = "/v2.1/os-server-external-events"


async def _get(herald: Herald, query: str) -> Any:
    return await herald.client.get(f"{PATH}?{query}", headers=ADMIN)


async def _five_events(herald: Herald) -> tuple[str, list[str]]:
    server_id = await herald.create_server()
    for n in range(5):
        resp = await herald.events([{"name": "network-changed", "server_uuid": server_id, "tag": f"t{n}"}])
        assert resp.status_code == 200
    await herald.settle()
    return server_id, [f"t{n}" for n in range(5)]


@pytest.mark.parametrize("limit", ["-1", "x", "1.5", "", "1" * 5000])
async def test_a_bad_limit_is_400(herald: Herald, limit: str) -> None:
    resp = await _get(herald, f"limit={limit}")
    assert resp.status_code == 400, resp.text
    assert "limit" in resp.json()["badRequest"]["message"]


async def test_newest_first_paged_with_next_links(herald: Herald) -> None:
    server_id, tags = await _five_events(herald)
    resp = await _get(herald, f"server_uuid={server_id}&limit=2")
    assert resp.status_code == 200
    body = resp.json()
    assert [e["tag"] for e in body["events"]] == ["t4", "t3"]
    seen = [e["tag"] for e in body["events"]]
    while "events_links" in body:
        (link,) = body["events_links"]
        assert link["rel"] == "next"
        url = urlsplit(link["href"])
        assert url.path == PATH
        query = parse_qs(url.query)
        assert query["limit"] == ["2"]
        assert query["server_uuid"] == [server_id]
        assert query["marker"] == [body["events"][-1]["id"]]
        # Any spelling of the marker's UUID will do.
        resp = await _get(herald, url.query.replace(query["marker"][0], query["marker"][0].upper()))
        assert resp.status_code == 200
        body = resp.json()
        seen += [e["tag"] for e in body["events"]]
    assert seen == tags[::-1]
    # A page that is not full has no next link; the default page holds everything here.
    assert "events_links" not in (await _get(herald, f"server_uuid={server_id}")).json()


async def test_limit_is_capped_at_the_max_limit(herald: Herald) -> None:
    await _five_events(herald)
    resp = await _get(herald, "limit=100000")
    assert resp.status_code == 200
    assert len(resp.json()["events"]) == 5


@pytest.mark.parametrize("marker", ["7e3f8c62-5c4c-4e9e-a0b6-2f0d8b6d8c11", "not-a-uuid"])
async def test_an_unknown_marker_is_400(herald: Herald, marker: str) -> None:
    await _five_events(herald)
    resp = await herald.client.get(PATH, params={"marker": marker}, headers=ADMIN)
    assert resp.status_code == 400, resp.text
    assert resp.json()["badRequest"]["message"] == f"Marker {marker} could not be found."


@pytest.mark.parametrize("field", ["server_uuid", "request_id", "state", "marker", "limit"])
async def test_filters_that_no_database_can_compare_are_400(herald: Herald, field: str) -> None:
    resp = await herald.client.get(PATH, params={field: "a\x00b"}, headers=ADMIN)
    assert resp.status_code == 400, resp.text
    assert resp.json()["badRequest"]["message"] == "Invalid input received: a query parameter holds a NUL character."


async def test_a_server_uuid_filter_in_any_spelling_finds_the_events(herald: Herald) -> None:
    server_id, _ = await _five_events(herald)
    resp = await herald.client.get(PATH, params={"server_uuid": server_id.upper()}, headers=ADMIN)
    assert resp.status_code == 200
    assert len(resp.json()["events"]) == 5
    resp = await herald.client.get(PATH, params={"server_uuid": "\u0660" * 32}, headers=ADMIN)
    assert resp.status_code == 400
