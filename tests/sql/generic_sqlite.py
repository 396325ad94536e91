"""A SQL-dialect plugin written the way a third party adds a database (as dc-api-x-oracle-db will):
one backend module on the public interface (:mod:`dc_api_x.ext.sql`), an adapter subclass that
selects it, and a ``register_adapters`` hook.

Here the "new database" is SQLite driven through the *generic* SQLAlchemy backend, so the tests run
the generic read and write paths (server-side cursor, ``executemany``, delete + insert merge,
``ALTER TABLE … ADD COLUMN``, drop + rename swap) against a real database. (Types SQLite has no
name for — decimals, date-times, JSON — are the built-in SQLite backend's business: through
SQLAlchemy's type binding they would need the backend's own column types.)
"""

from __future__ import annotations

from typing import Any

from dc_api_x.adapters.sql import SQLAdapter, SQLAlchemyBackend


class GenericSQLiteBackend(SQLAlchemyBackend):
    """SQLite through the generic backend; only what SQLite's SQL lacks is overridden."""

    dialects = ("sqlite",)

    def default_schema(self, conn: Any = None) -> str:
        return "main"

    def create_schema(self, conn: Any, schema: str) -> None:
        """SQLite has no CREATE SCHEMA (a schema is an attached database)."""

    def start_value(self, value: Any, prop: Any) -> Any:
        return value  # SQLite compares what it stores


class GenericSQLiteAdapter(SQLAdapter):
    name = "generic_sqlite"
    backends = {"sqlite": GenericSQLiteBackend}


def register_adapters(registry: Any) -> None:
    registry.register("generic_sqlite", "tests.sql.generic_sqlite:GenericSQLiteAdapter")
