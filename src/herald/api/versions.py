"""Version discovery (``nova/api/openstack/compute/versions.py`` and ``views/versions.py``).

* ``GET /``: both versions, not version-negotiated, no token needed.
* any other path outside the APIs: 300 with the choices (Nova's root ``multi``).
* ``GET /v2.1``, ``/v2.1/`` (negotiated: version headers, 406) and ``GET /v2``, ``/v2/`` (legacy):
  one version document, no token needed; ``/versions/{id}`` under each API (with a token).
"""

from __future__ import annotations

import copy
from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ExceptionHandler

from herald.api.edge import ApiRequest, ApiResponse, Edge, new_request_id
from herald.api.faults import ApiFault
from herald.api.microversion import MAX_VERSION, MIN_VERSION
from herald.api.request import application_url, apply_link_prefix

_DOCS = [{"rel": "describedby", "type": "text/html", "href": "http://docs.openstack.org/"}]

VERSIONS: dict[str, dict[str, object]] = {
    "v2.0": {
        "id": "v2.0",
        "status": "DEPRECATED",
        "version": "",
        "min_version": "",
        "updated": "2025-07-04T12:00:00Z",
        "links": _DOCS,
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2"}],
    },
    "v2.1": {
        "id": "v2.1",
        "status": "CURRENT",
        "version": str(MAX_VERSION),
        "min_version": str(MIN_VERSION),
        "updated": "2013-07-23T11:33:21Z",
        "links": _DOCS,
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2.1"}],
    },
}

API_PREFIXES = ("/v2/", "/v2.1/")


def url_join(*parts: str) -> str:
    """Nova's ``common.url_join``: strip slashes, join with '/', an empty last part adds a '/'."""
    clean = [part.strip("/") for part in parts if part]
    if not parts[-1]:
        clean.append("")
    return "/".join(clean)


def _href(prefix: str, version_id: str, path: str = "") -> str:
    return url_join(prefix, "v2.1" if version_id.startswith("v2.1") else "v2", path)


def versions_document(base_url: str) -> dict[str, object]:
    """``GET /``: every version, sorted by id, each linking to its root."""
    return {
        "versions": [
            {
                "id": v["id"],
                "status": v["status"],
                "version": v["version"],
                "min_version": v["min_version"],
                "updated": v["updated"],
                "links": [{"rel": "self", "href": _href(base_url, key)}],
            }
            for key, v in sorted(VERSIONS.items())
        ]
    }


def choices_document(base_url: str, path: str) -> dict[str, object]:
    """The 300 reply for a path outside the APIs: where it would be under each version."""
    return {
        "choices": [
            {
                "id": v["id"],
                "status": v["status"],
                "links": [{"rel": "self", "href": _href(base_url, key, path)}],
                "media-types": v["media-types"],
            }
            for key, v in sorted(VERSIONS.items())
        ]
    }


def version_document(api_url: str, version_id: str) -> dict[str, object]:
    """One version, with a self link to the API's root."""
    doc = copy.deepcopy(VERSIONS[version_id])
    doc["links"] = [{"rel": "self", "href": api_url.rstrip("/") + "/"}, *doc["links"]]  # type: ignore[misc]
    return {"version": doc}


async def root_index(req: ApiRequest) -> ApiResponse:
    return ApiResponse(200, versions_document(req.base_url))


async def api_version(req: ApiRequest) -> ApiResponse:
    return ApiResponse(200, version_document(req.api_url, "v2.0" if req.legacy_v2 else "v2.1"))


async def show_version(req: ApiRequest) -> ApiResponse:
    version_id = "v2.0" if req.legacy_v2 else req.path_params.get("id", "")
    if version_id not in VERSIONS:
        raise ApiFault(404, "The resource could not be found.")
    return ApiResponse(200, version_document(req.api_url, version_id))


def version_routes(edge: Edge) -> list[Route]:
    """The version discovery routes; register them with the API routes."""
    root = edge.wrap(root_index, versioned=False, authenticate=False)
    v21 = edge.wrap(api_version, authenticate=False)
    v2 = edge.wrap(api_version, legacy_v2=True, authenticate=False)
    return [
        Route("/", root, methods=["GET"]),
        Route("/v2.1", v21, methods=["GET"]),
        Route("/v2.1/", v21, methods=["GET"]),
        Route("/v2", v2, methods=["GET"]),
        Route("/v2/", v2, methods=["GET"]),
        *edge.routes("/versions/{id}", show_version, methods=["GET"]),
    ]


def exception_handlers(edge: Edge) -> dict[Any, ExceptionHandler]:
    """Starlette ``exception_handlers`` turning the router's 404/405 into Nova's replies.

    Under ``/v2/`` and ``/v2.1/`` the caller is authenticated first (401 as in Nova, where
    auth_token runs before the router), then gets 404 ``itemNotFound`` or 405 ``badMethod``.
    Elsewhere the reply is Nova's root 300 ``choices``.
    """

    async def handle(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        extra = dict(exc.headers or {}) if isinstance(exc, HTTPException) else {}
        return await fallback_response(edge, request, status, extra)

    return {HTTPException: handle}


async def fallback_response(edge: Edge, request: Request, status: int, extra: dict[str, str]) -> Response:
    request_id = new_request_id()
    headers = {"x-openstack-request-id": request_id, "x-compute-request-id": request_id}
    path = request.scope["path"]
    if not path.startswith(API_PREFIXES) and path not in ("/v2", "/v2.1"):
        base = apply_link_prefix(application_url(request.scope), edge.link_prefix)
        return Response(orjson.dumps(choices_document(base, path)), 300, headers, "application/json")
    try:
        await edge.context_for(request.scope, request_id, authenticate=True)
        if status == 405:
            allow = [(b"allow", extra.get("Allow", "").encode("latin-1"))]
            raise ApiFault(405, f"The method {request.method} is not allowed for this resource.", allow)
        raise ApiFault(404, "The resource could not be found.")
    except ApiFault as fault:
        headers.update((k.decode("latin-1"), v.decode("latin-1")) for k, v in fault.headers)
        return Response(fault.body(), fault.status, headers, fault.content_type.decode("latin-1"))
