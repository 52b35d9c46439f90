"""``/servers/{id}/tags`` (2.26): Nova's server tags API."""

from __future__ import annotations

from starlette.routing import BaseRoute

from herald.api.deps import ComputeDeps, caller, server_for
from herald.api.edge import ApiRequest, ApiResponse, Edge
from herald.api.faults import ApiFault
from herald.api.microversion import APIVersion
from herald.api.schemas import servers as schemas
from herald.api.validation import SchemaValidator
from herald.api.views.common import self_href
from herald.domain.model import Server
from herald.service import server_updates

TAGS = "os_compute_api:os-server-tags:"
FIRST_VERSION = APIVersion(2, 26)


class ServerTagsController:
    def __init__(self, deps: ComputeDeps) -> None:
        self._deps = deps
        self._update_all = SchemaValidator(schemas.tags_update_all)
        self._update = SchemaValidator({"type": "null"})

    async def _server(self, req: ApiRequest, rule: str) -> Server:
        if req.version < FIRST_VERSION:
            raise ApiFault(404, "The resource could not be found.")
        return await server_for(self._deps, req, TAGS + rule)

    async def index(self, req: ApiRequest) -> ApiResponse:
        server = await self._server(req, "index")
        return ApiResponse(200, {"tags": list(server.tags)})

    async def show(self, req: ApiRequest) -> ApiResponse:
        server = await self._server(req, "show")
        tag = req.path_params["tag"]
        if tag not in server.tags:
            raise ApiFault(404, f"Server {server.uuid} has no tag '{tag}'")
        return ApiResponse(204)

    async def update_all(self, req: ApiRequest) -> ApiResponse:
        if req.version >= FIRST_VERSION:
            self._update_all.validate(req.body)
        await self._server(req, "update_all")
        assert isinstance(req.body, dict)
        deps = self._deps
        tags = await self._deps.run(
            server_updates.set_tags,
            deps.uow_factory(),
            caller(req),
            req.path_params["server_id"],
            req.body["tags"],
            now=deps.clock.now(),
        )
        return ApiResponse(200, {"tags": tags})

    async def update(self, req: ApiRequest) -> ApiResponse:
        server = await self._server(req, "update")
        self._update.validate(req.body)
        tag = req.path_params["tag"]
        _check_tag(tag)
        deps = self._deps
        added = await self._deps.run(
            server_updates.add_tag, deps.uow_factory(), caller(req), server.uuid, tag, now=deps.clock.now()
        )
        if not added:
            return ApiResponse(204)
        location = self_href(req, f"servers/{server.uuid}/tags", tag).encode("utf-8")
        return ApiResponse(201, None, [(b"location", location)])

    async def delete(self, req: ApiRequest) -> ApiResponse:
        server = await self._server(req, "delete")
        deps = self._deps
        await self._deps.run(
            server_updates.delete_tag,
            deps.uow_factory(),
            caller(req),
            server.uuid,
            req.path_params["tag"],
            now=deps.clock.now(),
        )
        return ApiResponse(204)

    async def delete_all(self, req: ApiRequest) -> ApiResponse:
        server = await self._server(req, "delete_all")
        deps = self._deps
        await self._deps.run(
            server_updates.delete_all_tags, deps.uow_factory(), caller(req), server.uuid, now=deps.clock.now()
        )
        return ApiResponse(204)


def _check_tag(tag: str) -> None:
    import jsonschema

    try:
        jsonschema.validate(tag, schemas.TAG)
    except jsonschema.ValidationError as exc:
        raise ApiFault(
            400,
            f"Tag '{tag}' is invalid. It must be a non empty string without characters '/' and ','. "
            f"Validation error message: {exc.message}",
        ) from None


def server_tag_routes(edge: Edge, deps: ComputeDeps) -> list[BaseRoute]:
    api = ServerTagsController(deps)
    all_tags = "/servers/{server_id}/tags"
    one = all_tags + "/{tag}"
    return [
        *edge.routes(all_tags, api.index, methods=["GET"]),
        *edge.routes(all_tags, api.update_all, methods=["PUT"]),
        *edge.routes(all_tags, api.delete_all, methods=["DELETE"]),
        *edge.routes(one, api.show, methods=["GET"]),
        *edge.routes(one, api.update, methods=["PUT"]),
        *edge.routes(one, api.delete, methods=["DELETE"]),
    ]
