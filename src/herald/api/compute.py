"""The compute API beyond external events: servers, flavors, instance actions and services."""

from __future__ import annotations

from starlette.routing import BaseRoute

from herald.api.deps import ComputeDeps
from herald.api.edge import Edge
from herald.api.flavor_extra_specs import extra_spec_routes
from herald.api.flavors import flavor_routes
from herald.api.instance_actions import instance_action_routes
from herald.api.keypairs import keypair_routes
from herald.api.migrations import migration_routes
from herald.api.server_interfaces import server_interface_routes
from herald.api.server_ips import server_ip_routes
from herald.api.server_metadata import server_metadata_routes
from herald.api.server_tags import server_tag_routes
from herald.api.servers import server_routes
from herald.api.services import service_routes
from herald.api.volume_attachments import volume_attachment_routes

__all__ = ["ComputeDeps", "compute_routes"]


def compute_routes(edge: Edge, deps: ComputeDeps) -> list[BaseRoute]:
    """Every route of these APIs under ``/v2.1``, ``/v2.1/{project_id}``, ``/v2`` and ``/v2/{project_id}``."""
    return [
        *server_routes(edge, deps),
        *server_metadata_routes(edge, deps),
        *server_tag_routes(edge, deps),
        *server_ip_routes(edge, deps),
        *keypair_routes(edge, deps),
        *instance_action_routes(edge, deps),
        *flavor_routes(edge, deps),
        *service_routes(edge, deps),
        *server_interface_routes(edge, deps),
        *volume_attachment_routes(edge, deps),
        *migration_routes(edge, deps),
        *extra_spec_routes(edge, deps),
    ]
