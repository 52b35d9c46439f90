"""``/servers/{id}/metadata``: Nova's server metadata API (200 for writes, as Nova keeps it)."""

from __future__ import annotations

from starlette.routing import BaseRoute

from herald.api.deps import ComputeDeps, caller, server_for
from herald.api.edge import ApiRequest, ApiResponse, Edge
from herald.api.faults import ApiFault
from herald.api.schemas import servers as schemas
from herald.api.validation import SchemaValidator
from herald.domain.errors import MetadataItemNotFound
from herald.domain.model import Server
from herald.service import server_updates

METADATA = "os_compute_api:server-metadata:"


class ServerMetadataController:
    def __init__(self, deps: ComputeDeps) -> None:
        self._deps = deps
        self._create = SchemaValidator(schemas.metadata_create)
        self._update_all = SchemaValidator(schemas.metadata_update_all)
        self._update = SchemaValidator(schemas.metadata_update)

    async def _server(self, req: ApiRequest, rule: str) -> Server:
        return await server_for(self._deps, req, METADATA + rule)

    async def _write(self, req: ApiRequest, items: dict[str, str], *, replace: bool) -> dict[str, str]:
        deps = self._deps
        return await self._deps.run(
            server_updates.update_metadata,
            deps.uow_factory(),
            caller(req),
            req.path_params["server_id"],
            items,
            replace=replace,
            now=deps.clock.now(),
        )

    async def index(self, req: ApiRequest) -> ApiResponse:
        server = await self._server(req, "index")
        return ApiResponse(200, {"metadata": dict(server.metadata)})

    async def show(self, req: ApiRequest) -> ApiResponse:
        server = await self._server(req, "show")
        key = req.path_params["key"]
        if key not in server.metadata:
            raise MetadataItemNotFound()
        return ApiResponse(200, {"meta": {key: server.metadata[key]}})

    async def create(self, req: ApiRequest) -> ApiResponse:
        self._create.validate(req.body)
        await self._server(req, "create")
        assert isinstance(req.body, dict)
        return ApiResponse(200, {"metadata": await self._write(req, req.body["metadata"], replace=False)})

    async def update_all(self, req: ApiRequest) -> ApiResponse:
        self._update_all.validate(req.body)
        await self._server(req, "update_all")
        assert isinstance(req.body, dict)
        return ApiResponse(200, {"metadata": await self._write(req, req.body["metadata"], replace=True)})

    async def update(self, req: ApiRequest) -> ApiResponse:
        self._update.validate(req.body)
        await self._server(req, "update")
        assert isinstance(req.body, dict)
        item: dict[str, str] = req.body["meta"]
        if req.path_params["key"] not in item:
            raise ApiFault(400, "Request body and URI mismatch")
        await self._write(req, item, replace=False)
        return ApiResponse(200, {"meta": item})

    async def delete(self, req: ApiRequest) -> ApiResponse:
        await self._server(req, "delete")
        deps = self._deps
        await self._deps.run(
            server_updates.delete_metadata_item,
            deps.uow_factory(),
            caller(req),
            req.path_params["server_id"],
            req.path_params["key"],
            now=deps.clock.now(),
        )
        return ApiResponse(204)


def server_metadata_routes(edge: Edge, deps: ComputeDeps) -> list[BaseRoute]:
    api = ServerMetadataController(deps)
    one = "/servers/{server_id}/metadata"
    item = one + "/{key}"
    return [
        *edge.routes(one, api.index, methods=["GET"]),
        *edge.routes(one, api.create, methods=["POST"]),
        *edge.routes(one, api.update_all, methods=["PUT"]),
        *edge.routes(item, api.show, methods=["GET"]),
        *edge.routes(item, api.update, methods=["PUT"]),
        *edge.routes(item, api.delete, methods=["DELETE"]),
    ]
