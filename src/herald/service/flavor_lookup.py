"""The one place the use cases resolve a flavor id (so that the flavor store can change behind it)."""

from __future__ import annotations

from herald.domain.flavors import Flavor, get_flavor
from herald.service.ports import UnitOfWork


def find_flavor(uow: UnitOfWork, flavor_id: str) -> Flavor:
    """The flavor ``flavor_id`` names, read inside ``uow``'s transaction.

    :raises FlavorNotFound: there is no such flavor.
    """
    del uow  # NOTE: the built-in flavors need no database; a stored flavor table will.
    return get_flavor(flavor_id)
