"""Servers and migrations on SQL (SQLAlchemy Core)."""

from __future__ import annotations

import dataclasses
import functools
import uuid as uuid_module
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    Connection,
    Insert,
    RowMapping,
    Select,
    String,
    Update,
    and_,
    any_,
    bindparam,
    false,
    null,
    or_,
    select,
)
from sqlalchemy.sql.elements import ColumnElement

from herald.adapters.sql.driver_sql import (
    RecordColumns,
    execute_rows,
    executemany,
    fetchall,
    json_recordset,
    placeholders,
    statement,
    timestamp,
)
from herald.adapters.sql.tables import migrations, servers
from herald.domain.errors import MarkerNotFound
from herald.domain.flavors import flavor_from_dict, flavor_to_dict
from herald.domain.model import Migration, Server, Vif, VolumeAttachment
from herald.domain.power_sync import SyncChange, SyncRow
from herald.service.ports import MigrationQuery, ServerTargets

# NOTE: keeps an IN list well under SQLite's and PostgreSQL's bound-parameter limits.
MAX_IN_LIST = 5000


def utcnow() -> datetime:
    """Naive UTC, the way every timestamp column stores it."""
    return datetime.now(UTC).replace(tzinfo=None)


def relevant_hosts(*hosts: str | None) -> tuple[str, ...]:
    """The distinct non-empty hosts, first occurrence first."""
    return tuple(dict.fromkeys(host for host in hosts if host))


def _server_values(server: Server) -> dict[str, Any]:
    # NOTE: fault is left out; a None fault needs SQL NULL, not JSON null (see _save_statement).
    return {
        "uuid": server.uuid,
        "name": server.name,
        "project_id": server.project_id,
        "user_id": server.user_id,
        "flavor_id": server.flavor_id,
        "image_ref": server.image_ref,
        "vm_state": server.vm_state,
        "power_state": server.power_state,
        "task_state": server.task_state,
        "host": server.host,
        "node": server.node,
        "vifs": [dataclasses.asdict(v) for v in server.vifs],
        "volumes": [dataclasses.asdict(v) for v in server.volumes],
        "metadata": dict(server.metadata),
        "migration_id": server.migration_id,
        "created_at": server.created_at,
        "updated_at": server.updated_at,
        "launched_at": server.launched_at,
        "terminated_at": server.terminated_at,
        "deleted": server.deleted,
        "description": server.description,
        "access_ip_v4": server.access_ip_v4,
        "access_ip_v6": server.access_ip_v6,
        "auto_disk_config": server.auto_disk_config,
        "tags": list(server.tags),
        "hostname": server.hostname,
        "key_name": server.key_name,
        "locked": server.locked,
        "locked_by": server.locked_by,
        "locked_reason": server.locked_reason,
        "reservation_id": server.reservation_id,
        "launch_index": server.launch_index,
        "user_data": server.user_data,
        "config_drive": server.config_drive,
        "trusted_image_certificates": server.trusted_image_certificates,
        "scheduler_hints": server.scheduler_hints,
        "deleted_at": server.deleted_at,
        "security_groups": list(server.security_groups),
        "flavor": None if server.flavor is None else flavor_to_dict(server.flavor),
        "accelerator_requests": list(server.accelerator_requests),
    }


def _with_fault(values: dict[str, Any], server: Server) -> dict[str, Any]:
    if server.fault is not None:
        values["fault"] = server.fault
    return values


