"""Bounded host queues: a host that falls behind gets 503s for its events, others do not, nothing is lost."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from tests.e2e.blocking_driver import blocking_drivers
from tests.e2e.harness import settings_for, start_herald, stop_herald
from tests.e2e.test_database_unavailable import assert_unavailable, events


async def test_a_host_that_falls_behind_refuses_its_events_and_loses_none(
    db_url: str, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    with blocking_drivers(monkeypatch, {"power_off"}) as gate:
        herald, deps = await start_herald(settings_for(db_url, host_queue_events=5))
        try:
            stuck = await herald.create_server(host="compute-1")
            other = await herald.create_server(host="compute-2")
            # A stop whose BMC does not answer holds compute-1's queue: its events pile up.
            assert (await herald.action(stuck, {"os-stop": None})).status_code == 202
            await gate.wait_held(1)

            for n in range(4):
                assert (await herald.events(events(stuck, f"a{n}"))).status_code == 200
            # Admitted (4 queued, room for 5), but three more overflow the queue: the bus refuses
            # them, their rows stay in the journal for the relay.
            assert (await herald.events(events(stuck, "b", 3))).status_code == 200
            await deps.relay.flush()
            assert (await herald.events(events(stuck, "c"))).status_code == 200
            # Five queued: compute-1 takes no more, compute-2 still does.
            assert_unavailable(await herald.events(events(stuck, "refused")))
            assert (await herald.events(events(other, "elsewhere"))).status_code == 200

            gate.release()
            await herald.settle()
            await deps.relay.redeliver(include_dispatched=False, older_than=None)
            await herald.settle()
            states = {r["tag"]: r["state"] for r in await herald.records(server_uuid=stuck)}
            answered = {"a0-0", "a1-0", "a2-0", "a3-0", "b-0", "b-1", "b-2", "c-0"}
            assert states == dict.fromkeys(answered, "handled")
            assert [r["state"] for r in await herald.records(server_uuid=other)] == ["handled"]
        finally:
            gate.release()
            await stop_herald(herald)
