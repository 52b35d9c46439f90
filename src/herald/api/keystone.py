"""Keystone token validation through keystonemiddleware's ``auth_token``, bridged from ASGI.

``auth_token.AuthProtocol`` is WSGI middleware and does blocking I/O, so each request
builds a minimal WSGI environ from the ASGI scope and runs the middleware in a worker
thread in front of a tiny WSGI app that captures the environ it was handed. The identity
headers the middleware set there (``X-Identity-Status``, ``X-User-Id``, ``X-Project-Id``,
``X-Roles``, ``X-Service-Roles``, ``OpenStack-System-Scope``, ``X-Domain-Id``...) become
the :class:`RequestContext`. The middleware's own 401 is answered as it is, as Nova does:
``{"error": {"code": 401, "title": "Unauthorized", "message": ...}}`` (not Nova's fault format).
Options come from ``[keystone_authtoken]`` of the ConfigOpts handed in.
"""

from __future__ import annotations

import dataclasses
import io
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

import anyio.to_thread
import orjson
from keystonemiddleware import auth_token
from oslo_config import cfg
from starlette.types import Scope

from herald.api.auth import UNAUTHORIZED_MESSAGE
from herald.api.context import RequestContext
from herald.api.faults import ApiFault

Environ = dict[str, Any]
StartResponse = Callable[..., Any]

_CAPTURED = "herald.captured"
_EMPTY_INPUT = b""
# auth_token's 401 body, for a request it let through that still failed.
_UNAUTHORIZED_BODY = orjson.dumps({"error": {"code": 401, "title": "Unauthorized", "message": UNAUTHORIZED_MESSAGE}})


def _captured_app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    environ[_CAPTURED] = True
    start_response("200 OK", [])
    return [b""]


def wsgi_environ(scope: Scope) -> Environ:
    """A WSGI environ with the request line and headers of an ASGI scope (no body)."""
    server = scope.get("server") or ("localhost", 80)
    client = scope.get("client") or ("", 0)
    environ: Environ = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": scope.get("root_path", ""),
        "PATH_INFO": scope["path"],
        "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
        "SERVER_NAME": str(server[0]),
        "SERVER_PORT": str(server[1]),
        "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
        "REMOTE_ADDR": client[0],
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": io.BytesIO(_EMPTY_INPUT),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    for name, value in scope["headers"]:
        key = name.decode("latin-1").upper().replace("-", "_")
        if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            key = "HTTP_" + key
        text = value.decode("latin-1")
        environ[key] = f"{environ[key]},{text}" if key in environ else text
    return environ


def _roles(value: str | None) -> frozenset[str]:
    if not value:
        return frozenset()
    return frozenset(role.strip() for role in value.split(",") if role.strip())


def context_from_environ(environ: Environ, request_id: str) -> RequestContext:
    """The caller's context from the identity headers auth_token set in ``environ``."""

    def get(name: str) -> str | None:
        value = environ.get(name)
        return str(value) if value not in (None, "", "None") else None

    roles = _roles(get("HTTP_X_ROLES"))
    return RequestContext(
        request_id=request_id,
        user_id=get("HTTP_X_USER_ID"),
        project_id=get("HTTP_X_PROJECT_ID"),
        roles=roles,
        is_admin="admin" in {role.lower() for role in roles},
        system_scope=get("HTTP_OPENSTACK_SYSTEM_SCOPE"),
        domain_id=get("HTTP_X_DOMAIN_ID"),
        service_roles=_roles(get("HTTP_X_SERVICE_ROLES")),
        user_domain_id=get("HTTP_X_USER_DOMAIN_ID"),
        project_domain_id=get("HTTP_X_PROJECT_DOMAIN_ID"),
        auth_token=get("HTTP_X_AUTH_TOKEN"),
    )


def _expiry(environ: Environ) -> float | None:
    """When the earliest of the validated user and service tokens expires (epoch seconds)."""
    plugin = environ.get("keystone.token_auth")
    times = []
    for access in (getattr(plugin, "user", None), getattr(plugin, "service", None)):
        expires = getattr(access, "expires", None)
        if expires is not None:
            times.append(expires.timestamp())
    return min(times) if times else None