def _server(row: RowMapping) -> Server:
    return Server(
        uuid=row["uuid"],
        name=row["name"],
        project_id=row["project_id"],
        user_id=row["user_id"],
        flavor_id=row["flavor_id"],
        image_ref=row["image_ref"],
        vm_state=row["vm_state"],
        power_state=row["power_state"],
        task_state=row["task_state"],
        host=row["host"],
        node=row["node"],
        vifs=[Vif(**vif) for vif in row["vifs"]],
        volumes=[VolumeAttachment(**volume) for volume in row["volumes"]],
        metadata=dict(row["metadata"]),
        fault=row["fault"],
        migration_id=row["migration_id"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        launched_at=row["launched_at"],
        terminated_at=row["terminated_at"],
        deleted=row["deleted"],
        description=row["description"],
        access_ip_v4=row["access_ip_v4"],
        access_ip_v6=row["access_ip_v6"],
        auto_disk_config=row["auto_disk_config"],
        tags=list(row["tags"] or ()),
        hostname=row["hostname"],
        key_name=row["key_name"],
        locked=row["locked"],
        locked_by=row["locked_by"],
        locked_reason=row["locked_reason"],
        reservation_id=row["reservation_id"],
        launch_index=row["launch_index"],
        user_data=row["user_data"],
        config_drive=row["config_drive"],
        trusted_image_certificates=row["trusted_image_certificates"],
        scheduler_hints=dict(row["scheduler_hints"] or {}),
        deleted_at=row["deleted_at"],
        security_groups=["default"] if row["security_groups"] is None else list(row["security_groups"]),
        flavor=None if row["flavor"] is None else flavor_from_dict(row["flavor"]),
        accelerator_requests=list(row["accelerator_requests"] or ()),
    )


@functools.cache
def _insert_statement(fault_null: bool) -> Insert:
    stmt = servers.insert()
    return stmt.values(fault=null()) if fault_null else stmt


@functools.cache
def _save_statement(fault_null: bool, guard: tuple[bool, bool] | None) -> Update:
    """UPDATE by uuid; ``guard`` = (task_state IN :expected, task_state IS NULL) for a guarded save."""
    stmt = servers.update().where(servers.c.uuid == bindparam("b_uuid"))
    if guard is not None:
        in_expected, is_null = guard
        conditions: list[ColumnElement[bool]] = []
        if in_expected:
            conditions.append(servers.c.task_state.in_(bindparam("b_expected", expanding=True)))
        if is_null:
            conditions.append(servers.c.task_state.is_(None))
        stmt = stmt.where(or_(*conditions))
    return stmt.values(fault=null()) if fault_null else stmt


_TARGETS_SQL = (
    "SELECT servers.uuid, servers.host, migrations.source_compute, migrations.dest_compute"
    " FROM servers LEFT OUTER JOIN migrations ON migrations.id = servers.migration_id"
    " WHERE servers.uuid IN ({}) AND servers.deleted = ?"
)


class SqlServerRepository:
    """Servers in the ``servers`` table, on the caller's connection (and so its transaction).

    Deleted servers stay in the table (``deleted`` is true); only :meth:`list` can see them.

    :param connection: an open connection inside the unit of work's transaction.
    """

    _GET: Select[Any] = select(servers).where(servers.c.uuid == bindparam("uuid"), servers.c.deleted == false())
    _GET_FOR_UPDATE: Select[Any] = _GET.with_for_update()
    _SAVE_STATES: Update = (
        servers.update()
        .where(servers.c.uuid == bindparam("b_uuid"))
        .values(
            vm_state=bindparam("vm_state"),
            power_state=bindparam("power_state"),
            task_state=bindparam("task_state"),
            updated_at=bindparam("updated_at"),
        )
    )
    _STATE_COLUMNS: RecordColumns = (
        ("uuid", "text"),
        ("vm_state", "text"),
        ("power_state", "integer"),
        ("task_state", "text"),
        ("updated_at", "timestamp"),
    )
    _SAVE_STATES_ROWS_SQL = (
        "UPDATE servers AS s SET vm_state = u.vm_state, power_state = u.power_state,"
        " task_state = u.task_state, updated_at = u.updated_at"
        f" FROM {json_recordset('u', _STATE_COLUMNS)} WHERE s.uuid = u.uuid"
    )
    # NOTE: ordered so that two transactions locking overlapping sets take the rows in one order.
    _GET_MANY: Select[Any] = (
        select(servers)
        .where(servers.c.uuid.in_(bindparam("uuids", expanding=True)), servers.c.deleted == false())
        .order_by(servers.c.uuid)
    )
    _GET_MANY_FOR_UPDATE: Select[Any] = _GET_MANY.with_for_update()
    # NOTE: PostgreSQL: the uuids as one array parameter, so that no call renders an IN list anew.
    _GET_ANY: Select[Any] = (
        select(servers)
        .where(servers.c.uuid == any_(bindparam("uuids", type_=ARRAY(String))), servers.c.deleted == false())
        .order_by(servers.c.uuid)
    )
    _GET_ANY_FOR_UPDATE: Select[Any] = _GET_ANY.with_for_update()

    def __init__(self, connection: Connection) -> None:
        self._conn = connection

    def get(self, uuid: str, *, for_update: bool = False) -> Server | None:
        """Load one non-deleted server.

        :param uuid: the server's uuid.
        :param for_update: lock the row until the transaction ends (``SELECT ... FOR UPDATE``;
            SQLite needs no lock because its transactions already hold the write lock).
        :returns: the server, or None if there is no such non-deleted server.
        """
        stmt = self._GET_FOR_UPDATE if for_update else self._GET
        row = self._conn.execute(stmt, {"uuid": uuid}).mappings().first()
        return None if row is None else _server(row)

    def get_many(self, uuids: Iterable[str], *, for_update: bool = False) -> dict[str, Server]:
        """Load the named non-deleted servers in one query per :data:`MAX_IN_LIST` uuids.

        :param for_update: lock the rows until the transaction ends, in uuid order.
        :returns: uuid -> server; unknown and deleted ones are left out.
        """
        wanted = sorted(set(uuids))
        found: dict[str, Server] = {}
        if self._conn.dialect.name == "postgresql":
            stmt = self._GET_ANY_FOR_UPDATE if for_update else self._GET_ANY
            for row in self._conn.execute(stmt, {"uuids": wanted}).mappings():
                found[row["uuid"]] = _server(row)
            return found
        stmt = self._GET_MANY_FOR_UPDATE if for_update else self._GET_MANY
        for start in range(0, len(wanted), MAX_IN_LIST):
            chunk = wanted[start : start + MAX_IN_LIST]
            for row in self._conn.execute(stmt, {"uuids": chunk}).mappings():
                found[row["uuid"]] = _server(row)
        return found

    def targets(self, uuids: Iterable[str]) -> dict[str, ServerTargets]:
        """Where events for each named server go, in one query (servers LEFT JOIN migrations).

        A server whose ``migration_id`` names a migration (in any status, as Nova does) also
        sends events to that migration's source and destination hosts.

        :param uuids: server uuids; unknown and deleted ones are left out of the answer.
        :returns: uuid -> (host, relevant hosts: host first, then source and dest, deduplicated).
        """
        wanted = list(dict.fromkeys(uuids))
        found: dict[str, ServerTargets] = {}
        for start in range(0, len(wanted), MAX_IN_LIST):
            chunk = wanted[start : start + MAX_IN_LIST]
            # NOTE: the accept hot path: straight through the driver (see driver_sql).
            rows = fetchall(self._conn, _TARGETS_SQL.format(placeholders(len(chunk))), [*chunk, False])
            for uuid, host, source, dest in rows:
                found[uuid] = ServerTargets(host=host, hosts=relevant_hosts(host, source, dest))
        return found

    def add(self, server: Server) -> None:
        """Insert a new server; ``created_at`` defaults to now.

        :raises sqlalchemy.exc.IntegrityError: a server with that uuid exists.
        """
        if server.created_at is None:
            server.created_at = utcnow()
        values = _with_fault(_server_values(server), server)
        self._conn.execute(_insert_statement(server.fault is None), values)

    def save(self, server: Server) -> None:
        """Write every field of ``server`` back (its ``updated_at`` as the caller set it)."""
        self._conn.execute(_save_statement(server.fault is None, None), self._update_params(server))

    def save_states(self, changed: Sequence[Server]) -> None:
        """Write back only ``vm_state``, ``power_state``, ``task_state`` and ``updated_at`` of each
        server, in one statement (power changes on rows the caller locked: the rest is as read)."""
        if not changed:
            return
        if self._conn.dialect.name == "postgresql":
            # NOTE: one row per server (an UPDATE ... FROM would apply just one of several, at random).
            last = {
                server.uuid: (server.uuid, server.vm_state, server.power_state, server.task_state, server.updated_at)
                for server in changed
            }
            execute_rows(self._conn, self._SAVE_STATES_ROWS_SQL, self._STATE_COLUMNS, list(last.values()))
            return
        params = [
            {
                "b_uuid": server.uuid,
                "vm_state": server.vm_state,
                "power_state": server.power_state,
                "task_state": server.task_state,
                "updated_at": server.updated_at,
            }
            for server in changed
        ]
        self._conn.execute(self._SAVE_STATES, params)

    def save_if_task_state(self, server: Server, expected: Sequence[str | None]) -> bool:
        """Write ``server`` only if its stored task_state is one of ``expected`` (None matches NULL).

        :param server: the new state of the server.
        :param expected: acceptable stored task states.
        :returns: True if the row was written; False if the stored task_state (or the row) was not there.
        """
        values = [state for state in expected if state is not None]
        guard = (bool(values), None in expected)
        if guard == (False, False):
            return False
        params = self._update_params(server)
        if values:
            params["b_expected"] = values
        result = self._conn.execute(_save_statement(server.fault is None, guard), params)
        return result.rowcount == 1

    def list(
        self,
        *,
        project_id: str | None = None,
        host: str | None = None,
        include_deleted: bool = False,
        limit: int | None = None,
    ) -> list[Server]:
        """Servers matching every given filter, newest first.

        :returns: at most ``limit`` servers (all when None).
        """
        stmt = select(servers).order_by(servers.c.created_at.desc(), servers.c.uuid)
        if project_id is not None:
            stmt = stmt.where(servers.c.project_id == project_id)
        if host is not None:
            stmt = stmt.where(servers.c.host == host)
        if not include_deleted:
            stmt = stmt.where(servers.c.deleted == false())
        if limit is not None:
            stmt = stmt.limit(limit)
        return [_server(row) for row in self._conn.execute(stmt).mappings()]

    _SYNC_COLUMNS = (
        servers.c.uuid,
        servers.c.host,
        servers.c.node,
        servers.c.vm_state,
        servers.c.power_state,
        servers.c.task_state,
    )
    _SYNC_OF_HOST: Select[Any] = (
        select(*_SYNC_COLUMNS)
        .where(servers.c.host == bindparam("host"), servers.c.deleted == false())
        .order_by(servers.c.created_at.desc(), servers.c.uuid)
    )
    # NOTE: hand-written, so that its IN list of up to thousands of uuids is not rendered again, bind by bind,
    # at every call (the statement text is then the same for every full chunk, and the driver caches it).
    # Ordered, so that FOR UPDATE locks in one order whoever else locks several.
    _SYNC_OF_SQL = (
        "SELECT uuid, host, node, vm_state, power_state, task_state FROM servers"
        " WHERE uuid IN ({}) AND deleted = ? ORDER BY uuid"
    )

    # NOTE: up to thousands of rows a pass: straight through the driver (see driver_sql).
    _SYNC_SAVE_SQL = "UPDATE servers SET power_state = ?, task_state = ?, updated_at = ? WHERE uuid = ?"

    def sync_rows(self, host: str) -> Sequence[SyncRow]:
        """The host's non-deleted servers as the power sync reads them, newest first (one query)."""
        return [SyncRow(*row) for row in self._conn.execute(self._SYNC_OF_HOST, {"host": host})]

    def sync_rows_of(self, uuids: Sequence[str], *, for_update: bool = False) -> dict[str, SyncRow]:
        """The named non-deleted servers as the power sync reads them (``for_update``: rows locked till commit)."""
        lock = " FOR UPDATE" if for_update and self._conn.dialect.name != "sqlite" else ""
        found: dict[str, SyncRow] = {}
        for start in range(0, len(uuids), MAX_IN_LIST):
            chunk = uuids[start : start + MAX_IN_LIST]
            sql = statement(self._conn, self._SYNC_OF_SQL.format(placeholders(len(chunk))) + lock)
            found.update((row[0], SyncRow(*row)) for row in self._conn.exec_driver_sql(sql, (*chunk, False)))
        return found

    def save_sync_changes(self, changes: Sequence[SyncChange]) -> None:
        """power_state, task_state and updated_at of each changed server (one executemany)."""
        if changes:
            rows = [
                (change.power_state, change.task_state, timestamp(self._conn, change.updated_at), change.uuid)
                for change in changes
            ]
            executemany(self._conn, self._SYNC_SAVE_SQL, rows)

    @staticmethod
    def _update_params(server: Server) -> dict[str, Any]:
        params = _with_fault(_server_values(server), server)
        params["b_uuid"] = params.pop("uuid")
        return params


_MIGRATION_FIELDS = (
    "server_uuid",
    "source_compute",
    "dest_compute",
    "migration_type",
    "status",
    "uuid",
    "source_node",
    "dest_node",
    "old_flavor_id",
    "new_flavor_id",
    "old_vm_state",
    "user_id",
    "project_id",
)


def _migration(row: RowMapping) -> Migration:
    return Migration(
        id=row["id"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        **{name: row[name] for name in _MIGRATION_FIELDS},
    )


class SqlMigrationRepository:
    """Migrations in the ``migrations`` table.

    :param connection: an open connection inside the unit of work's transaction.
    """

    _INSERT: Insert = migrations.insert().returning(migrations.c.id)
    _GET: Select[Any] = select(migrations).where(migrations.c.id == bindparam("id"))

    def __init__(self, connection: Connection) -> None:
        self._conn = connection

    def add(self, migration: Migration) -> Migration:
        """Insert ``migration`` (its ``id`` is ignored; a missing ``uuid`` is made).

        :returns: the migration with the id the database gave it and its timestamps.
        """
        now = utcnow()
        stored = dataclasses.replace(
            migration, uuid=migration.uuid or str(uuid_module.uuid4()), created_at=now, updated_at=now
        )
        values = {name: getattr(stored, name) for name in _MIGRATION_FIELDS}
        result = self._conn.execute(self._INSERT, {**values, "created_at": now, "updated_at": now})
        new_id: int = result.scalar_one()
        return dataclasses.replace(stored, id=new_id)

    def get(self, migration_id: int) -> Migration | None:
        """:returns: the migration, or None if there is none with that id."""
        row = self._conn.execute(self._GET, {"id": migration_id}).mappings().first()
        return None if row is None else _migration(row)

    def save(self, migration: Migration) -> Migration:
        """Write every field of ``migration`` back; :returns: it with its new ``updated_at``."""
        stored = dataclasses.replace(migration, updated_at=utcnow())
        values = {name: getattr(stored, name) for name in _MIGRATION_FIELDS}
        self._conn.execute(
            migrations.update().where(migrations.c.id == stored.id), {**values, "updated_at": stored.updated_at}
        )
        return stored

    def list(self, query: MigrationQuery) -> list[Migration]:
        """Migrations matching every filter of ``query``, newest first (Nova's created_at, id descending).

        :raises MarkerNotFound: no migration has the uuid ``query.marker``.
        """
        stmt = select(migrations).order_by(migrations.c.created_at.desc(), migrations.c.id.desc())
        for condition in _migration_conditions(query):
            stmt = stmt.where(condition)
        if query.marker is not None:
            marker = self._conn.execute(select(migrations).where(migrations.c.uuid == query.marker)).mappings().first()
            if marker is None:
                raise MarkerNotFound(query.marker)
            stmt = stmt.where(
                or_(
                    migrations.c.created_at < marker["created_at"],
                    and_(migrations.c.created_at == marker["created_at"], migrations.c.id < marker["id"]),
                )
            )
        if query.limit is not None:
            stmt = stmt.limit(query.limit)
        return [_migration(row) for row in self._conn.execute(stmt).mappings()]


def _migration_conditions(query: MigrationQuery) -> list[ColumnElement[bool]]:
    c = migrations.c
    conditions: list[ColumnElement[bool]] = []
    if query.host is not None:
        conditions.append(or_(c.source_compute == query.host, c.dest_compute == query.host))
    exact = {
        c.source_compute: query.source_compute,
        c.status: query.status,
        c.server_uuid: query.server_uuid,
        c.migration_type: query.migration_type,
        c.user_id: query.user_id,
        c.project_id: query.project_id,
    }
    conditions.extend(column == value for column, value in exact.items() if value is not None)
    if query.statuses is not None:
        conditions.append(c.status.in_(list(query.statuses)))
    if query.changes_since is not None:
        conditions.append(c.updated_at >= query.changes_since)
    if query.changes_before is not None:
        conditions.append(c.updated_at <= query.changes_before)
    return conditions
