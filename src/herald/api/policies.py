"""Policy as data: Nova's rule names and default check strings, one documented default per operation.

Base rules follow ``nova/policies/base.py``; operation rules follow the matching
``nova/policies/<api>.py`` of Nova 34.0.0. Every operation rule is project-scoped, so
a system- or domain-scoped token is refused (oslo.policy >= 6 always enforces scope).
"""

from __future__ import annotations

from oslo_policy import policy

from herald.api import policy_checks

# NOTE: the rule defaults below are parsed as they are defined, and oslo.policy's first parse
# loads its extension check kinds: register them lazily before that.
policy_checks.install()

ADMIN = "rule:context_is_admin"
PROJECT_MEMBER_OR_ADMIN = "rule:project_member_or_admin"
PROJECT_MANAGER_OR_ADMIN = "rule:project_manager_or_admin"
PROJECT_READER_OR_ADMIN = "rule:project_reader_or_admin"
SERVICE_OR_ADMIN = "rule:service_or_admin"

EXTERNAL_EVENTS_CREATE = "os_compute_api:os-server-external-events:create"
# Herald's extension: read the delivery record of accepted events (Nova keeps none).
EXTERNAL_EVENTS_LIST = "herald:os-server-external-events:list"

_DEPRECATED_REASON = "Nova's legacy defaults (is_admin / owner) were replaced by role and scope based ones."
_DEPRECATED_ADMIN = policy.DeprecatedRule(
    name="rule:admin_api", check_str="is_admin:True", deprecated_reason=_DEPRECATED_REASON, deprecated_since="21.0.0"
)
_DEPRECATED_ADMIN_OR_OWNER = policy.DeprecatedRule(
    name="rule:admin_or_owner",
    check_str="is_admin:True or project_id:%(project_id)s",
    deprecated_reason=_DEPRECATED_REASON,
    deprecated_since="21.0.0",
)


def _base(name: str, check_str: str, description: str, deprecated: policy.DeprecatedRule | None) -> policy.RuleDefault:
    return policy.RuleDefault(name, check_str, description, deprecated_rule=deprecated)


BASE_RULES = [
    _base("context_is_admin", "role:admin", "Who 'is_admin:True' means.", _DEPRECATED_ADMIN),
    policy.RuleDefault(
        "admin_or_owner",
        "is_admin:True or project_id:%(project_id)s",
        "Legacy default rule for most non-admin APIs.",
        deprecated_for_removal=True,
        deprecated_reason=_DEPRECATED_REASON,
        deprecated_since="21.0.0",
    ),
    policy.RuleDefault(
        "admin_api",
        "is_admin:True",
        "Legacy default rule for most admin APIs.",
        deprecated_for_removal=True,
        deprecated_reason=_DEPRECATED_REASON,
        deprecated_since="21.0.0",
    ),
    _base(
        "project_manager_api",
        "role:manager and project_id:%(project_id)s",
        "Project level management APIs.",
        _DEPRECATED_ADMIN,
    ),
    _base(
        "project_member_api",
        "role:member and project_id:%(project_id)s",
        "Project level non-admin APIs.",
        _DEPRECATED_ADMIN_OR_OWNER,
    ),
    _base(
        "project_reader_api",
        "role:reader and project_id:%(project_id)s",
        "Project level read-only APIs.",
        _DEPRECATED_ADMIN_OR_OWNER,
    ),
    _base("service_api", "role:service", "Service-to-service APIs.", _DEPRECATED_ADMIN),
    _base(
        "project_manager_or_admin",
        "rule:project_manager_api or rule:context_is_admin",
        "Project manager or admin APIs.",
        _DEPRECATED_ADMIN,
    ),
    _base(
        "project_member_or_admin",
        "rule:project_member_api or rule:context_is_admin",
        "Project member or admin APIs.",
        _DEPRECATED_ADMIN_OR_OWNER,
    ),
    _base(
        "project_reader_or_admin",
        "rule:project_reader_api or rule:context_is_admin",
        "Project reader or admin APIs.",
        _DEPRECATED_ADMIN_OR_OWNER,
    ),
    # NOTE: Nova keeps admin here for deployments whose service users lack the service role.
    _base("service_or_admin", "rule:service_api or rule:context_is_admin", "Service or admin APIs.", _DEPRECATED_ADMIN),
]


