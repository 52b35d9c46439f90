"""Authorization through HTTP (§1.3, §9.2): noauth2 personas and the keystone bridge."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from keystoneauth1 import fixture as ks_fixture
from keystonemiddleware.fixture import AuthTokenFixture

from herald.api.keystone import KeystoneAuthenticator
from herald.api.policy import PolicyEnforcer
from tests.e2e.api.edge_app import EVENTS_RULE, build_app, parsed_conf

URL = "/v2.1/os-server-external-events"
FORBIDDEN = {
    "forbidden": {
        "code": 403,
        "message": "Policy doesn't allow os_compute_api:os-server-external-events:create to be performed.",
    }
}


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Auth-Token": "admin:0a1b"},
        {"X-Auth-Token": "bob:0a1b", "X-Roles": "admin"},
        {"X-Auth-Token": "neutron:5e5e", "X-Roles": "service"},
    ],
)
async def test_admin_and_service_may_post_events(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    r = await client.post(URL, json={"events": []}, headers=headers)
    assert r.status_code == 200
    assert r.json() == {"events": []}


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Auth-Token": "alice:0a1b"},
        {"X-Auth-Token": "alice:0a1b", "X-Roles": "manager,member,reader"},
        {"X-Auth-Token": "alice:0a1b", "X-Roles": "reader"},
        {"X-Auth-Token": "alice:0a1b", "X-Roles": "foo"},
        {"X-Auth-Token": "admin", "X-System-Scope": "all"},
        {"X-Auth-Token": "bob", "X-Roles": "member,reader", "X-System-Scope": "all"},
        {"X-Auth-Token": "bob", "X-Roles": "reader", "X-System-Scope": "all"},
        {"X-Auth-Token": "bob", "X-Roles": "service", "X-System-Scope": "all"},
    ],
)
async def test_everyone_else_gets_403(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    r = await client.post(URL, json={"events": []}, headers=headers)
    assert r.status_code == 403
    assert r.json() == FORBIDDEN
    assert r.headers["x-compute-request-id"].startswith("req-")
    assert r.headers["openstack-api-version"] == "compute 2.1"


async def test_policy_file_override_through_http(tmp_path: Path) -> None:
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(f'"{EVENTS_RULE}": "role:member"\n')
    app = build_app(policy=PolicyEnforcer(parsed_conf(), str(policy_file)))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://h") as c:
        member = await c.post(URL, json={}, headers={"X-Auth-Token": "alice:0a1b"})
        service = await c.post(URL, json={}, headers={"X-Auth-Token": "n:0a1b", "X-Roles": "service"})
    assert member.status_code == 200
    assert service.status_code == 403


@pytest.fixture
async def keystone_client() -> AsyncIterator[tuple[httpx.AsyncClient, AuthTokenFixture]]:
    with AuthTokenFixture() as tokens:
        auth = KeystoneAuthenticator(parsed_conf(), www_authenticate_uri="https://keystone.example.com")
        app = build_app(authenticator=auth)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://h") as c:
            yield c, tokens


async def test_keystone_service_user_is_allowed(keystone_client: tuple[httpx.AsyncClient, AuthTokenFixture]) -> None:
    client, tokens = keystone_client
    tokens.add_token_data(token_id="svc", user_id="neutron", project_id="5e5e", role_list=["service"])
    r = await client.post(URL, json={"events": []}, headers={"X-Auth-Token": "svc"})
    assert r.status_code == 200
    r = await client.get("/v2.1/5e5e/echo", headers={"X-Auth-Token": "svc", "X-Roles": "admin"})
    assert (r.json()["user_id"], r.json()["project_id"], r.json()["roles"]) == ("neutron", "5e5e", ["service"])


async def test_keystone_member_is_forbidden(keystone_client: tuple[httpx.AsyncClient, AuthTokenFixture]) -> None:
    client, tokens = keystone_client
    tokens.add_token_data(token_id="m", user_id="alice", project_id="0a1b", role_list=["member", "reader"])
    r = await client.post(URL, json={"events": []}, headers={"X-Auth-Token": "m", "X-Roles": "admin,service"})
    assert r.status_code == 403
    assert r.json() == FORBIDDEN


async def test_keystone_system_scoped_admin_is_forbidden(
    keystone_client: tuple[httpx.AsyncClient, AuthTokenFixture],
) -> None:
    client, tokens = keystone_client
    token = ks_fixture.V3Token(user_id="root")
    token.set_system_scope()
    token.add_role(name="admin")
    tokens.add_token(token, token_id="sys")
    r = await client.post(URL, json={"events": []}, headers={"X-Auth-Token": "sys"})
    assert r.status_code == 403


@pytest.mark.parametrize("headers", [{"X-Auth-Token": "forged"}, {}])
async def test_keystone_bad_token_is_401(
    keystone_client: tuple[httpx.AsyncClient, AuthTokenFixture], headers: dict[str, str]
) -> None:
    client, _ = keystone_client
    r = await client.post(URL, json={"events": []}, headers=headers)
    assert r.status_code == 401
    # As Nova: keystonemiddleware's own body, not Nova's fault format.
    assert r.json() == {
        "error": {"code": 401, "title": "Unauthorized", "message": "The request you have made requires authentication."}
    }
    assert r.headers["content-type"] == "application/json; charset=UTF-8"
    assert r.headers["www-authenticate"] == 'Keystone uri="https://keystone.example.com"'
    assert r.headers["x-openstack-request-id"].startswith("req-")
