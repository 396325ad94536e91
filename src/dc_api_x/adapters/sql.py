"""Built-in plugin: the ``sql`` adapter (SQLAlchemy 2 Core; PostgreSQL via psycopg 3 / ADBC, SQLite, …).

This module is light on purpose: it registers the adapter by a lazy ``"module:Class"`` string, so
``enable_plugins()`` imports neither SQLAlchemy nor pyarrow. The implementation lives in
:mod:`dc_api_x.adapters._sql`; see ``docs/sql.md``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["register_adapters"]


def register_adapters(registry: Any) -> None:
    """Register the ``sql`` adapter (imported on first use)."""
    registry.register("sql", "dc_api_x.adapters._sql:SQLAdapter")
