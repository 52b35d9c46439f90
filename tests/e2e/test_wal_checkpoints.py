"""SQLite's WAL stays bounded under a steady stream of events, and a failed checkpoint is a warning."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy import Engine

from herald.adapters.sql import migrate
from herald.adapters.sql.checkpointer import Checkpointer
from herald.adapters.sql.engine import make_engine
from tests.e2e.harness import settings_for, start_herald, stop_herald

EVENTS = 20_000
BATCH = 200
WAL_BOUND = 4 * 1024 * 1024


def _size(path: Path) -> int:
    return path.stat().st_size


async def test_the_wal_stays_bounded_under_a_steady_stream(tmp_path: Path) -> None:
    database = tmp_path / "herald.sqlite"
    url = f"sqlite:///{database}"
    migrate.upgrade(url)
    herald, deps = await start_herald(settings_for(url))
    wal = Path(f"{database}-wal")
    largest = 0
    try:
        servers = [await herald.create_server(host=host) for host in ("compute-1", "compute-2") for _ in range(5)]
        assert deps.checkpointer is not None
        for start in range(0, EVENTS, BATCH):
            events = [
                {"name": "network-changed", "server_uuid": servers[i % len(servers)], "tag": f"port-{i}"}
                for i in range(start, start + BATCH)
            ]
            resp = await herald.events(events)
            assert resp.status_code == 200, resp.text
            await herald.settle()
            # What the checkpointer thread does every second, here after every batch.
            deps.checkpointer.checkpoint()
            largest = max(largest, _size(wal))
        records = await herald.records(limit="1000")
        assert len(records) == 1000
    finally:
        await stop_herald(herald)
    assert largest < WAL_BOUND, f"the WAL grew to {largest / 1e6:.1f} MB"


def test_a_failed_checkpoint_is_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # A directory is no database: every connection attempt fails.
    engine: Engine = make_engine(f"sqlite:///{tmp_path}", manual_checkpoints=True)
    try:
        with caplog.at_level(logging.DEBUG, logger="herald.adapters.sql.checkpointer"):
            Checkpointer(engine).checkpoint()
    finally:
        engine.dispose()
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert "checkpoint" in caplog.records[0].getMessage()
