"""FakeVirtDriver: machines with an out-of-band power switch like a BMC's, kept in a machine store."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from herald.domain.errors import DriverError
from herald.domain.model import PowerState, Server
from herald.domain.power_sync import SyncRow

# power-update calls the driver remembers at most (it halves the list when it is full).
KEPT_CALLS = 10000


@dataclass(slots=True)
class FakeMachine:
    """What :meth:`FakeVirtDriver.machine` shows of one machine."""

    power: PowerState = PowerState.RUNNING
    volumes: dict[str, int] = field(default_factory=dict)  # volume id -> size in bytes the guest sees
    detached_ports: list[str] = field(default_factory=list)
    attached_ports: list[str] = field(default_factory=list)  # plugged since the machine was spawned


class MachineStore(Protocol):
    """Where a fake driver's machines and their power states live (one store per host).

    The SQL one (:class:`herald.adapters.sql.fake_machines.SqlFakeMachines`) keeps them across
    restarts, as a real hypervisor or BMC would; :class:`MemoryMachines` forgets them.
    """

    def power(self, server_uuid: str) -> PowerState | None:
        """:returns: the machine's power state; None when there is no such machine."""

    def powers(self, server_uuids: Sequence[str]) -> dict[str, PowerState]:
        """The power states of those of these machines that exist (a few queries for many machines)."""

    def set_power(self, server_uuid: str, power: PowerState) -> None:
        """Record the power state, creating the machine when there is none."""

    def update_power(self, server_uuid: str, power: PowerState) -> bool:
        """Change an existing machine's power state; :returns: False when there is none."""

    def remove(self, server_uuid: str) -> None:
        """Forget the machine, if there is one."""


class MemoryMachines:
    """A :class:`MachineStore` in a dict: for tests and processes that need nothing kept."""

    def __init__(self) -> None:
        self._power: dict[str, PowerState] = {}
        self._lock = threading.Lock()

    def power(self, server_uuid: str) -> PowerState | None:
        with self._lock:
            return self._power.get(server_uuid)

    def powers(self, server_uuids: Sequence[str]) -> dict[str, PowerState]:
        with self._lock:
            return {uuid: self._power[uuid] for uuid in server_uuids if uuid in self._power}

    def set_power(self, server_uuid: str, power: PowerState) -> None:
        with self._lock:
            self._power[server_uuid] = power

    def update_power(self, server_uuid: str, power: PowerState) -> bool:
        with self._lock:
            if server_uuid not in self._power:
                return False
            self._power[server_uuid] = power
            return True

    def remove(self, server_uuid: str) -> None:
        with self._lock:
            self._power.pop(server_uuid, None)


@dataclass(slots=True)
class _GuestView:
    volumes: dict[str, int] = field(default_factory=dict)
    detached_ports: list[str] = field(default_factory=list)
    attached_ports: list[str] = field(default_factory=list)


