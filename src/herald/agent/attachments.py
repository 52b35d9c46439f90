"""Interface and volume attach/detach on the server's host, on command from the API.

Each runs under the server's operation lock: the network and the driver are called on a
worker thread with no transaction held, then one transition records the server's new
interfaces or volumes with the instance-action step (``compute_attach_interface``...).
Neither attach waits for an external event: Nova's libvirt driver plugs an attached port
without waiting for ``network-vif-plugged``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from herald.agent.command_copies import CommandCopies
from herald.agent.operation import OperationTools
from herald.agent.transitions import Step, Transition
from herald.domain.errors import DriverError, HeraldError, PortInUse
from herald.domain.messages import AttachInterface, AttachVolume, DetachInterface, DetachVolume, ServerCommand
from herald.domain.model import Server, TaskState, Vif
from herald.service.ports import NetworkBackend, UnitOfWork, VolumeBackend

logger = logging.getLogger(__name__)

# Attach and detach set no task state (as in Nova): whatever the server does meanwhile, record them.
ANY_TASK_STATE: tuple[str | None, ...] = (None, *(state.value for state in TaskState))


def interface_attach_failed(server_uuid: str) -> str:
    """Nova's InterfaceAttachFailed message (the API answers it with a 500)."""
    return f"Failed to attach network adapter device to {server_uuid}"


class AttachmentOps:
    """One host's attach and detach commands (see the module docstring)."""

    def __init__(self, *, tools: OperationTools, network: NetworkBackend, volumes: VolumeBackend) -> None:
        self._tools = tools
        # NOTE: no task state guards these commands: a copy is known by the step its first run recorded.
        self.copies = CommandCopies(tools.read_uow_factory)
        self._driver = tools.driver
        self._network = network
        self._volumes = volumes

    async def _record(
        self,
        command: ServerCommand,
        step: str,
        start: datetime,
        error: str | None,
        change: Callable[[Server], None],
        *,
        on_error: bool = False,
    ) -> None:
        """Record the step; ``change`` the server after a success (or after a failure, with ``on_error``)."""

        def apply(uow: UnitOfWork, server: Server) -> None:
            if (error is not None) == on_error:
                change(server)

        record = Step(command.request_id, step, start, "Success" if error is None else "Error", error)
        await self._tools.record(Transition(command.server_uuid, ANY_TASK_STATE, apply, record), step)

    async def attach_interface(self, command: AttachInterface) -> None:
        async with self._tools.hold(command.server_uuid):
            if await self.copies.seen(command, "compute_attach_interface"):
                return
            server = await self._tools.load(command.server_uuid)
            if server is None:
                return
            start = self._tools.clock.now()
            vif, error = await asyncio.to_thread(self._plug, server, command)

            def add(fresh: Server) -> None:
                assert vif is not None
                fresh.vifs = [v for v in fresh.vifs if v.port_id != vif.port_id] + [vif]

            await self._record(command, "compute_attach_interface", start, error, add)

    def _plug(self, server: Server, command: AttachInterface) -> tuple[Vif | None, str | None]:
        """Bind the port, then plug it; a failed plug releases the port again."""
        try:
            bound = self._network.bind_port(server.uuid, command.port_id, command.network_id)
        except PortInUse as exc:
            return None, exc.text
        try:
            self._driver.attach_interface(server, command.port_id)
        except DriverError as exc:
            logger.warning("Attaching port %s to instance %s failed: %s", command.port_id, server.uuid, exc)
            self._network.unbind_port(server.uuid, command.port_id)
            return None, interface_attach_failed(server.uuid)
        network_id = bound.get("network_id")
        vif = Vif(
            command.port_id,
            bool(bound.get("active", False)),
            None if network_id is None else str(network_id),
            tag=command.tag,
        )
        return vif, None

    async def detach_interface(self, command: DetachInterface) -> None:
        async with self._tools.hold(command.server_uuid):
            if await self.copies.seen(command, "compute_detach_interface"):
                return
            server = await self._tools.load(command.server_uuid)
            if server is None:
                return
            start = self._tools.clock.now()
            error = await asyncio.to_thread(self._unplug, server, command.port_id)

            def remove(fresh: Server) -> None:
                fresh.vifs = [v for v in fresh.vifs if v.port_id != command.port_id]

            await self._record(command, "compute_detach_interface", start, error, remove)

    def _unplug(self, server: Server, port_id: str) -> str | None:
        if not any(v.port_id == port_id for v in server.vifs):
            return f"Port {port_id} is not attached"
        try:
            self._driver.detach_interface(server, port_id)
        except HeraldError as exc:
            logger.warning("Detaching port %s from instance %s failed: %s", port_id, server.uuid, exc)
            return exc.text
        self._network.unbind_port(server.uuid, port_id)
        return None

    async def attach_volume(self, command: AttachVolume) -> None:
        async with self._tools.hold(command.server_uuid):
            if await self.copies.seen(command, "compute_attach_volume"):
                return
            server = await self._tools.load(command.server_uuid)
            attachment = (
                None if server is None else next((v for v in server.volumes if v.volume_id == command.volume_id), None)
            )
            if server is None or attachment is None:
                return  # deleted or detached meanwhile
            start = self._tools.clock.now()
            error: str | None = None
            try:
                await asyncio.to_thread(self._connect, server, command.volume_id, attachment.device_name)
            except DriverError as exc:
                logger.warning("Attaching volume %s to instance %s failed: %s", command.volume_id, server.uuid, exc)
                error = exc.text

            def drop(fresh: Server) -> None:
                # NOTE: as Nova deletes the block device mapping of a failed attach.
                fresh.volumes = [v for v in fresh.volumes if v.volume_id != command.volume_id]

            await self._record(command, "compute_attach_volume", start, error, drop, on_error=True)

    def _connect(self, server: Server, volume_id: str, device_name: str | None) -> None:
        # NOTE: the host asks the volume service for the volume too, as Nova's compute completes the
        # attachment with Cinder: the host's later volume-extended reads its size there.
        self._volumes.reserve(volume_id)
        self._driver.attach_volume(server, volume_id, device_name)

    async def detach_volume(self, command: DetachVolume) -> None:
        async with self._tools.hold(command.server_uuid):
            if await self.copies.seen(command, "compute_detach_volume"):
                return
            server = await self._tools.load(command.server_uuid)
            if server is None:
                return
            start = self._tools.clock.now()
            error: str | None = None
            if not any(v.volume_id == command.volume_id for v in server.volumes):
                error = f"Volume {command.volume_id} is not attached"
            else:
                try:
                    await asyncio.to_thread(self._driver.detach_volume, server, command.volume_id)
                except DriverError as exc:
                    logger.warning(
                        "Detaching volume %s from instance %s failed: %s", command.volume_id, server.uuid, exc
                    )
                    error = exc.text

            def remove(fresh: Server) -> None:
                fresh.volumes = [v for v in fresh.volumes if v.volume_id != command.volume_id]

            await self._record(command, "compute_detach_volume", start, error, remove)
