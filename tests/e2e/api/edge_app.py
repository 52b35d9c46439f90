"""A tiny Starlette app built from the API edge with dummy handlers (imported by the API e2e tests)."""

from __future__ import annotations

from oslo_config import cfg
from starlette.applications import Starlette

from herald.api.app import starlette_app
from herald.api.auth import Authenticator, NoAuth2Authenticator
from herald.api.edge import ApiRequest, ApiResponse, Edge
from herald.api.faults import ApiFault
from herald.api.policy import PolicyEnforcer
from herald.api.versions import exception_handlers, version_routes
from herald.config import Settings
from herald.domain.errors import InvalidServerState, ServerNotFound

EVENTS_RULE = "os_compute_api:os-server-external-events:create"


def parsed_conf(*args: str) -> cfg.ConfigOpts:
    """A parsed ConfigOpts that never reads the machine's own config files."""
    conf = cfg.ConfigOpts()
    conf(list(args), project="herald", default_config_files=[], default_config_dirs=[])
    return conf


async def echo(req: ApiRequest) -> ApiResponse:
    ctx = req.context
    return ApiResponse(
        200,
        {
            "version": str(req.version),
            "legacy_v2": req.legacy_v2,
            "body": req.body,
            "json": await req.json(),
            "path_params": dict(req.path_params),
            "query": dict(req.query),
            "user_id": ctx.user_id,
            "project_id": ctx.project_id,
            "roles": sorted(ctx.roles),
            "request_id": req.request_id,
            "base_url": req.base_url,
            "api_url": req.api_url,
            "method": req.method,
            "user_agent": req.headers.get("user-agent"),
        },
    )


async def events(req: ApiRequest) -> ApiResponse:
    req.authorize(EVENTS_RULE)
    return ApiResponse(200, {"events": []})


async def fail(req: ApiRequest) -> ApiResponse:
    kind = req.query.get("kind")
    if kind == "fault":
        raise ApiFault(409, "custom conflict", headers=[(b"x-extra", b"1")])
    if kind == "notfound":
        raise ServerNotFound("abc")
    if kind == "conflict":
        raise InvalidServerState("abc", "vm_state", "active", "start")
    raise ZeroDivisionError("secret detail")


async def accepted(req: ApiRequest) -> ApiResponse:
    return ApiResponse(202, None, [(b"location", b"http://example/x")])


def build_app(
    *,
    settings: Settings | None = None,
    authenticator: Authenticator | None = None,
    policy: PolicyEnforcer | None = None,
) -> Starlette:
    edge = Edge(
        settings=settings or Settings(max_request_body_size=1024),
        authenticator=authenticator or NoAuth2Authenticator(),
        policy=policy or PolicyEnforcer(parsed_conf()),
    )
    routes = [
        *version_routes(edge),
        *edge.routes("/echo", echo, methods=["GET", "POST", "PUT", "DELETE"]),
        *edge.routes("/echo/{item}", echo, methods=["GET"]),
        *edge.routes("/os-server-external-events", events, methods=["POST"]),
        *edge.routes("/fail", fail, methods=["GET"]),
        *edge.routes("/accepted", accepted, methods=["POST"]),
    ]
    return starlette_app(routes, exception_handlers(edge))
