"""Access IPs as Nova stores and shows them (its IP address fields go through ``netaddr``)."""

from __future__ import annotations

import ipaddress


def normal_ip(value: str | None) -> str | None:
    """``value`` in the form Nova shows it: IPv6 compressed and lowercase (``2001:db8::1``), IPv4 as is.

    As netaddr writes them, an IPv4-mapped address keeps its dotted quad (``::ffff:1.2.3.4``), and
    so does an IPv4-compatible one above ``::ffff`` (``::1.2.3.4``). The empty string (which clears
    an access IP) and None are returned unchanged.
    """
    if not value:
        return value
    address = ipaddress.ip_address(value)
    if isinstance(address, ipaddress.IPv6Address):
        number = int(address)
        if number >> 32 == 0xFFFF:
            return f"::ffff:{ipaddress.IPv4Address(number & 0xFFFFFFFF)}"
        if number >> 32 == 0 and number > 0xFFFF:
            return f"::{ipaddress.IPv4Address(number)}"
    return str(address)
