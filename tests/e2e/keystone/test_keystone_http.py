"""Every route through keystonemiddleware with real Keystone tokens: 401 without a valid token,
403 where Nova's default policy refuses the caller's roles, 2xx where it allows them.

A non-admin caller looking at another project's server gets 404, as in Nova, where the
lookup is scoped to the caller's project before any policy is checked.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.keystone.identity import Keystone, User
from tests.e2e.stack.process import HeraldProcess, wait_until

pytestmark = pytest.mark.stack

IMAGE = "70a599e0-31e7-49b7-b260-868f441e862b"
VERSION = {"OpenStack-API-Version": "compute 2.76"}
KEYSTONE_401 = {
    "error": {"code": 401, "title": "Unauthorized", "message": "The request you have made requires authentication."}
}
SERVICE, IRONIC, ADMIN, MEMBER, READER, OTHER = ALL = tuple(User)  # in their order of definition


class Api:
    """The compute API of ``herald_keystone`` as each user."""

    def __init__(self, process: HeraldProcess, tokens: dict[User, str]) -> None:
        self.http = httpx.Client(base_url=process.url + "/v2.1", headers=VERSION, timeout=30.0)
        self.tokens = tokens

    def call(self, user: User | None, method: str, path: str, body: Any = None) -> httpx.Response:
        headers = {} if user is None else {"X-Auth-Token": self.tokens[user]}
        return self.http.request(method, path, json=body, headers=headers)

    def create_server(self, user: User, name: str = "vm") -> str:
        body = {"server": {"name": name, "imageRef": IMAGE, "flavorRef": "1", "networks": "none"}}
        reply = self.call(user, "POST", "/servers", body)
        assert reply.status_code == 202, reply.text
        server_id: str = reply.json()["server"]["id"]
        self.wait_status(server_id, "ACTIVE")
        return server_id

    def status(self, server_id: str) -> str:
        status: str = self.call(ADMIN, "GET", f"/servers/{server_id}").json()["server"]["status"]
        return status

    def wait_status(self, server_id: str, status: str) -> None:
        wait_until(lambda: self.status(server_id) == status)


@pytest.fixture(scope="module")
def api(herald_keystone: HeraldProcess, tokens: dict[User, str]) -> Iterator[Api]:
    client = Api(herald_keystone, tokens)
    yield client
    client.http.close()


@pytest.fixture(scope="module")
def server(api: Api) -> dict[str, str]:
    """A server of project herald (created by its member) and the request id of its create action."""
    server_id = api.create_server(MEMBER, "shared")
    actions = api.call(MEMBER, "GET", f"/servers/{server_id}/os-instance-actions").json()["instanceActions"]
    return {"server": server_id, "request": actions[0]["request_id"]}


# (method, path, body, users allowed (2xx), users refused with 403; everyone else gets 404)
READS: list[tuple[str, str, frozenset[User], frozenset[User]]] = [
    ("GET", "/os-server-external-events", frozenset({SERVICE, IRONIC, ADMIN}), frozenset({MEMBER, READER, OTHER})),
    ("GET", "/servers", frozenset({IRONIC, ADMIN, MEMBER, READER, OTHER}), frozenset({SERVICE})),
    ("GET", "/servers/detail", frozenset({IRONIC, ADMIN, MEMBER, READER, OTHER}), frozenset({SERVICE})),
    ("GET", "/servers/{server}", frozenset({IRONIC, ADMIN, MEMBER, READER}), frozenset()),
    ("GET", "/servers/{server}/os-instance-actions", frozenset({IRONIC, ADMIN, MEMBER, READER}), frozenset()),
    ("GET", "/servers/{server}/os-instance-actions/{request}", frozenset({IRONIC, ADMIN, MEMBER, READER}), frozenset()),
    ("GET", "/flavors", frozenset(ALL), frozenset()),
    ("GET", "/flavors/detail", frozenset(ALL), frozenset()),
    ("GET", "/flavors/1", frozenset(ALL), frozenset()),
    ("GET", "/os-services", frozenset({IRONIC, ADMIN}), frozenset({SERVICE, MEMBER, READER, OTHER})),
]


@pytest.mark.parametrize("user", ALL, ids=lambda u: u.name.lower())
@pytest.mark.parametrize(("method", "path", "allowed", "refused"), READS, ids=[f"{m} {p}" for m, p, _, _ in READS])
def test_reads_follow_novas_default_policy(
    api: Api,
    server: dict[str, str],
    user: User,
    method: str,
    path: str,
    allowed: frozenset[User],
    refused: frozenset[User],
) -> None:
    reply = api.call(user, method, path.format(**server))
    if user in allowed:
        assert reply.status_code == 200, reply.text
    elif user in refused:
        assert reply.status_code == 403, reply.text
        assert reply.json()["forbidden"]["message"].startswith("Policy doesn't allow ")
    else:
        assert reply.status_code == 404, reply.text
        assert reply.json()["itemNotFound"]["code"] == 404


def test_servers_lists_show_the_callers_project_only(api: Api, server: dict[str, str]) -> None:
    def ids(user: User, query: str = "") -> list[str]:
        return [s["id"] for s in api.call(user, "GET", "/servers" + query).json()["servers"]]

    assert server["server"] in ids(MEMBER)
    assert server["server"] in ids(READER)
    assert server["server"] not in ids(OTHER)
    assert server["server"] in ids(ADMIN, "?all_tenants=1")
    assert api.call(MEMBER, "GET", "/servers?all_tenants=1").status_code == 403


@pytest.mark.parametrize("user", ALL, ids=lambda u: u.name.lower())
def test_posting_events_needs_the_service_or_admin_role(api: Api, server: dict[str, str], user: User) -> None:
    body = {"events": [{"name": "network-changed", "server_uuid": server["server"], "tag": "port-1"}]}
    reply = api.call(user, "POST", "/os-server-external-events", body)
    if user in (SERVICE, IRONIC, ADMIN):
        assert reply.status_code == 200, reply.text
        assert reply.json()["events"][0]["code"] == 200
    else:
        assert reply.status_code == 403, reply.text
        assert reply.json() == {
            "forbidden": {
                "code": 403,
                "message": "Policy doesn't allow os_compute_api:os-server-external-events:create to be performed.",
            }
        }


def test_the_event_record_shows_the_service_users_event(api: Api, server: dict[str, str]) -> None:
    body = {"events": [{"name": "network-changed", "server_uuid": server["server"], "tag": "port-rec"}]}
    assert api.call(SERVICE, "POST", "/os-server-external-events", body).status_code == 200
    records = api.call(SERVICE, "GET", f"/os-server-external-events?server_uuid={server['server']}").json()
    assert "port-rec" in [event["tag"] for event in records["events"]]


@pytest.mark.parametrize("user", [SERVICE, READER])
def test_creating_a_server_needs_a_member_role(api: Api, user: User) -> None:
    body = {"server": {"name": "no", "imageRef": IMAGE, "flavorRef": "1", "networks": "none"}}
    reply = api.call(user, "POST", "/servers", body)
    assert reply.status_code == 403, reply.text
    assert reply.json()["forbidden"]["message"] == "Policy doesn't allow os_compute_api:servers:create to be performed."


def test_a_member_of_another_project_creates_in_its_own(api: Api) -> None:
    server_id = api.create_server(OTHER, "elsewhere")
    assert [s["id"] for s in api.call(OTHER, "GET", "/servers").json()["servers"]] == [server_id]
    assert api.call(MEMBER, "GET", f"/servers/{server_id}").status_code == 404
    assert api.call(OTHER, "DELETE", f"/servers/{server_id}").status_code == 204


def test_actions_and_delete_follow_novas_default_policy(api: Api) -> None:
    server_id = api.create_server(MEMBER, "acted-on")
    stop = {"os-stop": None}
    assert api.call(READER, "POST", f"/servers/{server_id}/action", stop).status_code == 403
    assert api.call(OTHER, "POST", f"/servers/{server_id}/action", stop).status_code == 404
    assert api.call(SERVICE, "POST", f"/servers/{server_id}/action", stop).status_code == 404
    assert api.call(MEMBER, "POST", f"/servers/{server_id}/action", stop).status_code == 202
    api.wait_status(server_id, "SHUTOFF")
    assert api.call(ADMIN, "POST", f"/servers/{server_id}/action", {"os-start": None}).status_code == 202
    api.wait_status(server_id, "ACTIVE")

    assert api.call(READER, "DELETE", f"/servers/{server_id}").status_code == 403
    assert api.call(OTHER, "DELETE", f"/servers/{server_id}").status_code == 404
    assert api.call(MEMBER, "DELETE", f"/servers/{server_id}").status_code == 204
    wait_until(lambda: api.call(MEMBER, "GET", f"/servers/{server_id}").status_code == 404)


@pytest.mark.parametrize(
    ("method", "path"), [("POST", "/os-server-external-events"), ("GET", "/servers"), ("GET", "/os-services")]
)
def test_a_system_scoped_admin_token_is_refused(
    api: Api, keystone: Keystone, server: dict[str, str], method: str, path: str
) -> None:
    token = keystone.session(ADMIN, system_scope=True).get_token()
    body = {"events": [{"name": "network-changed", "server_uuid": server["server"]}]} if method == "POST" else None
    reply = api.http.request(method, path, json=body, headers={"X-Auth-Token": token})
    assert reply.status_code == 403, reply.text


AUTHENTICATED = [
    ("POST", "/os-server-external-events"),
    ("GET", "/os-server-external-events"),
    ("GET", "/servers"),
    ("POST", "/servers"),
    ("GET", "/servers/detail"),
    ("GET", "/servers/{server}"),
    ("DELETE", "/servers/{server}"),
    ("POST", "/servers/{server}/action"),
    ("GET", "/servers/{server}/os-instance-actions"),
    ("GET", "/servers/{server}/os-instance-actions/{request}"),
    ("GET", "/flavors"),
    ("GET", "/flavors/detail"),
    ("GET", "/flavors/1"),
    ("GET", "/os-services"),
]


@pytest.mark.parametrize("token", [None, "not-a-token", "gAAAAABforged"], ids=["no-token", "bad", "forged"])
@pytest.mark.parametrize(("method", "path"), AUTHENTICATED, ids=[f"{m} {p}" for m, p in AUTHENTICATED])
def test_without_a_valid_token_every_route_is_keystonemiddlewares_401(
    api: Api, keystone: Keystone, server: dict[str, str], method: str, path: str, token: str | None
) -> None:
    headers = {} if token is None else {"X-Auth-Token": token}
    body = {"events": []} if method == "POST" else None
    reply = api.http.request(method, path.format(**server), json=body, headers=headers)
    assert reply.status_code == 401
    assert reply.json() == KEYSTONE_401
    assert reply.headers["content-type"] == "application/json; charset=UTF-8"
    assert reply.headers["www-authenticate"] == f'Keystone uri="{keystone.url}"'
    assert reply.headers["x-openstack-request-id"].startswith("req-")


@pytest.mark.parametrize("path", ["/", "/v2.1", "/v2.1/"])
@pytest.mark.parametrize("token", [None, "not-a-token"], ids=["no-token", "bad"])
def test_versions_need_no_token(herald_keystone: HeraldProcess, path: str, token: str | None) -> None:
    headers = {} if token is None else {"X-Auth-Token": token}
    reply = httpx.get(herald_keystone.url + path, headers=headers, timeout=30.0)
    assert reply.status_code == 200
    assert "version" in reply.text
