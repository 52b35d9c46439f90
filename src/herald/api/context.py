"""Who is calling: the identity the authenticator found, for policy and handlers."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class RequestContext:
    """One request's caller.

    ``system_scope`` is ``"all"`` for a system-scoped token and ``domain_id`` is set for a
    domain-scoped one; a project-scoped token has neither. ``is_admin`` mirrors Nova's
    ``context.is_admin`` (the caller has the ``admin`` role).
    """

    request_id: str
    user_id: str | None
    project_id: str | None
    roles: frozenset[str] = frozenset()
    is_admin: bool = False
    system_scope: str | None = None
    domain_id: str | None = None
    service_roles: frozenset[str] = frozenset()
    user_domain_id: str | None = None
    project_domain_id: str | None = None
    auth_token: str | None = field(default=None, repr=False)

    def policy_credentials(self) -> dict[str, object]:
        """The credentials dict oslo.policy checks, like oslo.context ``to_policy_values``."""
        return {
            "user_id": self.user_id,
            "project_id": self.project_id,
            "roles": sorted(self.roles),
            "is_admin": self.is_admin,
            "system_scope": self.system_scope,
            "domain_id": self.domain_id,
            "service_roles": sorted(self.service_roles),
            "user_domain_id": self.user_domain_id,
            "project_domain_id": self.project_domain_id,
        }

    def policy_key(self) -> tuple[object, ...]:
        """Everything a policy decision on an empty target can depend on (request id excluded)."""
        return (
            self.user_id,
            self.project_id,
            self.roles,
            self.is_admin,
            self.system_scope,
            self.domain_id,
            self.service_roles,
            self.user_domain_id,
            self.project_domain_id,
        )
