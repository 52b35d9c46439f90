"""Reboot and rebuild: Nova's compute API state rules, then the agent's RebootServer / RebuildServer.

Each use case is one transaction, as in :mod:`herald.service.server_actions`: load the
server (locked), check the lock and Nova's ``check_instance_state`` rules in Nova's order,
set the task state with a guarded save and record the instance action.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from herald.domain.errors import (
    ImageUnacceptable,
    Invalid,
    InvalidServerState,
    MetadataLimitExceeded,
    ServerNotReady,
    UnexpectedTaskState,
)
from herald.domain.messages import RebootServer, RebuildServer
from herald.domain.model import Server, TaskState, VmState, VolumeAttachment
from herald.service.common import Caller, Dispatch, Outcome, commit_with, load_server, start_action
from herald.service.ports import UnitOfWork
from herald.service.server_actions import check_lock, check_state
from herald.service.server_updates import MAX_METADATA_ITEMS

SOFT_REBOOT_VM_STATES = (VmState.ACTIVE,)
HARD_REBOOT_VM_STATES = (VmState.ACTIVE, VmState.STOPPED, VmState.PAUSED, VmState.SUSPENDED, VmState.ERROR)
# Nova's task_states.ALLOW_REBOOT: a hard reboot may take over from these.
ALLOW_HARD_REBOOT_TASKS: tuple[str | None, ...] = (
    None,
    TaskState.REBOOTING.value,
    TaskState.REBOOT_PENDING.value,
    TaskState.REBOOT_STARTED.value,
    "resuming",
    TaskState.REBOOTING_HARD.value,
    "unpausing",
    "pausing",
    "suspending",
)
REBUILD_VM_STATES = (VmState.ACTIVE, VmState.STOPPED, VmState.ERROR)
VOLUME_BACKED_NEW_IMAGE = "Unable to rebuild with a different image for a volume-backed server."
VOLUME_BACKED_CERTIFICATES = "Image certificate validation is not supported for volume-backed servers."


def _check_tasks(server: Server, action: str, vm_states: Collection[str], tasks: Collection[str | None]) -> None:
    """``check_instance_state`` with a task-state list other than ``[None]``."""
    if server.vm_state not in vm_states:
        raise InvalidServerState(server.uuid, "vm_state", server.vm_state, action)
    if server.task_state not in tasks:
        raise InvalidServerState(server.uuid, "task_state", server.task_state, action)
    if server.launched_at is None:
        raise InvalidServerState(server.uuid, "launched_at", None, action)


def _save_task(uow: UnitOfWork, server: Server, task: TaskState, expected: Collection[str | None]) -> None:
    found = server.task_state
    server.task_state = task.value
    if not uow.servers.save_if_task_state(server, list(expected)):
        raise UnexpectedTaskState(server.uuid, found, "changed")


def reboot_server(uow: UnitOfWork, caller: Caller, request_id: str, uuid: str, *, now: datetime, hard: bool) -> Outcome:
    """Nova's ``reboot``: SOFT from ACTIVE with no task; HARD from more states, and over a reboot under way.

    :raises ServerLocked: locked, and the caller is not an admin.
    :raises InvalidServerState: the state does not allow this reboot (409).
    """
    with uow:
        server = load_server(uow, caller, uuid, for_update=True)
        check_lock(server, caller)
        if hard:
            _check_tasks(server, "reboot", HARD_REBOOT_VM_STATES, ALLOW_HARD_REBOOT_TASKS)
        else:
            check_state(server, "reboot", SOFT_REBOOT_VM_STATES)
        if not server.host:
            raise ServerNotReady(uuid)
        server.updated_at = now
        if hard:
            _save_task(uow, server, TaskState.REBOOTING_HARD, ALLOW_HARD_REBOOT_TASKS)
        else:
            _save_task(uow, server, TaskState.REBOOTING, [None])
        start_action(uow, caller, server, "reboot", request_id, now)
        dispatch = commit_with(uow, [Dispatch(server.host, RebootServer(uuid, request_id, hard=hard))], now)
    return Outcome(server, dispatch)


@dataclass(frozen=True, slots=True)
class RebuildRequest:
    """What a rebuild asks for; ``None`` (or an absent ``sets_*``) leaves an attribute as it is."""

    image_ref: str
    name: str | None = None
    metadata: dict[str, str] | None = None
    description: str | None = None
    sets_description: bool = False
    access_ip_v4: str | None = None
    access_ip_v6: str | None = None
    auto_disk_config: bool | None = None
    sets_key_name: bool = False  # 2.54: key_name given (null unsets it)
    key_name: str | None = None
    sets_user_data: bool = False  # 2.57: user_data given (null unsets it)
    user_data: str | None = None
    sets_certificates: bool = False  # 2.63
    certificates: tuple[str, ...] | None = None
    hostname: str | None = None  # 2.90
    reimage_boot_volume: bool = False  # 2.93


def rebuild_server(
    uow: UnitOfWork, caller: Caller, request_id: str, uuid: str, request: RebuildRequest, *, now: datetime
) -> Outcome:
    """Nova's ``rebuild`` of an ACTIVE, STOPPED or ERROR server with no task.

    :raises ServerLocked: locked, and the caller is not an admin.
    :raises InvalidServerState: another state (409).
    :raises Invalid: an unknown key pair (400 "Invalid key_name provided.").
    :raises ImageUnacceptable: a new image for a volume-backed server below 2.93 (400).
    :raises MetadataLimitExceeded: more than 128 metadata items (403).
    """
    with uow:
        server = load_server(uow, caller, uuid, for_update=True)
        check_lock(server, caller)
        check_state(server, "rebuild", REBUILD_VM_STATES)
        root = _volume_backed_root(server, request)
        if request.metadata is not None and len(request.metadata) > MAX_METADATA_ITEMS:
            raise MetadataLimitExceeded(MAX_METADATA_ITEMS)
        unknown_key = request.key_name is not None and uow.keypairs.get(caller.user_id or "", request.key_name) is None
        if request.sets_key_name and unknown_key:
            raise Invalid("Invalid key_name provided.")
        if not server.host:
            raise ServerNotReady(uuid)
        was_stopped = server.vm_state == VmState.STOPPED
        _apply(server, request, volume_backed=root is not None)
        server.updated_at = now
        _save_task(uow, server, TaskState.REBUILDING, [None])
        start_action(uow, caller, server, "rebuild", request_id, now)
        command = RebuildServer(
            uuid,
            request_id,
            was_stopped=was_stopped,
            reimage_volume_id=root.volume_id if root is not None and request.reimage_boot_volume else None,
            reimage_size_gb=root.size_gb if root is not None else 0,
        )
        dispatch = commit_with(uow, [Dispatch(server.host, command)], now)
    return Outcome(server, dispatch)


def _volume_backed_root(server: Server, request: RebuildRequest) -> VolumeAttachment | None:
    """The root volume of a volume-backed server (None: image-backed), after Nova's refusals for it."""
    if server.image_ref or not server.volumes:
        return None
    if request.sets_certificates and request.certificates:
        raise Invalid(VOLUME_BACKED_CERTIFICATES)
    # NOTE: the embedded block storage keeps no image metadata, so any image is a new one, as Nova
    # sees a volume without volume_image_metadata.
    if not request.reimage_boot_volume:
        raise ImageUnacceptable(request.image_ref, VOLUME_BACKED_NEW_IMAGE)
    return server.volumes[0]


def _apply(server: Server, request: RebuildRequest, *, volume_backed: bool) -> None:
    # NOTE: as Nova, a volume-backed server keeps its empty image_ref (the API shows "" for it).
    if not volume_backed:
        server.image_ref = request.image_ref
    if request.name is not None:
        server.name = request.name
    if request.metadata is not None:
        server.metadata = dict(request.metadata)
    if request.sets_description:
        server.description = request.description
    if request.access_ip_v4 is not None:
        server.access_ip_v4 = request.access_ip_v4 or None
    if request.access_ip_v6 is not None:
        server.access_ip_v6 = request.access_ip_v6 or None
    if request.auto_disk_config is not None:
        server.auto_disk_config = request.auto_disk_config
    _apply_later_versions(server, request)


def _apply_later_versions(server: Server, request: RebuildRequest) -> None:
    """What 2.54 and later rebuilds may change (the ``sets_*`` flags: given, possibly as null)."""
    if request.sets_key_name:
        server.key_name = request.key_name
    if request.sets_user_data:
        server.user_data = request.user_data
    if request.sets_certificates:
        server.trusted_image_certificates = None if request.certificates is None else list(request.certificates)
    if request.hostname is not None:
        server.hostname = request.hostname
