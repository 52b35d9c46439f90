"""Values Nova stores for every server that Herald derives from what it models.

The API's server views and the versioned notifications show the same values, so both
take them from here.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from herald.domain.model import Server

DEFAULT_AVAILABILITY_ZONE = "nova"

_HOSTNAME_INVALID = re.compile(r"[^\w.-]+", re.ASCII)


@dataclass(frozen=True, slots=True)
class FixedIp:
    """The one fixed IPv4 address and MAC of a port (Herald's network backend assigns no others)."""

    address: str
    mac: str
    version: int = 4


def hostname(name: str) -> str:
    """Nova's ``sanitize_hostname``, roughly: lower case, spaces and underscores to dashes, 63 chars."""
    text = _HOSTNAME_INVALID.sub("", name.lower().replace(" ", "-").replace("_", "-"))
    return text[:63].strip("-.") or "server"


def server_hostname(server: Server) -> str:
    """The hostname the server was given (2.90), else the one Nova derives from its name at creation."""
    return server.hostname or hostname(server.name)


def reservation_id(uuid: str) -> str:
    """Nova's ``r-xxxxxxxx`` reservation id, derived from the uuid of a request's first server."""
    return f"r-{uuid[-8:]}"


def server_reservation_id(server: Server) -> str:
    """The reservation id of the request that created the server."""
    return server.reservation_id or reservation_id(server.uuid)


def fixed_ip(port_id: str) -> FixedIp:
    """A stable address and ``fa:16:3e`` MAC (Neutron's default prefix) for ``port_id``."""
    digest = hashlib.sha1(port_id.encode(), usedforsecurity=False).digest()
    return FixedIp(
        address=f"10.{digest[0]}.{digest[1]}.{digest[2] % 254 + 1}",
        mac="fa:16:3e:" + ":".join(f"{b:02x}" for b in digest[3:6]),
    )


def availability_zone(server: Server) -> str | None:
    """A server gets the default zone when it is scheduled; one that never was has none."""
    scheduled = server.host is not None or server.launched_at is not None
    return DEFAULT_AVAILABILITY_ZONE if scheduled else None