def _op(name: str, check_str: str, description: str, method: str, path: str) -> policy.DocumentedRuleDefault:
    return policy.DocumentedRuleDefault(
        name=name,
        check_str=check_str,
        description=description,
        operations=[{"method": method, "path": path}],
        scope_types=["project"],
    )


_S = "os_compute_api:servers:"
_ACTION = "/servers/{server_id}/action"
_SHELVE = "os_compute_api:os-shelve:"
_METADATA = "os_compute_api:server-metadata:"
_META = "/servers/{server_id}/metadata"
_TAGS = "os_compute_api:os-server-tags:"
_TAG_PATH = "/servers/{server_id}/tags"
_IPS = "os_compute_api:ips:"
_LOCK = "os_compute_api:os-lock-server:"
_KEYPAIRS = "os_compute_api:os-keypairs:"
_ADMIN_OR_KEY_OWNER = "(" + ADMIN + ") or user_id:%(user_id)s"
_IPS_PATH = "/servers/{server_id}/ips"
_ACTIONS = "os_compute_api:os-instance-actions"
_SERVICES = "os_compute_api:os-services:"
_IFACES = "os_compute_api:os-attach-interfaces:"
_IFACE = "/servers/{server_id}/os-interface"
_VOLS = "os_compute_api:os-volumes-attachments:"
_VOL = "/servers/{server_id}/os-volume_attachments"
_FLAVOR_MANAGE = "os_compute_api:os-flavor-manage:"
_EXTRA_SPECS = "os_compute_api:os-flavor-extra-specs:"
_EXTRA_SPECS_PATH = "/flavors/{flavor_id}/os-extra_specs"

