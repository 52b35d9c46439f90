"""The power sync on a host with more servers than a chunk: only changed servers are written, reads are bounded.

Through the real agent path (``power_sync.sync_all()`` of the embedded Herald), on SQLite and PostgreSQL.
The servers and their fake machines are inserted directly: booting 1,200 servers through the API would
only make the test slow.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, event, insert, select

from herald.adapters.sql.tables import fake_machines, servers
from herald.agent.power_sync import CHUNK, ApplySync
from herald.domain.model import PowerState
from herald.domain.power_sync import SyncAction
from tests.e2e.harness import Herald, settings_for, start_herald, stop_herald

HOST = "compute-1"
COUNT = 1200  # more than two chunks
assert COUNT > 2 * CHUNK


@pytest.fixture
async def herald(db_url: str, engine: Engine) -> AsyncIterator[Herald]:
    service, _ = await start_herald(settings_for(db_url, power_state_change_grace=0))
    try:
        yield service
    finally:
        await stop_herald(service)


def _insert(engine: Engine, machines: dict[str, PowerState], task_states: dict[str, str] | None = None) -> None:
    """ACTIVE, RUNNING servers on HOST, each with a fake machine in the given power state."""
    now = datetime.now(UTC).replace(tzinfo=None)
    task_states = task_states or {}
    rows: list[dict[str, Any]] = [
        {
            "uuid": server_uuid,
            "name": f"vm-{i}",
            "project_id": "p",
            "user_id": "u",
            "flavor_id": "1",
            "image_ref": "70a599e0-31e7-49b7-b260-868f441e862b",
            "vm_state": "active",
            "power_state": int(PowerState.RUNNING),
            "task_state": task_states.get(server_uuid),
            "host": HOST,
            "node": HOST,
            "vifs": [],
            "volumes": [],
            "metadata": {},
            "created_at": now,
            "updated_at": None,
            "deleted": False,
            "tags": [],
            "scheduler_hints": {},
        }
        for i, server_uuid in enumerate(machines)
    ]
    with engine.begin() as conn:
        conn.execute(insert(servers), rows)
        conn.execute(
            insert(fake_machines),
            [{"host": HOST, "server_uuid": u, "power_state": int(p)} for u, p in machines.items()],
        )


def _records(engine: Engine) -> dict[str, tuple[int, str, str | None, datetime | None]]:
    stmt = select(servers.c.uuid, servers.c.power_state, servers.c.vm_state, servers.c.task_state, servers.c.updated_at)
    with engine.connect() as conn:
        return {row[0]: tuple(row[1:]) for row in conn.execute(stmt)}  # type: ignore[misc]


@contextmanager
def _counting_selects(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def before(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", before)


def _uuids(count: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(count)]


async def test_only_the_changed_servers_of_many_chunks_are_written(herald: Herald) -> None:
    uuids = _uuids(COUNT)
    paused = set(uuids[::2])  # 600 of them, in every chunk: the record follows the hypervisor
    stopped = set(uuids[1:8:2])  # stopped by themselves: the sync stops them
    busy = uuids[9]  # a task under way: skipped
    machines = {
        u: PowerState.PAUSED if u in paused else PowerState.SHUTDOWN if u in stopped else PowerState.RUNNING
        for u in uuids
    }
    _insert(herald.deps.engine, machines, {busy: "powering-on"})
    outcomes = {o.server_uuid: o for o in await herald.deps.agents[HOST].power_sync.sync_all()}
    await herald.settle()

    assert set(outcomes) == set(uuids)
    assert outcomes[busy].skipped == "pending task (powering-on)"
    records = _records(herald.deps.engine)
    for server_uuid in uuids:
        power, vm_state, task_state, updated_at = records[server_uuid]
        decision = outcomes[server_uuid].decision
        if server_uuid in paused:
            assert decision is not None
            assert decision.power_state == PowerState.PAUSED
            assert (power, vm_state, task_state) == (PowerState.PAUSED, "active", None)
            assert updated_at is not None
        elif server_uuid in stopped:
            assert decision is not None
            assert decision.action is SyncAction.STOP
            assert (power, vm_state, task_state) == (PowerState.SHUTDOWN, "stopped", None)
        elif server_uuid == busy:
            assert (power, task_state, updated_at) == (PowerState.RUNNING, "powering-on", None)
        else:
            assert decision is not None
            assert decision.action is SyncAction.NOTHING
            assert decision.power_state is None
            assert (power, vm_state, task_state, updated_at) == (PowerState.RUNNING, "active", None, None)
    for server_uuid in stopped:
        actions = (await herald.get(f"/v2.1/servers/{server_uuid}/os-instance-actions")).json()["instanceActions"]
        assert [a["action"] for a in actions] == ["stop"]

    # The next pass finds nothing to change and writes nothing.
    before = _records(herald.deps.engine)
    outcomes = {o.server_uuid: o for o in await herald.deps.agents[HOST].power_sync.sync_all()}
    await herald.settle()
    assert _records(herald.deps.engine) == before
    assert all(o.decision is None or o.decision.power_state is None for o in outcomes.values())


async def test_a_pass_reads_with_a_bounded_number_of_selects(herald: Herald) -> None:
    uuids = _uuids(COUNT)
    machines = {u: PowerState.PAUSED if i % 3 == 0 else PowerState.RUNNING for i, u in enumerate(uuids)}
    _insert(herald.deps.engine, machines)
    with _counting_selects(herald.deps.engine) as selects:
        outcomes = await herald.deps.agents[HOST].power_sync.sync_all()
    assert len(outcomes) == COUNT
    # Lists, machine reads per chunk, the snapshot, and three reads per written chunk: not one per server.
    assert len(selects) <= 20, "\n".join(selects)
    records = _records(herald.deps.engine)
    assert sum(1 for r in records.values() if r[0] == PowerState.PAUSED) == len(uuids[::3])


async def test_a_server_whose_write_fails_fails_alone_and_is_faulted_after_three(
    herald: Herald, monkeypatch: pytest.MonkeyPatch
) -> None:
    uuids = _uuids(COUNT)
    machines = {u: PowerState.PAUSED if i % 2 == 0 else PowerState.RUNNING for i, u in enumerate(uuids)}
    _insert(herald.deps.engine, machines)
    bad = uuids[2]
    real = ApplySync._sync

    def failing(self: ApplySync, uow: Any, item: Any, *args: Any) -> Any:
        if item.server_uuid == bad:
            raise RuntimeError("the record could not be written")
        return real(self, uow, item, *args)

    monkeypatch.setattr(ApplySync, "_sync", failing)
    for _ in range(3):
        outcomes = {o.server_uuid for o in await herald.deps.agents[HOST].power_sync.sync_all()}
        assert outcomes == set(uuids) - {bad}
    records = _records(herald.deps.engine)
    assert all(records[u][0] == PowerState.PAUSED for u in uuids[::2] if u != bad)
    assert records[bad][0] == PowerState.RUNNING
    with herald.deps.uow_factory() as uow:
        faulted = [s.uuid for s in uow.servers.list(host=HOST) if s.fault]
        server = uow.servers.get(bad)
    assert faulted == [bad]
    assert server is not None
    assert server.fault is not None
    assert "Power state sync failed 3 times" in str(server.fault["message"])