class FakeVirtDriver:
    """A driver whose machines are rows in a :class:`MachineStore`. Ships with Herald: the embedded shape uses it.

    Tests and demos change a machine's power behind compute's back with :meth:`set_power`
    (what a BMC, an operator or a power cut does), and make the next call of a method
    fail with :meth:`fail_next`. What the guests saw of volume sizes and detached ports is
    only kept in memory, for tests to look at.

    :param machines: where the machines live; by default a :class:`MemoryMachines`.
    """

    supports_extend_volume = True
    batches_power_reads = True  # the machine store answers for many machines in one query

    def __init__(self, machines: MachineStore | None = None) -> None:
        self._machines: MachineStore = machines if machines is not None else MemoryMachines()
        self._guests: dict[str, _GuestView] = {}
        self._failures: dict[str, BaseException] = {}
        self._lock = threading.Lock()
        # The newest power-update calls, for tests; bounded: `herald serve` may run this driver for days.
        self.power_update_calls: list[tuple[str, str]] = []

    # --- out-of-band control -------------------------------------------------
    def set_power(self, server_uuid: str, power: PowerState) -> None:
        self._machines.set_power(server_uuid, power)

    def machine(self, server_uuid: str) -> FakeMachine | None:
        power = self._machines.power(server_uuid)
        if power is None:
            return None
        with self._lock:
            guest = self._guests.get(server_uuid) or _GuestView()
            return FakeMachine(power, dict(guest.volumes), list(guest.detached_ports), list(guest.attached_ports))

    def fail_next(self, method: str, error: BaseException) -> None:
        """Make the next call of ``method`` raise ``error`` (a DriverError, or anything to test the unexpected)."""
        with self._lock:
            self._failures[method] = error

    def _maybe_fail(self, method: str) -> None:
        with self._lock:
            error = self._failures.pop(method, None)
        if error is not None:
            raise error

    def _guest(self, server_uuid: str) -> _GuestView:
        with self._lock:
            return self._guests.setdefault(server_uuid, _GuestView())

    # --- VirtDriver ------------------------------------------------------------
    def allocate_node(self, server: Server, in_use: set[str]) -> str:
        # NOTE: one hypervisor per host, named after it, as Nova's fake driver does.
        return server.host or "fake-node"

    def spawn(self, server: Server) -> None:
        self._maybe_fail("spawn")
        with self._lock:
            self._guests.pop(server.uuid, None)
        self._machines.set_power(server.uuid, PowerState.RUNNING)

    def destroy(self, server: Server) -> None:
        self._maybe_fail("destroy")
        with self._lock:
            self._guests.pop(server.uuid, None)
        self._machines.remove(server.uuid)

    def power_off(self, server: Server) -> None:
        self._set(server, "power_off", PowerState.SHUTDOWN)

    def power_on(self, server: Server) -> None:
        self._set(server, "power_on", PowerState.RUNNING)

    def _set(self, server: Server, method: str, power: PowerState) -> None:
        self._maybe_fail(method)
        if not self._machines.update_power(server.uuid, power):
            raise DriverError(f"Instance {server.uuid} has no machine on this host")

    def get_power_state(self, server: Server) -> int:
        self._maybe_fail("get_power_state")
        power = self._machines.power(server.uuid)
        return int(PowerState.NOSTATE if power is None else power)

    def get_power_states(self, servers: Sequence[SyncRow]) -> dict[str, int | Exception]:
        """Every server's power from one read of the store; a :meth:`fail_next` of ``get_power_state``
        fails the first server's read, as it would fail the next single read."""
        powers: dict[str, int | Exception] = {}
        if servers:
            with self._lock:
                error = self._failures.pop("get_power_state", None)
            if error is not None:
                powers[servers[0].uuid] = error  # type: ignore[assignment]
        found = self._machines.powers([server.uuid for server in servers if server.uuid not in powers])
        for server in servers:
            if server.uuid not in powers:
                powers[server.uuid] = int(found.get(server.uuid, PowerState.NOSTATE))
        return powers

    def power_update_event(self, server: Server, target: str) -> None:
        # NOTE: like a bare-metal driver, nothing to do on the machine: its power already changed.
        self._maybe_fail("power_update_event")
        with self._lock:
            self.power_update_calls.append((server.uuid, target))
            if len(self.power_update_calls) > KEPT_CALLS:
                del self.power_update_calls[: KEPT_CALLS // 2]

    def extend_volume(self, server: Server, volume_id: str, new_size_bytes: int) -> None:
        self._maybe_fail("extend_volume")
        guest = self._guest(server.uuid)
        with self._lock:
            guest.volumes[volume_id] = new_size_bytes

    def detach_interface(self, server: Server, port_id: str) -> None:
        self._maybe_fail("detach_interface")
        guest = self._guest(server.uuid)
        with self._lock:
            guest.detached_ports.append(port_id)

    def attach_interface(self, server: Server, port_id: str) -> None:
        self._maybe_fail("attach_interface")
        guest = self._guest(server.uuid)
        with self._lock:
            guest.attached_ports.append(port_id)

    def attach_volume(self, server: Server, volume_id: str, device_name: str | None) -> None:
        self._maybe_fail("attach_volume")
        size = next((v.size_gb for v in server.volumes if v.volume_id == volume_id), 0)
        guest = self._guest(server.uuid)
        with self._lock:
            guest.volumes[volume_id] = size * 1024**3

    def detach_volume(self, server: Server, volume_id: str) -> None:
        self._maybe_fail("detach_volume")
        guest = self._guest(server.uuid)
        with self._lock:
            guest.volumes.pop(volume_id, None)

    # --- cold moves: the source keeps its machine (off) until confirm or revert ----------------
    def migrate_disk_and_power_off(self, server: Server) -> None:
        self._set(server, "migrate_disk_and_power_off", PowerState.SHUTDOWN)

    def finish_migration(self, server: Server, power_on: bool) -> None:
        self._maybe_fail("finish_migration")
        with self._lock:
            self._guests.pop(server.uuid, None)
        self._machines.set_power(server.uuid, PowerState.RUNNING if power_on else PowerState.SHUTDOWN)

    def confirm_migration(self, server: Server) -> None:
        self._maybe_fail("confirm_migration")
        with self._lock:
            self._guests.pop(server.uuid, None)
        self._machines.remove(server.uuid)

    def finish_revert_migration(self, server: Server, power_on: bool) -> None:
        self._set(server, "finish_revert_migration", PowerState.RUNNING if power_on else PowerState.SHUTDOWN)
