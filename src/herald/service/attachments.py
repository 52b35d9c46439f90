"""Attaching and detaching interfaces and volumes: Nova's API-side checks, then the agent's command.

Each use case is one transaction on the server's row: Nova's lock and state rules, the
instance action, and (for a volume) the attachment with its device name, recorded before
the agent connects it, as Nova creates the block device mapping first. Backends (the
network's port owner, the volume's size) are asked before the transaction, never inside it.
"""

from __future__ import annotations

import re
import uuid as uuidlib
from datetime import datetime

from herald.domain.errors import Conflict, Invalid, InvalidVolume, PortInUse, ServerNotReady, VolumeNotAttached
from herald.domain.messages import AttachInterface, AttachVolume, DetachInterface, DetachVolume
from herald.domain.model import Server, VmState, VolumeAttachment
from herald.domain.records import ActionEvent
from herald.service.common import Caller, Dispatch, Outcome, commit_with, load_server, start_action
from herald.service.ports import UnitOfWork, UnitOfWorkFactory
from herald.service.server_actions import check_lock, check_state

INTERFACE_STATES = (VmState.ACTIVE, VmState.PAUSED, VmState.STOPPED)
VOLUME_STATES = (
    VmState.ACTIVE,
    VmState.PAUSED,
    VmState.STOPPED,
    VmState.RESIZED,
    VmState.SOFT_DELETED,
    VmState.SHELVED,
    VmState.SHELVED_OFFLOADED,
)
ATTACH_INTERFACE_STEP = "compute_attach_interface"
# Nova's block_device.match_device: an optional /dev/ prefix, a bus letter pair, a disk letter.
_DEVICE = re.compile(r"^(/dev/x{0,1}[a-z]{0,1}d{0,1})([a-z]+)[0-9]*$")
_LETTERS = "abcdefghijklmnopqrstuvwxyz"


class InvalidDevicePath(Invalid):
    def __init__(self, path: str) -> None:
        super().__init__(f"The supplied device path ({path}) is invalid.")


class DevicePathInUse(Conflict):
    def __init__(self, path: str) -> None:
        super().__init__(f"The supplied device path ({path}) is in use.")


class TaggedAttachToShelvedNotSupported(Invalid):
    message = "Tagged volume attachment is not supported for shelved-offloaded instances."


class RootVolumeDetach(Invalid):
    message = "Cannot detach a root device volume"


def attach_interface(
    uow: UnitOfWork,
    caller: Caller,
    request_id: str,
    uuid: str,
    *,
    port_id: str,
    network_id: str | None,
    tag: str | None,
    port_owner: str | None,
    now: datetime,
) -> Outcome:
    """Nova's ``attach_interface`` checks (lock, then state) and the ``attach_interface`` action.

    :param port_owner: the server the named port is bound to, as the network said before the transaction.
    :raises PortInUse: the port is bound (to any server, as Neutron's device_id check does).
    """
    with uow:
        server = load_server(uow, caller, uuid, for_update=True)
        check_lock(server, caller)
        check_state(server, "attach_interface", INTERFACE_STATES)
        if not server.host:
            raise ServerNotReady(uuid)
        if port_owner is not None:
            # NOTE: Nova records the action (and its step's failure) before the port is found to be in use.
            failed = ActionEvent(ATTACH_INTERFACE_STEP, now, now, "Error", None, server.host, PortInUse(port_id).text)
            start_action(uow, caller, server, "attach_interface", request_id, now, (failed,))
            uow.commit()
            raise PortInUse(port_id)
        start_action(uow, caller, server, "attach_interface", request_id, now)
        dispatch = commit_with(
            uow, [Dispatch(server.host, AttachInterface(uuid, request_id, port_id, network_id, tag))], now
        )
    return Outcome(server, dispatch)


def detach_interface(
    uow: UnitOfWork, caller: Caller, request_id: str, uuid: str, *, port_id: str, now: datetime
) -> Outcome:
    """Nova's ``detach_interface``: checked here, done by the agent (a port not attached fails there, as in Nova)."""
    with uow:
        server = load_server(uow, caller, uuid, for_update=True)
        check_lock(server, caller)
        check_state(server, "detach_interface", INTERFACE_STATES)
        if not server.host:
            raise ServerNotReady(uuid)
        start_action(uow, caller, server, "detach_interface", request_id, now)
        dispatch = commit_with(uow, [Dispatch(server.host, DetachInterface(uuid, request_id, port_id))], now)
    return Outcome(server, dispatch)


