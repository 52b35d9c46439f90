"""Authorization: an oslo.policy Enforcer over :mod:`herald.api.policies` with a decision cache.

Policy decisions depend only on the rule, the caller's identity and the target. The
external events API always checks an empty target, so its decisions are cached per
(rule, identity): after the first request a check is one dict lookup. Rules reloaded
from a changed policy file (checked at most once a second) clear the cache.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from oslo_config import cfg
from oslo_policy import policy

from herald.api.context import RequestContext
from herald.api.faults import ApiFault
from herald.api.policies import list_rules

__all__ = ["PolicyEnforcer", "list_rules"]

logger = logging.getLogger(__name__)

_CACHE_LIMIT = 8192
_RELOAD_CHECK_SECONDS = 1.0


class PolicyEnforcer:
    """Checks Nova's policy rules for a :class:`RequestContext`.

    :param conf: the oslo.config ConfigOpts holding ``[oslo_policy]``; the options are registered on it.
    :param policy_file: a policy file (yaml) overriding the defaults; None uses ``[oslo_policy] policy_file``.
    """

    def __init__(self, conf: cfg.ConfigOpts, policy_file: str | None = None) -> None:
        self._enforcer = policy.Enforcer(conf, policy_file=policy_file)
        # The defaults changed on purpose (Nova's new RBAC); do not warn at every start.
        self._enforcer.suppress_default_change_warnings = True
        self._enforcer.register_defaults(list_rules())
        self._enforcer.load_rules()
        self._rules_seen = self._enforcer.rules
        self._checked_at = time.monotonic()
        self._cache: dict[tuple[object, ...], bool] = {}

    def authorize(self, context: RequestContext, rule: str, target: Mapping[str, object] | None = None) -> None:
        """Allow or refuse ``rule`` for ``context`` on ``target`` (None: the empty target).

        :raises ApiFault: 403 "Policy doesn't allow <rule> to be performed." when refused,
            including a token of the wrong scope.
        """
        if not self.allowed(context, rule, target):
            raise ApiFault(403, f"Policy doesn't allow {rule} to be performed.")

    def allowed(self, context: RequestContext, rule: str, target: Mapping[str, object] | None = None) -> bool:
        """Whether ``rule`` allows ``context`` on ``target`` (None: the empty target)."""
        self._maybe_reload()
        key = self._cache_key(context, rule, target)
        if key is not None:
            cached = self._cache.get(key)
            if cached is not None:
                return cached
        result = self._enforce(context, rule, target or {})
        if key is not None:
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = result
        return result

    def _enforce(self, context: RequestContext, rule: str, target: Mapping[str, object]) -> bool:
        creds = context.policy_credentials()
        # do_raise=False: a token of the wrong scope is a plain "no" (Nova answers both with 403).
        result = bool(self._enforcer.authorize(rule, dict(target), creds, do_raise=False))
        if not result:
            logger.debug("Policy check for %s failed with credentials %s", rule, creds)
        return result

    @staticmethod
    def _cache_key(
        context: RequestContext, rule: str, target: Mapping[str, object] | None
    ) -> tuple[object, ...] | None:
        if not target:
            return (rule, context.policy_key())
        try:
            return (rule, context.policy_key(), frozenset(target.items()))
        except TypeError:  # an unhashable target value: do not cache
            return None

    def _maybe_reload(self) -> None:
        now = time.monotonic()
        if now - self._checked_at >= _RELOAD_CHECK_SECONDS:
            self._checked_at = now
            self.reload_if_changed()

    def reload_if_changed(self) -> None:
        """Re-read the policy file if it changed (done at most once a second on its own)."""
        self._enforcer.load_rules()
        if self._enforcer.rules is not self._rules_seen:
            logger.info("Policy rules changed; clearing the decision cache")
            self._rules_seen = self._enforcer.rules
            self._cache.clear()
