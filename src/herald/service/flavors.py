"""Flavors: THE lookup by id (:func:`get_flavor`), and Nova's flavor-manage and extra-specs use cases."""

from __future__ import annotations

import dataclasses
import uuid as uuidlib
from collections.abc import Mapping

from herald.domain.errors import FlavorExists, FlavorExtraSpecNotFound, FlavorNotFound
from herald.domain.flavors import Flavor
from herald.service.ports import UnitOfWork


def get_flavor(uow: UnitOfWork, flavor_id: str, *, admin: bool = True) -> Flavor:
    """The flavor with API id ``flavor_id`` and its extra specs, inside the caller's transaction.

    :param admin: False for a caller who is no admin: a private flavor is then not found (Nova's
        query for such a caller; Herald has no flavor access lists).
    :raises FlavorNotFound: there is none (for this caller).
    """
    flavor = uow.flavors.get(flavor_id)
    if flavor is None or not (admin or flavor.is_public):
        raise FlavorNotFound(flavor_id)
    return flavor


def list_flavors(uow: UnitOfWork, *, min_ram: int = 0, min_disk: int = 0) -> list[Flavor]:
    with uow:
        return uow.flavors.list(min_ram=min_ram, min_disk=min_disk)


def show_flavor(uow: UnitOfWork, flavor_id: str, *, admin: bool = True) -> Flavor:
    with uow:
        return get_flavor(uow, flavor_id, admin=admin)


def create_flavor(uow: UnitOfWork, flavor: Flavor) -> Flavor:
    """Store a new flavor; without ``flavorid`` (empty) it gets a uuid, as Nova gives it.

    :raises FlavorExists: its name or id is taken (Nova's texts).
    """
    if not flavor.flavorid:
        flavor = dataclasses.replace(flavor, flavorid=str(uuidlib.uuid4()))
    with uow:
        if uow.flavors.name_taken(flavor.name):
            raise FlavorExists(f"Flavor with name {flavor.name} already exists.")
        if not uow.flavors.add(flavor):
            raise FlavorExists(f"Flavor with ID {flavor.flavorid} already exists.")
        uow.commit()
    return flavor


def update_description(uow: UnitOfWork, flavor_id: str, description: str | None) -> Flavor:
    """:raises FlavorNotFound: no such flavor."""
    with uow:
        get_flavor(uow, flavor_id)
        uow.flavors.set_description(flavor_id, description)
        flavor = get_flavor(uow, flavor_id)
        uow.commit()
    return flavor


def delete_flavor(uow: UnitOfWork, flavor_id: str) -> None:
    """Servers keep their copy of it. :raises FlavorNotFound: no such flavor."""
    with uow:
        if not uow.flavors.delete(flavor_id):
            raise FlavorNotFound(flavor_id)
        uow.commit()


def extra_specs(uow: UnitOfWork, flavor_id: str, *, admin: bool = True) -> dict[str, str]:
    """:raises FlavorNotFound: no such flavor."""
    with uow:
        return dict(get_flavor(uow, flavor_id, admin=admin).extra_specs)


def extra_spec(uow: UnitOfWork, flavor_id: str, key: str, *, admin: bool = True) -> str:
    """:raises FlavorNotFound, FlavorExtraSpecNotFound: no such flavor, or no such key."""
    specs = extra_specs(uow, flavor_id, admin=admin)
    if key not in specs:
        raise FlavorExtraSpecNotFound(flavor_id, key)
    return specs[key]


def update_extra_specs(uow: UnitOfWork, flavor_id: str, specs: Mapping[str, str]) -> None:
    """Add or replace these extra specs. :raises FlavorNotFound: no such flavor."""
    with uow:
        if not uow.flavors.update_extra_specs(flavor_id, specs):
            raise FlavorNotFound(flavor_id)
        uow.commit()


def delete_extra_spec(uow: UnitOfWork, flavor_id: str, key: str) -> None:
    """:raises FlavorNotFound, FlavorExtraSpecNotFound: no such flavor, or no such key."""
    with uow:
        get_flavor(uow, flavor_id)
        if not uow.flavors.delete_extra_spec(flavor_id, key):
            raise FlavorExtraSpecNotFound(flavor_id, key)
        uow.commit()
