"""InMemoryNetwork: ports and networks in a dict (Neutron's role in the embedded shape)."""

from __future__ import annotations

import threading
import uuid as uuidlib
from collections.abc import Sequence
from dataclasses import dataclass

from herald.domain.errors import Invalid, PortInUse

AUTO_NETWORK_ID = "00000000-0000-4000-8000-000000000001"


@dataclass(slots=True)
class Port:
    id: str
    network_id: str
    server_uuid: str | None = None
    # Whether the backend has wired it; Nova waits for network-vif-plugged only for inactive ports.
    active: bool = False
    # Created for an attach that named a network: deleted again on detach, as Nova deletes the ports it made.
    made_for_attach: bool = False


class InMemoryNetwork:
    """Ports are created on demand: any well-formed port id the caller names exists, unbound."""

    def __init__(self) -> None:
        self._ports: dict[str, Port] = {}
        self._lock = threading.Lock()

    def create_port(
        self, network_id: str = AUTO_NETWORK_ID, *, port_id: str | None = None, active: bool = False
    ) -> Port:
        with self._lock:
            port = Port(port_id or str(uuidlib.uuid4()), network_id, active=active)
            self._ports[port.id] = port
            return port

    def port(self, port_id: str) -> Port | None:
        with self._lock:
            return self._ports.get(port_id)

    def remove_port(self, port_id: str) -> None:
        with self._lock:
            self._ports.pop(port_id, None)

    def allocate_for_server(self, server_uuid: str, requested: Sequence[dict[str, str]]) -> list[dict[str, object]]:
        with self._lock:
            bound: list[Port] = []
            for want in requested:
                if "port" in want:
                    port = self._ports.setdefault(want["port"], Port(want["port"], AUTO_NETWORK_ID))
                    if port.server_uuid not in (None, server_uuid):
                        raise Invalid(f"Port {port.id} is still in use.")
                elif "uuid" in want:
                    port = Port(str(uuidlib.uuid4()), want["uuid"])
                else:  # auto: the backend wires it itself, so nobody waits for a plug event
                    port = Port(str(uuidlib.uuid4()), AUTO_NETWORK_ID, active=True)
                port.server_uuid = server_uuid
                self._ports[port.id] = port
                bound.append(port)
            return [_vif(port) for port in bound]

    def refresh(self, server_uuid: str, port_id: str | None) -> list[dict[str, object]]:
        with self._lock:
            return [
                _vif(port)
                for port in self._ports.values()
                if port.server_uuid == server_uuid and (port_id is None or port.id == port_id)
            ]

    def deallocate_for_server(self, server_uuid: str) -> None:
        with self._lock:
            for port in self._ports.values():
                if port.server_uuid == server_uuid:
                    port.server_uuid = None

    def bind_port(self, server_uuid: str, port_id: str, network_id: str | None) -> dict[str, object]:
        with self._lock:
            if network_id is not None:
                port = self._ports.setdefault(port_id, Port(port_id, network_id, made_for_attach=True))
            else:
                port = self._ports.setdefault(port_id, Port(port_id, AUTO_NETWORK_ID))
            if port.server_uuid not in (None, server_uuid):
                raise PortInUse(port_id)
            port.server_uuid = server_uuid
            return _vif(port)

    def unbind_port(self, server_uuid: str, port_id: str) -> None:
        with self._lock:
            port = self._ports.get(port_id)
            if port is None or port.server_uuid != server_uuid:
                return
            if port.made_for_attach:
                del self._ports[port_id]
            else:
                port.server_uuid = None

    def port_owner(self, port_id: str) -> str | None:
        with self._lock:
            port = self._ports.get(port_id)
            return None if port is None else port.server_uuid


def _vif(port: Port) -> dict[str, object]:
    return {"port_id": port.id, "network_id": port.network_id, "active": port.active}
