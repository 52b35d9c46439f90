"""The power sync's watched disagreements (``power_observations``) on SQL."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, Delete, Insert, RowMapping, Select, bindparam, false, select

from herald.adapters.sql.tables import power_observations, servers
from herald.domain.power_sync import Disagreement, PowerClass, PowerObservation

_t = power_observations


def _observation(row: RowMapping) -> PowerObservation:
    return PowerObservation(
        server_uuid=row["server_uuid"],
        host=row["host"],
        request_id=row["request_id"],
        disagreement=Disagreement(row["vm_state"], PowerClass(row["power_class"]), row["first_seen_at"]),
    )


class SqlPowerObservationRepository:
    """At most one row per server (its primary key), replaced when the disagreement changes.

    :param connection: an open connection inside the unit of work's transaction.
    """

    _GET: Select[Any] = select(_t).where(_t.c.server_uuid == bindparam("server_uuid"))
    _OF_HOST: Select[Any] = select(_t.c.server_uuid).where(_t.c.host == bindparam("host"))
    _OF_SERVERS_ON: Select[Any] = (
        select(_t)
        .join(servers, servers.c.uuid == _t.c.server_uuid)
        .where(servers.c.host == bindparam("host"), servers.c.deleted == false())
    )
    _INSERT: Insert = _t.insert()
    _DELETE: Delete = _t.delete().where(_t.c.server_uuid == bindparam("b_server_uuid"))
    _DELETE_OF_HOST: Delete = _DELETE.where(_t.c.host == bindparam("b_host"))

    def __init__(self, connection: Connection) -> None:
        self._conn = connection

    def get(self, server_uuid: str) -> PowerObservation | None:
        row = self._conn.execute(self._GET, {"server_uuid": server_uuid}).mappings().first()
        return None if row is None else _observation(row)

    def put(self, observation: PowerObservation) -> None:
        # NOTE: delete then insert: portable, and the writer's transaction holds the server's lock.
        self.delete([observation.server_uuid])
        disagreement = observation.disagreement
        self._conn.execute(
            self._INSERT,
            {
                "server_uuid": observation.server_uuid,
                "host": observation.host,
                "request_id": observation.request_id,
                "vm_state": disagreement.vm_state,
                "power_class": disagreement.power_class.value,
                "first_seen_at": disagreement.since,
            },
        )

    def delete(self, server_uuids: Iterable[str], *, host: str | None = None) -> None:
        if host is None:
            params: list[dict[str, str]] = [{"b_server_uuid": uuid} for uuid in server_uuids]
            stmt = self._DELETE
        else:
            params, stmt = [{"b_server_uuid": uuid, "b_host": host} for uuid in server_uuids], self._DELETE_OF_HOST
        if params:
            self._conn.execute(stmt, params)

    def server_uuids(self, host: str) -> set[str]:
        return set(self._conn.execute(self._OF_HOST, {"host": host}).scalars())

    def of_servers_on(self, host: str) -> dict[str, PowerObservation]:
        """The observations of the non-deleted servers on ``host``, whichever host keeps them (one query)."""
        rows = self._conn.execute(self._OF_SERVERS_ON, {"host": host}).mappings()
        return {row["server_uuid"]: _observation(row) for row in rows}
