"""Cold moves at the API: migrate, resize, confirmResize and revertResize, with Nova's checks in Nova's order.

Each use case is one transaction: it checks the lock, the state and the host, records the
migration and the instance action, sets the task state with a guarded save and returns the
agent message for the first step (the destination prepares, or the source cleans up on
confirm, or the destination tears down on revert).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from herald.domain.errors import (
    CannotMigrateToSameHost,
    CannotResizeToSameFlavor,
    Invalid,
    NotResized,
    NoValidHost,
    ServerNotReady,
    ServiceUnavailable,
    UnexpectedTaskState,
)
from herald.domain.messages import ConfirmResize, PrepResize, RevertResize
from herald.domain.model import Migration, MigrationStatus, Server, TaskState, VmState
from herald.domain.records import ActionEvent
from herald.service import scheduler
from herald.service.common import Caller, Dispatch, Outcome, commit_with, load_server, start_action
from herald.service.flavors import get_flavor
from herald.service.ports import UnitOfWork
from herald.service.server_actions import ActionPolicy, check_lock, check_state

# The conductor's step of a migrate or resize (it schedules the destination).
CONDUCTOR_STEP = "conductor_migrate_server"
_MOVABLE = (VmState.ACTIVE, VmState.STOPPED)


def move_server(
    uow: UnitOfWork,
    caller: Caller,
    request_id: str,
    uuid: str,
    *,
    now: datetime,
    policy: ActionPolicy,
    host: str | None = None,
    flavor_id: str | None = None,
    auto_disk_config: bool = False,
) -> Outcome:
    """``migrate`` (no ``flavor_id``; ``host`` from 2.56) or ``resize`` (``flavor_id``), to VERIFY_RESIZE.

    :raises ServerLocked, InvalidServerState, ServerNotReady, ServiceUnavailable: 409 as in Nova.
    :raises CannotMigrateToSameHost, Invalid: ``host`` is the server's own, or no compute host.
    :raises FlavorNotFound, CannotResizeToSameFlavor: the new flavor.
    """
    action = "migrate" if flavor_id is None else "resize"
    with uow:
        server = load_server(uow, caller, uuid, for_update=True)
        check_lock(server, caller)
        check_state(server, action, _MOVABLE)
        source = _source_host(uow, server, now, policy)
        if host is not None:
            _check_requested_host(uow, server, host)
        current = server.flavor if server.flavor is not None else get_flavor(uow, server.flavor_id)
        new = current if flavor_id is None else get_flavor(uow, flavor_id, admin=caller.is_admin)
        if flavor_id is not None and new.flavorid == current.flavorid:
            raise CannotResizeToSameFlavor()
        try:
            dest = _destination(uow, now, policy, source, host)
        except NoValidHost as exc:
            # NOTE: Nova's conductor answers after the 202: the server stays as it was, with the
            # conductor's failed step, a fault and a migration in error.
            _record_no_host(uow, caller, server, request_id, now, action, current.flavorid, new.flavorid, exc)
            uow.commit()
            return Outcome(server)
        migration = uow.migrations.add(
            Migration(
                id=0,
                server_uuid=server.uuid,
                source_compute=source,
                dest_compute=dest,
                migration_type="migration" if flavor_id is None else "resize",
                status=MigrationStatus.PRE_MIGRATING.value,
                source_node=server.node,
                old_flavor_id=current.flavorid,
                new_flavor_id=new.flavorid,
                old_vm_state=server.vm_state,
                user_id=caller.user_id,
                project_id=caller.project_id,
            )
        )
        # NOTE: from here on events for the server go to both hosts (Nova's migration context).
        server.migration_id = migration.id
        # NOTE: as Nova, a move sets the disk config the resize asked for (not given, or a migrate: MANUAL).
        server.auto_disk_config = auto_disk_config
        _begin(uow, server, TaskState.RESIZE_PREP.value, now)
        step = ActionEvent(CONDUCTOR_STEP, now, now, "Success")
        start_action(uow, caller, server, action, request_id, now, (step,))
        dispatch = commit_with(uow, [Dispatch(dest, PrepResize(uuid, request_id, migration.id))], now)
    return Outcome(server, dispatch)


def confirm_resize(
    uow: UnitOfWork, caller: Caller, request_id: str, uuid: str, *, now: datetime, policy: ActionPolicy
) -> Outcome:
    """``confirmResize``: the source removes the machine it kept.

    :raises ServerLocked, InvalidServerState: 409; :raises NotResized: no finished move (400).
    :raises ServiceUnavailable: the source host is down (409).
    """
    with uow:
        server = load_server(uow, caller, uuid, for_update=True)
        check_lock(server, caller)
        check_state(server, "confirmResize", (VmState.RESIZED,))
        migration = _finished_migration(uow, server)
        record = uow.hosts.get(migration.source_compute)
        if record is None or not scheduler.is_up(record, now, policy.service_down_time):
            raise ServiceUnavailable()
        uow.migrations.save(_with_status(migration, MigrationStatus.CONFIRMING))
        start_action(uow, caller, server, "confirmResize", request_id, now)
        dispatch = commit_with(
            uow, [Dispatch(migration.source_compute, ConfirmResize(uuid, request_id, migration.id))], now
        )
    return Outcome(server, dispatch)


def revert_resize(uow: UnitOfWork, caller: Caller, request_id: str, uuid: str, *, now: datetime) -> Outcome:
    """``revertResize``: the destination removes its machine, then the source starts the old one.

    :raises ServerLocked, InvalidServerState: 409; :raises NotResized: no finished move (400).
    """
    with uow:
        server = load_server(uow, caller, uuid, for_update=True)
        check_lock(server, caller)
        check_state(server, "revertResize", (VmState.RESIZED,))
        migration = _finished_migration(uow, server)
        uow.migrations.save(_with_status(migration, MigrationStatus.REVERTING))
        _begin(uow, server, TaskState.RESIZE_REVERTING.value, now)
        start_action(uow, caller, server, "revertResize", request_id, now)
        dispatch = commit_with(
            uow, [Dispatch(migration.dest_compute, RevertResize(uuid, request_id, migration.id))], now
        )
    return Outcome(server, dispatch)


def _begin(uow: UnitOfWork, server: Server, task_state: str, now: datetime) -> None:
    server.task_state = task_state
    server.updated_at = now
    if not uow.servers.save_if_task_state(server, [None]):
        raise UnexpectedTaskState(server.uuid, None, "changed")


def _source_host(uow: UnitOfWork, server: Server, now: datetime, policy: ActionPolicy) -> str:
    """Nova's ``check_instance_host(check_is_up=True)``."""
    if not server.host:
        raise ServerNotReady(server.uuid)
    record = uow.hosts.get(server.host)
    if record is None or not scheduler.is_up(record, now, policy.service_down_time):
        raise ServiceUnavailable()
    return server.host


