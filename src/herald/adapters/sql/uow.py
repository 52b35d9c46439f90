"""The SQL unit of work: one connection, one transaction, its repositories."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Self

from sqlalchemy import Connection, Engine

from herald.adapters.sql.command_outbox import SqlCommandOutbox
from herald.adapters.sql.engine import READ_ONLY_OPTION
from herald.adapters.sql.repository import (
    SqlActionRepository,
    SqlEventJournal,
    SqlEventWaitRepository,
    SqlFlavorRepository,
    SqlHostRepository,
    SqlKeyPairRepository,
    SqlMigrationRepository,
    SqlPowerObservationRepository,
    SqlServerRepository,
)
from herald.service.ports import (
    ActionRepository,
    CommandOutbox,
    EventJournal,
    EventWaitRepository,
    FlavorRepository,
    HostRepository,
    KeyPairRepository,
    MigrationRepository,
    PowerObservationRepository,
    ServerRepository,
)


class SqlUnitOfWork:
    """One database transaction (``with uow:``); whatever is not committed is rolled back on exit.

    A read-only unit of work on PostgreSQL runs each statement on its own (autocommit).
    On SQLite the transaction starts with ``BEGIN IMMEDIATE`` (see :mod:`herald.adapters.sql.engine`),
    so entering takes the database's write lock and waits up to the busy timeout for it.
    After :meth:`commit` or :meth:`rollback` the unit of work stays usable: the next statement
    starts a new transaction.

    :param engine: from :func:`herald.adapters.sql.engine.make_engine`.
    :raises sqlalchemy.exc.OperationalError: from ``__enter__`` when the database is unreachable
        (or, on SQLite, still locked after the busy timeout).
    """

    servers: ServerRepository
    migrations: MigrationRepository
    hosts: HostRepository
    actions: ActionRepository
    events: EventJournal
    power_observations: PowerObservationRepository
    keypairs: KeyPairRepository
    flavors: FlavorRepository
    event_waits: EventWaitRepository
    commands: CommandOutbox

    def __init__(self, engine: Engine, *, read_only: bool = False) -> None:
        self._engine = engine
        self._read_only = read_only
        self._conn: Connection | None = None

    def __enter__(self) -> Self:
        conn = self._engine.connect()
        if self._read_only:
            conn.execution_options(**{READ_ONLY_OPTION: True})
            if conn.dialect.name == "postgresql":
                # NOTE: at READ COMMITTED each statement reads its own snapshot, in a transaction
                # or not; without one, a read spares its BEGIN and ROLLBACK round trips.
                conn.execution_options(isolation_level="AUTOCOMMIT")
        try:
            conn.begin()
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        self.servers = SqlServerRepository(conn)
        self.migrations = SqlMigrationRepository(conn)
        self.hosts = SqlHostRepository(conn)
        self.actions = SqlActionRepository(conn)
        self.events = SqlEventJournal(conn)
        self.power_observations = SqlPowerObservationRepository(conn)
        self.keypairs = SqlKeyPairRepository(conn)
        self.flavors = SqlFlavorRepository(conn)
        self.event_waits = SqlEventWaitRepository(conn)
        self.commands = SqlCommandOutbox(conn)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.rollback()
        finally:
            conn.close()

    def commit(self) -> None:
        """Commit everything done since the transaction began.

        :raises RuntimeError: outside ``with``.
        """
        self._connection().commit()

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A nested transaction: an exception inside rolls back only what was done inside."""
        with self._connection().begin_nested():
            yield

    def rollback(self) -> None:
        """Discard everything done since the transaction began.

        :raises RuntimeError: outside ``with``.
        """
        self._connection().rollback()

    def _connection(self) -> Connection:
        if self._conn is None:
            raise RuntimeError("SqlUnitOfWork used outside 'with'")
        return self._conn
