from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import Engine

from tests.e2e.harness import Herald, settings_for, start_herald, stop_herald
from tests.redfish_emulator import redfish_emulator

__all__ = ["herald", "redfish_emulator"]


@pytest.fixture
async def herald(db_url: str, engine: Engine) -> AsyncIterator[Herald]:
    """Embedded Herald on a migrated database of each kind (``engine`` ran the migration)."""
    service, _ = await start_herald(settings_for(db_url))
    try:
        yield service
    finally:
        await stop_herald(service)
