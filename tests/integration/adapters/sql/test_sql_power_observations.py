"""SqlPowerObservationRepository: at most one watched disagreement per server, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from herald.adapters.sql.uow import SqlUnitOfWork
from herald.domain.power_sync import Disagreement, PowerClass, PowerObservation

UowFactory = Callable[[], SqlUnitOfWork]
T0 = datetime(2026, 12, 1, 6, 0, 0, 123456)


def _observation(server: str, host: str = "c1", vm_state: str = "stopped", request: str = "req-1") -> PowerObservation:
    return PowerObservation(server, host, request, Disagreement(vm_state, PowerClass.ON, T0))


def test_put_then_get_round_trips(uow_factory: UowFactory) -> None:
    with uow_factory() as uow:
        assert uow.power_observations.get("s1") is None
        uow.power_observations.put(_observation("s1"))
        uow.commit()
    with uow_factory() as uow:
        assert uow.power_observations.get("s1") == _observation("s1")


def test_put_replaces_the_servers_previous_observation(uow_factory: UowFactory) -> None:
    with uow_factory() as uow:
        uow.power_observations.put(_observation("s1"))
        uow.power_observations.put(_observation("s1", "c2", "active", "req-2"))
        uow.commit()
    with uow_factory() as uow:
        assert uow.power_observations.get("s1") == _observation("s1", "c2", "active", "req-2")
        assert uow.power_observations.server_uuids("c1") == set()
        assert uow.power_observations.server_uuids("c2") == {"s1"}


def test_delete_all_or_only_a_hosts(uow_factory: UowFactory) -> None:
    with uow_factory() as uow:
        for server, host in (("s1", "c1"), ("s2", "c1"), ("s3", "c2")):
            uow.power_observations.put(_observation(server, host))
        uow.power_observations.delete(["s1"])
        uow.power_observations.delete(["s2", "s3"], host="c2")  # s2 is c1's: kept
        uow.power_observations.delete([])
        uow.commit()
    with uow_factory() as uow:
        assert uow.power_observations.server_uuids("c1") == {"s2"}
        assert uow.power_observations.server_uuids("c2") == set()
