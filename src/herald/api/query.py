"""Query parameters shared by list APIs, checked the way Nova's query schemas check them."""

from __future__ import annotations

from datetime import UTC, datetime

from oslo_utils import timeutils

from herald.api.edge import ApiRequest
from herald.api.faults import ApiFault


def changes_time(req: ApiRequest, name: str) -> datetime | None:
    """``changes-since`` / ``changes-before``: an ISO 8601 time as naive UTC, or None when absent.

    :raises ApiFault: 400 with Nova's query-parameter message when it is not a date-time.
    """
    raw = req.query.get(name)
    if raw is None:
        return None
    try:
        parsed = timeutils.parse_isotime(raw)
    except ValueError:
        raise ApiFault(
            400, f"Invalid input for query parameters {name}. Value: {raw}. '{raw}' is not a 'date-time'"
        ) from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed
