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
