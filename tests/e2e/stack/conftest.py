from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.amqp import delete_queues
from tests.conftest import _pg_schema_url
from tests.e2e.stack.cluster import Cluster
from tests.e2e.stack.process import HeraldProcess


@pytest.fixture
def herald_process(db_url: str, tmp_path: Path) -> Iterator[HeraldProcess]:
    """A real ``herald serve`` (embedded shape) on each kind of database."""
    process = HeraldProcess(db_url, tmp_path / "herald.log")
    try:
        process.wait_ready()
        yield process
    finally:
        process.stop()


@pytest.fixture
def pg_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """An empty PostgreSQL schema (the distributed shape runs on PostgreSQL)."""
    yield from _pg_schema_url(request)


@pytest.fixture
def make_cluster(tmp_path: Path, pg_url: str, amqp_url: str) -> Iterator[Callable[..., Cluster]]:
    """Starts the README's cluster recipe (``Cluster`` options as keywords); stopped after the test."""
    made: list[Cluster] = []

    def make(**options: Any) -> Cluster:
        made.append(Cluster(tmp_path, **{"database_url": pg_url, "transport_url": amqp_url, **options}))
        made[-1].start()
        return made[-1]

    yield make
    for cluster in made:
        cluster.stop()
        asyncio.run(delete_queues(cluster.transport_url, cluster.hosts))
