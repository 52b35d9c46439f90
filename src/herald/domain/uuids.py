"""Which strings name a UUID, by the rule every OpenStack API applies to its ids."""

from __future__ import annotations

import uuid


def is_uuid_like(value: object) -> bool:
    """Whether ``value`` is a UUID: 32 ASCII hex digits, dashes anywhere, any case.

    Braces and a ``urn:uuid:`` prefix are allowed as well. ``uuid.UUID`` alone is too lenient:
    it parses with ``int()``, which also takes other scripts' digits, a sign, underscores and
    surrounding whitespace; comparing its canonical digits with the given ones refuses them.
    """
    if not isinstance(value, str):
        return False
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        return False
    digits = value.replace("urn:", "").replace("uuid:", "").strip("{}").replace("-", "").lower()
    return parsed.hex == digits
