"""RedfishVirtDriver: bare-metal machines whose power is read and set through the Redfish API."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from herald.adapters.virt.power_reads import one_by_one
from herald.adapters.virt.redfish_client import OFF, ON, POWERING_OFF, POWERING_ON, RedfishClient, RedfishSystemNotFound
from herald.domain.errors import DriverError, NotSupportedByDriver, NoValidHost
from herald.domain.model import PowerState, Server
from herald.domain.power_sync import SyncRow

logger = logging.getLogger(__name__)

# As Ironic's redfish power interface maps Redfish states (a transition counts as its target), then as
# Nova's Ironic driver maps Ironic's: power on -> RUNNING, power off -> SHUTDOWN, anything else -> NOSTATE.
POWER_STATES: dict[str, PowerState] = {
    ON: PowerState.RUNNING,
    POWERING_ON: PowerState.RUNNING,
    OFF: PowerState.SHUTDOWN,
    POWERING_OFF: PowerState.SHUTDOWN,
}


class RedfishVirtDriver:
    """A compute host's bare-metal machines: a fixed list of Redfish systems, one server per system.

    "Deploying" a server powers its system on (there is no imaging); deleting it powers the system off.
    The node of a server (``server.node``) is its Redfish system id. Power changes are requested, then
    polled every ``power_poll_interval`` seconds until the system reports the steady state
    (``On``/``Off``) or ``power_state_change_timeout`` seconds have passed. Methods block.

    :param client: the Redfish service the systems belong to.
    :param systems: the system ids this host may use, in allocation order.
    """

    supports_extend_volume = False
    batches_power_reads = False  # one BMC request per node: the power sync pools them

    def __init__(
        self,
        client: RedfishClient,
        *,
        systems: Sequence[str],
        power_state_change_timeout: float = 60.0,
        power_poll_interval: float = 1.0,
    ) -> None:
        self._client = client
        self._systems = tuple(systems)
        self._timeout = power_state_change_timeout
        self._interval = power_poll_interval

    def allocate_node(self, server: Server, in_use: set[str]) -> str:
        """The first configured system no other server of this host occupies.

        :raises NoValidHost: every configured system is in use (or none is configured).
        """
        for system_id in self._systems:
            if system_id not in in_use:
                return system_id
        raise NoValidHost(f"No free Redfish system for instance {server.uuid}: {len(self._systems)} configured.")

    def spawn(self, server: Server) -> None:
        """Power the server's system on and wait until it reports ``On``.

        :raises DriverError: no node, no such system, the service failed, or the timeout passed.
        """
        self._set_power(server, ON)

    def destroy(self, server: Server) -> None:
        """Power the system off (ForceOff) and wait; a server without a node or system is not an error."""
        if server.node is None:
            return
        try:
            self._set_power(server, OFF)
        except RedfishSystemNotFound:
            logger.info("Redfish system %s of instance %s is gone; nothing to power off", server.node, server.uuid)

    def power_off(self, server: Server) -> None:
        """ForceOff, then wait for ``Off``. :raises DriverError: as :meth:`spawn`."""
        self._set_power(server, OFF)

    def power_on(self, server: Server) -> None:
        """On, then wait for ``On``. :raises DriverError: as :meth:`spawn`."""
        self._set_power(server, ON)

    def get_power_state(self, server: Server) -> int:
        """The system's power as a PowerState: NOSTATE without a node, for a missing system or an unknown state.

        :raises DriverError: the Redfish service could not be reached or refused the request.
        """
        return self._power_of(server.node)

    def get_power_states(self, servers: Sequence[SyncRow]) -> dict[str, int | Exception]:
        """:meth:`get_power_state` node by node (the power sync hands one server at a time)."""
        return one_by_one(lambda server: self._power_of(server.node), servers)

    def _power_of(self, node: str | None) -> int:
        if node is None:
            return int(PowerState.NOSTATE)
        try:
            power = self._client.power(node)
        except RedfishSystemNotFound:
            return int(PowerState.NOSTATE)
        return int(POWER_STATES.get(power or "", PowerState.NOSTATE))

    def power_update_event(self, server: Server, target: str) -> None:
        """Nothing to do: the machine's power already changed (as in Nova's Ironic driver)."""
        logger.debug("Redfish system %s of instance %s already changed power (%s)", server.node, server.uuid, target)

    def extend_volume(self, server: Server, volume_id: str, new_size_bytes: int) -> None:
        raise NotSupportedByDriver("The redfish driver does not support extending volumes.")

    def detach_interface(self, server: Server, port_id: str) -> None:
        raise NotSupportedByDriver("The redfish driver does not support detaching interfaces.")

    def attach_interface(self, server: Server, port_id: str) -> None:
        raise NotSupportedByDriver("The redfish driver does not support attaching interfaces.")

    def attach_volume(self, server: Server, volume_id: str, device_name: str | None) -> None:
        raise NotSupportedByDriver("The redfish driver does not support attaching volumes.")

    def detach_volume(self, server: Server, volume_id: str) -> None:
        raise NotSupportedByDriver("The redfish driver does not support detaching volumes.")

    # NOTE: a bare-metal machine cannot move to another host (Nova's Ironic driver cannot either).
    def migrate_disk_and_power_off(self, server: Server) -> None:
        raise NotSupportedByDriver("The redfish driver does not support migrating or resizing servers.")

    def finish_migration(self, server: Server, power_on: bool) -> None:
        raise NotSupportedByDriver("The redfish driver does not support migrating or resizing servers.")

    def confirm_migration(self, server: Server) -> None:
        raise NotSupportedByDriver("The redfish driver does not support migrating or resizing servers.")

    def finish_revert_migration(self, server: Server, power_on: bool) -> None:
        raise NotSupportedByDriver("The redfish driver does not support migrating or resizing servers.")

    def _set_power(self, server: Server, target: str) -> None:
        node = server.node
        if node is None:
            raise DriverError(f"Instance {server.uuid} has no Redfish system")
        if self._client.power(node) == target:
            return
        logger.info("Powering %s Redfish system %s of instance %s", target.lower(), node, server.uuid)
        self._client.reset(node, target)
        self._wait_for(server, node, target)

    def _wait_for(self, server: Server, node: str, target: str) -> None:
        deadline = time.monotonic() + self._timeout
        while True:
            power = self._client.power(node)
            if power == target:
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DriverError(
                    f"Redfish system {node} of instance {server.uuid} did not power {target.lower()} within "
                    f"{self._timeout:g} s (it reports {power})"
                )
            time.sleep(min(self._interval, remaining))
