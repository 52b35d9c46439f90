"""The server command outbox (``command_outbox``) on SQL: each row holds one message as the bus codec encodes it."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, delete, func, or_, select, update

from herald.adapters.bus.codec import CodecError, decode, encode
from herald.adapters.sql.tables import command_outbox
from herald.domain.messages import AgentMessage
from herald.service.ports import QueuedCommand

logger = logging.getLogger(__name__)

_co = command_outbox


class SqlCommandOutbox:
    """One row per command and host, by id (the order the agent must see them in).

    :param connection: an open connection inside the unit of work's transaction.
    """

    def __init__(self, connection: Connection) -> None:
        self._conn = connection

    def add(self, commands: Sequence[tuple[str, AgentMessage]], now: datetime) -> list[int]:
        """Record commands claimed at ``now``: the recording process publishes them itself after its commit.

        :raises herald.adapters.bus.codec.CodecError: a message the bus could not carry.
        """
        ids: list[int] = []
        for host, message in commands:
            body = encode(message).decode()
            stmt = _co.insert().values(host=host, body=body, created_at=now, claimed_at=now).returning(_co.c.id)
            ids.append(int(self._conn.execute(stmt).scalar_one()))
        return ids

    def claim(self, *, after_id: int, claimed_before: datetime, now: datetime, limit: int) -> list[QueuedCommand]:
        """Take up to ``limit`` free rows above ``after_id``, by id (see :class:`~herald.service.ports.CommandOutbox`).

        A row whose body this version cannot read stays claimed (any newer relay may send it once
        the claim lapses) and is logged.
        """
        stmt = (
            select(_co.c.id, _co.c.host, _co.c.body)
            .where(_co.c.id > after_id, or_(_co.c.claimed_at.is_(None), _co.c.claimed_at < claimed_before))
            .order_by(_co.c.id)
            .limit(limit)
        )
        if self._conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True)
        rows = self._conn.execute(stmt).all()
        if not rows:
            return []
        self._conn.execute(update(_co).where(_co.c.id.in_([row.id for row in rows])).values(claimed_at=now))
        claimed: list[QueuedCommand] = []
        for row in rows:
            try:
                message = decode(row.body.encode())
            except CodecError as exc:
                logger.error(
                    "Command %d for host %s cannot be read (%s); left for another relay", row.id, row.host, exc
                )
                continue
            claimed.append(QueuedCommand(row.id, row.host, message))  # type: ignore[arg-type]
        return claimed

    def release(self, ids: Sequence[int]) -> None:
        if ids:
            self._conn.execute(update(_co).where(_co.c.id.in_(list(ids))).values(claimed_at=None))

    def remove(self, ids: Sequence[int]) -> None:
        if ids:
            self._conn.execute(delete(_co).where(_co.c.id.in_(list(ids))))

    def count(self) -> int:
        return int(self._conn.execute(select(func.count()).select_from(_co)).scalar_one())
