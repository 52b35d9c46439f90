"""The HTTP edge every API endpoint runs through: a pure-ASGI wrapper around a handler.

For each request, in Nova's order (``nova/api/openstack/wsgi.py`` ``Resource``, behind the
paste pipeline of §1.2): assign ``req-<uuid>``; refuse a ``Content-Length`` over the body
limit (413); authenticate (401); negotiate the microversion (400/406; skipped on the legacy
``/v2`` endpoint); check the Content-Type (415); read the body under the limit (413) and
parse it (400); check a ``{project_id}`` URL segment against the token (400); call the
handler; render JSON with the request-id and version headers. Every error is a Nova JSON
fault (:mod:`herald.api.faults`), mapped in one place (:mod:`herald.api.errors`).

Handlers are ``async def handler(req: ApiRequest) -> ApiResponse`` and raise
:class:`ApiFault` or a ``herald.domain.errors`` exception for errors.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable

import orjson
from starlette.convertors import CONVERTOR_TYPES, Convertor, register_url_convertor
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from herald.api.auth import Authenticator
from herald.api.context import RequestContext
from herald.api.errors import fault_for
from herald.api.faults import ApiFault
from herald.api.microversion import (
    DEFAULT_VERSION,
    LEGACY_V2_VERSION,
    MAX_VERSION,
    MIN_VERSION,
    APIVersion,
    negotiate,
    version_headers,
)
from herald.api.policy import PolicyEnforcer
from herald.api.request import (
    BODY_METHODS,
    ApiRequest,
    ApiResponse,
    ClientDisconnected,
    check_content_type,
    check_query_string,
    parse_json,
    read_body,
    too_large,
)
from herald.config import Settings

__all__ = ["ApiRequest", "ApiResponse", "Edge", "Endpoint", "Handler"]

Handler = Callable[[ApiRequest], Awaitable[ApiResponse]]
Headers = list[tuple[bytes, bytes]]

JSON_CONTENT_TYPE = (b"content-type", b"application/json")


class ProjectIdConvertor(Convertor[str]):
    """Nova's ``{project_id}`` URL token: only hex digits and dashes match (ProjectMapper)."""

    regex = "[0-9a-f-]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


def _register_project_id_convertor() -> None:
    if "project_id" not in CONVERTOR_TYPES:
        register_url_convertor("project_id", ProjectIdConvertor())


class Edge:
    """Builds the ASGI endpoints of the API from handlers; holds what every request needs.

    :param settings: body limit (``max_request_body_size``) and ``compute_link_prefix``.
    :param authenticator: who the caller is (noauth2 or keystone).
    :param policy: the policy enforcer handed to requests (``ApiRequest.authorize``).
    """

    def __init__(self, *, settings: Settings, authenticator: Authenticator, policy: PolicyEnforcer | None) -> None:
        self.max_body = settings.max_request_body_size
        self.link_prefix = settings.compute_link_prefix
        self.authenticator = authenticator
        self.policy = policy
        # Response headers per version, built once: a versioned reply copies one list.
        self._versioned_headers: dict[APIVersion, Headers] = {
            APIVersion(MIN_VERSION.major, minor): version_headers(APIVersion(MIN_VERSION.major, minor))
            for minor in range(MIN_VERSION.minor, MAX_VERSION.minor + 1)
        }

    def wrap(
        self, handler: Handler, *, versioned: bool = True, legacy_v2: bool = False, authenticate: bool = True
    ) -> Endpoint:
        """An ASGI app for ``handler``, usable as a Starlette ``Route`` endpoint.

        :param versioned: negotiate the microversion and answer with the version headers.
        :param legacy_v2: the legacy ``/v2`` endpoint: version headers ignored both ways.
        :param authenticate: False for the version documents, which Nova serves without a token.
        """
        return Endpoint(
            self, handler, versioned=versioned and not legacy_v2, legacy_v2=legacy_v2, authenticate=authenticate
        )

    def routes(
        self, path: str, handler: Handler, *, methods: list[str], versioned: bool = True, authenticate: bool = True
    ) -> list[Route]:
        """The Starlette routes of one API operation, as Nova's ProjectMapper registers it.

        ``path`` is relative to the API root (e.g. ``/os-server-external-events``). Returns the
        v2.1 and legacy v2 routes, each with and without a leading ``{project_id}`` segment.
        """
        _register_project_id_convertor()
        v21 = self.wrap(handler, versioned=versioned, authenticate=authenticate)
        v2 = self.wrap(handler, legacy_v2=True, authenticate=authenticate)
        return [
            Route("/v2.1" + path, v21, methods=methods),
            Route("/v2.1/{project_id:project_id}" + path, v21, methods=methods),
            Route("/v2" + path, v2, methods=methods),
            Route("/v2/{project_id:project_id}" + path, v2, methods=methods),
        ]

    async def context_for(self, scope: Scope, request_id: str, *, authenticate: bool) -> RequestContext:
        if not authenticate:
            return RequestContext(request_id=request_id, user_id=None, project_id=None)
        return await self.authenticator.authenticate(scope, request_id)

    def success_headers(self, version: APIVersion | None) -> Headers:
        if version is None:
            return [JSON_CONTENT_TYPE]
        return [JSON_CONTENT_TYPE, *self._versioned_headers[version]]

    async def send_fault(
        self, scope: Scope, send: Send, fault: ApiFault, request_id: bytes, version: APIVersion | None
    ) -> None:
        """Answer a fault; once the version is known the version headers go with it (like Nova)."""
        headers = [(b"content-type", fault.content_type)]
        if version is not None:
            headers.extend(self._versioned_headers[version])
        headers.extend(fault.headers)
        await send_reply(scope, send, fault.status, headers, fault.body(), request_id)


