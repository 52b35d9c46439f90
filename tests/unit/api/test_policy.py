from __future__ import annotations

import os
from pathlib import Path

import pytest
from oslo_config import cfg
from oslo_policy import policy as oslo_policy

from herald.api import policy as policy_module
from herald.api.context import RequestContext
from herald.api.faults import ApiFault
from herald.api.policy import PolicyEnforcer, list_rules

EVENTS = "os_compute_api:os-server-external-events:create"


def parsed_conf() -> cfg.ConfigOpts:
    conf = cfg.ConfigOpts()
    conf([], project="herald", default_config_files=[], default_config_dirs=[])
    return conf


def ctx(
    roles: set[str], project_id: str | None = "p1", system_scope: str | None = None, user_id: str = "u1"
) -> RequestContext:
    return RequestContext(
        request_id="req-x",
        user_id=user_id,
        project_id=project_id,
        roles=frozenset(roles),
        is_admin="admin" in roles,
        system_scope=system_scope,
    )


@pytest.fixture
def enforcer() -> PolicyEnforcer:
    return PolicyEnforcer(parsed_conf())


# Nova's nova/tests/unit/policies/test_server_external_events.py personas.
ALLOWED = {
    "legacy_admin": ctx({"admin"}),
    "project_admin": ctx({"admin", "member", "reader"}),
    "service": ctx({"service"}, project_id="service-project"),
    "other_project_admin": ctx({"admin", "member", "reader"}, project_id="p2"),
}
DENIED = {
    "system_admin": ctx({"admin", "member", "reader"}, project_id=None, system_scope="all"),
    "system_member": ctx({"member", "reader"}, project_id=None, system_scope="all"),
    "system_reader": ctx({"reader"}, project_id=None, system_scope="all"),
    "system_foo": ctx({"foo"}, project_id=None, system_scope="all"),
    "system_service": ctx({"service"}, project_id=None, system_scope="all"),
    "project_manager": ctx({"manager", "member", "reader"}),
    "project_member": ctx({"member", "reader"}),
    "project_reader": ctx({"reader"}),
    "project_foo": ctx({"foo"}),
    "other_project_member": ctx({"member", "reader"}, project_id="p2"),
    "other_project_reader": ctx({"reader"}, project_id="p2"),
    "domain_admin": RequestContext("r", "u1", None, frozenset({"admin"}), True, domain_id="d1"),
}


@pytest.mark.parametrize("name", sorted(ALLOWED))
def test_external_events_allowed(enforcer: PolicyEnforcer, name: str) -> None:
    enforcer.authorize(ALLOWED[name], EVENTS)
    enforcer.authorize(ALLOWED[name], EVENTS)  # cached


@pytest.mark.parametrize("name", sorted(DENIED))
def test_external_events_denied_with_novas_403(enforcer: PolicyEnforcer, name: str) -> None:
    for _ in range(2):  # uncached, then cached
        with pytest.raises(ApiFault) as info:
            enforcer.authorize(DENIED[name], EVENTS)
        assert info.value.status == 403
        assert info.value.body() == (
            b'{"forbidden":{"code":403,"message":"Policy doesn\'t allow '
            b'os_compute_api:os-server-external-events:create to be performed."}}'
        )


def test_owner_rules_use_the_target(enforcer: PolicyEnforcer) -> None:
    member, reader = ctx({"member", "reader"}), ctx({"reader"})
    own, other = {"project_id": "p1"}, {"project_id": "p2"}
    assert enforcer.allowed(member, "os_compute_api:servers:create", own)
    assert not enforcer.allowed(member, "os_compute_api:servers:create", other)
    assert enforcer.allowed(reader, "os_compute_api:servers:show", own)
    assert not enforcer.allowed(reader, "os_compute_api:servers:delete", own)
    assert enforcer.allowed(ctx({"admin"}), "os_compute_api:servers:delete", other)
    assert not enforcer.allowed(member, "os_compute_api:servers:create:forced_host", own)
    assert not enforcer.allowed(member, "os_compute_api:os-services:list")
    assert enforcer.allowed(ctx({"admin"}), "os_compute_api:os-services:list")


def test_unhashable_targets_are_checked_uncached(enforcer: PolicyEnforcer) -> None:
    assert enforcer.allowed(ctx({"reader"}), "os_compute_api:servers:show", {"project_id": "p1", "x": ["a"]})


def test_unregistered_rule_is_a_bug(enforcer: PolicyEnforcer) -> None:
    with pytest.raises(oslo_policy.PolicyNotRegistered):
        enforcer.allowed(ctx({"admin"}), "os_compute_api:nope")


def test_policy_file_overrides_defaults(tmp_path: Path) -> None:
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(f'"{EVENTS}": "role:member"\n')
    enforcer = PolicyEnforcer(parsed_conf(), str(policy_file))
    assert enforcer.allowed(ctx({"member"}), EVENTS)
    assert not enforcer.allowed(ctx({"service"}), EVENTS)
    assert not enforcer.allowed(ctx({"admin"}), EVENTS)


def test_policy_file_from_oslo_policy_option(tmp_path: Path) -> None:
    policy_file = tmp_path / "custom.yaml"
    policy_file.write_text('"context_is_admin": "role:superuser"\n')
    conf = parsed_conf()
    PolicyEnforcer(conf)  # registers [oslo_policy]
    conf.set_override("policy_file", str(policy_file), group="oslo_policy")
    enforcer = PolicyEnforcer(conf)
    assert enforcer.allowed(ctx({"superuser"}), EVENTS)
    assert not enforcer.allowed(ctx({"admin"}), EVENTS)


def test_changed_policy_file_clears_the_cache(tmp_path: Path) -> None:
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text("{}\n")
    enforcer = PolicyEnforcer(parsed_conf(), str(policy_file))
    service = ctx({"service"})
    assert enforcer.allowed(service, EVENTS)
    policy_file.write_text(f'"{EVENTS}": "role:admin"\n')
    stat = policy_file.stat()
    os.utime(policy_file, (stat.st_atime + 10, stat.st_mtime + 10))
    assert enforcer.allowed(service, EVENTS)  # cached until the file is re-checked
    enforcer.reload_if_changed()
    assert not enforcer.allowed(service, EVENTS)


def test_list_rules_is_the_entry_point_target() -> None:
    rules = {rule.name: rule for rule in list_rules()}
    assert policy_module.list_rules is list_rules
    assert rules[EVENTS].check_str == "rule:service_or_admin"
    assert rules["service_or_admin"].check_str == "rule:service_api or rule:context_is_admin"
    assert rules["context_is_admin"].check_str == "role:admin"
    for name in (
        "os_compute_api:servers:create",
        "os_compute_api:servers:create:forced_host",
        "os_compute_api:servers:index",
        "os_compute_api:servers:detail",
        "os_compute_api:servers:show",
        "os_compute_api:servers:delete",
        "os_compute_api:servers:start",
        "os_compute_api:servers:stop",
        "os_compute_api:os-shelve:shelve",
        "os_compute_api:os-shelve:shelve_offload",
        "os_compute_api:os-shelve:unshelve",
        "os_compute_api:os-instance-actions:list",
        "os_compute_api:os-instance-actions:show",
        "os_compute_api:os-instance-actions:events",
        "os_compute_api:os-services:list",
        "os_compute_api:os-extended-server-attributes",
        "compute:servers:create:requested_destination",
    ):
        rule = rules[name]
        assert isinstance(rule, oslo_policy.DocumentedRuleDefault), name
        assert rule.scope_types == ["project"], name
