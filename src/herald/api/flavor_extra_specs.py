"""``/flavors/{id}/os-extra_specs``: Nova's flavor extra specs API (202 for a delete, as Nova answers)."""

from __future__ import annotations

from typing import Any

from starlette.routing import BaseRoute

from herald.api.deps import ComputeDeps, own_target
from herald.api.edge import ApiRequest, ApiResponse, Edge
from herald.api.faults import ApiFault
from herald.api.schemas import flavors as schemas
from herald.api.validation import SchemaValidator
from herald.service import flavors

RULE = "os_compute_api:os-flavor-extra-specs:"
MAX_VALUE_LENGTH = 255


def _values(specs: dict[str, Any]) -> dict[str, str]:
    """Nova keeps every value as a string; a number becomes its text (``_check_extra_specs_value``)."""
    result: dict[str, str] = {}
    for key, value in specs.items():
        text = str(value) if isinstance(value, (bool, int, float)) else value
        if len(text) > MAX_VALUE_LENGTH:
            raise ApiFault(
                400,
                f"Invalid input received: extra_specs value has more than {MAX_VALUE_LENGTH} characters.",
            )
        result[key] = text
    return result


class FlavorExtraSpecsController:
    def __init__(self, deps: ComputeDeps) -> None:
        self._deps = deps
        self._create = SchemaValidator(schemas.extra_specs_create)
        self._update = SchemaValidator(schemas.extra_spec_update)

    def _authorize(self, req: ApiRequest, action: str) -> None:
        req.authorize(RULE + action, own_target(req))

    async def index(self, req: ApiRequest) -> ApiResponse:
        self._authorize(req, "index")
        deps = self._deps
        specs = await deps.run(
            flavors.extra_specs, deps.read_uow_factory(), req.path_params["flavor_id"], admin=req.context.is_admin
        )
        return ApiResponse(200, {"extra_specs": specs})

    async def create(self, req: ApiRequest) -> ApiResponse:
        self._create.validate(req.body)
        self._authorize(req, "create")
        assert isinstance(req.body, dict)
        specs = _values(req.body["extra_specs"])
        deps = self._deps
        await deps.run(flavors.update_extra_specs, deps.uow_factory(), req.path_params["flavor_id"], specs)
        return ApiResponse(200, {"extra_specs": req.body["extra_specs"]})

    async def show(self, req: ApiRequest) -> ApiResponse:
        self._authorize(req, "show")
        deps = self._deps
        key = req.path_params["key"]
        value = await deps.run(
            flavors.extra_spec, deps.read_uow_factory(), req.path_params["flavor_id"], key, admin=req.context.is_admin
        )
        return ApiResponse(200, {key: value})

    async def update(self, req: ApiRequest) -> ApiResponse:
        self._update.validate(req.body)
        self._authorize(req, "update")
        assert isinstance(req.body, dict)
        specs = _values(req.body)
        if req.path_params["key"] not in specs:
            raise ApiFault(400, "Request body and URI mismatch")
        deps = self._deps
        await deps.run(flavors.update_extra_specs, deps.uow_factory(), req.path_params["flavor_id"], specs)
        return ApiResponse(200, req.body)

    async def delete(self, req: ApiRequest) -> ApiResponse:
        self._authorize(req, "delete")
        deps = self._deps
        await deps.run(
            flavors.delete_extra_spec, deps.uow_factory(), req.path_params["flavor_id"], req.path_params["key"]
        )
        return ApiResponse(202)


def extra_spec_routes(edge: Edge, deps: ComputeDeps) -> list[BaseRoute]:
    api = FlavorExtraSpecsController(deps)
    specs = "/flavors/{flavor_id}/os-extra_specs"
    one = specs + "/{key}"
    return [
        *edge.routes(specs, api.index, methods=["GET"]),
        *edge.routes(specs, api.create, methods=["POST"]),
        *edge.routes(one, api.show, methods=["GET"]),
        *edge.routes(one, api.update, methods=["PUT"]),
        *edge.routes(one, api.delete, methods=["DELETE"]),
    ]
