"""dialect_insert: each database's own INSERT (for ON CONFLICT), loaded only where it is used."""

from __future__ import annotations

import subprocess
import sys

import pytest
from sqlalchemy.dialects import postgresql, sqlite

from herald.adapters.sql.dialect_insert import dialect_insert


def test_each_dialect_gets_its_own_insert() -> None:
    assert dialect_insert("postgresql") is postgresql.insert
    assert dialect_insert("sqlite") is sqlite.insert


def test_a_dialect_herald_does_not_run_on_is_refused() -> None:
    with pytest.raises(ValueError, match="mysql"):
        dialect_insert("mysql")


def test_the_sql_adapters_load_no_dialect_by_themselves() -> None:
    code = (
        "import sys, herald.adapters.sql.uow, herald.adapters.sql.fake_machines;"
        "print(sorted(m for m in sys.modules if m.startswith('sqlalchemy.dialects.')))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"
