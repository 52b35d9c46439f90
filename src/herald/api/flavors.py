"""``/flavors``: Nova's flavors (list and show, no policy) and flavor-manage (create 2.1, update 2.55, delete)."""

from __future__ import annotations

from typing import Any

from starlette.routing import BaseRoute

from herald.api.deps import MAX_LIMIT, ComputeDeps, bool_param, can, limit_and_marker, own_target
from herald.api.edge import ApiRequest, ApiResponse, Edge
from herald.api.faults import ApiFault
from herald.api.microversion import APIVersion
from herald.api.schemas import flavors as schemas
from herald.api.validation import SchemaValidator, VersionedValidator
from herald.api.views.common import links, next_link
from herald.domain.flavors import Flavor
from herald.service import flavors

EXTRA_SPECS_RULE = "os_compute_api:os-flavor-extra-specs:index"
MANAGE = "os_compute_api:os-flavor-manage:"
V255 = APIVersion(2, 55)


def basic(req: ApiRequest, flavor: Flavor) -> dict[str, Any]:
    body: dict[str, Any] = {"id": flavor.flavorid, "name": flavor.name, "links": links(req, "flavors", flavor.flavorid)}
    if req.version >= V255:
        body["description"] = flavor.description
    return body


def show(req: ApiRequest, flavor: Flavor, include_extra_specs: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": flavor.flavorid,
        "name": flavor.name,
        "ram": flavor.memory_mb,
        "disk": flavor.root_gb,
        "swap": flavor.swap or "",
        "OS-FLV-EXT-DATA:ephemeral": flavor.ephemeral_gb,
        "OS-FLV-DISABLED:disabled": flavor.disabled,
        "vcpus": flavor.vcpus,
        "os-flavor-access:is_public": flavor.is_public,
        "rxtx_factor": flavor.rxtx_factor or "",
        "links": links(req, "flavors", flavor.flavorid),
    }
    if req.version >= V255:
        body["description"] = flavor.description
    if include_extra_specs:
        body["extra_specs"] = dict(flavor.extra_specs)
    if req.version >= APIVersion(2, 75):
        body["swap"] = flavor.swap or 0
    if req.version >= APIVersion(2, 102):
        del body["OS-FLV-DISABLED:disabled"], body["rxtx_factor"]
    return body


def _int_filter(req: ApiRequest, name: str) -> int:
    raw = req.query.get(name)
    if raw is None:
        return 0
    try:
        return int(raw)
    except ValueError:
        raise ApiFault(400, f"Invalid {name} filter [{raw}]") from None


def _is_public(req: ApiRequest) -> bool | None:
    """Nova's ``is_public`` filter: public flavors only, unless an admin asks otherwise ("none": all)."""
    raw = req.query.get("is_public")
    if raw is None or not req.context.is_admin:
        return True
    if raw.strip().lower() == "none":
        return None
    return bool_param(raw)


def _extra_specs(req: ApiRequest) -> bool:
    return req.version >= APIVersion(2, 61) and can(req, EXTRA_SPECS_RULE, own_target(req))


def _int(value: object, name: str, minimum: int) -> int:
    """A schema-checked integer or digit string, in Nova's range (``validate_integer``)."""
    number = int(str(value)) if str(value) else minimum - 1
    if number < minimum:
        raise ApiFault(400, f"Invalid input received: {name} must be >= {minimum}")
    if number > schemas.MAX_INT:
        raise ApiFault(400, f"Invalid input received: {name} must be <= {schemas.MAX_INT}")
    return number


def _new_flavor(body: dict[str, Any]) -> Flavor:
    public = body.get("os-flavor-access:is_public", True)
    flavorid = body.get("id")
    return Flavor(
        flavorid="" if flavorid is None else str(flavorid),
        name=body["name"],
        memory_mb=_int(body["ram"], "memory_mb", 1),
        vcpus=_int(body["vcpus"], "vcpus", 1),
        root_gb=_int(body["disk"], "root_gb", 0),
        ephemeral_gb=_int(body.get("OS-FLV-EXT-DATA:ephemeral", 0), "ephemeral_gb", 0),
        swap=_int(body.get("swap", 0), "swap", 0),
        rxtx_factor=float(body.get("rxtx_factor", 1.0)),
        is_public=public if isinstance(public, bool) else public in schemas.TRUE_STRINGS,
        description=body.get("description"),
    )


