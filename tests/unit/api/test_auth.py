from __future__ import annotations

import pytest
from oslo_config import cfg

from herald.api.auth import ConfigurationError, NoAuth2Authenticator, is_loopback, make_authenticator
from herald.api.faults import ApiFault
from herald.api.keystone import KeystoneAuthenticator
from herald.config import Settings


def scope(**headers: str) -> dict[str, object]:
    return {
        "type": "http",
        "method": "GET",
        "path": "/v2.1/servers",
        "headers": [(k.replace("_", "-").lower().encode(), v.encode()) for k, v in headers.items()],
    }


async def test_user_and_project_from_the_token() -> None:
    ctx = await NoAuth2Authenticator().authenticate(scope(x_auth_token="alice:p1"), "req-1")
    assert (ctx.request_id, ctx.user_id, ctx.project_id) == ("req-1", "alice", "p1")
    assert ctx.roles == {"member", "reader"}
    assert not ctx.is_admin
    assert ctx.system_scope is None


async def test_without_colon_the_project_is_the_user() -> None:
    ctx = await NoAuth2Authenticator().authenticate(scope(x_auth_token="bob"), "req-1")
    assert (ctx.user_id, ctx.project_id) == ("bob", "bob")


async def test_admin_user_gets_admin_roles() -> None:
    ctx = await NoAuth2Authenticator().authenticate(scope(x_auth_token="admin:p1"), "req-1")
    assert ctx.roles == {"admin", "member", "reader"}
    assert ctx.is_admin


async def test_x_roles_replaces_the_roles() -> None:
    ctx = await NoAuth2Authenticator().authenticate(scope(x_auth_token="neutron:svc", x_roles="service, reader"), "r")
    assert ctx.roles == {"service", "reader"}
    assert not ctx.is_admin
    ctx = await NoAuth2Authenticator().authenticate(scope(x_auth_token="admin:p1", x_roles="reader"), "r")
    assert not ctx.is_admin


async def test_system_scope_header_makes_a_system_scoped_token() -> None:
    ctx = await NoAuth2Authenticator().authenticate(scope(x_auth_token="admin", x_system_scope="all"), "r")
    assert (ctx.system_scope, ctx.project_id) == ("all", None)


@pytest.mark.parametrize(
    ("headers", "token", "url"),
    [
        ({}, b"admin:admin", b"http://compute.test/v2.1/servers/admin"),
        ({"x_auth_user": "bob", "x_auth_project_id": "p1"}, b"bob:p1", b"http://compute.test/v2.1/servers/p1"),
    ],
)
async def test_without_a_token_header_noauth2_hands_out_a_token_as_nova(
    headers: dict[str, str], token: bytes, url: bytes
) -> None:
    with pytest.raises(ApiFault) as info:
        await NoAuth2Authenticator().authenticate(scope(host="compute.test", **headers), "r")
    assert (info.value.status, info.value.body(), info.value.content_type) == (204, b"", b"text/plain; charset=UTF-8")
    assert info.value.headers == [(b"x-auth-token", token), (b"x-server-management-url", url)]


async def test_empty_token_is_401() -> None:
    with pytest.raises(ApiFault) as info:
        await NoAuth2Authenticator().authenticate(scope(x_auth_token=""), "r")
    assert info.value.status == 401
    assert info.value.body() == (
        b'{"unauthorized":{"code":401,"message":"The request you have made requires authentication."}}'
    )


@pytest.mark.parametrize("address", ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost", "LOCALHOST"])
def test_loopback_addresses(address: str) -> None:
    assert is_loopback(address)


@pytest.mark.parametrize("address", ["0.0.0.0", "::", "10.0.0.5", "api.example.com", ""])
def test_non_loopback_addresses(address: str) -> None:
    assert not is_loopback(address)


def test_noauth2_on_loopback_is_fine() -> None:
    auth = make_authenticator(Settings(auth_strategy="noauth2", listen="127.0.0.1"), cfg.ConfigOpts())
    assert isinstance(auth, NoAuth2Authenticator)


def test_noauth2_on_a_public_address_refuses_to_start() -> None:
    with pytest.raises(ConfigurationError, match="allow_noauth_remote"):
        make_authenticator(Settings(auth_strategy="noauth2", listen="0.0.0.0"), cfg.ConfigOpts())


def test_noauth2_on_a_public_address_when_allowed() -> None:
    settings = Settings(auth_strategy="noauth2", listen="0.0.0.0", allow_noauth_remote=True)
    assert isinstance(make_authenticator(settings, cfg.ConfigOpts()), NoAuth2Authenticator)


def test_keystone_strategy_builds_the_keystone_bridge() -> None:
    conf = cfg.ConfigOpts()
    conf([], project="herald", default_config_files=[], default_config_dirs=[])
    auth = make_authenticator(Settings(auth_strategy="keystone", listen="0.0.0.0"), conf)
    assert isinstance(auth, KeystoneAuthenticator)
    assert "keystone_authtoken" in conf
