"""``herald api`` starts its workers with glibc's mmap threshold set (docs/deployment.md): large, short-lived
buffers of batch requests are given back to the system when freed instead of leaving holes in the heap."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from herald.distributed import MALLOC_ENV
from tests.e2e.stack.cluster import Cluster

pytestmark = [pytest.mark.stack, pytest.mark.postgres]


def _environment(pid: int) -> dict[str, str]:
    entries = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace").split("\0")
    return dict(entry.partition("=")[::2] for entry in entries if "=" in entry)


def test_every_api_worker_starts_with_the_mmap_threshold(make_cluster: Callable[..., Cluster]) -> None:
    cluster = make_cluster()
    workers = cluster.api_workers()
    assert len(workers) == 2
    expected = {name: os.environ.get(name, value) for name, value in MALLOC_ENV.items()}
    for pid in workers:
        found = _environment(pid)
        assert {name: found.get(name) for name in expected} == expected
