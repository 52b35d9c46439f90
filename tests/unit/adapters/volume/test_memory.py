"""The embedded block storage's contract: a volume a server attaches exists on demand with 1 GiB."""

from __future__ import annotations

import pytest

from herald.adapters.volume.memory import InMemoryVolumes
from herald.domain.errors import NotFound


def test_reserve_makes_an_unknown_volume_of_one_gib_and_keeps_a_known_size() -> None:
    volumes = InMemoryVolumes()
    with pytest.raises(NotFound):
        volumes.get_size_gb("v-1")
    assert volumes.reserve("v-1") == 1
    assert volumes.get_size_gb("v-1") == 1
    volumes.set_size_gb("v-2", 10)
    assert volumes.reserve("v-2") == 10
