"""A transient database error in an agent operation is tried again; one that lasts ends in ERROR, not BUILD."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, event

from tests.e2e.harness import Herald, crash_herald, settings_for, start_herald, stop_herald

HOST = "compute-1"


class FailingWrites:
    """Makes the database refuse matching ``UPDATE servers`` statements, as a busy or sick database does.

    The driver's own OperationalError is raised where the statement would run ("database is
    locked" on SQLite, a serialization failure's text on PostgreSQL), so SQLAlchemy wraps it
    as it wraps the real thing.
    """

    def __init__(self, engine: Engine, matches: Callable[[list[object]], bool], times: int | None) -> None:
        self.failed = 0
        self._engine = engine
        self._matches = matches
        self._times = times
        event.listen(engine, "before_cursor_execute", self._before)

    def _before(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        if executemany or not statement.lstrip().upper().startswith("UPDATE SERVERS"):
            return
        values = _values(parameters)
        if not self._matches(values) or (self._times is not None and self.failed >= self._times):
            return
        self.failed += 1
        dbapi = self._engine.dialect.loaded_dbapi
        if self._engine.dialect.name == "sqlite":
            raise dbapi.OperationalError("database is locked")
        raise dbapi.OperationalError("could not serialize access due to concurrent update")

    def remove(self) -> None:
        event.remove(self._engine, "before_cursor_execute", self._before)


def _values(parameters: Any) -> list[object]:
    """A statement's values; a batch's rows come as one JSON document (a list of objects)."""
    given = list(parameters.values()) if isinstance(parameters, dict) else list(parameters)
    values: list[object] = []
    for value in given:
        if isinstance(value, str) and value.startswith("[{"):
            values.extend(field for row in json.loads(value) for field in row.values())
        else:
            values.append(value)
    return values


def _claims_a_node(values: list[object]) -> bool:
    return "spawning" in values


async def test_a_build_goes_on_after_a_few_transient_errors(herald: Herald) -> None:
    failing = FailingWrites(herald.deps.engine, _claims_a_node, times=3)
    try:
        server_id = await herald.create_server(host=HOST)
    finally:
        failing.remove()
    assert failing.failed == 3
    server = await herald.server(server_id)
    assert (server["status"], server["OS-EXT-STS:task_state"]) == ("ACTIVE", None)


async def test_a_build_that_cannot_record_its_progress_ends_in_error(herald: Herald) -> None:
    failing = FailingWrites(herald.deps.engine, _claims_a_node, times=None)
    try:
        server_id = await herald.create_server(host=HOST)
    finally:
        failing.remove()
    server = await herald.server(server_id)
    assert (server["status"], server["OS-EXT-STS:task_state"]) == ("ERROR", None)
    assert server["fault"]["code"] == 500
    assert server["fault"]["message"] == (
        f"Build of instance {server_id} aborted: the compute host could not record its progress."
    )


async def test_a_build_left_scheduling_by_a_dead_database_ends_in_error_at_restart(db_url: str, engine: Engine) -> None:
    herald, _ = await start_herald(settings_for(db_url))
    try:
        # Every write of the server's row fails: not even the ERROR can be recorded.
        FailingWrites(herald.deps.engine, lambda values: True, times=None)
        server_id = await herald.create_server(host=HOST)
        server = await herald.server(server_id)
        assert (server["status"], server["OS-EXT-STS:task_state"]) == ("BUILD", "scheduling")
    finally:
        await crash_herald(herald)
    herald, _ = await start_herald(settings_for(db_url))
    try:
        await herald.settle()
        server = await herald.server(server_id)
        assert (server["status"], server["OS-EXT-STS:task_state"]) == ("ERROR", None)
        assert server["fault"]["message"] == "The compute host restarted while the instance was being built."
    finally:
        await stop_herald(herald)


async def test_an_event_effect_goes_on_after_a_few_transient_errors(herald: Herald) -> None:
    server_id = await herald.create_server(host=HOST)
    driver = herald.driver(HOST)
    failing = FailingWrites(herald.deps.engine, lambda values: "stopped" in values, times=3)
    try:
        resp = await herald.events([{"name": "power-update", "server_uuid": server_id, "tag": "POWER_OFF"}])
        assert resp.status_code == 200
        await herald.settle()
    finally:
        failing.remove()
    assert failing.failed == 3
    server = await herald.server(server_id)
    assert (server["status"], server["OS-EXT-STS:power_state"]) == ("SHUTOFF", 4)
    (record,) = await herald.records(server_uuid=server_id, name="power-update")
    assert record["state"] == "handled"
    assert driver.power_update_calls == [(server_id, "POWER_OFF")]  # the driver is told once