def new_request_id() -> str:
    """``req-<uuid4>`` (formatted by hand: ``str(uuid.uuid4())`` costs three times as much)."""
    h = os.urandom(16).hex()
    return f"req-{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"


# The RFC 4122 variant: the top two bits of the 17th hex digit are 10.
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


async def send_reply(scope: Scope, send: Send, status: int, headers: Headers, body: bytes, request_id: bytes) -> None:
    """Send a complete reply with the request-id headers (no body for HEAD)."""
    headers.append((b"content-length", str(len(body)).encode("latin-1")))
    headers.append((b"x-openstack-request-id", request_id))
    headers.append((b"x-compute-request-id", request_id))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})


def _content_headers(headers: Headers) -> tuple[int | None, bytes | None]:
    length: int | None = None
    content_type: bytes | None = None
    for name, value in headers:
        if name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                length = None
        elif name == b"content-type":
            content_type = value
    return length, content_type


class Endpoint:
    """The ASGI app of one handler (see :meth:`Edge.wrap`)."""

    __slots__ = ("_authenticate", "_edge", "_handler", "_legacy_v2", "_versioned")

    def __init__(self, edge: Edge, handler: Handler, *, versioned: bool, legacy_v2: bool, authenticate: bool) -> None:
        self._edge = edge
        self._handler = handler
        self._versioned = versioned
        self._legacy_v2 = legacy_v2
        self._authenticate = authenticate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = new_request_id()
        rid = request_id.encode("latin-1")
        edge = self._edge
        version: APIVersion | None = None
        try:
            length, content_type = _content_headers(scope["headers"])
            if length is not None and length > edge.max_body:
                raise too_large(edge.max_body)
            context = await edge.context_for(scope, request_id, authenticate=self._authenticate)
            if self._versioned:
                version = negotiate(scope["headers"])
            req = await self._request(scope, receive, context, version, content_type)
            response = await self._handler(req)
            body = b"" if response.body is None else orjson.dumps(response.body)
        except ClientDisconnected:
            return
        except Exception as exc:  # the request boundary: every error becomes a JSON fault
            await edge.send_fault(scope, send, fault_for(exc), rid, version)
            return
        headers = edge.success_headers(version) if response.body is not None else _no_body_headers(edge, version)
        headers.extend(response.headers)
        await send_reply(scope, send, response.status, headers, body, rid)

    async def _request(
        self,
        scope: Scope,
        receive: Receive,
        context: RequestContext,
        version: APIVersion | None,
        content_type: bytes | None,
    ) -> ApiRequest:
        check_content_type(content_type)
        check_query_string(scope.get("query_string", b""))
        body = None
        if scope["method"] in BODY_METHODS:
            body = parse_json(await read_body(receive, self._edge.max_body))
        project_id = (scope.get("path_params") or {}).get("project_id")
        if project_id is not None and project_id != context.project_id:
            raise ApiFault(
                400,
                f"Malformed request URL: URL's project_id '{project_id}' doesn't match "
                f"Context's project_id '{context.project_id}'",
            )
        if version is None:
            version = LEGACY_V2_VERSION if self._legacy_v2 else DEFAULT_VERSION
        return ApiRequest(
            scope,
            context=context,
            version=version,
            legacy_v2=self._legacy_v2,
            body=body,
            policy=self._edge.policy,
            link_prefix=self._edge.link_prefix,
        )


def _no_body_headers(edge: Edge, version: APIVersion | None) -> Headers:
    return edge.success_headers(version)[1:]
