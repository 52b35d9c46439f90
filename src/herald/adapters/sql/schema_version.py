"""Whether a database is at the schema this code expects, without loading alembic.

``herald serve`` asks this at every start; alembic (several MB of modules) is only
imported when there is something to upgrade.
"""

from __future__ import annotations

from sqlalchemy import Engine, inspect, text

# The newest migration under migrations/versions (a test keeps the two equal).
HEAD_REVISION = "0011"


def is_current(engine: Engine) -> bool:
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return False
        versions = {row[0] for row in conn.execute(text("SELECT version_num FROM alembic_version"))}
    return versions == {HEAD_REVISION}


def url_is_current(url: str) -> bool:
    """:func:`is_current` for the database at ``url`` (a short-lived engine)."""
    from herald.adapters.sql.engine import make_engine

    engine = make_engine(url)
    try:
        return is_current(engine)
    finally:
        engine.dispose()