class FlavorsController:
    def __init__(self, deps: ComputeDeps) -> None:
        self._deps = deps
        self._create = VersionedValidator(
            ((APIVersion(2, 1), schemas.create), (V255, schemas.create_v255)),
        )
        self._update = SchemaValidator(schemas.update_v255)

    async def _flavors(self, req: ApiRequest) -> list[Flavor]:
        deps = self._deps
        found = await deps.run(
            flavors.list_flavors,
            deps.read_uow_factory(),
            min_ram=_int_filter(req, "minRam"),
            min_disk=_int_filter(req, "minDisk"),
        )
        public = _is_public(req)
        if public is not None:
            found = [f for f in found if f.is_public == public]
        if "name" in req.query:
            found = [f for f in found if f.name == req.query["name"]]
        limit, marker = limit_and_marker(req)
        if marker is not None:
            index = next((i for i, f in enumerate(found) if f.flavorid == marker), None)
            if index is None:
                raise ApiFault(400, f"marker [{marker}] not found")
            found = found[index + 1 :]
        return found[:limit]

    @staticmethod
    def _listing(req: ApiRequest, items: list[dict[str, Any]], found: list[Flavor], collection: str) -> ApiResponse:
        body: dict[str, Any] = {"flavors": items}
        limit, _ = limit_and_marker(req)
        if found and len(found) == min(limit, MAX_LIMIT):
            body["flavors_links"] = next_link(req, collection, found[-1].flavorid)
        return ApiResponse(200, body)

    async def index(self, req: ApiRequest) -> ApiResponse:
        found = await self._flavors(req)
        return self._listing(req, [basic(req, f) for f in found], found, "flavors")

    async def detail(self, req: ApiRequest) -> ApiResponse:
        found = await self._flavors(req)
        extra = _extra_specs(req)
        return self._listing(req, [show(req, f, extra) for f in found], found, "flavors/detail")

    async def show_one(self, req: ApiRequest) -> ApiResponse:
        deps = self._deps
        flavor = await deps.run(
            flavors.show_flavor, deps.read_uow_factory(), req.path_params["flavor_id"], admin=req.context.is_admin
        )
        return ApiResponse(200, {"flavor": show(req, flavor, _extra_specs(req))})

    async def create(self, req: ApiRequest) -> ApiResponse:
        self._create.validate(req.version, req.body)
        req.authorize(MANAGE + "create", own_target(req))
        assert isinstance(req.body, dict)
        new = _new_flavor(req.body["flavor"])
        flavor = await self._deps.run(flavors.create_flavor, self._deps.uow_factory(), new)
        return ApiResponse(200, {"flavor": show(req, flavor, _extra_specs(req))})

    async def update(self, req: ApiRequest) -> ApiResponse:
        if req.version < V255:
            raise ApiFault(404, "The resource could not be found.")
        self._update.validate(req.body)
        req.authorize(MANAGE + "update", own_target(req))
        assert isinstance(req.body, dict)
        flavor = await self._deps.run(
            flavors.update_description,
            self._deps.uow_factory(),
            req.path_params["flavor_id"],
            req.body["flavor"]["description"],
        )
        return ApiResponse(200, {"flavor": show(req, flavor, _extra_specs(req))})

    async def delete(self, req: ApiRequest) -> ApiResponse:
        req.authorize(MANAGE + "delete", own_target(req))
        await self._deps.run(flavors.delete_flavor, self._deps.uow_factory(), req.path_params["flavor_id"])
        return ApiResponse(202)


def flavor_routes(edge: Edge, deps: ComputeDeps) -> list[BaseRoute]:
    api = FlavorsController(deps)
    return [
        *edge.routes("/flavors", api.index, methods=["GET"]),
        *edge.routes("/flavors", api.create, methods=["POST"]),
        *edge.routes("/flavors/detail", api.detail, methods=["GET"]),
        *edge.routes("/flavors/{flavor_id}", api.show_one, methods=["GET"]),
        *edge.routes("/flavors/{flavor_id}", api.update, methods=["PUT"]),
        *edge.routes("/flavors/{flavor_id}", api.delete, methods=["DELETE"]),
    ]
