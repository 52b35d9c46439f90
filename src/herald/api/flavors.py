"""``/flavors``: the built-in flavors (Nova's ``flavors.py`` controller and view; no policy, as Nova)."""

from __future__ import annotations

from typing import Any

from starlette.routing import BaseRoute

from herald.api.deps import MAX_LIMIT, can, limit_and_marker, own_target
from herald.api.edge import ApiRequest, ApiResponse, Edge
from herald.api.faults import ApiFault
from herald.api.microversion import APIVersion
from herald.api.views.common import links, next_link
from herald.domain.errors import FlavorNotFound
from herald.domain.flavors import Flavor, get_flavor, list_flavors

EXTRA_SPECS_RULE = "os_compute_api:os-flavor-extra-specs:index"


def basic(req: ApiRequest, flavor: Flavor) -> dict[str, Any]:
    body: dict[str, Any] = {"id": flavor.flavorid, "name": flavor.name, "links": links(req, "flavors", flavor.flavorid)}
    if req.version >= APIVersion(2, 55):
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
    if req.version >= APIVersion(2, 55):
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


def _flavors(req: ApiRequest) -> list[Flavor]:
    flavors = list_flavors(min_ram=_int_filter(req, "minRam"), min_disk=_int_filter(req, "minDisk"))
    if "name" in req.query:
        flavors = [f for f in flavors if f.name == req.query["name"]]
    limit, marker = limit_and_marker(req)
    if marker is not None:
        index = next((i for i, f in enumerate(flavors) if f.flavorid == marker), None)
        if index is None:
            raise ApiFault(400, f"marker [{marker}] not found")
        flavors = flavors[index + 1 :]
    return flavors[:limit]


def _listing(req: ApiRequest, items: list[dict[str, Any]], flavors: list[Flavor], collection: str) -> ApiResponse:
    body: dict[str, Any] = {"flavors": items}
    limit, _ = limit_and_marker(req)
    if flavors and len(flavors) == min(limit, MAX_LIMIT):
        body["flavors_links"] = next_link(req, collection, flavors[-1].flavorid)
    return ApiResponse(200, body)


def _extra_specs(req: ApiRequest) -> bool:
    return req.version >= APIVersion(2, 61) and can(req, EXTRA_SPECS_RULE, own_target(req))


async def index(req: ApiRequest) -> ApiResponse:
    flavors = _flavors(req)
    return _listing(req, [basic(req, f) for f in flavors], flavors, "flavors")


async def detail(req: ApiRequest) -> ApiResponse:
    flavors = _flavors(req)
    extra = _extra_specs(req)
    return _listing(req, [show(req, f, extra) for f in flavors], flavors, "flavors/detail")


async def show_one(req: ApiRequest) -> ApiResponse:
    try:
        flavor = get_flavor(req.path_params["flavor_id"])
    except FlavorNotFound as exc:
        raise ApiFault(404, exc.text) from None
    return ApiResponse(200, {"flavor": show(req, flavor, _extra_specs(req))})


def flavor_routes(edge: Edge) -> list[BaseRoute]:
    return [
        *edge.routes("/flavors", index, methods=["GET"]),
        *edge.routes("/flavors/detail", detail, methods=["GET"]),
        *edge.routes("/flavors/{flavor_id}", show_one, methods=["GET"]),
    ]
