"""SqlFakeMachines: the fake driver's machines in the database, per host, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text

from herald.adapters.sql.fake_machines import SqlFakeMachines
from herald.adapters.virt.fake import FakeVirtDriver
from herald.domain.errors import DriverError
from herald.domain.model import PowerState, Server

S1 = "7e3f8c62-5c4c-4e9e-a0b6-2f0d8b6d8c11"


def test_machines_are_kept_per_host_and_found_again(engine: Engine) -> None:
    one, two = SqlFakeMachines(engine, "compute-1"), SqlFakeMachines(engine, "compute-2")
    assert one.power(S1) is None
    assert not one.update_power(S1, PowerState.SHUTDOWN)
    one.set_power(S1, PowerState.RUNNING)
    assert one.update_power(S1, PowerState.SHUTDOWN)
    assert two.power(S1) is None
    again = SqlFakeMachines(engine, "compute-1")  # a restarted process
    assert again.power(S1) is PowerState.SHUTDOWN
    again.remove(S1)
    assert one.power(S1) is None
    assert SqlFakeMachines(engine, "compute-1").power(S1) is None


def test_a_change_made_inside_a_transaction_waits_for_it_instead_of_for_itself(engine: Engine) -> None:
    """On SQLite a second writer would wait for the caller's own write lock: the change is stored after it."""
    store = SqlFakeMachines(engine, "compute-1")
    store.set_power(S1, PowerState.RUNNING)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM fake_machines WHERE host = 'nobody'"))  # holds the write lock on SQLite
        store.remove(S1)
        assert store.power(S1) is None
    store.flush()
    assert SqlFakeMachines(engine, "compute-1").power(S1) is None


def test_the_driver_on_the_database(engine: Engine) -> None:
    server = Server(S1, "vm", "p", "u", "1", "image", host="compute-1")
    driver = FakeVirtDriver(SqlFakeMachines(engine, "compute-1"))
    driver.spawn(server)
    driver.power_off(server)
    restarted = FakeVirtDriver(SqlFakeMachines(engine, "compute-1"))
    assert restarted.get_power_state(server) == PowerState.SHUTDOWN
    restarted.power_on(server)
    assert driver.get_power_state(server) == PowerState.RUNNING
    restarted.destroy(server)
    assert driver.machine(S1) is None
    assert driver.get_power_state(server) == PowerState.NOSTATE


def test_a_write_the_database_refuses_is_a_driver_error(engine: Engine) -> None:
    store = SqlFakeMachines(engine, "compute-1")
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE fake_machines"))
    with pytest.raises(DriverError, match="could not be stored"):
        store.set_power(S1, PowerState.RUNNING)


def test_a_batched_read_answers_for_many_machines_of_the_host(engine: Engine) -> None:
    from herald.adapters.sql import fake_machines as module
    from herald.domain.power_sync import SyncRow

    store = SqlFakeMachines(engine, "compute-1")
    uuids = [f"00000000-0000-0000-0000-{i:012d}" for i in range(module.MAX_IN_LIST + 5)]
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO fake_machines (host, server_uuid, power_state) VALUES (:h, :u, :p)"),
            [
                {"h": "compute-1", "u": u, "p": int(PowerState.SHUTDOWN if i % 2 else PowerState.RUNNING)}
                for i, u in enumerate(uuids[:-1])
            ],
        )
    SqlFakeMachines(engine, "compute-2").set_power(uuids[-1], PowerState.RUNNING)  # another host's machine
    powers = store.powers(uuids)
    assert len(powers) == len(uuids) - 1
    assert powers[uuids[0]] is PowerState.RUNNING
    assert powers[uuids[1]] is PowerState.SHUTDOWN
    driver = FakeVirtDriver(store)
    rows = [SyncRow(u, "compute-1", None, "active", 1, None) for u in uuids[:3] + uuids[-1:]]
    driver.fail_next("get_power_state", DriverError("BMC timeout"))
    answer = driver.get_power_states(rows)
    assert isinstance(answer[uuids[0]], DriverError)  # the next read fails: the first of the batch
    assert answer[uuids[1]] == PowerState.SHUTDOWN
    assert answer[uuids[2]] == PowerState.RUNNING
    assert answer[uuids[-1]] == PowerState.NOSTATE  # no machine on this host
    assert driver.get_power_states(rows)[uuids[0]] == PowerState.RUNNING
