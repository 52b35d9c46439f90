"""Nova's JSON fault body and the exception the edge turns into one.

A fault is ``{"<name>": {"code": N, "message": "..."}}`` with the name picked by
status code as in ``nova/api/openstack/wsgi.py`` ``Fault._fault_names``.
"""

from __future__ import annotations

import orjson

FAULT_NAMES: dict[int, str] = {
    400: "badRequest",
    401: "unauthorized",
    403: "forbidden",
    404: "itemNotFound",
    405: "badMethod",
    409: "conflictingRequest",
    413: "overLimit",
    415: "badMediaType",
    429: "overLimit",
    501: "notImplemented",
    503: "serviceUnavailable",
}
DEFAULT_FAULT_NAME = "computeFault"

# Nova answers faults with an explicit charset.
FAULT_CONTENT_TYPE = b"application/json; charset=UTF-8"


def fault_name(status: int) -> str:
    return FAULT_NAMES.get(status, DEFAULT_FAULT_NAME)


def fault_body(status: int, message: str, retry_after: str | None = None) -> bytes:
    """Serialise a fault; ``retryAfter`` is only added to 413/429 like Nova does."""
    detail: dict[str, object] = {"code": status, "message": message}
    if retry_after is not None and status in (413, 429):
        detail["retryAfter"] = retry_after
    return orjson.dumps({fault_name(status): detail})


class ApiFault(Exception):
    """An HTTP error answered as a Nova fault.

    :param status: the HTTP status code.
    :param message: the fault's ``message``.
    :param headers: extra response headers (lower-case byte names), e.g. ``www-authenticate``.
    :param body: the body to answer instead of Nova's fault (the one a middleware in front of Nova gives).
    :param content_type: the body's content type.
    """

    def __init__(
        self,
        status: int,
        message: str,
        headers: list[tuple[bytes, bytes]] | None = None,
        *,
        body: bytes | None = None,
        content_type: bytes = FAULT_CONTENT_TYPE,
    ) -> None:
        super().__init__(status, message)
        self.status = status
        self.message = message
        self.headers = headers or []
        self.content_type = content_type
        self._body = body

    def body(self) -> bytes:
        if self._body is not None:
            return self._body
        retry_after = next((v.decode("latin-1") for k, v in self.headers if k == b"retry-after"), None)
        return fault_body(self.status, self.message, retry_after)

    def __str__(self) -> str:
        return f"{self.status} {fault_name(self.status)}: {self.message}"
