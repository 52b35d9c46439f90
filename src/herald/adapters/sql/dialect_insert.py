"""The INSERT construct of a database's own dialect (for ON CONFLICT), imported on first use.

A PostgreSQL process then never loads SQLite's dialect, nor an embedded (SQLite) one PostgreSQL's:
modules stay in a process's memory for its whole life.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from typing import Any

DIALECTS = ("postgresql", "sqlite")


@functools.cache
def dialect_insert(dialect_name: str) -> Callable[..., Any]:
    """``sqlalchemy.dialects.<dialect_name>.insert``.

    :raises ValueError: a dialect Herald does not run on.
    """
    if dialect_name not in DIALECTS:
        raise ValueError(f"unsupported database dialect {dialect_name!r}")
    insert: Callable[..., Any] = importlib.import_module(f"sqlalchemy.dialects.{dialect_name}").insert
    return insert
