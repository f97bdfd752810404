"""DDL dialects: ``get_dialect("postgres" | "duckdb")``."""

from __future__ import annotations

from ..errors import InputError
from .base import Dialect
from .duckdb import DuckDB
from .postgres import Postgres

DIALECTS: dict[str, type[Dialect]] = {
    "postgres": Postgres,
    "postgresql": Postgres,
    "duckdb": DuckDB,
}


def get_dialect(name: str) -> Dialect:
    try:
        return DIALECTS[name.lower()]()
    except KeyError:
        raise InputError(
            f"unknown dialect {name!r}", key="dialect", hint="use postgres or duckdb"
        ) from None


__all__ = ["Dialect", "DuckDB", "Postgres", "get_dialect"]
