"""Compute API microversions: parsing, the supported range and negotiation.

Herald speaks Nova's compute API from 2.1 to 2.104 (Nova 34.0.0). The versions
that change something Herald serves:

* 2.0   the legacy ``/v2`` endpoint: version headers are ignored, no version headers in replies
* 2.1   the minimum and the default when no version header is sent
* 2.51  ``volume-extended`` external event
* 2.74  ``host`` / ``hypervisor_hostname`` on server create
* 2.76  ``power-update`` external event
* 2.82  ``accelerator-request-bound`` external event
* 2.91  unshelve to a specific host
* 2.93  ``volume-reimaged`` external event (the last change to the external events API)
* 2.104 the maximum (what ``latest`` means)

Negotiation follows ``nova/api/openstack/wsgi.py`` ``Request.set_api_version_request``
with ``microversion_parse.get_version`` semantics: ``OpenStack-API-Version`` wins
(the last ``compute <ver>`` entry of a comma-separated list; the service name is
case-insensitive), else the legacy ``X-OpenStack-Nova-API-Version`` (the last value),
else 2.1.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import NamedTuple

from herald.api.faults import ApiFault

STANDARD_HEADER = b"openstack-api-version"
LEGACY_HEADER = b"x-openstack-nova-api-version"

_VERSION_RE = re.compile(r"([1-9][0-9]*)\.([1-9][0-9]*|0)")
# A longer number is a well-formed version no API will ever reach (and int() refuses 4,300 digits).
_MAX_DIGITS = 9


class APIVersion(NamedTuple):
    """A compute API version; ordered like a ``(major, minor)`` tuple."""

    major: int
    minor: int

    @classmethod
    def parse(cls, text: str) -> APIVersion:
        """Parse ``X.Y``; raise a 400 ApiFault like Nova's ``InvalidAPIVersionString``.

        :raises UnsupportedVersion: a well-formed version with a number too long to be supported.
        """
        match = _VERSION_RE.fullmatch(text)
        if match is None:
            raise ApiFault(400, f"API Version String {text} is of invalid format. Must be of format MajorNum.MinorNum.")
        if max(len(match.group(1)), len(match.group(2))) > _MAX_DIGITS:
            raise UnsupportedVersion(text)
        return cls(int(match.group(1)), int(match.group(2)))

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"


MIN_VERSION = APIVersion(2, 1)
MAX_VERSION = APIVersion(2, 104)
DEFAULT_VERSION = MIN_VERSION
# What a request on the legacy /v2 endpoint is treated as (Nova's "legacy v2" mode).
LEGACY_V2_VERSION = APIVersion(2, 0)


def version_headers(version: APIVersion | str) -> list[tuple[bytes, bytes]]:
    """The response headers of a versioned resource (Nova adds them to successes and faults)."""
    text = str(version).encode("latin-1")
    return [
        (b"openstack-api-version", b"compute " + text),
        (b"x-openstack-nova-api-version", text),
        (b"vary", b"OpenStack-API-Version"),
        (b"vary", b"X-OpenStack-Nova-API-Version"),
    ]


class UnsupportedVersion(ApiFault):
    """406: a well-formed version outside [MIN_VERSION, MAX_VERSION]; the reply echoes it."""

    def __init__(self, version: APIVersion | str) -> None:
        super().__init__(
            406,
            f"Version {version} is not supported by the API. Minimum is {MIN_VERSION} and maximum is {MAX_VERSION}.",
            headers=version_headers(version),
        )
        self.version = version


def requested_version(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The version string the client asked for, or None (ASGI header pairs, lower-case names)."""
    return _requested(*_version_header_values(headers))


def _version_header_values(headers: Iterable[tuple[bytes, bytes]]) -> tuple[bytes | None, bytes | None]:
    """The standard and legacy header values, repeated headers folded with ',' like a WSGI server."""
    standard: bytes | None = None
    legacy: bytes | None = None
    for name, value in headers:
        if name == STANDARD_HEADER:
            standard = value if standard is None else standard + b"," + value
        elif name == LEGACY_HEADER:
            legacy = value if legacy is None else legacy + b"," + value
    return standard, legacy


def _requested(standard: bytes | None, legacy: bytes | None) -> str | None:
    if standard is not None:
        found = _compute_entry(standard.decode("latin-1"))
        if found is not None:
            return found
    if legacy is not None:
        return legacy.decode("latin-1").split(",")[-1].strip()
    return None


def _compute_entry(header: str) -> str | None:
    for entry in reversed(header.split(",")):
        parts = entry.strip().split(None, 1)
        if len(parts) == 2 and parts[0].lower() == "compute":
            return parts[1].strip()
    return None


def version_from_string(text: str | None) -> APIVersion:
    """Turn a requested version string (or None) into a supported APIVersion or raise 400/406."""
    if text is None:
        return DEFAULT_VERSION
    if text == "latest":
        return MAX_VERSION
    version = APIVersion.parse(text)
    if not MIN_VERSION <= version <= MAX_VERSION:
        raise UnsupportedVersion(version)
    return version


def negotiate(headers: Iterable[tuple[bytes, bytes]]) -> APIVersion:
    """The microversion of a request, from its ASGI headers.

    :raises ApiFault: 400 for a malformed version string, 406 (:class:`UnsupportedVersion`)
        for a version outside the supported range.
    """
    return _negotiated(*_version_header_values(headers))


@functools.lru_cache(maxsize=1024)
def _negotiated(standard: bytes | None, legacy: bytes | None) -> APIVersion:
    # Clients send a handful of distinct headers: remember the outcome (faults are not cached).
    return version_from_string(_requested(standard, legacy))
