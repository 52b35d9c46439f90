"""Locking a server against changes by its owners (admins are never refused), and unlocking it."""

from __future__ import annotations

from datetime import datetime

from herald.domain.model import Server
from herald.domain.records import ActionEvent
from herald.service.common import Caller, Outcome, load_server, start_action
from herald.service.ports import UnitOfWork

OWNER = "owner"
ADMIN = "admin"


def locked_by_for(caller: Caller, server: Server) -> str:
    """Who a lock by ``caller`` is recorded as: the owner's project, or an admin from elsewhere."""
    return OWNER if caller.project_id == server.project_id else ADMIN


def may_unlock_without_override(caller: Caller, server: Server) -> bool:
    """Nova's ``is_expected_locked_by``: an owner may undo an owner's lock, an admin an admin's."""
    return server.locked_by is None or server.locked_by == locked_by_for(caller, server)


def lock_server(
    uow: UnitOfWork, caller: Caller, request_id: str, uuid: str, *, now: datetime, reason: str | None = None
) -> Outcome:
    """Lock it (a no-op for an owner when it is already locked), recording the ``lock`` action."""
    with uow:
        server = load_server(uow, caller, uuid, for_update=True)
        if server.locked and locked_by_for(caller, server) == OWNER:
            return Outcome(server)
        server.locked = True
        server.locked_by = locked_by_for(caller, server)
        if reason:
            server.locked_reason = reason
        server.updated_at = now
        uow.servers.save(server)
        start_action(uow, caller, server, "lock", request_id, now, (ActionEvent("api_lock", now, now, "Success"),))
        uow.commit()
    return Outcome(server)


def unlock_server(uow: UnitOfWork, caller: Caller, request_id: str, uuid: str, *, now: datetime) -> Outcome:
    with uow:
        server = load_server(uow, caller, uuid, for_update=True)
        server.locked = False
        server.locked_by = None
        server.locked_reason = None
        server.updated_at = now
        uow.servers.save(server)
        start_action(uow, caller, server, "unlock", request_id, now, (ActionEvent("api_unlock", now, now, "Success"),))
        uow.commit()
    return Outcome(server)
