"""Authentication: who sent the request, as a :class:`RequestContext`.

Two authenticators, picked by ``[api] auth_strategy``:

* ``keystone``: :class:`herald.api.keystone.KeystoneAuthenticator` (keystonemiddleware's auth_token).
* ``noauth2``: :class:`NoAuth2Authenticator`, Nova's test convention ``X-Auth-Token: user:project``.
  It trusts the caller, so it refuses to start on a non-loopback address unless
  ``[api] allow_noauth_remote`` is set.
"""

from __future__ import annotations

import ipaddress
from typing import Protocol

from oslo_config import cfg
from starlette.types import Scope

from herald.api.context import RequestContext
from herald.api.faults import ApiFault
from herald.api.request import application_url
from herald.config import Settings

Headers = list[tuple[bytes, bytes]]
# user_id, project_id, roles, system_scope, token
_Identity = tuple[str, str | None, frozenset[str], str | None, str]

_NOAUTH2_HEADERS = frozenset({b"x-auth-token", b"x-roles", b"x-system-scope", b"x-auth-user", b"x-auth-project-id"})

UNAUTHORIZED_MESSAGE = "The request you have made requires authentication."


class Authenticator(Protocol):
    """Turns a request's ASGI scope into the caller's identity."""

    async def authenticate(self, scope: Scope, request_id: str) -> RequestContext:
        """Authenticate one request.

        :param scope: the ASGI HTTP scope (``headers`` holds lower-case byte names).
        :param request_id: the request's ``req-<uuid>``, stored in the context.
        :returns: the caller's context.
        :raises herald.api.faults.ApiFault: 401 when the request is not authenticated.
        """
        ...


class ConfigurationError(RuntimeError):
    """The API cannot start with this configuration."""


def unauthorized(headers: Headers | None = None) -> ApiFault:
    return ApiFault(401, UNAUTHORIZED_MESSAGE, headers=headers)


def _split_list(value: bytes) -> frozenset[str]:
    return frozenset(part.strip() for part in value.decode("latin-1").split(",") if part.strip())


def noauth2_token_reply(scope: Scope, user: bytes | None, project: bytes | None) -> ApiFault:
    """Nova's noauth2 answer to a request without ``X-Auth-Token``: 204 and a token to use.

    The token is ``X-Auth-User:X-Auth-Project-Id`` (each ``admin`` when not sent), and
    ``X-Server-Management-Url`` is the request's URL followed by that project.
    """
    user_id = user.decode("latin-1") if user is not None else "admin"
    project_id = project.decode("latin-1") if project is not None else "admin"
    url = application_url(scope) + scope.get("path", "")
    query = scope.get("query_string", b"")
    if query:
        url += "?" + query.decode("latin-1")
    headers = [
        (b"x-auth-token", f"{user_id}:{project_id}".encode("latin-1")),
        (b"x-server-management-url", f"{url.rstrip('/')}/{project_id}".encode("latin-1")),
    ]
    return ApiFault(204, "", headers, body=b"", content_type=b"text/plain; charset=UTF-8")


class NoAuth2Authenticator:
    """Nova's ``noauth2``: trust ``X-Auth-Token: user[:project]`` (testing only).

    The user ``admin`` gets the roles admin, member and reader; anyone else member and reader.
    ``X-Roles`` (comma-separated), when sent, replaces those roles, and ``X-System-Scope``
    makes the token system-scoped, so tests can act as any persona. A request without
    ``X-Auth-Token`` is answered as Nova's noauth2 does (:func:`noauth2_token_reply`); an
    empty token is a 401.
    """

    ADMIN_ROLES = frozenset({"admin", "member", "reader"})
    USER_ROLES = frozenset({"member", "reader"})

    _CACHE_LIMIT = 4096

    def __init__(self) -> None:
        self._identities: dict[tuple[bytes, bytes | None, bytes | None], _Identity] = {}

    async def authenticate(self, scope: Scope, request_id: str) -> RequestContext:
        found = {name: value for name, value in scope["headers"] if name in _NOAUTH2_HEADERS}
        token = found.get(b"x-auth-token")
        if token is None:
            raise noauth2_token_reply(scope, found.get(b"x-auth-user"), found.get(b"x-auth-project-id"))
        if not token:
            raise unauthorized()
        roles = found.get(b"x-roles")
        system_scope = found.get(b"x-system-scope")
        key = (token, roles, system_scope)
        identity = self._identities.get(key)
        if identity is None:
            identity = self._identity(token, roles, system_scope)
            if len(self._identities) >= self._CACHE_LIMIT:
                self._identities.clear()
            self._identities[key] = identity
        user_id, project_id, role_set, scope_name, token_text = identity
        return RequestContext(
            request_id=request_id,
            user_id=user_id,
            project_id=project_id,
            roles=role_set,
            is_admin="admin" in role_set,
            system_scope=scope_name,
            auth_token=token_text,
        )

    def _identity(self, token: bytes, roles: bytes | None, system_scope: bytes | None) -> _Identity:
        text = token.decode("latin-1")
        user_id, _, project_id = text.partition(":")
        role_set = _split_list(roles) if roles is not None else None
        if role_set is None:
            role_set = self.ADMIN_ROLES if user_id == "admin" else self.USER_ROLES
        scope_name = system_scope.decode("latin-1").strip() or None if system_scope is not None else None
        return user_id, None if scope_name else (project_id or user_id), role_set, scope_name, text


def is_loopback(address: str) -> bool:
    """Whether a bind address only accepts local connections."""
    if address.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False


def make_authenticator(settings: Settings, conf: cfg.ConfigOpts) -> Authenticator:
    """The authenticator for ``settings.auth_strategy``.

    :raises ConfigurationError: noauth2 on a non-loopback address without ``allow_noauth_remote``.
    """
    if settings.auth_strategy == "noauth2":
        if not is_loopback(settings.listen) and not settings.allow_noauth_remote:
            raise ConfigurationError(
                f"[api] auth_strategy = noauth2 trusts every caller, but the API would listen on "
                f"{settings.listen!r}, which is not a loopback address. Use auth_strategy = keystone, "
                f"bind to 127.0.0.1, or set [api] allow_noauth_remote = true if you really mean it."
            )
        return NoAuth2Authenticator()
    if settings.auth_strategy == "keystone":
        from herald.api.keystone import KeystoneAuthenticator

        return KeystoneAuthenticator(conf)
    raise ConfigurationError(f"Unknown [api] auth_strategy {settings.auth_strategy!r}")
