"""``/servers``: list, detail, show, create and delete (Nova's ``servers.py`` controller)."""

from __future__ import annotations

from typing import Any

from starlette.routing import BaseRoute

from herald.api.deps import ComputeDeps, bool_param, caller, can, limit_and_marker, own_target, publish
from herald.api.edge import ApiRequest, ApiResponse, Edge
from herald.api.faults import ApiFault
from herald.api.ip_addresses import normal_ip
from herald.api.microversion import APIVersion
from herald.api.query import changes_time, server_sort
from herald.api.schemas import servers as schemas
from herald.api.server_actions import ServerActionsController
from herald.api.server_create import parse_create
from herald.api.validation import VersionedValidator
from herald.api.views import servers as views
from herald.api.views.common import next_link, self_href
from herald.domain.errors import FlavorNotFound
from herald.domain.naming import server_reservation_id
from herald.service import deferred_delete, server_actions, server_queries, server_updates, servers
from herald.service.server_queries import ServerDetail, ServerFilters

SERVERS = "os_compute_api:servers:"
EXTENDED_ATTRIBUTES = "os_compute_api:os-extended-server-attributes"
# Every status a server can show (Nova's _STATE_MAP); others are rejected from 2.38.
KNOWN_STATUSES = frozenset(
    {
        "ACTIVE",
        "BUILD",
        "REBOOT",
        "HARD_REBOOT",
        "PASSWORD",
        "REBUILD",
        "MIGRATING",
        "RESIZE",
        "VERIFY_RESIZE",
        "REVERT_RESIZE",
        "PAUSED",
        "SUSPENDED",
        "RESCUE",
        "ERROR",
        "DELETED",
        "SOFT_DELETED",
        "SHUTOFF",
        "SHELVED",
        "SHELVED_OFFLOADED",
    }
)


