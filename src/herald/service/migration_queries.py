"""Reading migration records: ``GET /os-migrations`` and a server's in-progress live migrations."""

from __future__ import annotations

from herald.domain.model import Migration
from herald.service.common import Caller, load_server
from herald.service.ports import MigrationQuery, UnitOfWork

# Nova lists a server's migrations only while a live migration runs (Herald runs none yet).
LIVE_IN_PROGRESS = ("queued", "preparing", "running", "post-migrating")


def list_migrations(uow: UnitOfWork, query: MigrationQuery) -> list[Migration]:
    """:raises MarkerNotFound: the query's marker names no migration."""
    with uow:
        return uow.migrations.list(query)


def server_live_migrations(uow: UnitOfWork, caller: Caller, uuid: str) -> tuple[str, list[Migration]]:
    """The server's project and its live migrations in progress.

    :raises ServerNotFound: no such server, or not the caller's.
    """
    with uow:
        server = load_server(uow, caller, uuid)
        query = MigrationQuery(server_uuid=uuid, migration_type="live-migration", statuses=LIVE_IN_PROGRESS)
        return server.project_id, uow.migrations.list(query)
