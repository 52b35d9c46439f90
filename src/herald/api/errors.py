"""The ONE table from Herald's exceptions to HTTP status codes.

A class not in the table inherits its nearest listed ancestor's status. Anything
that is neither an :class:`ApiFault` nor a listed :class:`HeraldError` is a bug:
it is logged with its traceback and answered as a 500 ``computeFault`` naming only
the exception class (like Nova's ``expected_errors``), never a traceback or HTML.
"""

from __future__ import annotations

import logging
import time

from herald.api.faults import ApiFault
from herald.domain import errors
from herald.service.writer import Unavailable

logger = logging.getLogger(__name__)

# Seconds between two warnings about 503 answers (an overload can bring thousands a second).
REFUSAL_LOG_INTERVAL = 10.0


class _RefusalLog:
    """One warning per interval for the 503s answered since the last one, not one per request."""

    def __init__(self, interval: float) -> None:
        self._interval = interval
        self._count = 0
        self._since = time.monotonic() - interval

    def note(self, message: str) -> None:
        self._count += 1
        now = time.monotonic()
        if now - self._since >= self._interval:
            logger.warning(
                "Answered 503 to %d requests since the last such warning (the last: %s)", self._count, message
            )
            self._count, self._since = 0, now


_REFUSALS = _RefusalLog(REFUSAL_LOG_INTERVAL)

STATUS_BY_ERROR: dict[type[errors.HeraldError], int] = {
    errors.NotFound: 404,
    errors.Invalid: 400,
    errors.Conflict: 409,
    # NOTE: Nova answers a create that names a host it cannot use with 400 (servers.py create).
    errors.NoValidHost: 400,
    errors.Forbidden: 403,
    # Nova turns NotSupported into 400 for every API method.
    errors.NotSupportedByDriver: 400,
    # The agents cannot be reached now; the client may try again.
    errors.BusUnavailable: 503,
}

UNEXPECTED_MESSAGE = "Unexpected API Error. Please contact the Herald administrator and attach the API log.\n{cls}"


def status_for(exc: errors.HeraldError) -> int | None:
    """The status of a Herald error, or None when it is not meant to reach the API."""
    for cls in type(exc).__mro__:
        status = STATUS_BY_ERROR.get(cls)
        if status is not None:
            return status
    return None


def fault_for(exc: BaseException) -> ApiFault:
    """The fault to answer for an exception raised while handling a request."""
    if isinstance(exc, ApiFault):
        return exc
    if isinstance(exc, Unavailable):
        # NOTE: nothing of the request was recorded; the client may send it again as it is.
        _REFUSALS.note(str(exc))
        return ApiFault(503, str(exc), [(b"retry-after", str(exc.retry_after).encode("ascii"))])
    if isinstance(exc, errors.HeraldError):
        status = status_for(exc)
        if status is not None:
            return ApiFault(status, exc.text)
    logger.error("Unexpected exception in API method", exc_info=exc)
    return ApiFault(500, UNEXPECTED_MESSAGE.format(cls=type(exc)))
