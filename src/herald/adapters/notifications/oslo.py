"""OsloMessagingNotifier: Nova's versioned notifier, on oslo.messaging.

Nova (``nova/rpc.py``) sends versioned notifications through
``oslo_messaging.Notifier(get_notification_transport(conf), topics=[notifications]
versioned_notifications_topics)``; so does this adapter, so the operator's settings mean
what they mean for Nova:

* ``[oslo_messaging_notifications] driver``: ``messagingv2`` (the broker, the
  envelope consumers expect), ``messaging``, ``log`` (one log line per notification on the
  ``oslo.messaging.notification.<event_type>`` logger), ``routing``, ``noop``.
* ``[oslo_messaging_notifications] transport_url``, else ``[DEFAULT] transport_url``;
  ``retry`` and the ``[oslo_messaging_rabbit]`` group are read by oslo.messaging itself
  from the same configuration files.

Delivery errors are logged by oslo.messaging and never raised. With ``retry = -1``
(oslo.messaging's default) a send blocks until the broker is back, as in Nova: callers
send from worker threads.
"""

from __future__ import annotations

import importlib
import logging
import warnings
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any

from oslo_config import cfg

logger = logging.getLogger(__name__)

GROUP = "oslo_messaging_notifications"


def import_oslo_messaging() -> ModuleType:
    """oslo.messaging, imported on first use.

    Its import pulls in eventlet (through oslo.service and futurist) even though nothing here
    uses it (no monkey patching, no hub); the deprecation warnings raised by that import say
    nothing about Herald, so they are silenced.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return importlib.import_module("oslo_messaging")


class _Context(dict[str, Any]):
    """The request context oslo.messaging sends next to the payload.

    A plain dict is dropped by oslo.messaging (it redacts contexts through ``redacted_copy()``);
    this one has nothing secret to redact.
    """

    def redacted_copy(self) -> _Context:
        return _Context(self)

    def to_dict(self) -> dict[str, Any]:
        return dict(self)


class OsloMessagingNotifier:
    """Versioned notifications through an oslo.messaging ``Notifier``.

    :param transport: an oslo.messaging notification transport (closed by :meth:`close`).
    :param drivers: oslo.messaging notification drivers, by entry-point name.
    :param topics: Nova's ``[notifications] versioned_notifications_topics``.
    """

    enabled = True

    def __init__(self, transport: Any, *, drivers: Sequence[str], topics: Sequence[str]) -> None:
        messaging = import_oslo_messaging()
        # NOTE: Notifier(driver=) takes a single name; a list of drivers only comes through the
        # transport's configuration, as Nova's [oslo_messaging_notifications] driver does.
        transport.conf.set_override("driver", list(drivers), group=GROUP)
        self._transport = transport
        self._notifier = messaging.Notifier(transport, topics=list(topics))
        self._by_publisher: dict[str, Any] = {}

    @classmethod
    def from_config(
        cls,
        *,
        drivers: Sequence[str],
        topics: Sequence[str],
        transport_url: str | None,
        config_files: Sequence[str],
    ) -> OsloMessagingNotifier:
        """Read oslo.messaging's own options from ``config_files`` (the service's), then apply ours.

        :param transport_url: None lets oslo.messaging choose: ``[oslo_messaging_notifications]
            transport_url``, else ``[DEFAULT] transport_url``.
        """
        messaging = import_oslo_messaging()
        conf = cfg.ConfigOpts()
        conf([], project="herald", default_config_files=list(config_files), default_config_dirs=[])
        transport = messaging.get_notification_transport(conf, url=transport_url)
        logger.info("Versioned notifications on: drivers %s, topics %s", ", ".join(drivers), ", ".join(topics))
        return cls(transport, drivers=drivers, topics=topics)

    def notify(
        self,
        event_type: str,
        payload: Mapping[str, object],
        *,
        publisher_id: str,
        priority: str = "INFO",
        context: Mapping[str, str | None] | None = None,
    ) -> None:
        notifier = self._by_publisher.get(publisher_id)
        if notifier is None:
            notifier = self._by_publisher[publisher_id] = self._notifier.prepare(publisher_id=publisher_id)
        send = getattr(notifier, priority.lower())
        send(_Context(context or {}), event_type, dict(payload))

    def close(self) -> None:
        self._transport.cleanup()
