"""SqlUnitOfWork: commit is explicit, everything else is rolled back."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime

import pytest
from sqlalchemy import Engine

from herald.adapters.sql.uow import SqlUnitOfWork
from herald.domain.model import Server
from herald.service.ports import UnitOfWork

UowFactory = Callable[[], SqlUnitOfWork]


def _server() -> Server:
    return Server(str(uuid.uuid4()), "vm", "p", "u", "1", "img", created_at=datetime(2025, 1, 1))


def _exists(uow_factory: UowFactory, server: Server) -> bool:
    with uow_factory() as uow:
        return uow.servers.get(server.uuid) is not None


def test_is_a_unit_of_work(engine: Engine) -> None:
    uow: UnitOfWork = SqlUnitOfWork(engine)
    assert uow is not None


def test_commit_is_visible(uow_factory: UowFactory) -> None:
    server = _server()
    with uow_factory() as uow:
        uow.servers.add(server)
        uow.commit()
    assert _exists(uow_factory, server)


def test_uncommitted_work_is_rolled_back_on_exit(uow_factory: UowFactory) -> None:
    server = _server()
    with uow_factory() as uow:
        uow.servers.add(server)
    assert not _exists(uow_factory, server)


def test_explicit_rollback(uow_factory: UowFactory) -> None:
    server = _server()
    with uow_factory() as uow:
        uow.servers.add(server)
        uow.rollback()
        assert uow.servers.get(server.uuid) is None
    assert not _exists(uow_factory, server)


def test_exception_rolls_back_and_propagates(uow_factory: UowFactory) -> None:
    server = _server()

    def fail_midway() -> None:
        with uow_factory() as uow:
            uow.servers.add(server)
            raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        fail_midway()
    assert not _exists(uow_factory, server)


def test_usable_after_commit(uow_factory: UowFactory) -> None:
    first, second, third = _server(), _server(), _server()
    with uow_factory() as uow:
        uow.servers.add(first)
        uow.commit()
        uow.servers.add(second)
        uow.commit()
        uow.servers.add(third)
    assert [_exists(uow_factory, s) for s in (first, second, third)] == [True, True, False]


def test_same_instance_can_be_entered_again(uow_factory: UowFactory) -> None:
    server = _server()
    uow = uow_factory()
    with uow:
        uow.servers.add(server)
        uow.commit()
    with uow:
        assert uow.servers.get(server.uuid) is not None


def test_commit_outside_with_is_an_error(uow_factory: UowFactory) -> None:
    with pytest.raises(RuntimeError):
        uow_factory().commit()


def test_connections_are_returned(uow_factory: UowFactory, engine: Engine) -> None:
    for _ in range(30):  # more than the pool holds
        with uow_factory() as uow:
            uow.servers.list(limit=1)
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
