"""Reads: servers (with their host's status), instance actions and compute hosts."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from herald.domain.errors import ActionNotFound, Invalid, ServerNotFound
from herald.domain.model import ComputeHost, Server, VmState, server_status
from herald.domain.records import ServerAction
from herald.domain.uuids import is_uuid_like
from herald.service import scheduler
from herald.service.common import Caller, load_server, visible
from herald.service.ports import UnitOfWork
from herald.service.server_sorting import sort_servers


class HostStatusName:
    """Nova's ``HostStatus`` values for a server's ``host_status`` (2.16)."""

    UP = "UP"
    DOWN = "DOWN"
    MAINTENANCE = "MAINTENANCE"
    UNKNOWN = "UNKNOWN"
    NONE = ""


@dataclass(frozen=True, slots=True)
class ServerDetail:
    server: Server
    host_status: str


@dataclass(frozen=True, slots=True)
class ServerFilters:
    """``GET /servers`` query options Herald understands."""

    all_tenants: bool = False
    project_id: str | None = None  # with all_tenants only
    name: str | None = None  # a regular expression, as Nova matches it
    status: str | None = None
    host: str | None = None
    flavor_id: str | None = None
    image_ref: str | None = None
    changes_since: datetime | None = None  # naive UTC; deleted servers are listed too, as in Nova
    changes_before: datetime | None = None  # 2.66
    # 2.26: has every one of ``tags``, any of ``tags_any``, not all of ``not_tags``, none of ``not_tags_any``.
    tags: frozenset[str] | None = None
    tags_any: frozenset[str] | None = None
    not_tags: frozenset[str] | None = None
    not_tags_any: frozenset[str] | None = None
    locked: bool | None = None  # 2.73
    limit: int | None = None
    marker: str | None = None
    # (sort key, descending) pairs, Nova's names; empty: newest first.
    sort: tuple[tuple[str, bool], ...] = ()

    @property
    def includes_deleted(self) -> bool:
        return self.changes_since is not None or self.changes_before is not None


def host_status(record: ComputeHost | None, now: datetime, service_down_time: int) -> str:
    """Nova's ``get_instance_host_status`` for a server on the host ``record`` describes."""
    if record is None:
        return HostStatusName.NONE
    if record.forced_down:
        return HostStatusName.DOWN
    if record.disabled:
        return HostStatusName.MAINTENANCE
    return HostStatusName.UP if scheduler.is_up(record, now, service_down_time) else HostStatusName.UNKNOWN


def _details(uow: UnitOfWork, servers: list[Server], now: datetime, service_down_time: int) -> list[ServerDetail]:
    records = {h.host: h for h in uow.hosts.list()} if any(s.host for s in servers) else {}
    statuses = {name: host_status(record, now, service_down_time) for name, record in records.items()}
    return [
        ServerDetail(s, statuses.get(s.host, HostStatusName.NONE) if s.host else HostStatusName.NONE) for s in servers
    ]


def get_server(uow: UnitOfWork, caller: Caller, uuid: str, *, now: datetime, service_down_time: int) -> ServerDetail:
    """:raises ServerNotFound: no such server, or not the caller's."""
    with uow:
        server = load_server(uow, caller, uuid)
        return _details(uow, [server], now, service_down_time)[0]


def list_servers(
    uow: UnitOfWork, caller: Caller, filters: ServerFilters, *, now: datetime, service_down_time: int
) -> list[ServerDetail]:
    """Newest first. Without ``all_tenants`` only the caller's project; the API checks who may pass it.

    :raises Invalid: ``marker`` names no listed server.
    """
    project = (filters.project_id if filters.all_tenants else caller.project_id) or None
    if not filters.all_tenants and project is None:
        return []
    with uow:
        servers = uow.servers.list(project_id=project, host=filters.host, include_deleted=filters.includes_deleted)
        servers = [s for s in servers if _matches(s, filters)]
        if not filters.includes_deleted:
            # NOTE: as Nova's database query: a deferred-deleted server is left out unless deleted ones are asked for.
            servers = [s for s in servers if s.vm_state != VmState.SOFT_DELETED]
        if filters.sort:
            servers = sort_servers(servers, filters.sort)
        servers = _page(servers, filters.limit, filters.marker)
        return _details(uow, servers, now, service_down_time)


