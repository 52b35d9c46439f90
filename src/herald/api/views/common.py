"""What every view shares: Nova's links and its two timestamp formats."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlencode

from herald.api.edge import ApiRequest


def isotime(at: datetime | None) -> str | None:
    """Nova's ``utils.isotime`` for naive UTC: ``2012-08-20T21:11:09Z``."""
    return None if at is None else at.strftime("%Y-%m-%dT%H:%M:%SZ")


def strtime(at: datetime | None) -> str | None:
    """How Nova's JSON serialiser writes a datetime: ``2018-04-25T01:26:29.000000``."""
    return None if at is None else at.strftime("%Y-%m-%dT%H:%M:%S.%f")


def _project_segment(req: ApiRequest) -> str:
    """The URL's ``{project_id}``, which Nova repeats in the links it returns."""
    project_id = req.path_params.get("project_id")
    return f"/{project_id}" if project_id else ""


def self_href(req: ApiRequest, collection: str, identifier: str) -> str:
    return f"{req.api_url}{_project_segment(req)}/{collection}/{identifier}"


def bookmark_href(req: ApiRequest, collection: str, identifier: str) -> str:
    return f"{req.base_url}{_project_segment(req)}/{collection}/{identifier}"


def links(req: ApiRequest, collection: str, identifier: str) -> list[dict[str, str]]:
    return [
        {"rel": "self", "href": self_href(req, collection, identifier)},
        {"rel": "bookmark", "href": bookmark_href(req, collection, identifier)},
    ]


def bookmark(req: ApiRequest, collection: str, identifier: str) -> list[dict[str, str]]:
    return [{"rel": "bookmark", "href": bookmark_href(req, collection, identifier)}]


def next_link(req: ApiRequest, collection: str, marker: str) -> list[dict[str, str]]:
    """Nova's ``servers_links``/``flavors_links``: the same query with ``marker`` set to the last item."""
    params = {key: value for key, value in sorted(req.query.items()) if key != "marker"}
    params["marker"] = marker
    return [{"rel": "next", "href": f"{req.api_url}{_project_segment(req)}/{collection}?{urlencode(params)}"}]
