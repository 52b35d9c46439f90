"""A database that cannot commit: bounded waits, 503 with Retry-After, nothing half-recorded, recovery."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from herald.adapters.sql import engine as sql_engine
from herald.adapters.sql.engine import make_engine
from tests.e2e.harness import IMAGE, Herald, settings_for, start_herald, stop_herald

WAIT = 0.5  # [api] commit_timeout for these tests
HANG = 60.0  # without a bound the requests wait for the lock forever: this turns that into a failure


@contextmanager
def write_lock(db_url: str, table: str = "external_events") -> Iterator[None]:
    """Another client holds the write lock: SQLite's database lock, PostgreSQL's lock on ``table``."""
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        other = sqlite3.connect(url.database or "", isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            yield
            other.execute("ROLLBACK")
        finally:
            other.close()
        return
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(f"LOCK TABLE {table} IN EXCLUSIVE MODE")
            yield
            conn.rollback()
    finally:
        engine.dispose()


def events(server: str, tag: str, count: int = 1) -> list[dict[str, Any]]:
    return [{"name": "network-changed", "server_uuid": server, "tag": f"{tag}-{i}"} for i in range(count)]


def assert_unavailable(resp: httpx.Response) -> None:
    assert resp.status_code == 503, resp.text
    assert int(resp.headers["retry-after"]) >= 1
    body = resp.json()
    assert list(body) == ["serviceUnavailable"]
    assert body["serviceUnavailable"]["code"] == 503
    assert body["serviceUnavailable"]["message"]


async def _recovered_with_nothing_half_recorded(herald: Herald, server: str) -> None:
    """The next request goes through, and the journal holds it alone: nothing of the refused ones."""
    await herald.deps.writer.flush()
    after = await herald.events(events(server, "after"))
    assert after.status_code == 200, after.text
    await herald.settle()
    assert {record["tag"] for record in await herald.records(server_uuid=server)} == {"after-0"}


async def test_a_locked_journal_answers_503_then_recovers(db_url: str, engine: Engine) -> None:
    herald, _ = await start_herald(settings_for(db_url, commit_timeout=WAIT))
    try:
        server = await herald.create_server(host="compute-1")
        with write_lock(db_url):
            posts = asyncio.gather(*(herald.events(events(server, f"locked{n}", 3)) for n in range(4)))
            answers = await asyncio.wait_for(posts, HANG)
        for resp in answers:
            assert_unavailable(resp)
        # The lock is gone: whatever the writer still held for those requests is dropped, not committed.
        await _recovered_with_nothing_half_recorded(herald, server)
    finally:
        await stop_herald(herald)


async def test_no_free_connection_answers_503_then_recovers(db_url: str, engine: Engine) -> None:
    herald, deps = await start_herald(settings_for(db_url, commit_timeout=WAIT))
    try:
        server = await herald.create_server(host="compute-1")
        held = _exhaust_pool(deps.engine)
        try:
            resp = await asyncio.wait_for(herald.events(events(server, "starved")), HANG)
        finally:
            for conn in held:
                conn.close()
        assert_unavailable(resp)
        await _recovered_with_nothing_half_recorded(herald, server)
    finally:
        await stop_herald(herald)


def _exhaust_pool(engine: Engine) -> list[Any]:
    """Check out every connection the pool will give (its size plus its overflow)."""
    pool: Any = engine.pool
    return [engine.connect() for _ in range(pool.size() + pool._max_overflow)]


async def test_a_server_create_on_a_locked_database_answers_503(
    db_url: str, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The database layer's own lock waits (SQLite's busy timeout, PostgreSQL's lock_timeout), shortened.
    monkeypatch.setattr(sql_engine, "SQLITE_BUSY_TIMEOUT_S", 1)
    monkeypatch.setattr(sql_engine, "PG_LOCK_TIMEOUT_S", 1)
    herald, _ = await start_herald(settings_for(db_url))
    try:
        body = {"server": {"name": "vm", "imageRef": IMAGE, "flavorRef": "1", "networks": "none"}}
        with write_lock(db_url, "servers"):
            resp = await asyncio.wait_for(herald.post("/v2.1/servers", body, version="2.76"), HANG)
        assert_unavailable(resp)
        assert (await herald.get("/v2.1/servers", version="2.76")).json()["servers"] == []
        assert (await herald.post("/v2.1/servers", body, version="2.76")).status_code == 202
    finally:
        await stop_herald(herald)
