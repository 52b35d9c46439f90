"""FakeVirtDriver: machines in memory, with an out-of-band power switch like a BMC's."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from herald.domain.errors import DriverError
from herald.domain.model import PowerState, Server


@dataclass(slots=True)
class FakeMachine:
    power: PowerState = PowerState.RUNNING
    volumes: dict[str, int] = field(default_factory=dict)  # volume id -> size in bytes the guest sees
    detached_ports: list[str] = field(default_factory=list)


class FakeVirtDriver:
    """A driver that keeps machines in a dict. Ships with Herald: the embedded shape uses it.

    Tests and demos change a machine's power behind compute's back with :meth:`set_power`
    (what a BMC, an operator or a power cut does), and make the next call of a method
    fail with :meth:`fail_next`.
    """

    supports_extend_volume = True

    def __init__(self) -> None:
        self._machines: dict[str, FakeMachine] = {}
        self._failures: dict[str, DriverError] = {}
        self._lock = threading.Lock()
        self.power_update_calls: list[tuple[str, str]] = []

    # --- out-of-band control -------------------------------------------------
    def set_power(self, server_uuid: str, power: PowerState) -> None:
        with self._lock:
            self._machines.setdefault(server_uuid, FakeMachine()).power = power

    def machine(self, server_uuid: str) -> FakeMachine | None:
        with self._lock:
            return self._machines.get(server_uuid)

    def fail_next(self, method: str, error: DriverError) -> None:
        with self._lock:
            self._failures[method] = error

    def _maybe_fail(self, method: str) -> None:
        error = self._failures.pop(method, None)
        if error is not None:
            raise error

    # --- VirtDriver ------------------------------------------------------------
    def allocate_node(self, server: Server, in_use: set[str]) -> str:
        # NOTE: one hypervisor per host, named after it, as Nova's fake driver does.
        return server.host or "fake-node"

    def spawn(self, server: Server) -> None:
        with self._lock:
            self._maybe_fail("spawn")
            self._machines[server.uuid] = FakeMachine(PowerState.RUNNING)

    def destroy(self, server: Server) -> None:
        with self._lock:
            self._maybe_fail("destroy")
            self._machines.pop(server.uuid, None)

    def power_off(self, server: Server) -> None:
        self._set(server, "power_off", PowerState.SHUTDOWN)

    def power_on(self, server: Server) -> None:
        self._set(server, "power_on", PowerState.RUNNING)

    def _set(self, server: Server, method: str, power: PowerState) -> None:
        with self._lock:
            self._maybe_fail(method)
            machine = self._machines.get(server.uuid)
            if machine is None:
                raise DriverError(f"Instance {server.uuid} has no machine on this host")
            machine.power = power

    def get_power_state(self, server: Server) -> int:
        with self._lock:
            self._maybe_fail("get_power_state")
            machine = self._machines.get(server.uuid)
            return int(machine.power if machine else PowerState.NOSTATE)

    def power_update_event(self, server: Server, target: str) -> None:
        # NOTE: like a bare-metal driver, nothing to do on the machine: its power already changed.
        with self._lock:
            self._maybe_fail("power_update_event")
            self.power_update_calls.append((server.uuid, target))

    def extend_volume(self, server: Server, volume_id: str, new_size_bytes: int) -> None:
        with self._lock:
            self._maybe_fail("extend_volume")
            self._machines.setdefault(server.uuid, FakeMachine()).volumes[volume_id] = new_size_bytes

    def detach_interface(self, server: Server, port_id: str) -> None:
        with self._lock:
            self._maybe_fail("detach_interface")
            self._machines.setdefault(server.uuid, FakeMachine()).detached_ports.append(port_id)