def _name_pattern(name: str) -> re.Pattern[str]:
    """Nova matches ``name`` as a regular expression; one that does not compile matches literally."""
    try:
        return re.compile(name)
    except re.error:
        return re.compile(re.escape(name))


def _matches(server: Server, filters: ServerFilters) -> bool:
    if filters.name is not None and not _name_pattern(filters.name).search(server.name):
        return False
    if filters.flavor_id is not None and server.flavor_id != filters.flavor_id:
        return False
    if filters.image_ref is not None and server.image_ref != filters.image_ref:
        return False
    if not _changed_in(server, filters.changes_since, filters.changes_before):
        return False
    if not _tagged(set(server.tags), filters):
        return False
    if filters.locked is not None and server.locked != filters.locked:
        return False
    return filters.status is None or server_status(server.vm_state, server.task_state) == filters.status.upper()


def _tagged(tags: set[str], filters: ServerFilters) -> bool:
    if filters.tags is not None and not filters.tags <= tags:
        return False
    if filters.tags_any is not None and not filters.tags_any & tags:
        return False
    if filters.not_tags is not None and filters.not_tags <= tags:
        return False
    return filters.not_tags_any is None or not filters.not_tags_any & tags


def _changed_in(server: Server, since: datetime | None, before: datetime | None) -> bool:
    """Nova's ``changes-since`` / ``changes-before``: compared with the last update (creation if none)."""
    changed = server.updated_at or server.created_at
    if changed is None:
        return since is None and before is None
    return (since is None or changed >= since) and (before is None or changed <= before)


def _page(servers: list[Server], limit: int | None, marker: str | None) -> list[Server]:
    if marker is not None:
        index = next((i for i, s in enumerate(servers) if s.uuid == marker), None)
        if index is None:
            raise Invalid(f"marker [{marker}] not found")
        servers = servers[index + 1 :]
    return servers if limit is None else servers[:limit]


def _server_for_actions(uow: UnitOfWork, caller: Caller, uuid: str, *, include_deleted: bool) -> Server:
    """The server whose actions are read; from 2.21 a deleted one too."""
    if not is_uuid_like(uuid):
        raise ServerNotFound(uuid)
    server = uow.servers.get(uuid)
    if server is None and include_deleted:
        # NOTE: the repository port has no "get including deleted"; look in the caller's list.
        project = None if caller.is_admin else caller.project_id
        server = next((s for s in uow.servers.list(project_id=project, include_deleted=True) if s.uuid == uuid), None)
    if server is None or not visible(caller, server):
        raise ServerNotFound(uuid)
    return server


def list_actions(
    uow: UnitOfWork, caller: Caller, uuid: str, *, include_deleted: bool = False
) -> tuple[Server, list[ServerAction]]:
    """The server and its actions, newest first."""
    with uow:
        server = _server_for_actions(uow, caller, uuid, include_deleted=include_deleted)
        return server, uow.actions.list_for_server(uuid)


def get_action(
    uow: UnitOfWork, caller: Caller, uuid: str, request_id: str, *, include_deleted: bool = False
) -> tuple[Server, ServerAction]:
    """The server and its action for ``request_id``, with events.

    :raises ActionNotFound: the server has no action with that request id.
    """
    with uow:
        server = _server_for_actions(uow, caller, uuid, include_deleted=include_deleted)
        # NOTE: no request id holds a NUL, and PostgreSQL refuses to compare text with one.
        action = None if "\x00" in request_id else uow.actions.get(uuid, request_id)
        if action is None:
            raise ActionNotFound(request_id, uuid)
        return server, action


def list_hosts(uow: UnitOfWork, *, now: datetime, service_down_time: int) -> list[scheduler.HostStatus]:
    """Every compute host with up/down as of ``now``."""
    with uow:
        return scheduler.host_statuses(uow, now, service_down_time)
