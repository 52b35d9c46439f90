"""Shared fixtures: a migrated database per test, on SQLite and (marker ``postgres``) PostgreSQL.

``db_url`` is an empty database: a fresh SQLite file, or a fresh PostgreSQL schema (selected through
``search_path`` in the URL) on the server from ``scripts/test-services``, dropped after the test.
Without ``HERALD_TEST_PG_URL`` the PostgreSQL cases are skipped, unless ``CI`` or
``HERALD_REQUIRE_PG=1`` is set: then they fail, so CI cannot silently skip PostgreSQL.
``amqp_url`` (RabbitMQ, ``HERALD_TEST_AMQP_URL``) follows the same rule.
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from herald.adapters.sql import migrate
from herald.adapters.sql.engine import make_engine
from herald.adapters.sql.uow import SqlUnitOfWork


def _service_url(variable: str) -> str:
    """The URL of a service of ``scripts/test-services``; skips the test (fails it under CI) without it."""
    url = os.environ.get(variable)
    if url:
        return url
    message = f'{variable} is not set: run `eval "$(scripts/test-services)"` first'
    if os.environ.get("CI") or os.environ.get("HERALD_REQUIRE_PG") == "1":
        pytest.fail(message)
    pytest.skip(message)


def _pg_base_url() -> str:
    return _service_url("HERALD_TEST_PG_URL")


@pytest.fixture
def amqp_url() -> str:
    """The RabbitMQ node of ``scripts/test-services`` (``amqp://guest:guest@127.0.0.1:55672/``)."""
    return _service_url("HERALD_TEST_AMQP_URL")


@pytest.fixture(scope="session")
def pg_admin_engine() -> Iterator[Engine]:
    """An engine on the test PostgreSQL database itself (its default schema), for creating test schemas."""
    engine = make_engine(_pg_base_url())
    yield engine
    engine.dispose()


def _pg_schema_url(request: pytest.FixtureRequest) -> Iterator[str]:
    admin: Engine = request.getfixturevalue("pg_admin_engine")
    schema = f"test_{uuid.uuid4().hex[:16]}"
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    url = make_url(_pg_base_url()).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            # NOTE: a test that leaks an open transaction makes this fail instead of hang.
            conn.exec_driver_sql("SET LOCAL lock_timeout = '10s'")
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of an empty database of each kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'herald.sqlite'}"
    else:
        yield from _pg_schema_url(request)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on ``db_url`` after ``migrate.upgrade``."""
    migrate.upgrade(db_url)
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def uow_factory(engine: Engine) -> Callable[[], SqlUnitOfWork]:
    """Makes units of work on the migrated ``engine``."""
    return functools.partial(SqlUnitOfWork, engine)
