"""InMemoryVolumes: volume sizes in a dict (Cinder's role in the embedded shape)."""

from __future__ import annotations

import threading

from herald.domain.errors import NotFound

DEFAULT_SIZE_GB = 1


class InMemoryVolumes:
    """Volumes exist on demand: a volume a server attaches (or boots from) is 1 GiB unless set before."""

    def __init__(self) -> None:
        self._sizes: dict[str, int] = {}
        self._lock = threading.Lock()

    def set_size_gb(self, volume_id: str, size_gb: int) -> None:
        """Create or grow a volume (what Cinder does before it sends volume-extended)."""
        with self._lock:
            self._sizes[volume_id] = size_gb

    def get_size_gb(self, volume_id: str) -> int:
        with self._lock:
            try:
                return self._sizes[volume_id]
            except KeyError:
                raise NotFound(f"Volume {volume_id} could not be found.") from None

    def reserve(self, volume_id: str) -> int:
        with self._lock:
            return self._sizes.setdefault(volume_id, DEFAULT_SIZE_GB)
