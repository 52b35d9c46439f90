"""Deferred delete (Nova's ``reclaim_instance_interval``): soft delete, restore, force delete.

With a positive interval ``DELETE /servers/{id}`` only powers the server off and leaves it
SOFT_DELETED; its host's agent reclaims (deletes) it once the interval has passed since
``deleted_at``, unless ``restore`` brought it back or ``forceDelete`` deleted it first.
"""

from __future__ import annotations

from datetime import datetime

from herald.domain.errors import InvalidServerState
from herald.domain.messages import RestoreServer, SoftDeleteServer
from herald.domain.model import TaskState, VmState
from herald.service import scheduler
from herald.service.common import Caller, Dispatch, Outcome, commit_with, load_server, start_action
from herald.service.ports import NetworkBackend, UnitOfWork
from herald.service.server_actions import ActionPolicy, check_lock, check_state, delete_server


def delete_or_defer(
    uow: UnitOfWork,
    network: NetworkBackend,
    caller: Caller,
    request_id: str,
    uuid: str,
    *,
    now: datetime,
    policy: ActionPolicy,
    reclaim_instance_interval: int,
) -> Outcome:
    """``DELETE /servers/{id}``: a soft delete when deferred deletes are on, else (or when it may not) a delete.

    As Nova, a server that never launched or has a task under way cannot be soft deleted and is
    deleted at once instead.
    """
    if reclaim_instance_interval > 0:
        try:
            return soft_delete_server(uow, caller, request_id, uuid, now=now, policy=policy)
        except InvalidServerState:
            pass
    return delete_server(uow, network, caller, request_id, uuid, now=now, policy=policy)


def soft_delete_server(
    uow: UnitOfWork, caller: Caller, request_id: str, uuid: str, *, now: datetime, policy: ActionPolicy
) -> Outcome:
    """Nova's ``soft_delete``: on the host (``soft-deleting``), or right here when it has none or it is down.

    :raises ServerLocked: locked, and the caller is not an admin.
    :raises InvalidServerState: never launched (Nova checks no task state here).
    """
    with uow:
        server = load_server(uow, caller, uuid, for_update=True)
        check_lock(server, caller)
        if server.launched_at is None:
            raise InvalidServerState(uuid, "launched_at", None, "soft_delete")
        if server.task_state == TaskState.DELETING:
            return Outcome(server)  # already on its way out: Nova ignores the repeat
        record = uow.hosts.get(server.host) if server.host else None
        local = record is None or not scheduler.is_up(record, now, policy.service_down_time)
        server.updated_at = now
        server.deleted_at = now
        if local:
            server.vm_state = VmState.SOFT_DELETED.value
            server.task_state = None
            server.terminated_at = now
        else:
            server.task_state = TaskState.SOFT_DELETING.value
        uow.servers.save(server)
        start_action(uow, caller, server, "delete", request_id, now)
        soft_delete = (
            [] if local or server.host is None else [Dispatch(server.host, SoftDeleteServer(uuid, request_id))]
        )
        dispatch = commit_with(uow, soft_delete, now)
    return Outcome(server, dispatch)


def restore_server(uow: UnitOfWork, caller: Caller, request_id: str, uuid: str, *, now: datetime) -> Outcome:
    """Nova's ``restore`` of a SOFT_DELETED server: powered on by its host (``restoring``), or ACTIVE at once.

    :raises ServerLocked: locked, and the caller is not an admin.
    :raises InvalidServerState: not SOFT_DELETED (409).
    """
    with uow:
        server = load_server(uow, caller, uuid, for_update=True)
        check_lock(server, caller)
        check_state(server, "restore", (VmState.SOFT_DELETED,))
        start_action(uow, caller, server, "restore", request_id, now)
        server.deleted_at = None
        server.updated_at = now
        if server.host:
            server.task_state = TaskState.RESTORING.value
        else:
            server.vm_state = VmState.ACTIVE.value
        uow.servers.save(server)
        restore = [Dispatch(server.host, RestoreServer(uuid, request_id))] if server.host else []
        dispatch = commit_with(uow, restore, now)
    return Outcome(server, dispatch)


def force_delete_server(
    uow: UnitOfWork,
    network: NetworkBackend,
    caller: Caller,
    request_id: str,
    uuid: str,
    *,
    now: datetime,
    policy: ActionPolicy,
) -> Outcome:
    """Nova's ``forceDelete``: delete now, whatever the vm_state and task_state (only a lock refuses it)."""
    return delete_server(uow, network, caller, request_id, uuid, now=now, policy=policy)
