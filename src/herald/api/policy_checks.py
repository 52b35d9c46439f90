"""oslo.policy's extension rule checks (``http:``, ``https:``, and any a package adds), loaded on first use.

oslo.policy loads every check kind registered under the ``oslo.policy.rule_checks`` entry point the
first time it parses a rule, and its own ``http`` kind imports requests, about 17 MB in each API
worker, although Herald's default rules (and most operators' policy files) never name it. This
registers the same kinds, found from the installed packages' metadata, with factories that import
a kind's class only when a rule uses it. A rule naming ``http:`` behaves exactly as before.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points

from oslo_policy import _checks

GROUP = "oslo.policy.rule_checks"

CheckFactory = Callable[[str, str], _checks.Check]


def _on_first_use(entry_point: EntryPoint) -> CheckFactory:
    def make(kind: str, match: str) -> _checks.Check:
        check_class: CheckFactory = entry_point.load()
        return check_class(kind, match)

    return make


def install() -> None:
    """Register the extension kinds lazily, unless oslo.policy has loaded them already."""
    # NOTE: oslo.policy has no public hook for this; extension_checks is the cache its parser reads
    # (None until its first parse), so filling it first only changes when each class is imported.
    if _checks.extension_checks is None:
        _checks.extension_checks = {ep.name: _on_first_use(ep) for ep in entry_points(group=GROUP)}
