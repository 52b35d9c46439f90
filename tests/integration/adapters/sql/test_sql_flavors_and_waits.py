"""Flavors, their extra specs and the current waits on SQL; the 0007 migration's seed and copies."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import text

from herald.adapters.sql import migrate
from herald.adapters.sql.engine import make_engine
from herald.adapters.sql.uow import SqlUnitOfWork
from herald.domain.flavors import FLAVORS
from herald.domain.records import EventWaitRecord

T0 = datetime(2026, 1, 1)


def test_seeded_flavors_keep_their_ids(uow_factory: Callable[[], SqlUnitOfWork]) -> None:
    with uow_factory() as uow:
        assert uow.flavors.list() == list(FLAVORS)
        assert uow.flavors.get("1") == FLAVORS[0]
        assert uow.flavors.get("nope") is None


def test_add_extra_specs_and_delete(uow_factory: Callable[[], SqlUnitOfWork]) -> None:
    new = dataclasses.replace(FLAVORS[0], flavorid="x", name="x.tiny", description="d")
    with uow_factory() as uow:
        assert uow.flavors.add(new)
        assert not uow.flavors.add(new)  # the id is taken
        assert uow.flavors.name_taken("x.tiny")
        assert uow.flavors.update_extra_specs("x", {"a": "1", "b": "2"})
        assert uow.flavors.update_extra_specs("x", {"a": "3"})
        assert not uow.flavors.update_extra_specs("nope", {"a": "1"})
        uow.commit()
    with uow_factory() as uow:
        found = uow.flavors.get("x")
        assert found is not None
        assert (found.description, dict(found.extra_specs)) == ("d", {"a": "3", "b": "2"})
        assert uow.flavors.delete_extra_spec("x", "b")
        assert not uow.flavors.delete_extra_spec("x", "b")
        assert uow.flavors.delete("x")
        assert not uow.flavors.delete("x")
        uow.commit()
    with uow_factory() as uow:
        assert uow.flavors.get("x") is None


def test_current_waits(uow_factory: Callable[[], SqlUnitOfWork]) -> None:
    a = EventWaitRecord("s1", "c1", "network-vif-plugged", "p1", T0, T0)
    b = EventWaitRecord("s1", "c1", "accelerator-request-bound", "arq", T0, T0)
    c = EventWaitRecord("s2", "c2", "volume-reimaged", None, T0, T0)
    with uow_factory() as uow:
        uow.event_waits.put([a, b, c])
        uow.event_waits.put([a])  # again: replaced, not doubled
        uow.commit()
    with uow_factory() as uow:
        assert sorted(w.key for w in uow.event_waits.list(server_uuid="s1")) == [b.key, a.key]
        uow.event_waits.remove([a])
        uow.event_waits.clear_host("c2")
        uow.commit()
    with uow_factory() as uow:
        assert uow.event_waits.list() == [b]


def test_upgrade_gives_existing_servers_their_flavor_copy(db_url: str) -> None:
    migrate.upgrade(db_url, "0005")
    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO servers (uuid, name, project_id, user_id, flavor_id, image_ref, vm_state,"
                    " power_state, vifs, volumes, metadata, created_at, deleted)"
                    " VALUES ('s1', 'vm', 'p', 'u', '2', 'i', 'active', 1, '[]', '[]', '{}', :at, :no)"
                ),
                {"at": "2026-01-01 00:00:00.000000", "no": False},
            )
        migrate.upgrade(db_url)
        with SqlUnitOfWork(engine) as uow:
            server = uow.servers.get("s1")
            assert server is not None
            assert server.flavor == FLAVORS[1]
            assert server.accelerator_requests == []
    finally:
        engine.dispose()
