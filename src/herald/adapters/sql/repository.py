"""The SQL repositories, one module per aggregate; import them from here."""

from __future__ import annotations

from herald.adapters.sql.actions import SqlActionRepository
from herald.adapters.sql.event_waits import SqlEventWaitRepository
from herald.adapters.sql.flavors import SqlFlavorRepository
from herald.adapters.sql.hosts import SqlHostRepository
from herald.adapters.sql.journal import SqlEventJournal
from herald.adapters.sql.keypairs import SqlKeyPairRepository
from herald.adapters.sql.power_observations import SqlPowerObservationRepository
from herald.adapters.sql.servers import SqlMigrationRepository, SqlServerRepository

__all__ = [
    "SqlActionRepository",
    "SqlEventJournal",
    "SqlEventWaitRepository",
    "SqlFlavorRepository",
    "SqlHostRepository",
    "SqlKeyPairRepository",
    "SqlMigrationRepository",
    "SqlPowerObservationRepository",
    "SqlServerRepository",
]