def step_result(uow_factory: UnitOfWorkFactory, uuid: str, request_id: str, step: str) -> ActionEvent | None:
    """The finished ``step`` of the server's action ``request_id``, once the agent recorded it."""
    with uow_factory() as uow:
        action = uow.actions.get(uuid, request_id)
    if action is None:
        return None
    return next((event for event in action.events if event.event == step and event.finish_time is not None), None)


def attach_volume(
    uow: UnitOfWork,
    caller: Caller,
    request_id: str,
    uuid: str,
    *,
    volume_id: str,
    size_gb: int,
    device: str | None,
    tag: str | None,
    delete_on_termination: bool,
    now: datetime,
) -> tuple[Outcome, VolumeAttachment]:
    """Record the attachment (device reserved) and the ``attach_volume`` action; the agent connects it.

    :raises InvalidVolume: a malformed device, the volume already attached (here or elsewhere), a tag
        for a shelved-offloaded server.
    :raises DevicePathInUse: the requested device is taken.
    """
    with uow:
        server = load_server(uow, caller, uuid, for_update=True)
        check_lock(server, caller)
        check_state(server, "attach_volume", VOLUME_STATES)
        if device and not _DEVICE.match(device):
            raise InvalidDevicePath(device)
        _check_not_attached(uow, server, volume_id)
        offloaded = server.vm_state == VmState.SHELVED_OFFLOADED
        if offloaded and tag:
            raise TaggedAttachToShelvedNotSupported()
        if not offloaded and not server.host:
            raise ServerNotReady(uuid)
        attachment = VolumeAttachment(
            volume_id,
            size_gb,
            _device_name(server, device),
            tag=tag,
            delete_on_termination=delete_on_termination,
            attachment_id=str(uuidlib.uuid4()),
            bdm_uuid=str(uuidlib.uuid4()),
        )
        server.volumes.append(attachment)
        server.updated_at = now
        uow.servers.save(server)
        start_action(uow, caller, server, "attach_volume", request_id, now)
        # NOTE: an offloaded server has no machine: the volume is attached when it is unshelved.
        attach = (
            []
            if offloaded or server.host is None
            else [Dispatch(server.host, AttachVolume(uuid, request_id, volume_id))]
        )
        dispatch = commit_with(uow, attach, now)
    return Outcome(server, dispatch), attachment


def _check_not_attached(uow: UnitOfWork, server: Server, volume_id: str) -> None:
    if any(v.volume_id == volume_id for v in server.volumes):
        raise InvalidVolume(f"volume {volume_id} already attached")
    others = [s.uuid for s in uow.servers.list() if any(v.volume_id == volume_id for v in s.volumes)]
    if others:
        raise InvalidVolume(f"volume {volume_id} is already attached to instances: {' '.join(others)}")


def _device_name(server: Server, requested: str | None) -> str:
    """The requested device if free, else the first free ``/dev/vdX`` (Nova's libvirt picks its own)."""
    used = {v.device_name for v in server.volumes}
    if server.image_ref:
        used.add("/dev/vda")  # the image's root disk
    if requested:
        if requested in used:
            raise DevicePathInUse(requested)
        return requested
    free = (f"/dev/vd{letter}" for letter in _LETTERS if f"/dev/vd{letter}" not in used)
    name = next(free, None)
    if name is None:
        raise InvalidVolume("no free device name")
    return name


def detach_volume(
    uow: UnitOfWork, caller: Caller, request_id: str, uuid: str, *, volume_id: str, now: datetime
) -> Outcome:
    """Nova's ``detach_volume`` checks; a shelved-offloaded server's volume is detached here (no machine).

    :raises VolumeNotAttached: the server has no attachment of the volume.
    :raises RootVolumeDetach: it is the server's root volume.
    """
    with uow:
        server = load_server(uow, caller, uuid, for_update=True)
        attachment = next((v for v in server.volumes if v.volume_id == volume_id), None)
        if attachment is None:
            raise VolumeNotAttached(uuid, volume_id)
        if not server.image_ref and server.volumes and server.volumes[0].volume_id == volume_id:
            raise RootVolumeDetach()
        check_lock(server, caller)
        check_state(server, "detach_volume", VOLUME_STATES)
        offloaded = server.vm_state == VmState.SHELVED_OFFLOADED or server.host is None
        if offloaded:
            server.volumes = [v for v in server.volumes if v.volume_id != volume_id]
            server.updated_at = now
            uow.servers.save(server)
        start_action(uow, caller, server, "detach_volume", request_id, now)
        detach = (
            []
            if offloaded or server.host is None
            else [Dispatch(server.host, DetachVolume(uuid, request_id, volume_id))]
        )
        dispatch = commit_with(uow, detach, now)
    return Outcome(server, dispatch)
