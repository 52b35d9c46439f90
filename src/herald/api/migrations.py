"""``GET /os-migrations`` and ``GET /servers/{id}/migrations`` (Nova's ``migrations.py`` and ``server_migrations.py``).

Per microversion: 2.23 adds ``migration_type`` (and ``links`` for a live migration in
progress), 2.59 adds ``uuid``, paging (``limit``, ``marker``, ``migrations_links``) and
``changes-since``, 2.66 ``changes-before``, 2.80 ``user_id`` and ``project_id`` (fields and
filters). Host fields are null for callers the ``index:host`` rule refuses.
"""

from __future__ import annotations

from typing import Any

from starlette.routing import BaseRoute

from herald.api.deps import ComputeDeps, caller, can, limit_and_marker
from herald.api.edge import ApiRequest, ApiResponse, Edge
from herald.api.faults import ApiFault
from herald.api.microversion import APIVersion
from herald.api.query import changes_time
from herald.api.views.common import links, next_link, strtime
from herald.domain.model import Migration
from herald.service import migration_queries
from herald.service.ports import MigrationQuery

RULE = "os_compute_api:os-migrations:"
SERVER_RULE = "os_compute_api:servers:migrations:"
_FILTERS = ("host", "source_compute", "status", "migration_type")


def flavor_id_number(flavor_id: str | None) -> int | str | None:
    """Nova shows the flavor's database id; Herald's built-in flavors are numbered by their ids."""
    return int(flavor_id) if flavor_id is not None and flavor_id.isdigit() else flavor_id


def format_migration(req: ApiRequest, migration: Migration, *, with_host: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": migration.id,
        "instance_uuid": migration.server_uuid,
        "status": migration.status,
        "source_compute": migration.source_compute or None,
        "source_node": migration.source_node,
        "dest_compute": migration.dest_compute or None,
        "dest_node": migration.dest_node,
        # NOTE: Nova records the destination's IP address here; Herald's hosts have none to report.
        "dest_host": None,
        "old_instance_type_id": flavor_id_number(migration.old_flavor_id),
        "new_instance_type_id": flavor_id_number(migration.new_flavor_id),
        "created_at": strtime(migration.created_at),
        "updated_at": strtime(migration.updated_at),
    }
    if not with_host:
        body.update(source_compute=None, source_node=None, dest_compute=None, dest_node=None, dest_host=None)
    if req.version >= APIVersion(2, 23):
        body["migration_type"] = migration.migration_type
        live = migration.migration_type == "live-migration"
        if live and migration.status in migration_queries.LIVE_IN_PROGRESS:
            body["links"] = links(req, f"servers/{migration.server_uuid}/migrations", str(migration.id))
    if req.version >= APIVersion(2, 59):
        body["uuid"] = migration.uuid
    if req.version >= APIVersion(2, 80):
        body["user_id"] = migration.user_id
        body["project_id"] = migration.project_id
    return body


class MigrationsController:
    def __init__(self, deps: ComputeDeps) -> None:
        self._deps = deps

    async def index(self, req: ApiRequest) -> ApiResponse:
        req.authorize(RULE + "index")
        project_id = req.query.get("project_id") if req.version >= APIVersion(2, 80) else None
        if not project_id or project_id != req.context.project_id:
            req.authorize(RULE + "index:all_projects")
        with_host = can(req, RULE + "index:host")
        query = self._query(req, project_id)
        migrations = await self._deps.run(migration_queries.list_migrations, self._deps.read_uow_factory(), query)
        body: dict[str, Any] = {"migrations": [format_migration(req, m, with_host=with_host) for m in migrations]}
        if req.version >= APIVersion(2, 59) and query.limit and len(migrations) == query.limit:
            body["migrations_links"] = next_link(req, "os-migrations", migrations[-1].uuid)
        return ApiResponse(200, body)

    @staticmethod
    def _query(req: ApiRequest, project_id: str | None) -> MigrationQuery:
        filters: dict[str, Any] = {name: req.query.get(name) for name in _FILTERS}
        filters["server_uuid"] = req.query.get("instance_uuid")
        if req.version < APIVersion(2, 59):
            return MigrationQuery(**filters)
        limit, marker = limit_and_marker(req)
        since = changes_time(req, "changes-since")
        before = changes_time(req, "changes-before") if req.version >= APIVersion(2, 66) else None
        if since is not None and before is not None and before < since:
            raise ApiFault(400, "The value of changes-since must be less than or equal to changes-before.")
        if req.version >= APIVersion(2, 80):
            filters.update(user_id=req.query.get("user_id"), project_id=project_id)
        return MigrationQuery(**filters, changes_since=since, changes_before=before, limit=limit, marker=marker)

    async def server_index(self, req: ApiRequest) -> ApiResponse:
        if req.version < APIVersion(2, 23):
            raise ApiFault(404, "The resource could not be found.")
        project_id, migrations = await self._deps.run(
            migration_queries.server_live_migrations,
            self._deps.read_uow_factory(),
            caller(req),
            req.path_params["server_id"],
        )
        req.authorize(SERVER_RULE + "index", {"project_id": project_id})
        with_host = can(req, SERVER_RULE + "index:host", {"project_id": project_id})
        return ApiResponse(200, {"migrations": [_server_view(req, m, with_host=with_host) for m in migrations]})


def _server_view(req: ApiRequest, migration: Migration, *, with_host: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": migration.id,
        "server_uuid": migration.server_uuid,
        "status": migration.status,
        "created_at": strtime(migration.created_at),
        "updated_at": strtime(migration.updated_at),
        "source_compute": migration.source_compute if with_host else None,
        "source_node": migration.source_node if with_host else None,
        "dest_compute": migration.dest_compute if with_host else None,
        "dest_node": migration.dest_node if with_host else None,
        "dest_host": None,
        # NOTE: Herald runs no live migration yet, so it has no transfer progress to show.
        "memory_total_bytes": None,
        "memory_processed_bytes": None,
        "memory_remaining_bytes": None,
        "disk_total_bytes": None,
        "disk_processed_bytes": None,
        "disk_remaining_bytes": None,
    }
    if req.version >= APIVersion(2, 59):
        body["uuid"] = migration.uuid
    if req.version >= APIVersion(2, 80):
        body["user_id"] = migration.user_id
        body["project_id"] = migration.project_id
    return body


def migration_routes(edge: Edge, deps: ComputeDeps) -> list[BaseRoute]:
    api = MigrationsController(deps)
    return [
        *edge.routes("/os-migrations", api.index, methods=["GET"]),
        *edge.routes("/servers/{server_id}/migrations", api.server_index, methods=["GET"]),
    ]