class ServersController:
    def __init__(self, deps: ComputeDeps) -> None:
        self._deps = deps
        self._down_time = deps.settings.service_down_time
        self._update_validator = VersionedValidator(schemas.UPDATE_SCHEMAS)

    async def index(self, req: ApiRequest) -> ApiResponse:
        req.authorize(SERVERS + "index", own_target(req))
        details = await self._list(req, "index")
        body: dict[str, Any] = {"servers": [views.basic(req, d.server) for d in details]}
        return ApiResponse(200, self._with_links(req, body, details, "servers"))

    async def detail(self, req: ApiRequest) -> ApiResponse:
        req.authorize(SERVERS + "detail", own_target(req))
        details = await self._list(req, "detail")
        options = self._view_options(req, None)
        body: dict[str, Any] = {"servers": [views.show(req, d, options) for d in details]}
        return ApiResponse(200, self._with_links(req, body, details, "servers/detail"))

    async def show(self, req: ApiRequest) -> ApiResponse:
        detail = await self._get(req)
        req.authorize(SERVERS + "show", {"project_id": detail.server.project_id})
        options = self._view_options(req, detail.server.project_id, server_groups=True)
        return ApiResponse(200, {"server": views.show(req, detail, options)})

    async def create(self, req: ApiRequest) -> ApiResponse:
        request = parse_create(req)
        deps = self._deps
        policy = servers.CreatePolicy(service_down_time=self._down_time)
        try:
            outcome = await self._deps.run(
                servers.create_server,
                deps.uow_factory(),
                deps.network,
                deps.volumes,
                caller(req),
                req.request_id,
                request.spec,
                now=deps.clock.now(),
                policy=policy,
                accelerators=deps.accelerators,
            )
        except FlavorNotFound as exc:
            raise ApiFault(400, exc.text) from None
        await publish(deps, outcome)
        if request.return_reservation_id:
            return ApiResponse(202, {"reservation_id": server_reservation_id(outcome.server)})
        body = {"server": views.created(req, outcome.server, request.admin_pass)}
        location = self_href(req, "servers", outcome.server.uuid).encode("latin-1")
        return ApiResponse(202, body, [(b"location", location)])

    async def update(self, req: ApiRequest) -> ApiResponse:
        self._update_validator.validate(req.version, req.body)
        detail = await self._get(req)
        server = detail.server
        req.authorize(SERVERS + "update", {"project_id": server.project_id, "user_id": server.user_id})
        assert isinstance(req.body, dict)
        fields: dict[str, Any] = req.body["server"]
        disk_config = fields.get("OS-DCF:diskConfig")
        update = server_updates.ServerUpdate(
            name=fields["name"].strip() if "name" in fields else None,
            access_ip_v4=fields.get("accessIPv4"),
            access_ip_v6=normal_ip(fields.get("accessIPv6")),
            auto_disk_config=None if disk_config is None else disk_config == "AUTO",
            sets_description="description" in fields,
            description=fields.get("description"),
            hostname=fields.get("hostname"),
        )
        deps = self._deps
        await self._deps.run(
            server_updates.update_server, deps.uow_factory(), caller(req), server.uuid, update, now=deps.clock.now()
        )
        fresh = await self._get(req)
        options = self._view_options(req, server.project_id, server_groups=req.version >= APIVersion(2, 71))
        return ApiResponse(200, {"server": views.updated(req, fresh, options)})

    async def delete(self, req: ApiRequest) -> ApiResponse:
        detail = await self._get(req)
        server = detail.server
        req.authorize(SERVERS + "delete", {"project_id": server.project_id, "user_id": server.user_id})
        deps = self._deps
        policy = server_actions.ActionPolicy(self._down_time, deps.settings.shelved_offload_time)
        outcome = await self._deps.run(
            deferred_delete.delete_or_defer,
            deps.uow_factory(),
            deps.network,
            caller(req),
            req.request_id,
            server.uuid,
            now=deps.clock.now(),
            policy=policy,
            reclaim_instance_interval=deps.settings.reclaim_instance_interval,
        )
        await publish(deps, outcome)
        return ApiResponse(204)

    async def _get(self, req: ApiRequest) -> ServerDetail:
        deps = self._deps
        return await self._deps.run(
            server_queries.get_server,
            deps.read_uow_factory(),
            caller(req),
            req.path_params["server_id"],
            now=deps.clock.now(),
            service_down_time=self._down_time,
        )

    async def _list(self, req: ApiRequest, kind: str) -> list[ServerDetail]:
        filters = self._filters(req)
        if filters.all_tenants:
            req.authorize(f"{SERVERS}{kind}:get_all_tenants", own_target(req))
        if filters.status is not None and filters.status.upper() not in KNOWN_STATUSES:
            if req.version >= APIVersion(2, 38):
                raise ApiFault(400, "Invalid status value")
            return []
        deps = self._deps
        return await self._deps.run(
            server_queries.list_servers,
            deps.read_uow_factory(),
            caller(req),
            filters,
            now=deps.clock.now(),
            service_down_time=self._down_time,
        )

    @staticmethod
    def _filters(req: ApiRequest) -> ServerFilters:
        query = req.query
        limit, marker = limit_and_marker(req)
        admin_filters = can(req, SERVERS + "allow_all_filters", own_target(req))
        all_tenants = "all_tenants" in query and bool_param(query["all_tenants"])
        changes_since = changes_time(req, "changes-since")
        # Nova strips changes-before for non-admins before 2.66; admins may always use it.
        changes_before = (
            changes_time(req, "changes-before") if admin_filters or req.version >= APIVersion(2, 66) else None
        )
        if changes_since is not None and changes_before is not None and changes_before < changes_since:
            raise ApiFault(400, "The value of changes-since must be less than or equal to changes-before.")
        return ServerFilters(
            all_tenants=all_tenants,
            project_id=(query.get("project_id") or query.get("tenant_id")) if all_tenants else None,
            name=query.get("name"),
            status=query.get("status"),
            host=query.get("host") if admin_filters else None,
            flavor_id=query.get("flavor"),
            image_ref=query.get("image") or (query.get("image_ref") if admin_filters else None),
            changes_since=changes_since,
            changes_before=changes_before,
            **_tag_filters(req),
            sort=server_sort(req, admin=admin_filters, locked_is_a_key=req.version >= APIVersion(2, 73)),
            locked=bool_param(query["locked"]) if "locked" in query and req.version >= APIVersion(2, 73) else None,
            limit=limit,
            marker=marker,
        )

    @staticmethod
    def _with_links(req: ApiRequest, body: dict[str, Any], details: list[ServerDetail], collection: str) -> object:
        limit, _ = limit_and_marker(req)
        if details and len(details) == limit:
            body[f"{collection.split('/')[0]}_links"] = next_link(req, collection, details[-1].server.uuid)
        return body

    @staticmethod
    def _view_options(req: ApiRequest, project_id: str | None, *, server_groups: bool = False) -> views.ViewOptions:
        target = own_target(req) if project_id is None else {"project_id": project_id}
        return views.ViewOptions(
            extended_attributes=can(req, EXTENDED_ATTRIBUTES, target),
            host_status=can(req, SERVERS + "show:host_status", target),
            host_status_unknown_only=can(req, SERVERS + "show:host_status:unknown-only", target),
            flavor_extra_specs=req.version >= APIVersion(2, 47)
            and can(req, SERVERS + "show:flavor-extra-specs", target),
            server_groups=server_groups,
            is_admin=req.context.is_admin,
        )


def _tag_filters(req: ApiRequest) -> dict[str, frozenset[str] | None]:
    """2.26's ``tags``, ``tags-any``, ``not-tags`` and ``not-tags-any``: comma-separated tag lists."""
    if req.version < APIVersion(2, 26):
        return {}
    names = {"tags": "tags", "tags-any": "tags_any", "not-tags": "not_tags", "not-tags-any": "not_tags_any"}
    return {
        field: frozenset(req.query[param].split(",")) if param in req.query else None for param, field in names.items()
    }


def server_routes(edge: Edge, deps: ComputeDeps) -> list[BaseRoute]:
    """The ``/servers`` routes (v2.1 and legacy v2, with and without ``{project_id}``)."""
    servers_api = ServersController(deps)
    actions_api = ServerActionsController(deps)
    return [
        *edge.routes("/servers", servers_api.index, methods=["GET"]),
        *edge.routes("/servers", servers_api.create, methods=["POST"]),
        *edge.routes("/servers/detail", servers_api.detail, methods=["GET"]),
        *edge.routes("/servers/{server_id}", servers_api.show, methods=["GET"]),
        *edge.routes("/servers/{server_id}", servers_api.update, methods=["PUT"]),
        *edge.routes("/servers/{server_id}", servers_api.delete, methods=["DELETE"]),
        *edge.routes("/servers/{server_id}/action", actions_api.action, methods=["POST"]),
    ]
