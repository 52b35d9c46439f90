"""SqlServerRepository and SqlMigrationRepository through the real unit of work."""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine, exc, text

from herald.adapters.sql.uow import SqlUnitOfWork
from herald.domain.model import Migration, Server, Vif, VolumeAttachment
from herald.service.ports import ServerTargets

UowFactory = Callable[[], SqlUnitOfWork]
T0 = datetime(2025, 1, 2, 3, 4, 5)


def make_server(host: str | None = "compute-1", **fields: object) -> Server:
    values: dict[str, object] = {
        "uuid": str(uuid.uuid4()),
        "name": "vm",
        "project_id": "p1",
        "user_id": "u1",
        "flavor_id": "1",
        "image_ref": "img",
        "host": host,
        "created_at": T0,
    }
    values.update(fields)
    return Server(**values)  # type: ignore[arg-type]


def add(uow_factory: UowFactory, *servers: Server) -> None:
    with uow_factory() as uow:
        for server in servers:
            uow.servers.add(server)
        uow.commit()


def add_migration(uow_factory: UowFactory, server: Server, source: str, dest: str, status: str) -> int:
    with uow_factory() as uow:
        migration = uow.migrations.add(Migration(0, server.uuid, source, dest, "migration", status))
        server.migration_id = migration.id
        uow.servers.save(server)
        uow.commit()
    return migration.id


def test_add_then_get_round_trips_every_field(uow_factory: UowFactory) -> None:
    server = make_server(
        vm_state="active",
        power_state=1,
        task_state=None,
        node="node-1",
        vifs=[Vif("port-1", active=True, network_id="net-1"), Vif("port-2")],
        volumes=[VolumeAttachment("vol-1", 10, "/dev/vdb")],
        metadata={"k": "v"},
        fault={"code": 500, "message": "boom"},
        updated_at=T0 + timedelta(seconds=1),
        launched_at=T0 + timedelta(seconds=2),
    )
    add(uow_factory, server)
    with uow_factory() as uow:
        assert uow.servers.get(server.uuid) == server


def test_add_defaults_created_at_and_stores_no_fault_as_null(uow_factory: UowFactory, engine: Engine) -> None:
    server = make_server(created_at=None)
    add(uow_factory, server)
    assert server.created_at is not None
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM servers WHERE fault IS NULL")).scalar() == 1


def test_add_duplicate_uuid_fails(uow_factory: UowFactory) -> None:
    server = make_server()
    add(uow_factory, server)
    with pytest.raises(exc.IntegrityError):
        add(uow_factory, make_server(uuid=server.uuid))


def test_get_misses_unknown_and_deleted(uow_factory: UowFactory) -> None:
    deleted = make_server(deleted=True)
    add(uow_factory, deleted)
    with uow_factory() as uow:
        assert uow.servers.get(str(uuid.uuid4())) is None
        assert uow.servers.get(deleted.uuid) is None
        assert uow.servers.get(deleted.uuid, for_update=True) is None


def test_get_for_update_locks_the_row_on_postgresql(uow_factory: UowFactory, engine: Engine) -> None:
    server = make_server()
    add(uow_factory, server)
    with uow_factory() as uow:
        assert uow.servers.get(server.uuid, for_update=True) == server
        if engine.dialect.name == "postgresql":
            with engine.connect() as other, pytest.raises(exc.OperationalError):
                other.execute(text("SELECT uuid FROM servers WHERE uuid = :u FOR UPDATE NOWAIT"), {"u": server.uuid})


def test_save_writes_every_field(uow_factory: UowFactory) -> None:
    server = make_server(fault={"message": "old"})
    add(uow_factory, server)
    server.vm_state = "stopped"
    server.power_state = 4
    server.task_state = None
    server.host = "compute-2"
    server.vifs = [Vif("port-9", active=True)]
    server.volumes = []
    server.metadata = {}
    server.fault = None
    server.deleted = True
    server.terminated_at = T0
    with uow_factory() as uow:
        uow.servers.save(server)
        uow.commit()
    with uow_factory() as uow:
        assert uow.servers.list(include_deleted=True) == [server]


@pytest.mark.parametrize(
    ("stored", "expected", "written"),
    [
        ("spawning", ["spawning"], True),
        ("spawning", ["powering-on", "spawning"], True),
        ("spawning", [None], False),
        (None, [None], True),
        (None, ["spawning", None], True),
        ("spawning", ["powering-on", None], False),
        ("spawning", [], False),
    ],
)
def test_save_if_task_state(
    uow_factory: UowFactory, stored: str | None, expected: list[str | None], written: bool
) -> None:
    server = make_server(task_state=stored)
    add(uow_factory, server)
    server.task_state = "deleting"
    with uow_factory() as uow:
        assert uow.servers.save_if_task_state(server, expected) is written
        uow.commit()
    with uow_factory() as uow:
        found = uow.servers.get(server.uuid)
    assert found is not None
    assert found.task_state == ("deleting" if written else stored)


def test_save_if_task_state_unknown_server(uow_factory: UowFactory) -> None:
    with uow_factory() as uow:
        assert uow.servers.save_if_task_state(make_server(), [None, "scheduling"]) is False


