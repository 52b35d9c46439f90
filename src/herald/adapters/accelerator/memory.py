"""InMemoryAccelerators: accelerator requests in a dict (Cyborg's role in the embedded shape).

Any device profile name exists and gives one device, so one request per boot. Binding is
not simulated: the party playing Cyborg sends ``accelerator-request-bound`` itself, and may
record the outcome here with :meth:`InMemoryAccelerators.mark`.
"""

from __future__ import annotations

import threading
import uuid as uuidlib

from herald.service.ports import AcceleratorRequest

INITIAL = "Initial"


class InMemoryAccelerators:
    def __init__(self) -> None:
        self._by_server: dict[str, list[AcceleratorRequest]] = {}
        self._lock = threading.Lock()

    def create_for_server(self, server_uuid: str, device_profile: str) -> list[AcceleratorRequest]:
        arq = AcceleratorRequest(str(uuidlib.uuid4()), device_profile, server_uuid, INITIAL)
        with self._lock:
            self._by_server.setdefault(server_uuid, []).append(arq)
        return [arq]

    def for_server(self, server_uuid: str) -> list[AcceleratorRequest]:
        with self._lock:
            return list(self._by_server.get(server_uuid, ()))

    def delete_for_server(self, server_uuid: str) -> None:
        with self._lock:
            self._by_server.pop(server_uuid, None)

    def mark(self, arq_uuid: str, state: str) -> None:
        """Record a binding's outcome (what Cyborg does before it tells compute)."""
        with self._lock:
            for arqs in self._by_server.values():
                for index, arq in enumerate(arqs):
                    if arq.uuid == arq_uuid:
                        arqs[index] = AcceleratorRequest(arq.uuid, arq.device_profile, arq.server_uuid, state)
