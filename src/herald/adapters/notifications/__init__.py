"""Notifiers: Nova's versioned notifications through oslo.messaging, or none at all.

oslo.messaging (and the eventlet, kombu and amqp it brings) is imported only when
notifications are on: a process that sends none does not pay for it.
"""

from __future__ import annotations

from collections.abc import Sequence

from herald.adapters.notifications.null import NullNotifier
from herald.service.ports import Notifier

# Nova's [notifications] notification_format values that send the versioned notifications.
VERSIONED_FORMATS = frozenset({"both", "versioned"})


def sends_versioned(notification_format: str, drivers: Sequence[str]) -> bool:
    """Nova's rule: a versioned format and at least one driver that is not ``noop``."""
    return notification_format in VERSIONED_FORMATS and any(d != "noop" for d in drivers)


def make_notifier(
    *,
    notification_format: str,
    drivers: Sequence[str],
    topics: Sequence[str],
    transport_url: str | None,
    config_files: Sequence[str],
) -> Notifier:
    """The notifier the options ask for; a :class:`NullNotifier` when they ask for none."""
    if not sends_versioned(notification_format, drivers):
        return NullNotifier()
    from herald.adapters.notifications.oslo import OsloMessagingNotifier

    return OsloMessagingNotifier.from_config(
        drivers=drivers, topics=topics, transport_url=transport_url, config_files=config_files
    )


__all__ = ["VERSIONED_FORMATS", "NullNotifier", "make_notifier", "sends_versioned"]
