"""NullNotifier: notifications are off (Nova's default: no ``[oslo_messaging_notifications] driver``)."""

from __future__ import annotations

from collections.abc import Mapping


class NullNotifier:
    """Sends nothing; ``enabled`` is False so callers do not even build payloads."""

    enabled = False

    def notify(
        self,
        event_type: str,
        payload: Mapping[str, object],
        *,
        publisher_id: str,
        priority: str = "INFO",
        context: Mapping[str, str | None] | None = None,
    ) -> None:
        return None

    def close(self) -> None:
        return None
