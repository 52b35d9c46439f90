"""Flavors and their extra specs on SQL (the ``flavors`` and ``flavor_extra_specs`` tables)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from sqlalchemy import Connection, RowMapping, delete, exists, select

from herald.adapters.sql.dialect_insert import dialect_insert
from herald.adapters.sql.tables import flavor_extra_specs, flavors
from herald.domain.flavors import Flavor


def _flavor(row: RowMapping, specs: Mapping[str, str]) -> Flavor:
    return Flavor(
        flavorid=row["flavorid"],
        name=row["name"],
        memory_mb=row["memory_mb"],
        vcpus=row["vcpus"],
        root_gb=row["root_gb"],
        ephemeral_gb=row["ephemeral_gb"],
        swap=row["swap"],
        rxtx_factor=row["rxtx_factor"],
        is_public=row["is_public"],
        disabled=row["disabled"],
        description=row["description"],
        extra_specs=MappingProxyType(dict(specs)),
    )


class SqlFlavorRepository:
    """Flavors by their API id (``flavorid``), on the caller's connection.

    :param connection: an open connection inside the unit of work's transaction.
    """

    def __init__(self, connection: Connection) -> None:
        self._conn = connection

    def _row_id(self, flavorid: str) -> int | None:
        stmt = select(flavors.c.id).where(flavors.c.flavorid == flavorid)
        value: int | None = self._conn.execute(stmt).scalar_one_or_none()
        return value

    def _specs(self, ids: list[int]) -> dict[int, dict[str, str]]:
        found: dict[int, dict[str, str]] = {i: {} for i in ids}
        if ids:
            stmt = select(flavor_extra_specs).where(flavor_extra_specs.c.flavor_id.in_(ids))
            for row in self._conn.execute(stmt).mappings():
                found[row["flavor_id"]][row["key"]] = row["value"]
        return found

    def get(self, flavorid: str) -> Flavor | None:
        """:returns: the flavor with that API id, with its extra specs, or None."""
        row = self._conn.execute(select(flavors).where(flavors.c.flavorid == flavorid)).mappings().first()
        if row is None:
            return None
        return _flavor(row, self._specs([row["id"]])[row["id"]])

    def list(self, *, min_ram: int = 0, min_disk: int = 0) -> list[Flavor]:
        """Flavors with at least ``min_ram`` MB and ``min_disk`` GB, by ``flavorid`` (Nova's default sort)."""
        stmt = (
            select(flavors)
            .where(flavors.c.memory_mb >= min_ram, flavors.c.root_gb >= min_disk)
            .order_by(flavors.c.flavorid)
        )
        rows = list(self._conn.execute(stmt).mappings())
        specs = self._specs([row["id"] for row in rows])
        return [_flavor(row, specs[row["id"]]) for row in rows]

    def name_taken(self, name: str) -> bool:
        return bool(self._conn.execute(select(exists().where(flavors.c.name == name))).scalar())

    def _insert(self) -> Any:
        return dialect_insert(self._conn.dialect.name)

    def add(self, flavor: Flavor) -> bool:
        """Insert ``flavor`` (no extra specs). :returns: False when its id or name is taken (nothing written)."""
        values = {
            "flavorid": flavor.flavorid,
            "name": flavor.name,
            "memory_mb": flavor.memory_mb,
            "vcpus": flavor.vcpus,
            "root_gb": flavor.root_gb,
            "ephemeral_gb": flavor.ephemeral_gb,
            "swap": flavor.swap,
            "rxtx_factor": flavor.rxtx_factor,
            "is_public": flavor.is_public,
            "disabled": flavor.disabled,
            "description": flavor.description,
            "created_at": datetime.now(UTC).replace(tzinfo=None),
        }
        stmt = self._insert()(flavors).values(values).on_conflict_do_nothing().returning(flavors.c.id)
        return self._conn.execute(stmt).first() is not None

    def set_description(self, flavorid: str, description: str | None) -> None:
        self._conn.execute(flavors.update().where(flavors.c.flavorid == flavorid).values(description=description))

    def delete(self, flavorid: str) -> bool:
        """Delete the flavor and its extra specs. :returns: False when there was none."""
        row_id = self._row_id(flavorid)
        if row_id is None:
            return False
        self._conn.execute(delete(flavor_extra_specs).where(flavor_extra_specs.c.flavor_id == row_id))
        self._conn.execute(delete(flavors).where(flavors.c.id == row_id))
        return True

    def update_extra_specs(self, flavorid: str, specs: Mapping[str, str]) -> bool:
        """Add or replace these extra specs. :returns: False when there is no such flavor."""
        row_id = self._row_id(flavorid)
        if row_id is None:
            return False
        if specs:
            # NOTE: an upsert, so that two writers of one key both succeed (the last one wins).
            stmt = self._insert()(flavor_extra_specs)
            stmt = stmt.on_conflict_do_update(
                index_elements=[flavor_extra_specs.c.flavor_id, flavor_extra_specs.c.key],
                set_={"value": stmt.excluded.value},
            )
            self._conn.execute(stmt, [{"flavor_id": row_id, "key": k, "value": v} for k, v in specs.items()])
        return True

    def delete_extra_spec(self, flavorid: str, key: str) -> bool:
        """:returns: False when the flavor has no such key (or there is no such flavor)."""
        row_id = self._row_id(flavorid)
        if row_id is None:
            return False
        result = self._conn.execute(
            delete(flavor_extra_specs).where(flavor_extra_specs.c.flavor_id == row_id, flavor_extra_specs.c.key == key)
        )
        return bool(result.rowcount == 1)
