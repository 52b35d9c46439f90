from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

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
