from __future__ import annotations

import dataclasses
import datetime
import json
import time
from collections.abc import Iterator

import pytest
from keystoneauth1 import fixture as ks_fixture
from keystonemiddleware.fixture import AuthTokenFixture
from oslo_config import cfg

from herald.api.faults import ApiFault
from herald.api.keystone import KeystoneAuthenticator, wsgi_environ

KEYSTONE = "https://keystone.example.com/identity"


@pytest.fixture
def tokens() -> Iterator[AuthTokenFixture]:
    with AuthTokenFixture() as fixture:
        yield fixture


@pytest.fixture
def authenticator() -> KeystoneAuthenticator:
    conf = cfg.ConfigOpts()
    conf([], project="herald", default_config_files=[], default_config_dirs=[])
    return KeystoneAuthenticator(conf, www_authenticate_uri=KEYSTONE)


def scope(*headers: tuple[str, str]) -> dict[str, object]:
    return {
        "type": "http",
        "method": "POST",
        "scheme": "http",
        "path": "/v2.1/os-server-external-events",
        "query_string": b"",
        "server": ("127.0.0.1", 8774),
        "client": ("10.1.1.1", 5555),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers],
    }


async def test_valid_token_gives_its_identity(tokens: AuthTokenFixture, authenticator: KeystoneAuthenticator) -> None:
    tokens.add_token_data(
        token_id="tok",
        user_id="u-neutron",
        project_id="p-service",
        role_list=["service", "reader"],
        user_domain_id="default",
        project_domain_id="default",
    )
    ctx = await authenticator.authenticate(scope(("X-Auth-Token", "tok")), "req-9")
    assert (ctx.request_id, ctx.user_id, ctx.project_id) == ("req-9", "u-neutron", "p-service")
    assert ctx.roles == {"service", "reader"}
    assert not ctx.is_admin
    assert (ctx.system_scope, ctx.domain_id) == (None, None)
    assert (ctx.user_domain_id, ctx.project_domain_id) == ("default", "default")


async def test_forged_identity_headers_are_ignored(
    tokens: AuthTokenFixture, authenticator: KeystoneAuthenticator
) -> None:
    tokens.add_token_data(token_id="tok", user_id="u1", project_id="p1", role_list=["member"])
    ctx = await authenticator.authenticate(
        scope(("X-Auth-Token", "tok"), ("X-Roles", "admin"), ("X-Project-Id", "other"), ("X-Identity-Status", "x")),
        "r",
    )
    assert ctx.roles == {"member"}
    assert ctx.project_id == "p1"


async def test_admin_role_sets_is_admin(tokens: AuthTokenFixture, authenticator: KeystoneAuthenticator) -> None:
    tokens.add_token_data(token_id="tok", user_id="u1", project_id="p1", role_list=["admin", "member", "reader"])
    ctx = await authenticator.authenticate(scope(("X-Auth-Token", "tok")), "r")
    assert ctx.is_admin


async def test_system_scoped_token(tokens: AuthTokenFixture, authenticator: KeystoneAuthenticator) -> None:
    token = ks_fixture.V3Token(user_id="u-admin")
    token.set_system_scope()
    token.add_role(name="admin")
    tokens.add_token(token, token_id="sys")
    ctx = await authenticator.authenticate(scope(("X-Auth-Token", "sys")), "r")
    assert (ctx.system_scope, ctx.project_id) == ("all", None)


async def test_service_token_roles(tokens: AuthTokenFixture, authenticator: KeystoneAuthenticator) -> None:
    tokens.add_token_data(token_id="user", user_id="u1", project_id="p1", role_list=["member"])
    tokens.add_token_data(token_id="svc", user_id="nova", project_id="service", role_list=["service"])
    ctx = await authenticator.authenticate(scope(("X-Auth-Token", "user"), ("X-Service-Token", "svc")), "r")
    assert ctx.roles == {"member"}
    assert ctx.service_roles == {"service"}