class KeystoneAuthenticator:
    """Validates Keystone tokens with keystonemiddleware's ``auth_token``.

    A validated identity is remembered for ``identity_cache_seconds`` (never longer than
    ``[keystone_authtoken] token_cache_time``, which auth_token itself caches tokens for,
    nor past the token's expiry), so a busy caller (Neutron, Cinder) does not pay for a
    thread hop and a WSGI call on every request.

    :param conf: the ConfigOpts holding ``[keystone_authtoken]`` (its options are registered on it).
    :param identity_cache_seconds: how long a validated identity is reused; 0 disables the cache.
    :param overrides: extra auth_token options, as paste-deploy would pass them.
    """

    CACHE_LIMIT = 10000

    def __init__(self, conf: cfg.ConfigOpts, *, identity_cache_seconds: float = 30.0, **overrides: object) -> None:
        options: dict[str, object] = {"oslo_config_config": conf, **overrides}
        self._middleware = auth_token.AuthProtocol(_captured_app, options)
        token_cache_time = float(str(overrides.get("token_cache_time", conf.keystone_authtoken.token_cache_time)))
        self._ttl = min(identity_cache_seconds, token_cache_time) if token_cache_time >= 0 else 0.0
        self._identities: dict[tuple[bytes, bytes | None], tuple[float, RequestContext]] = {}

    @property
    def cached_identities(self) -> int:
        """How many validated identities are remembered."""
        return len(self._identities)

    def cached_until(self, user_token: bytes, service_token: bytes | None = None) -> float | None:
        """Until when (epoch seconds) the identity of these tokens is reused, if it is remembered."""
        cached = self._identities.get((user_token, service_token))
        return None if cached is None else cached[0]

    async def authenticate(self, scope: Scope, request_id: str) -> RequestContext:
        """:raises herald.api.faults.ApiFault: 401 for a missing, invalid or expired token."""
        key = _token_key(scope["headers"])
        if key is not None:
            cached = self._identities.get(key)
            if cached is not None:
                if cached[0] > time.time():
                    return dataclasses.replace(cached[1], request_id=request_id)
                del self._identities[key]
        environ = wsgi_environ(scope)
        status, headers, body = await anyio.to_thread.run_sync(self._validate, environ)
        if not environ.get(_CAPTURED) or environ.get("HTTP_X_IDENTITY_STATUS") != "Confirmed":
            challenge = [
                (b"www-authenticate", v.encode("latin-1")) for k, v in headers if k.lower() == "www-authenticate"
            ]
            raise _unauthorized(body if status[:3] == "401" and body else _UNAUTHORIZED_BODY, challenge)
        if status[:3] != "200":  # the middleware let the request through yet failed it: treat as 401
            raise _unauthorized(_UNAUTHORIZED_BODY)
        context = context_from_environ(environ, request_id)
        if key is not None and self._ttl > 0:
            self._remember(key, context, _expiry(environ))
        return context

    def _remember(self, key: tuple[bytes, bytes | None], context: RequestContext, expires: float | None) -> None:
        deadline = time.time() + self._ttl
        if expires is not None:
            deadline = min(deadline, expires)
        if len(self._identities) >= self.CACHE_LIMIT:
            self._identities.clear()
        self._identities[key] = (deadline, context)

    def _validate(self, environ: Environ) -> tuple[str, list[tuple[str, str]], bytes]:
        reply: list[Any] = ["500 Internal Server Error", []]

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: object = None) -> None:
            reply[0], reply[1] = status, headers

        body = self._middleware(environ, start_response)
        try:
            content = b"".join(body)
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()
        return reply[0], reply[1], content


def _unauthorized(body: bytes, headers: list[tuple[bytes, bytes]] | None = None) -> ApiFault:
    return ApiFault(401, UNAUTHORIZED_MESSAGE, headers, body=body)


def _token_key(headers: list[tuple[bytes, bytes]]) -> tuple[bytes, bytes | None] | None:
    """The tokens auth_token validates: (user token, service token); None without a user token."""
    user: bytes | None = None
    storage: bytes | None = None
    service: bytes | None = None
    for name, value in headers:
        if name == b"x-auth-token":
            user = value
        elif name == b"x-storage-token":
            storage = value
        elif name == b"x-service-token":
            service = value
    token = user or storage
    return (token, service) if token else None
