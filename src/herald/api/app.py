"""create_app(deps): the ASGI application, its routes and its lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from oslo_config import cfg
from starlette.applications import Starlette
from starlette.routing import BaseRoute
from starlette.types import ExceptionHandler, Lifespan

from herald import bootstrap
from herald.adapters.sql.errors import is_transient
from herald.api.auth import make_authenticator
from herald.api.compute import compute_routes
from herald.api.deps import ComputeDeps
from herald.api.edge import Edge
from herald.api.event_records import EventRecordsController
from herald.api.policy import PolicyEnforcer
from herald.api.server_external_events import ServerExternalEventsController
from herald.api.versions import exception_handlers, version_routes
from herald.bootstrap import Deps
from herald.config import new_conf


def build_edge(deps: Deps, conf: cfg.ConfigOpts | None = None) -> Edge:
    if conf is None:
        conf = new_conf()
        conf([], project="herald", default_config_files=[])
    return Edge(
        settings=deps.settings,
        authenticator=make_authenticator(deps.settings, conf),
        policy=PolicyEnforcer(conf, deps.settings.policy_file),
    )


def compute_deps(deps: Deps) -> ComputeDeps:
    """What the servers, flavors, actions and services APIs need, out of the process's Deps."""
    return ComputeDeps(
        uow_factory=deps.uow_factory,
        read_uow_factory=deps.read_uow_factory,
        bus=deps.bus,
        clock=deps.clock,
        network=deps.network,
        volumes=deps.volumes,
        settings=deps.settings,
        commands=deps.commands,
        executor=deps.workers.api,
        transient=is_transient,
        accelerators=deps.accelerators,
    )


def api_routes(edge: Edge, deps: Deps) -> list[BaseRoute]:
    events = ServerExternalEventsController(deps.events, commit_timeout=deps.settings.commit_timeout)
    compute = compute_deps(deps)
    records = EventRecordsController(deps.read_uow_factory, compute.run)
    return [
        # NOTE: the hot route first: Starlette tries routes in order.
        *edge.routes("/os-server-external-events", events.create, methods=["POST"]),
        *version_routes(edge),
        *edge.routes("/os-server-external-events", records.index, methods=["GET"]),
        *compute_routes(edge, compute),
    ]


def create_app(deps: Deps, conf: cfg.ConfigOpts | None = None, *, manage_lifecycle: bool = True) -> Starlette:
    """The API. With ``manage_lifecycle`` the app's lifespan starts and stops ``deps`` (agents, relay)."""
    edge = build_edge(deps, conf)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if manage_lifecycle:
            await bootstrap.start(deps)
        try:
            yield
        finally:
            if manage_lifecycle:
                await bootstrap.stop(deps)

    return starlette_app(api_routes(edge, deps), exception_handlers(edge), lifespan)


def starlette_app(
    routes: Sequence[BaseRoute], handlers: Mapping[Any, ExceptionHandler], lifespan: Lifespan[Starlette] | None = None
) -> Starlette:
    """A Starlette app on ``routes`` that never redirects a path with a trailing slash (Nova answers 404)."""
    app = Starlette(routes=routes, exception_handlers=handlers, lifespan=lifespan)
    app.router.redirect_slashes = False
    return app
