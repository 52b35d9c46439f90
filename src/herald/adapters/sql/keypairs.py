"""Key pairs in the ``key_pairs`` table, unique by (user, name)."""

from __future__ import annotations

from sqlalchemy import Connection, RowMapping, delete, func, select
from sqlalchemy.exc import IntegrityError

from herald.adapters.sql.tables import key_pairs
from herald.domain.model import KeyPair


def _keypair(row: RowMapping) -> KeyPair:
    return KeyPair(
        id=row["id"],
        user_id=row["user_id"],
        name=row["name"],
        type=row["type"],
        fingerprint=row["fingerprint"],
        public_key=row["public_key"],
        created_at=row["created_at"],
    )


class SqlKeyPairRepository:
    """:param connection: an open connection inside the unit of work's transaction."""

    def __init__(self, connection: Connection) -> None:
        self._conn = connection

    def add(self, keypair: KeyPair) -> KeyPair | None:
        values = {
            "user_id": keypair.user_id,
            "name": keypair.name,
            "type": keypair.type,
            "fingerprint": keypair.fingerprint,
            "public_key": keypair.public_key,
            "created_at": keypair.created_at,
        }
        try:
            # NOTE: in a savepoint, so that a duplicate leaves the unit of work's transaction usable.
            with self._conn.begin_nested():
                new_id = self._conn.execute(key_pairs.insert().returning(key_pairs.c.id), values).scalar_one()
        except IntegrityError:
            return None
        return KeyPair(**{**values, "id": new_id})

    def get(self, user_id: str, name: str) -> KeyPair | None:
        stmt = select(key_pairs).where(key_pairs.c.user_id == user_id, key_pairs.c.name == name)
        row = self._conn.execute(stmt).mappings().first()
        return None if row is None else _keypair(row)

    def list(self, user_id: str, *, limit: int | None = None, after: str | None = None) -> list[KeyPair]:
        stmt = select(key_pairs).where(key_pairs.c.user_id == user_id).order_by(key_pairs.c.name)
        if after is not None:
            stmt = stmt.where(key_pairs.c.name > after)
        if limit is not None:
            stmt = stmt.limit(limit)
        return [_keypair(row) for row in self._conn.execute(stmt).mappings()]

    def count(self, user_id: str) -> int:
        stmt = select(func.count()).select_from(key_pairs).where(key_pairs.c.user_id == user_id)
        return int(self._conn.execute(stmt).scalar_one())

    def delete(self, user_id: str, name: str) -> bool:
        stmt = delete(key_pairs).where(key_pairs.c.user_id == user_id, key_pairs.c.name == name)
        return self._conn.execute(stmt).rowcount > 0
