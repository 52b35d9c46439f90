"""openstacksdk at 2.82 plays Cyborg against a real ``herald serve``, as Cyborg drives Nova.

The operator makes a flavor with a device profile; a boot with it waits for each accelerator
request's binding. Cyborg (here the test) finds the requests to bind in the current waits
(``GET /os-server-external-events?state=waiting``) and posts ``accelerator-request-bound``
through ``conn.compute.create_server_external_events``.
"""

from __future__ import annotations

from typing import Any

import openstack
import pytest
from keystoneauth1 import session
from keystoneauth1.token_endpoint import Token

from tests.e2e.stack.process import HeraldProcess, wait_until

pytestmark = [
    pytest.mark.stack,
    # openstacksdk warns about its own internals (its resource layer), not about how it is called.
    pytest.mark.filterwarnings("ignore::openstack.warnings.RemovedInSDK50Warning"),
]

IMAGE = "70a599e0-31e7-49b7-b260-868f441e862b"
BOUND = "accelerator-request-bound"


def _connect(process: HeraldProcess) -> openstack.connection.Connection:
    sess = session.Session(auth=Token(process.url + "/v2.1", "admin:admin"))
    return openstack.connection.Connection(session=sess, compute_api_version="2.82")


def _waiting(conn: openstack.connection.Connection, server_id: str) -> list[dict[str, Any]]:
    resp = conn.compute.get("/os-server-external-events", params={"server_uuid": server_id, "state": "waiting"})
    assert resp.status_code == 200, resp.text
    events: list[dict[str, Any]] = resp.json()["events"]
    return events


def _boot_with_accelerators(conn: openstack.connection.Connection, name: str) -> tuple[str, dict[str, Any]]:
    flavor = conn.compute.create_flavor(name=f"accel.{name}", ram=512, vcpus=1, disk=1, id=f"accel-{name}")
    conn.compute.create_flavor_extra_specs(flavor, {"accel:device_profile": "fpga-profile"})
    server = conn.compute.create_server(name=name, image_id=IMAGE, flavor_id=flavor.id, networks="none")
    found: list[dict[str, Any]] = []

    def waits() -> bool:
        found[:] = _waiting(conn, server.id)
        return bool(found)

    wait_until(waits)
    (wait,) = found
    return server.id, wait


def test_cyborg_binds_the_request_the_boot_waits_for(herald_process: HeraldProcess) -> None:
    conn = _connect(herald_process)
    server_id, wait = _boot_with_accelerators(conn, "bound")
    assert (wait["name"], wait["state"]) == (BOUND, "waiting")
    assert conn.compute.get_server(server_id).status == "BUILD"

    replies = list(
        conn.compute.create_server_external_events([{"name": BOUND, "server_uuid": server_id, "tag": wait["tag"]}])
    )
    assert [(r.code, r.status) for r in replies] == [(200, "completed")]
    wait_until(lambda: conn.compute.get_server(server_id).status == "ACTIVE")
    assert _waiting(conn, server_id) == []


def test_a_failed_binding_fails_the_boot_as_nova_does(herald_process: HeraldProcess) -> None:
    conn = _connect(herald_process)
    server_id, wait = _boot_with_accelerators(conn, "failed")
    event = {"name": BOUND, "server_uuid": server_id, "tag": wait["tag"], "status": "failed"}
    assert [r.code for r in conn.compute.create_server_external_events([event])] == [200]
    wait_until(lambda: conn.compute.get_server(server_id).status == "ERROR")
    server = conn.compute.get_server(server_id)
    assert server.fault["message"] == f"Build of instance {server_id} aborted: Failure getting accelerator requests."
    assert (server.task_state, server.compute_host, server.hypervisor_hostname) == (None, None, None)
    assert _waiting(conn, server_id) == []
