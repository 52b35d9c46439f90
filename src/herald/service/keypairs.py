"""Key pairs: a user's public keys by name, which servers name at creation (``key_name``)."""

from __future__ import annotations

from herald.domain.errors import Invalid, KeyPairExists, KeypairLimitExceeded, KeypairNotFound
from herald.domain.model import KeyPair
from herald.service.ports import UnitOfWork

# Nova's [quota] key_pairs default.
MAX_KEY_PAIRS = 100


def create_keypair(uow: UnitOfWork, keypair: KeyPair) -> KeyPair:
    """Store a new key pair (its key material made or checked by the caller).

    :raises KeypairLimitExceeded: the user has as many key pairs as the quota allows.
    :raises KeyPairExists: the user already has a key pair of that name.
    """
    with uow:
        if uow.keypairs.count(keypair.user_id) >= MAX_KEY_PAIRS:
            raise KeypairLimitExceeded()
        stored = uow.keypairs.add(keypair)
        if stored is None:
            raise KeyPairExists(keypair.name)
        uow.commit()
    return stored


def get_keypair(uow: UnitOfWork, user_id: str, name: str) -> KeyPair:
    """:raises KeypairNotFound: the user has no key pair of that name."""
    with uow:
        keypair = uow.keypairs.get(user_id, name)
    if keypair is None:
        raise KeypairNotFound(name, user_id)
    return keypair


def list_keypairs(uow: UnitOfWork, user_id: str, *, limit: int | None, marker: str | None) -> list[KeyPair]:
    """The user's key pairs by name, after ``marker`` (a key pair name).

    :raises Invalid: ``marker`` names none of the user's key pairs.
    """
    with uow:
        if marker is not None and uow.keypairs.get(user_id, marker) is None:
            raise Invalid(f"marker [{marker}] not found")
        return uow.keypairs.list(user_id, limit=limit, after=marker)


def delete_keypair(uow: UnitOfWork, user_id: str, name: str) -> None:
    """:raises KeypairNotFound: the user has no key pair of that name."""
    with uow:
        if not uow.keypairs.delete(user_id, name):
            raise KeypairNotFound(name, user_id)
        uow.commit()
