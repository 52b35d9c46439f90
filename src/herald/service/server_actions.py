"""Server actions: stop, start, shelve, shelveOffload, unshelve and delete, with Nova's state rules.

Each use case is one transaction: it loads the server (locked), checks Nova's
``check_instance_host`` / ``check_instance_state`` rules in Nova's order, sets the task
state with a guarded save, records the instance action and returns the agent message
to publish after the commit.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import datetime

from herald.domain.errors import (
    InvalidServerState,
    NoValidHost,
    ServerLocked,
    ServerNotReady,
    UnexpectedTaskState,
    UnshelveInvalidState,
)
from herald.domain.messages import (
    ConfirmResize,
    DeleteServer,
    ShelveOffloadServer,
    ShelveServer,
    StartServer,
    StopServer,
    UnshelveServer,
)
from herald.domain.model import MigrationStatus, PowerState, Server, TaskState, VmState
from herald.domain.records import ActionEvent
from herald.service import scheduler
from herald.service.common import Caller, Dispatch, Outcome, commit_with, load_server, start_action
from herald.service.ports import NetworkBackend, UnitOfWork

UNSHELVE_EVENT = "conductor_unshelve_instance"

_SHELVABLE = (VmState.ACTIVE, VmState.STOPPED, VmState.PAUSED, VmState.SUSPENDED)


@dataclass(frozen=True, slots=True)
class ActionPolicy:
    service_down_time: int
    # Nova's [DEFAULT] shelved_offload_time: 0 offloads right after shelving, -1 never.
    shelved_offload_time: int = 0


def check_state(
    server: Server,
    action: str,
    vm_states: Collection[str] | None,
    *,
    must_have_launched: bool = True,
) -> None:
    """Nova's ``check_instance_state``: vm_state, then no task, then launched at least once.

    :raises InvalidServerState: with the API's "Cannot '<action>' instance ..." message.
    """
    if vm_states is not None and server.vm_state not in vm_states:
        raise InvalidServerState(server.uuid, "vm_state", server.vm_state, action)
    if server.task_state is not None:
        raise InvalidServerState(server.uuid, "task_state", server.task_state, action)
    if must_have_launched and server.launched_at is None:
        raise InvalidServerState(server.uuid, "launched_at", None, action)


def check_lock(server: Server, caller: Caller) -> None:
    """Nova's ``check_instance_lock``: a locked server refuses everyone but admins.

    :raises ServerLocked: it is locked and the caller is not an admin.
    """
    if server.locked and not caller.is_admin:
        raise ServerLocked(server.uuid)


def _begin(
    uow: UnitOfWork, server: Server, task: TaskState, caller: Caller, action: str, request_id: str, now: datetime
) -> None:
    """Set the task state (only if it is still None, as Nova's ``save(expected_task_state=[None])``)."""
    server.task_state = task.value
    server.updated_at = now
    if not uow.servers.save_if_task_state(server, [None]):
        raise UnexpectedTaskState(server.uuid, None, "changed")
    start_action(uow, caller, server, action, request_id, now)


def stop_server(uow: UnitOfWork, caller: Caller, request_id: str, uuid: str, *, now: datetime) -> Outcome:
    with uow:
        server = load_server(uow, caller, uuid, for_update=True)
        check_lock(server, caller)
        if not server.host:
            raise ServerNotReady(uuid)
        check_state(server, "stop", (VmState.ACTIVE, VmState.ERROR))
        _begin(uow, server, TaskState.POWERING_OFF, caller, "stop", request_id, now)
        dispatch = commit_with(uow, [Dispatch(server.host, StopServer(uuid, request_id))], now)
    return Outcome(server, dispatch)


def start_server(uow: UnitOfWork, caller: Caller, request_id: str, uuid: str, *, now: datetime) -> Outcome:
    with uow:
        server = load_server(uow, caller, uuid, for_update=True)
        check_lock(server, caller)
        if not server.host:
            raise ServerNotReady(uuid)
        check_state(server, "start", (VmState.STOPPED,))
        _begin(uow, server, TaskState.POWERING_ON, caller, "start", request_id, now)
        dispatch = commit_with(uow, [Dispatch(server.host, StartServer(uuid, request_id))], now)
    return Outcome(server, dispatch)


def shelve_server(
    uow: UnitOfWork, caller: Caller, request_id: str, uuid: str, *, now: datetime, policy: ActionPolicy
) -> Outcome:
    with uow:
        server = load_server(uow, caller, uuid, for_update=True)
        check_lock(server, caller)
        check_state(server, "shelve", _SHELVABLE)
        if not server.host:
            raise ServerNotReady(uuid)
        _begin(uow, server, TaskState.SHELVING, caller, "shelve", request_id, now)
        # NOTE: a volume-backed server has nothing to snapshot, so Nova offloads it at once.
        volume_backed = not server.image_ref and bool(server.volumes)
        offload = policy.shelved_offload_time == 0 or volume_backed
        dispatch = commit_with(uow, [Dispatch(server.host, ShelveServer(uuid, request_id, offload=offload))], now)
    return Outcome(server, dispatch)


def shelve_offload_server(uow: UnitOfWork, caller: Caller, request_id: str, uuid: str, *, now: datetime) -> Outcome:
    with uow:
        server = load_server(uow, caller, uuid, for_update=True)
        check_lock(server, caller)
        check_state(server, "shelveOffload", (VmState.SHELVED,))
        if not server.host:
            raise ServerNotReady(uuid)
        _begin(uow, server, TaskState.SHELVING_OFFLOADING, caller, "shelveOffload", request_id, now)
        dispatch = commit_with(uow, [Dispatch(server.host, ShelveOffloadServer(uuid, request_id))], now)
    return Outcome(server, dispatch)


def unshelve_server(
    uow: UnitOfWork,
    caller: Caller,
    request_id: str,
    uuid: str,
    *,
    now: datetime,
    policy: ActionPolicy,
    host: str | None = None,
    zone_given: bool = False,
) -> Outcome:
    """Unshelve on the server's host (shelved) or on a scheduled one (offloaded; 2.91 ``host`` for admins).

    :param zone_given: the request named an availability zone (2.77), which only an offloaded server takes.
    :raises UnshelveInvalidState: a host or zone given for a server that is not offloaded.
    :raises Invalid: ``host`` does not exist.
    """
    with uow:
        server = load_server(uow, caller, uuid, for_update=True)
        check_lock(server, caller)
        check_state(server, "unshelve", (VmState.SHELVED, VmState.SHELVED_OFFLOADED))
        if (host is not None or zone_given) and server.vm_state != VmState.SHELVED_OFFLOADED:
            raise UnshelveInvalidState(uuid, server.vm_state)
        target = server.host if server.vm_state == VmState.SHELVED else _unshelve_host(uow, now, policy, host)
        if target is None:
            # NOTE: Nova's conductor leaves the server offloaded when no host can take it.
            start_action(
                uow, caller, server, "unshelve", request_id, now, (ActionEvent(UNSHELVE_EVENT, now, now, "Error"),)
            )
            uow.commit()
            return Outcome(server)
        server.host = server.node = target
        _begin(uow, server, TaskState.UNSHELVING, caller, "unshelve", request_id, now)
        dispatch = commit_with(uow, [Dispatch(target, UnshelveServer(uuid, request_id))], now)
    return Outcome(server, dispatch)


def _unshelve_host(uow: UnitOfWork, now: datetime, policy: ActionPolicy, host: str | None) -> str | None:
    try:
        if host is not None:
            return scheduler.check_requested_host(uow, now, policy.service_down_time, host)
        return scheduler.pick_host(uow, now, policy.service_down_time)
    except NoValidHost:
        return None


def delete_server(
    uow: UnitOfWork,
    network: NetworkBackend,
    caller: Caller,
    request_id: str,
    uuid: str,
    *,
    now: datetime,
    policy: ActionPolicy,
) -> Outcome:
    """Delete on the server's host, or right here when it has none or its host is down (Nova's local delete)."""
    with uow:
        server = load_server(uow, caller, uuid, for_update=True)
        check_lock(server, caller)
        record = uow.hosts.get(server.host) if server.host else None
        local = record is None or not scheduler.is_up(record, now, policy.service_down_time)
        if not local and server.task_state == TaskState.DELETING:
            return Outcome(server)  # already on its way: Nova ignores the repeat
        server.updated_at = now
        if local:
            network.deallocate_for_server(uuid)
            server.vm_state = VmState.DELETED.value
            server.power_state = PowerState.NOSTATE.value
            server.task_state = None
            server.deleted = True
            server.terminated_at = now
        else:
            server.task_state = TaskState.DELETING.value
        uow.servers.save(server)
        start_action(uow, caller, server, "delete", request_id, now)
        confirm = None if local else _confirm_before_delete(uow, server, request_id, now, policy)
        if local or server.host is None:
            dispatch = []
        elif confirm is not None:
            dispatch = [confirm]
        else:
            dispatch = [Dispatch(server.host, DeleteServer(uuid, request_id))]
        dispatch = commit_with(uow, dispatch, now)
    return Outcome(server, dispatch)


def _confirm_before_delete(
    uow: UnitOfWork, server: Server, request_id: str, now: datetime, policy: ActionPolicy
) -> Dispatch | None:
    """A server in VERIFY_RESIZE is confirmed first (its source removes the machine it kept), as Nova does.

    :returns: the confirm for the source, which hands the delete on to the destination; None
        when there is no move to confirm or its source is down (the delete goes on without it).
    """
    if server.vm_state != VmState.RESIZED or server.migration_id is None:
        return None
    migration = uow.migrations.get(server.migration_id)
    if migration is None or migration.status != MigrationStatus.FINISHED:
        return None
    source = uow.hosts.get(migration.source_compute)
    if source is None or not scheduler.is_up(source, now, policy.service_down_time):
        return None
    uow.migrations.save(replace(migration, status=MigrationStatus.CONFIRMING.value))
    return Dispatch(migration.source_compute, ConfirmResize(server.uuid, request_id, migration.id, then_delete=True))


def reset_state(
    uow: UnitOfWork, caller: Caller, request_id: str, uuid: str, *, now: datetime, vm_state: VmState
) -> Outcome:
    """Nova's ``os-resetState`` (admins): force the vm_state and clear the task, whatever they were."""
    with uow:
        server = load_server(uow, caller, uuid, for_update=True)
        server.vm_state = vm_state.value
        server.task_state = None
        server.updated_at = now
        uow.servers.save(server)
        start_action(uow, caller, server, "resetState", request_id, now)
        uow.commit()
    return Outcome(server)
