"""python-novaclient drives cold moves against a real ``herald serve`` as it drives Nova's."""

from __future__ import annotations

from typing import Any

import pytest
from keystoneauth1 import session
from keystoneauth1.token_endpoint import Token
from novaclient import client as nova_client

from tests.e2e.stack.process import HeraldProcess, wait_until

pytestmark = pytest.mark.stack

IMAGE = "70a599e0-31e7-49b7-b260-868f441e862b"


def _nova(process: HeraldProcess, version: str = "2.80") -> Any:
    return nova_client.Client(version, session=session.Session(auth=Token(process.url + "/v2.1", "admin:admin")))


def _status(nova: Any, server_id: str) -> str:
    status: str = nova.servers.get(server_id).status
    return status


def test_novaclient_migrate_resize_confirm_revert(herald_process: HeraldProcess) -> None:
    nova = _nova(herald_process)
    server = nova.servers.create("mover", IMAGE, "1", nics="none")
    wait_until(lambda: _status(nova, server.id) == "ACTIVE")
    source = getattr(nova.servers.get(server.id), "OS-EXT-SRV-ATTR:host")

    nova.servers.resize(server.id, "2")
    wait_until(lambda: _status(nova, server.id) == "VERIFY_RESIZE")
    moved = nova.servers.get(server.id)
    assert getattr(moved, "OS-EXT-SRV-ATTR:host") != source
    assert moved.flavor["original_name"] == "m1.small"
    replies = nova.server_external_events.create([{"name": "network-changed", "server_uuid": server.id}])
    assert replies[0]["code"] == 200
    nova.servers.revert_resize(server.id)
    wait_until(lambda: _status(nova, server.id) == "ACTIVE")
    back = nova.servers.get(server.id)
    assert (getattr(back, "OS-EXT-SRV-ATTR:host"), back.flavor["original_name"]) == (source, "m1.tiny")

    nova.servers.migrate(server.id)
    wait_until(lambda: _status(nova, server.id) == "VERIFY_RESIZE")
    nova.servers.confirm_resize(server.id)
    wait_until(lambda: _status(nova, server.id) == "ACTIVE")
    migrations = nova.migrations.list(instance_uuid=server.id)
    assert [(m.migration_type, m.status) for m in migrations] == [("migration", "confirmed"), ("resize", "reverted")]
    assert sorted(a.action for a in nova.instance_action.list(server.id)) == [
        "confirmResize",
        "create",
        "migrate",
        "resize",
        "revertResize",
    ]