def test_save_if_task_state_race_has_one_winner(uow_factory: UowFactory) -> None:
    """Two writers read the same task_state; only the first guarded save wins, the second sees False."""
    server = make_server(task_state="powering-off")
    add(uow_factory, server)
    first_saved = threading.Event()
    results: dict[str, bool] = {}

    def writer(name: str, task_state: str, wait_for: threading.Event | None) -> None:
        if wait_for is not None:
            wait_for.wait(5)
        mine = make_server(uuid=server.uuid, task_state=task_state)
        with uow_factory() as uow:
            results[name] = uow.servers.save_if_task_state(mine, ["powering-off"])
            if wait_for is None:
                first_saved.set()
                threading.Event().wait(0.2)  # hold the row while the second writer tries
            uow.commit()

    threads = [
        threading.Thread(target=writer, args=("first", "a", None)),
        threading.Thread(target=writer, args=("second", "b", first_saved)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(15)
    assert results == {"first": True, "second": False}
    with uow_factory() as uow:
        found = uow.servers.get(server.uuid)
    assert found is not None
    assert found.task_state == "a"


def test_targets_without_migration(uow_factory: UowFactory) -> None:
    on_host, no_host, deleted = make_server("c1"), make_server(None), make_server("c1", deleted=True)
    add(uow_factory, on_host, no_host, deleted)
    with uow_factory() as uow:
        found = uow.servers.targets([on_host.uuid, no_host.uuid, deleted.uuid, str(uuid.uuid4()), on_host.uuid])
    assert found == {on_host.uuid: ServerTargets("c1", ("c1",)), no_host.uuid: ServerTargets(None, ())}


@pytest.mark.parametrize("status", ["migrating", "finished", "error"])
def test_targets_with_migration_in_any_status(uow_factory: UowFactory, status: str) -> None:
    server = make_server("c1")
    add(uow_factory, server)
    add_migration(uow_factory, server, "c1", "c2", status)
    with uow_factory() as uow:
        assert uow.servers.targets([server.uuid]) == {server.uuid: ServerTargets("c1", ("c1", "c2"))}


def test_targets_keep_host_first_and_dedupe(uow_factory: UowFactory) -> None:
    on_dest, no_host = make_server("c2"), make_server(None)
    add(uow_factory, on_dest, no_host)
    add_migration(uow_factory, on_dest, "c1", "c2", "migrating")
    add_migration(uow_factory, no_host, "c3", "c3", "migrating")
    with uow_factory() as uow:
        found = uow.servers.targets([on_dest.uuid, no_host.uuid])
    assert found == {on_dest.uuid: ServerTargets("c2", ("c2", "c1")), no_host.uuid: ServerTargets(None, ("c3",))}


def test_targets_of_nothing_and_of_many(uow_factory: UowFactory) -> None:
    servers = [make_server(f"c{i % 3}") for i in range(300)]
    add(uow_factory, *servers)
    with uow_factory() as uow:
        assert uow.servers.targets([]) == {}
        found = uow.servers.targets(s.uuid for s in servers)
    assert {u: t.host for u, t in found.items()} == {s.uuid: s.host for s in servers}


def test_list_filters_and_orders_newest_first(uow_factory: UowFactory) -> None:
    old = make_server("c1", created_at=T0)
    new = make_server("c1", created_at=T0 + timedelta(hours=1))
    other_project = make_server("c2", project_id="p2", created_at=T0 + timedelta(hours=2))
    deleted = make_server("c1", deleted=True, created_at=T0 + timedelta(hours=3))
    add(uow_factory, old, new, other_project, deleted)
    with uow_factory() as uow:
        servers = uow.servers
        assert [s.uuid for s in servers.list()] == [other_project.uuid, new.uuid, old.uuid]
        assert [s.uuid for s in servers.list(project_id="p1")] == [new.uuid, old.uuid]
        assert [s.uuid for s in servers.list(host="c1", include_deleted=True)] == [deleted.uuid, new.uuid, old.uuid]
        assert [s.uuid for s in servers.list(limit=1)] == [other_project.uuid]


def test_migration_add_and_get(uow_factory: UowFactory) -> None:
    with uow_factory() as uow:
        first = uow.migrations.add(Migration(0, "s1", "c1", "c2", "resize", "pre-migrating"))
        second = uow.migrations.add(Migration(0, "s2", "c2", "c3", "migration", "running"))
        uow.commit()
    assert first.id > 0
    assert second.id != first.id
    with uow_factory() as uow:
        assert uow.migrations.get(first.id) == first
        assert uow.migrations.get(second.id) == second
        assert uow.migrations.get(second.id + 1000) is None


def test_save_states_writes_the_last_state_of_each_server_and_nothing_else(uow_factory: UowFactory) -> None:
    one, two = make_server(vm_state="active", power_state=1, name="one"), make_server(vm_state="active", power_state=1)
    add(uow_factory, one, two)
    first = dataclasses.replace(one, vm_state="stopped", power_state=4, name="ignored", updated_at=T0)
    last = dataclasses.replace(one, vm_state="active", power_state=1, task_state="powering-off", updated_at=T0)
    other = dataclasses.replace(two, vm_state="stopped", power_state=4, updated_at=T0 + timedelta(seconds=1))
    with uow_factory() as uow:
        uow.servers.save_states([first, other, last])
        uow.commit()
    with uow_factory() as uow:
        got = {s.uuid: (s.name, s.vm_state, s.power_state, s.task_state, s.updated_at) for s in uow.servers.list()}
    assert got == {
        one.uuid: ("one", "active", 1, "powering-off", T0),
        two.uuid: ("vm", "stopped", 4, "scheduling", T0 + timedelta(seconds=1)),
    }