@pytest.mark.parametrize("headers", [(("X-Auth-Token", "nope"),), ()])
async def test_invalid_or_missing_token_is_novas_401(
    tokens: AuthTokenFixture, authenticator: KeystoneAuthenticator, headers: tuple[tuple[str, str], ...]
) -> None:
    with pytest.raises(ApiFault) as info:
        await authenticator.authenticate(scope(*headers), "r")
    assert info.value.status == 401
    assert info.value.message == "The request you have made requires authentication."
    assert info.value.headers == [(b"www-authenticate", f'Keystone uri="{KEYSTONE}"'.encode())]
    assert json.loads(info.value.body()) == {
        "error": {"code": 401, "title": "Unauthorized", "message": "The request you have made requires authentication."}
    }


def test_wsgi_environ_from_scope() -> None:
    environ = wsgi_environ(
        scope(("Content-Type", "application/json"), ("Content-Length", "12"), ("X-A", "1"), ("x-a", "2"))
    )
    assert environ["REQUEST_METHOD"] == "POST"
    assert environ["PATH_INFO"] == "/v2.1/os-server-external-events"
    assert environ["CONTENT_TYPE"] == "application/json"
    assert environ["CONTENT_LENGTH"] == "12"
    assert environ["HTTP_X_A"] == "1,2"
    assert environ["REMOTE_ADDR"] == "10.1.1.1"
    assert (environ["SERVER_NAME"], environ["SERVER_PORT"]) == ("127.0.0.1", "8774")
    assert environ["wsgi.input"].read() == b""


async def test_validated_identity_is_reused_with_a_new_request_id(
    tokens: AuthTokenFixture, authenticator: KeystoneAuthenticator
) -> None:
    tokens.add_token_data(token_id="tok", user_id="u1", project_id="p1", role_list=["service"])
    first = await authenticator.authenticate(scope(("X-Auth-Token", "tok")), "req-1")
    second = await authenticator.authenticate(scope(("X-Auth-Token", "tok")), "req-2")
    assert authenticator.cached_identities == 1
    assert authenticator.cached_until(b"tok") == pytest.approx(time.time() + 30, abs=5)
    assert (first.request_id, second.request_id) == ("req-1", "req-2")
    assert dataclasses.replace(second, request_id="req-1") == first


async def test_cache_is_per_token_pair(tokens: AuthTokenFixture, authenticator: KeystoneAuthenticator) -> None:
    tokens.add_token_data(token_id="tok", user_id="u1", project_id="p1", role_list=["member"])
    tokens.add_token_data(token_id="svc", user_id="nova", project_id="service", role_list=["service"])
    await authenticator.authenticate(scope(("X-Auth-Token", "tok")), "r")
    ctx = await authenticator.authenticate(scope(("X-Auth-Token", "tok"), ("X-Service-Token", "svc")), "r")
    assert ctx.service_roles == {"service"}
    assert authenticator.cached_identities == 2
    with pytest.raises(ApiFault):
        await authenticator.authenticate(scope(("X-Auth-Token", "tok"), ("X-Service-Token", "bad")), "r")
    with pytest.raises(ApiFault):
        await authenticator.authenticate(scope(("X-Auth-Token", "other")), "r")
    assert authenticator.cached_identities == 2


@pytest.mark.parametrize(("cache_seconds", "token_cache_time"), [(0, 300), (30, -1)])
async def test_cache_can_be_disabled(tokens: AuthTokenFixture, cache_seconds: float, token_cache_time: int) -> None:
    tokens.add_token_data(token_id="tok", user_id="u1", project_id="p1", role_list=["member"])
    conf = cfg.ConfigOpts()
    conf([], project="herald", default_config_files=[], default_config_dirs=[])
    auth = KeystoneAuthenticator(conf, identity_cache_seconds=cache_seconds, token_cache_time=token_cache_time)
    ctx = await auth.authenticate(scope(("X-Auth-Token", "tok")), "r")
    assert ctx.user_id == "u1"
    assert auth.cached_identities == 0


async def test_identity_is_not_cached_past_token_expiry(
    tokens: AuthTokenFixture, authenticator: KeystoneAuthenticator
) -> None:
    soon = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=5)
    tokens.add_token_data(token_id="tok", user_id="u1", project_id="p1", role_list=["member"], expires=soon)
    await authenticator.authenticate(scope(("X-Auth-Token", "tok")), "r")
    assert authenticator.cached_until(b"tok") == pytest.approx(soon.timestamp(), abs=1)
    assert authenticator.cached_until(b"tok", b"svc") is None
