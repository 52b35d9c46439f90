"""Schema migrations, run programmatically (no alembic.ini needed)."""

from __future__ import annotations

import threading
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from herald.adapters.sql.engine import make_engine

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# NOTE: alembic keeps the running migration's context in module globals; one upgrade at a time per process.
_ALEMBIC_LOCK = threading.Lock()


def alembic_config(url: str) -> Config:
    """An alembic Config for the migrations shipped in this package, pointed at ``url``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # NOTE: ConfigParser interpolation would eat a '%' in a URL-encoded password.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Create the schema, or bring it up to ``revision``, in one transaction.

    Safe to run concurrently from several processes: SQLite serializes them on its write lock,
    PostgreSQL on an advisory lock.

    :param url: the database URL (as for :func:`herald.adapters.sql.engine.make_engine`).
    :param revision: the alembic revision to reach.
    :raises sqlalchemy.exc.SQLAlchemyError: the database refused.
    """
    engine = make_engine(url)
    try:
        with _ALEMBIC_LOCK, engine.connect() as connection:
            config = alembic_config(url)
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    finally:
        engine.dispose()


def current(url: str) -> str | None:
    """:returns: the database's current revision, or None before the first upgrade."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def head() -> str | None:
    """:returns: the newest revision shipped in this package."""
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
