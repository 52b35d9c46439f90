"""``/os-keypairs``: create or import, list, show and delete a user's key pairs (Nova's shapes by version)."""

from __future__ import annotations

from typing import Any

from starlette.routing import BaseRoute

from herald.api import key_material
from herald.api.deps import ComputeDeps, limit_and_marker
from herald.api.edge import ApiRequest, ApiResponse, Edge
from herald.api.microversion import APIVersion
from herald.api.schemas import keypairs as schemas
from herald.api.validation import VersionedValidator
from herald.api.views.common import next_link, strtime
from herald.domain.model import KeyPair
from herald.service import keypairs

KEYPAIRS = "os_compute_api:os-keypairs:"
V2_2 = APIVersion(2, 2)  # key types; create answers 201 and delete 204
V2_10 = APIVersion(2, 10)  # admins name another user
V2_35 = APIVersion(2, 35)  # paging


class KeyPairsController:
    def __init__(self, deps: ComputeDeps) -> None:
        self._deps = deps
        self._create = VersionedValidator(schemas.CREATE_SCHEMAS)

    def _user(self, req: ApiRequest, rule: str, requested: object = None) -> str:
        """The user whose key pairs are meant (another one from 2.10, if policy allows), once authorized."""
        if requested is None and req.version >= V2_10:
            requested = req.query.get("user_id")
        user_id = str(requested) if requested else (req.context.user_id or "")
        req.authorize(KEYPAIRS + rule, {"user_id": user_id})
        return user_id

    async def create(self, req: ApiRequest) -> ApiResponse:
        self._create.validate(req.version, req.body)
        assert isinstance(req.body, dict)
        params: dict[str, Any] = req.body["keypair"]
        user_id = self._user(req, "create", params.get("user_id") if req.version >= V2_10 else None)
        key_type = params.get("type", key_material.SSH)
        if "public_key" in params:
            material = key_material.KeyMaterial(
                params["public_key"], key_material.fingerprint(params["public_key"], key_type)
            )
        else:
            material = await self._deps.run(key_material.generate, key_type, user_id)
        deps = self._deps
        name = params["name"].strip()
        new = KeyPair(user_id, name, key_type, material.fingerprint, material.public_key, deps.clock.now())
        stored = await self._deps.run(keypairs.create_keypair, deps.uow_factory(), new)
        body: dict[str, Any] = {}
        if material.private_key is not None:
            body["private_key"] = material.private_key
        if req.version >= V2_2:
            body["type"] = stored.type
        body.update(_basic(stored))
        body["user_id"] = stored.user_id
        return ApiResponse(201 if req.version >= V2_2 else 200, {"keypair": body})

    async def index(self, req: ApiRequest) -> ApiResponse:
        user_id = self._user(req, "index")
        paged = req.version >= V2_35
        limit, marker = limit_and_marker(req) if paged else (None, None)
        found = await self._deps.run(
            keypairs.list_keypairs, self._deps.read_uow_factory(), user_id, limit=limit, marker=marker
        )
        body: dict[str, Any] = {"keypairs": [{"keypair": _listed(req, k)} for k in found]}
        if paged and found and len(found) == limit:
            body["keypairs_links"] = next_link(req, "os-keypairs", found[-1].name)
        return ApiResponse(200, body)

    async def show(self, req: ApiRequest) -> ApiResponse:
        user_id = self._user(req, "show")
        found = await self._deps.run(
            keypairs.get_keypair, self._deps.read_uow_factory(), user_id, req.path_params["name"]
        )
        body = {
            **_basic(found),
            "user_id": found.user_id,
            "created_at": strtime(found.created_at),
            "deleted": False,
            "deleted_at": None,
            "updated_at": None,
            "id": found.id,
        }
        if req.version >= V2_2:
            body["type"] = found.type
        return ApiResponse(200, {"keypair": body})

    async def delete(self, req: ApiRequest) -> ApiResponse:
        user_id = self._user(req, "delete")
        await self._deps.run(keypairs.delete_keypair, self._deps.uow_factory(), user_id, req.path_params["name"])
        return ApiResponse(204 if req.version >= V2_2 else 202)


def _basic(keypair: KeyPair) -> dict[str, Any]:
    return {"name": keypair.name, "public_key": keypair.public_key, "fingerprint": keypair.fingerprint}


def _listed(req: ApiRequest, keypair: KeyPair) -> dict[str, Any]:
    body = _basic(keypair)
    if req.version >= V2_2:
        body["type"] = keypair.type
    return body


def keypair_routes(edge: Edge, deps: ComputeDeps) -> list[BaseRoute]:
    api = KeyPairsController(deps)
    return [
        *edge.routes("/os-keypairs", api.index, methods=["GET"]),
        *edge.routes("/os-keypairs", api.create, methods=["POST"]),
        *edge.routes("/os-keypairs/{name}", api.show, methods=["GET"]),
        *edge.routes("/os-keypairs/{name}", api.delete, methods=["DELETE"]),
    ]