OPERATION_RULES = [
    _op(
        EXTERNAL_EVENTS_LIST,
        SERVICE_OR_ADMIN,
        "List accepted external events and their delivery state (Herald extension)",
        "GET",
        "/os-server-external-events",
    ),
    _op(
        EXTERNAL_EVENTS_CREATE,
        SERVICE_OR_ADMIN,
        "Create one or more external events",
        "POST",
        "/os-server-external-events",
    ),
    _op(_S + "index", PROJECT_READER_OR_ADMIN, "List all servers", "GET", "/servers"),
    _op(_S + "detail", PROJECT_READER_OR_ADMIN, "List all servers with detailed information", "GET", "/servers/detail"),
    _op(_S + "index:get_all_tenants", ADMIN, "List all servers for all projects", "GET", "/servers"),
    _op(
        _S + "detail:get_all_tenants", ADMIN, "List all servers with details for all projects", "GET", "/servers/detail"
    ),
    _op(_S + "allow_all_filters", ADMIN, "Allow all filters when listing servers", "GET", "/servers"),
    _op(_S + "show", PROJECT_READER_OR_ADMIN, "Show a server", "GET", "/servers/{server_id}"),
    _op(_S + "create", PROJECT_MEMBER_OR_ADMIN, "Create a server", "POST", "/servers"),
    _op(_S + "create:forced_host", ADMIN, "Create a server on a host, bypassing the scheduler", "POST", "/servers"),
    _op(
        "compute:servers:create:requested_destination",
        ADMIN,
        "Create a server on a requested host (host / hypervisor_hostname, 2.74)",
        "POST",
        "/servers",
    ),
    _op(
        _S + "create:attach_volume",
        PROJECT_MEMBER_OR_ADMIN,
        "Create a server with block device mappings",
        "POST",
        "/servers",
    ),
    _op(
        _S + "create:attach_network",
        PROJECT_MEMBER_OR_ADMIN,
        "Create a server with requested networks",
        "POST",
        "/servers",
    ),
    _op(
        _S + "show:flavor-extra-specs",
        PROJECT_READER_OR_ADMIN,
        "Include the flavor's extra_specs in the server view (2.47)",
        "GET",
        "/servers/{server_id}",
    ),
    _op(
        _S + "show:host_status",
        ADMIN,
        "Show a server with the host_status attribute (2.16)",
        "GET",
        "/servers/{server_id}",
    ),
    _op(
        _S + "show:host_status:unknown-only",
        ADMIN,
        "Show a server with host_status only when it is UNKNOWN (2.16)",
        "GET",
        "/servers/{server_id}",
    ),
    _op(
        "os_compute_api:os-flavor-extra-specs:index",
        PROJECT_READER_OR_ADMIN,
        "List the extra specs of a flavor (and show them in flavor views, 2.61)",
        "GET",
        "/flavors/{flavor_id}/os-extra_specs",
    ),
    _op(_S + "update", PROJECT_MEMBER_OR_ADMIN, "Update a server", "PUT", "/servers/{server_id}"),
    _op(_S + "delete", PROJECT_MEMBER_OR_ADMIN, "Delete a server", "DELETE", "/servers/{server_id}"),
    _op(_METADATA + "index", PROJECT_READER_OR_ADMIN, "List all metadata of a server", "GET", _META),
    _op(_METADATA + "show", PROJECT_READER_OR_ADMIN, "Show metadata for a server", "GET", _META + "/{key}"),
    _op(_METADATA + "create", PROJECT_MEMBER_OR_ADMIN, "Create metadata for a server", "POST", _META),
    _op(_METADATA + "update_all", PROJECT_MEMBER_OR_ADMIN, "Replace metadata for a server", "PUT", _META),
    _op(_METADATA + "update", PROJECT_MEMBER_OR_ADMIN, "Update metadata from a server", "PUT", _META + "/{key}"),
    _op(_METADATA + "delete", PROJECT_MEMBER_OR_ADMIN, "Delete metadata from a server", "DELETE", _META + "/{key}"),
    _op(_TAGS + "index", PROJECT_READER_OR_ADMIN, "List all tags for given server", "GET", _TAG_PATH),
    _op(_TAGS + "show", PROJECT_READER_OR_ADMIN, "Check tag existence on the server.", "GET", _TAG_PATH + "/{tag}"),
    _op(_TAGS + "update_all", PROJECT_MEMBER_OR_ADMIN, "Replace all tags on specified server", "PUT", _TAG_PATH),
    _op(_TAGS + "update", PROJECT_MEMBER_OR_ADMIN, "Add a single tag to the server", "PUT", _TAG_PATH + "/{tag}"),
    _op(_TAGS + "delete_all", PROJECT_MEMBER_OR_ADMIN, "Delete all the server tags", "DELETE", _TAG_PATH),
    _op(
        _TAGS + "delete", PROJECT_MEMBER_OR_ADMIN, "Delete a single tag from the server", "DELETE", _TAG_PATH + "/{tag}"
    ),
    _op(_LOCK + "lock", PROJECT_MEMBER_OR_ADMIN, "Lock a server", "POST", _ACTION + " (lock)"),
    _op(_LOCK + "unlock", PROJECT_MEMBER_OR_ADMIN, "Unlock a server", "POST", _ACTION + " (unlock)"),
    _op(
        _LOCK + "unlock:unlock_override",
        ADMIN,
        "Unlock a server, regardless who locked the server.",
        "POST",
        _ACTION + " (unlock)",
    ),
    _op(
        "os_compute_api:os-admin-actions:reset_state",
        ADMIN,
        "Reset the state of a given server",
        "POST",
        _ACTION + " (os-resetState)",
    ),
    _op(_KEYPAIRS + "index", _ADMIN_OR_KEY_OWNER, "List all keypairs", "GET", "/os-keypairs"),
    _op(_KEYPAIRS + "create", _ADMIN_OR_KEY_OWNER, "Create a keypair", "POST", "/os-keypairs"),
    _op(_KEYPAIRS + "delete", _ADMIN_OR_KEY_OWNER, "Delete a keypair", "DELETE", "/os-keypairs/{keypair_name}"),
    _op(_KEYPAIRS + "show", _ADMIN_OR_KEY_OWNER, "Show details of a keypair", "GET", "/os-keypairs/{keypair_name}"),
    _op(_IPS + "index", PROJECT_READER_OR_ADMIN, "List IP addresses that are assigned to a server", "GET", _IPS_PATH),
    _op(
        _IPS + "show",
        PROJECT_READER_OR_ADMIN,
        "Show IP addresses details for a network label of a server",
        "GET",
        _IPS_PATH + "/{network_label}",
    ),
    _op(_S + "start", PROJECT_MEMBER_OR_ADMIN, "Start a server", "POST", _ACTION + " (os-start)"),
    _op(_S + "stop", PROJECT_MEMBER_OR_ADMIN, "Stop a server", "POST", _ACTION + " (os-stop)"),
    _op(_SHELVE + "shelve", PROJECT_MEMBER_OR_ADMIN, "Shelve a server", "POST", _ACTION + " (shelve)"),
    _op(_SHELVE + "unshelve", PROJECT_MEMBER_OR_ADMIN, "Unshelve a server", "POST", _ACTION + " (unshelve)"),
    _op(_SHELVE + "unshelve_to_host", ADMIN, "Unshelve a server to a specific host", "POST", _ACTION + " (unshelve)"),
    _op(_SHELVE + "shelve_offload", ADMIN, "Shelf-offload a server", "POST", _ACTION + " (shelveOffload)"),
    _op(
        _ACTIONS + ":list",
        PROJECT_READER_OR_ADMIN,
        "List the actions of a server",
        "GET",
        "/servers/{server_id}/os-instance-actions",
    ),
    _op(
        _ACTIONS + ":show",
        PROJECT_READER_OR_ADMIN,
        "Show an action of a server",
        "GET",
        "/servers/{server_id}/os-instance-actions/{request_id}",
    ),
    _op(
        _ACTIONS + ":events",
        ADMIN,
        "Add the events list to an action of a server",
        "GET",
        "/servers/{server_id}/os-instance-actions/{request_id}",
    ),
    _op(
        _ACTIONS + ":events:details",
        ADMIN,
        "Add 'details' to the action events of a server (2.84)",
        "GET",
        "/servers/{server_id}/os-instance-actions/{request_id}",
    ),
    _op(_SERVICES + "list", ADMIN, "List all running compute services", "GET", "/os-services"),
    _op(_SERVICES + "update", ADMIN, "Update a compute service", "PUT", "/os-services/{service_id}"),
    _op(_SERVICES + "delete", ADMIN, "Delete a compute service", "DELETE", "/os-services/{service_id}"),
    _op(
        "os_compute_api:os-extended-server-attributes",
        ADMIN,
        "Return extended attributes (host, hypervisor, ...) of servers",
        "GET",
        "/servers/{server_id}",
    ),
    _op(_IFACES + "list", PROJECT_READER_OR_ADMIN, "List port interfaces attached to a server", "GET", _IFACE),
    _op(
        _IFACES + "show",
        PROJECT_READER_OR_ADMIN,
        "Show details of a port interface attached to a server",
        "GET",
        _IFACE + "/{port_id}",
    ),
    _op(_IFACES + "create", PROJECT_MEMBER_OR_ADMIN, "Attach an interface to a server", "POST", _IFACE),
    _op(
        _IFACES + "delete",
        PROJECT_MEMBER_OR_ADMIN,
        "Detach an interface from a server",
        "DELETE",
        _IFACE + "/{port_id}",
    ),
    _op(_VOLS + "index", PROJECT_READER_OR_ADMIN, "List volume attachments for an instance", "GET", _VOL),
    _op(_VOLS + "create", PROJECT_MEMBER_OR_ADMIN, "Attach a volume to an instance", "POST", _VOL),
    _op(_VOLS + "show", PROJECT_READER_OR_ADMIN, "Show details of a volume attachment", "GET", _VOL + "/{volume_id}"),
    _op(
        _VOLS + "delete",
        PROJECT_MEMBER_OR_ADMIN,
        "Detach a volume from an instance",
        "DELETE",
        _VOL + "/{volume_id}",
    ),
    _op(_S + "reboot", PROJECT_MEMBER_OR_ADMIN, "Reboot a server", "POST", _ACTION + " (reboot)"),
    _op(_S + "rebuild", PROJECT_MEMBER_OR_ADMIN, "Rebuild a server", "POST", _ACTION + " (rebuild)"),
    _op(
        _S + "rebuild:trusted_certs",
        PROJECT_MEMBER_OR_ADMIN,
        "Rebuild a server with trusted image certificate IDs",
        "POST",
        _ACTION + " (rebuild)",
    ),
    _op(
        "os_compute_api:os-deferred-delete:restore",
        PROJECT_MEMBER_OR_ADMIN,
        "Restore a soft deleted server",
        "POST",
        _ACTION + " (restore)",
    ),
    _op(
        "os_compute_api:os-deferred-delete:force",
        PROJECT_MEMBER_OR_ADMIN,
        "Force delete a server before deferred cleanup",
        "POST",
        _ACTION + " (forceDelete)",
    ),
    _op(
        "os_compute_api:os-security-groups:add",
        PROJECT_MEMBER_OR_ADMIN,
        "Add security groups to server",
        "POST",
        _ACTION + " (addSecurityGroup)",
    ),
    _op(
        "os_compute_api:os-security-groups:remove",
        PROJECT_MEMBER_OR_ADMIN,
        "Remove security groups from server",
        "POST",
        _ACTION + " (removeSecurityGroup)",
    ),
    _op(_S + "resize", PROJECT_MEMBER_OR_ADMIN, "Resize a server", "POST", _ACTION + " (resize)"),
    _op(
        _S + "confirm_resize", PROJECT_MEMBER_OR_ADMIN, "Confirm a server resize", "POST", _ACTION + " (confirmResize)"
    ),
    _op(_S + "revert_resize", PROJECT_MEMBER_OR_ADMIN, "Revert a server resize", "POST", _ACTION + " (revertResize)"),
    _op(
        "os_compute_api:os-migrate-server:migrate",
        PROJECT_MANAGER_OR_ADMIN,
        "Cold migrate a server without specifying a host",
        "POST",
        _ACTION + " (migrate)",
    ),
    _op(
        "os_compute_api:os-migrate-server:migrate:host",
        ADMIN,
        "Cold migrate a server to a specified host",
        "POST",
        _ACTION + " (migrate)",
    ),
    _op("os_compute_api:os-migrations:index", PROJECT_MANAGER_OR_ADMIN, "List migrations", "GET", "/os-migrations"),
    _op(
        "os_compute_api:os-migrations:index:all_projects",
        ADMIN,
        "List migrations for all or cross projects",
        "GET",
        "/os-migrations",
    ),
    _op("os_compute_api:os-migrations:index:host", ADMIN, "List migrations with host info", "GET", "/os-migrations"),
    _op(
        "os_compute_api:servers:migrations:index",
        PROJECT_MANAGER_OR_ADMIN,
        "Lists in-progress live migrations for a given server",
        "GET",
        "/servers/{server_id}/migrations",
    ),
    _op(
        "os_compute_api:servers:migrations:index:host",
        ADMIN,
        "Lists in-progress live migrations for a given server with host info",
        "GET",
        "/servers/{server_id}/migrations",
    ),
    _op(_FLAVOR_MANAGE + "create", ADMIN, "Create a flavor", "POST", "/flavors"),
    _op(_FLAVOR_MANAGE + "update", ADMIN, "Update a flavor (its description, 2.55)", "PUT", "/flavors/{flavor_id}"),
    _op(_FLAVOR_MANAGE + "delete", ADMIN, "Delete a flavor", "DELETE", "/flavors/{flavor_id}"),
    _op(
        _EXTRA_SPECS + "show",
        PROJECT_READER_OR_ADMIN,
        "Show an extra spec of a flavor",
        "GET",
        _EXTRA_SPECS_PATH + "/{flavor_extra_spec_key}",
    ),
    _op(_EXTRA_SPECS + "create", ADMIN, "Create extra specs for a flavor", "POST", _EXTRA_SPECS_PATH),
    _op(
        _EXTRA_SPECS + "update",
        ADMIN,
        "Update an extra spec of a flavor",
        "PUT",
        _EXTRA_SPECS_PATH + "/{flavor_extra_spec_key}",
    ),
    _op(
        _EXTRA_SPECS + "delete",
        ADMIN,
        "Delete an extra spec of a flavor",
        "DELETE",
        _EXTRA_SPECS_PATH + "/{flavor_extra_spec_key}",
    ),
]


def list_rules() -> list[policy.RuleDefault]:
    """Every default rule (the ``oslo.policy.policies`` entry point)."""
    return [*BASE_RULES, *OPERATION_RULES]
