"""What an endpoint handler gets and returns: :class:`ApiRequest` and :class:`ApiResponse`.

Also the request-body rules of Nova's ``wsgi.Resource`` (§1.2, §1.6 of the reference): the
size limit, the accepted Content-Types, JSON parsing and a nesting limit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import orjson
from starlette.datastructures import Headers, QueryParams
from starlette.types import Receive, Scope

from herald.api.context import RequestContext
from herald.api.faults import ApiFault
from herald.api.microversion import APIVersion

if TYPE_CHECKING:
    from herald.api.policy import PolicyEnforcer

# Nova reads (and parses) a body for these methods only.
BODY_METHODS = frozenset({"POST", "PUT"})
SUPPORTED_CONTENT_TYPES = frozenset({"application/json", "application/vnd.openstack.compute+json"})
# orjson allows 1024 levels; no compute API body needs more than a handful.
MAX_JSON_DEPTH = 32


class ClientDisconnected(Exception):
    """The client went away before sending the whole body; nothing is answered."""


@dataclass(slots=True)
class ApiResponse:
    """A handler's reply: ``body`` is serialised as JSON (None: an empty body)."""

    status: int = 200
    body: object = None
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


class ApiRequest:
    """One API request, authenticated, version-negotiated and with its JSON body parsed.

    ``body`` is the parsed JSON (None for an empty body or a method without one);
    ``version`` is the negotiated microversion (2.0 on the legacy ``/v2`` endpoint, where
    ``legacy_v2`` is True). ``query``, ``headers``, ``base_url`` and ``api_url`` are computed
    on first use.
    """

    __slots__ = (
        "_api_url",
        "_base_url",
        "_headers",
        "_policy",
        "_query",
        "body",
        "context",
        "legacy_v2",
        "link_prefix",
        "path_params",
        "scope",
        "version",
    )

    def __init__(
        self,
        scope: Scope,
        *,
        context: RequestContext,
        version: APIVersion,
        legacy_v2: bool,
        body: object,
        policy: PolicyEnforcer | None,
        link_prefix: str | None,
    ) -> None:
        self.scope = scope
        self.context = context
        self.version = version
        self.legacy_v2 = legacy_v2
        self.body = body
        self.path_params: Mapping[str, str] = scope.get("path_params") or {}
        self.link_prefix = link_prefix
        self._policy = policy
        self._query: QueryParams | None = None
        self._headers: Headers | None = None
        self._base_url: str | None = None
        self._api_url: str | None = None

    @property
    def request_id(self) -> str:
        return self.context.request_id

    @property
    def method(self) -> str:
        method: str = self.scope["method"]
        return method

    async def json(self) -> object:
        """The parsed body (already read and checked by the edge)."""
        return self.body

    @property
    def query(self) -> QueryParams:
        if self._query is None:
            self._query = QueryParams(self.scope.get("query_string", b""))
        return self._query

    @property
    def headers(self) -> Headers:
        if self._headers is None:
            self._headers = Headers(scope=self.scope)
        return self._headers

    @property
    def base_url(self) -> str:
        """The application root URL (no trailing slash), rewritten by ``[api] compute_link_prefix``."""
        if self._base_url is None:
            self._base_url = apply_link_prefix(application_url(self.scope), self.link_prefix)
        return self._base_url

    @property
    def api_url(self) -> str:
        """The URL of the API version in use: ``<base_url>/v2.1`` or ``<base_url>/v2``."""
        if self._api_url is None:
            self._api_url = self.base_url + ("/v2" if self.legacy_v2 else "/v2.1")
        return self._api_url

    def authorize(self, rule: str, target: Mapping[str, object] | None = None) -> None:
        """Check a policy rule for the caller.

        :raises ApiFault: 403 when the policy refuses it.
        """
        if self._policy is None:
            raise RuntimeError("this endpoint was built without a policy enforcer")
        self._policy.authorize(self.context, rule, target)


def application_url(scope: Scope) -> str:
    """``scheme://host[:port]<root_path>`` of a request, like WebOb's ``application_url``."""
    scheme: str = scope.get("scheme", "http")
    host = None
    for name, value in scope["headers"]:
        if name == b"host":
            host = value.decode("latin-1")
            break
    if not host:
        server = scope.get("server")
        if server is None:
            host = "localhost"
        else:
            name, port = server[0], server[1]
            default = 443 if scheme == "https" else 80
            host = name if port in (None, default) else f"{name}:{port}"
    root_path: str = scope.get("root_path", "")
    return f"{scheme}://{host}{root_path}".rstrip("/")


def apply_link_prefix(url: str, prefix: str | None) -> str:
    """Nova's ``_update_link_prefix``: the prefix's scheme and host, its path before ours."""
    if not prefix:
        return url.rstrip("/")
    parts = list(urlsplit(url))
    prefix_parts = urlsplit(prefix)
    parts[0], parts[1] = prefix_parts[0], prefix_parts[1]
    parts[2] = prefix_parts[2] + parts[2]
    return urlunsplit(parts).rstrip("/")


def check_content_type(value: bytes | None) -> None:
    """Nova's ``Request.get_content_type`` rule (no header, empty and text/plain are fine).

    :raises ApiFault: 415 badMediaType.
    """
    if value is None:
        return
    media_type = value.split(b";", 1)[0].decode("latin-1")
    if media_type and media_type != "text/plain" and media_type not in SUPPORTED_CONTENT_TYPES:
        raise ApiFault(415, "Unsupported Content-Type")


def check_query_string(query_string: bytes) -> None:
    """No query parameter may hold a NUL character: no database compares text with one (PostgreSQL refuses).

    :raises ApiFault: 400 badRequest.
    """
    if b"%00" in query_string or b"\x00" in query_string:
        raise ApiFault(400, "Invalid input received: a query parameter holds a NUL character.")


def too_large(limit: int) -> ApiFault:
    return ApiFault(413, f"Request is too large. Larger than max_request_body_size ({limit}).")


async def read_body(receive: Receive, limit: int) -> bytes:
    """The whole request body; 413 as soon as more than ``limit`` bytes came (chunked or not)."""
    message = await receive()
    if message["type"] == "http.disconnect":
        raise ClientDisconnected
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        if len(body) > limit:
            raise too_large(limit)
        return body
    chunks = [body]
    size = len(body)
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def parse_json(raw: bytes) -> object:
    """Parse a request body: empty means None.

    :raises ApiFault: 400 "Malformed request body" for invalid JSON or nesting deeper than
        :data:`MAX_JSON_DEPTH`.
    """
    if not raw:
        return None
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ApiFault(400, "Malformed request body") from None
    if raw.count(b"[") + raw.count(b"{") > MAX_JSON_DEPTH and json_depth(value) > MAX_JSON_DEPTH:
        raise ApiFault(400, "Malformed request body")
    return value


def json_depth(value: object) -> int:
    """How many containers deep a parsed JSON value nests (a scalar is 0)."""
    if type(value) is not dict and type(value) is not list:
        return 0
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > MAX_JSON_DEPTH:
            return deepest
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        for child in children:
            if type(child) is dict or type(child) is list:
                stack.append((child, depth + 1))
    return deepest