def _check_requested_host(uow: UnitOfWork, server: Server, host: str) -> None:
    if host == server.host:
        raise CannotMigrateToSameHost()
    if uow.hosts.get(host) is None:
        raise Invalid(f"Compute host {host} could not be found.")


def _destination(uow: UnitOfWork, now: datetime, policy: ActionPolicy, source: str, host: str | None) -> str:
    """The requested host if it can take the server, else the scheduler's pick among the others.

    :raises NoValidHost: none can.
    """
    if host is not None:
        return scheduler.check_requested_host(uow, now, policy.service_down_time, host)
    # NOTE: Nova's default (allow_resize_to_same_host = False) never picks the server's own host.
    return scheduler.pick_host(uow, now, policy.service_down_time, exclude=source)


def _record_no_host(
    uow: UnitOfWork,
    caller: Caller,
    server: Server,
    request_id: str,
    now: datetime,
    action: str,
    old_flavor: str,
    new_flavor: str,
    exc: NoValidHost,
) -> None:
    uow.migrations.add(
        Migration(
            id=0,
            server_uuid=server.uuid,
            source_compute=server.host or "",
            dest_compute="",
            migration_type="migration" if action == "migrate" else "resize",
            status=MigrationStatus.ERROR.value,
            source_node=server.node,
            old_flavor_id=old_flavor,
            new_flavor_id=new_flavor,
            old_vm_state=server.vm_state,
            user_id=caller.user_id,
            project_id=caller.project_id,
        )
    )
    server.fault = {"code": 500, "message": exc.text}
    server.updated_at = now
    uow.servers.save(server)
    start_action(uow, caller, server, action, request_id, now, (ActionEvent(CONDUCTOR_STEP, now, now, "Error"),))


def _finished_migration(uow: UnitOfWork, server: Server) -> Migration:
    migration = uow.migrations.get(server.migration_id) if server.migration_id is not None else None
    if migration is None or migration.status != MigrationStatus.FINISHED:
        raise NotResized()
    return migration


def _with_status(migration: Migration, status: MigrationStatus) -> Migration:
    return replace(migration, status=status.value)
