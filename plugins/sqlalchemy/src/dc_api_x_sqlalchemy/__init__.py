"""
DCApiX plugin for SQLAlchemy (dc-api-x-sqlalchemy): custom types, connection instrumentation.

This plugin provides, through SQLAlchemy's own plugin system (``CreateEnginePlugin``, entry point
group ``sqlalchemy.plugins``) and dc-api-x's ``register_sql_extensions`` hook:
- ``dcapix_instrumentation``, a SQLAlchemy engine plugin loaded into every engine the SQL adapter
  (``sql``, ``oracle_db`` …) creates: statements, their time, the rows the driver reports and
  errors are counted per engine; slow statements are logged with their parameters redacted; the
  figures appear in the run's metrics (``dcapix run --json``: ``adapters.source.sql``,
  ``adapters.destination.sql``);
- ``network_types``, a type mapping of PostgreSQL ``INET``/``CIDR``/``MACADDR`` (and SQLite columns
  declared so) to JSON Schema strings with ``format: inet`` / ``cidr`` / ``macaddr`` and back, used
  by discovery and table creation — and the pattern for writing your own (see README).

Requirements:
- dc-api-x>=0.2.0
- sqlalchemy>=2.0.25

Environment variables:
- DC_API_X_SQL_SLOW_MS: Optional threshold in milliseconds above which a statement is logged as
  slow (default: 1000); the ``dcapix_slow_ms`` URL query parameter overrides it per engine
"""

from __future__ import annotations

from typing import Any

__all__ = ["register_sql_extensions"]


def register_sql_extensions(registry: Any) -> None:
    """
    Register the SQL adapter extensions.

    The extensions support the following features:
    - instrumentation of every engine the SQL adapter creates (SQLAlchemy ``CreateEnginePlugin``)
    - PostgreSQL network types as JSON Schema formats, both ways

    SQLAlchemy is imported only when a SQL adapter is created.
    """
    registry["sqlalchemy_instrumentation"] = "dc_api_x_sqlalchemy.extension:InstrumentationExtension"
    registry["network_types"] = "dc_api_x_sqlalchemy.types:NetworkTypes"
