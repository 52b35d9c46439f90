"""SqlHostRepository: compute host records and heartbeats."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import Engine, text

from herald.adapters.sql.uow import SqlUnitOfWork
from herald.domain.model import ComputeHost

UowFactory = Callable[[], SqlUnitOfWork]
T0 = datetime(2025, 1, 2, 3, 4, 5)


def test_unknown_host(uow_factory: UowFactory) -> None:
    with uow_factory() as uow:
        assert uow.hosts.get("c1") is None
        assert uow.hosts.list() == []


def test_heartbeat_creates_an_enabled_host(uow_factory: UowFactory) -> None:
    with uow_factory() as uow:
        uow.hosts.heartbeat("c1", T0)
        uow.commit()
    with uow_factory() as uow:
        created = uow.hosts.get("c1")
    assert created is not None
    assert created.id > 0
    assert created == ComputeHost("c1", disabled=False, disabled_reason=None, last_seen_up=T0, id=created.id)


def test_heartbeat_again_only_moves_last_seen_up(uow_factory: UowFactory, engine: Engine) -> None:
    later = T0 + timedelta(seconds=10)
    with uow_factory() as uow:
        uow.hosts.heartbeat("c1", T0)
        uow.commit()
    with engine.begin() as conn:
        conn.execute(text("UPDATE services SET disabled = :t, disabled_reason = 'maintenance'"), {"t": True})
    with uow_factory() as uow:
        uow.hosts.heartbeat("c1", later)
        uow.commit()
    with uow_factory() as uow:
        host = uow.hosts.get("c1")
    assert host is not None
    assert (host.last_seen_up, host.disabled, host.disabled_reason) == (later, True, "maintenance")
    with engine.connect() as conn:
        row = conn.execute(text("SELECT count(*), max(created_at), max(updated_at) FROM services")).one()
    assert row[0] == 1
    assert [str(v)[:19] for v in row[1:]] == [str(T0), str(later)]


def test_list_is_sorted_by_host(uow_factory: UowFactory) -> None:
    with uow_factory() as uow:
        for host in ("c3", "c1", "c2"):
            uow.hosts.heartbeat(host, T0)
        uow.commit()
    with uow_factory() as uow:
        assert [h.host for h in uow.hosts.list()] == ["c1", "c2", "c3"]
