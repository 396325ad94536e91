"""Built-in plugin: the ``sql`` adapter (SQLAlchemy 2 Core; PostgreSQL via psycopg 3 / ADBC, SQLite, …).

This module is light on purpose: it registers the adapter by a lazy ``"module:Class"`` string, so
``enable_plugins()`` imports neither SQLAlchemy nor pyarrow. The package holds one module per
concern — :mod:`~dc_api_x.adapters.sql.adapter` (the adapter), one module per backend
(:mod:`~dc_api_x.adapters.sql.postgresql`, :mod:`~dc_api_x.adapters.sql.sqlite`,
:mod:`~dc_api_x.adapters.sql.generic`), :mod:`~dc_api_x.adapters.sql.typemap` (types) and
:mod:`~dc_api_x.adapters.sql.reflection` (the ``sql_reflection`` schema provider); see
``docs/sql.md``.

A plugin that adds a database subclasses :class:`SQLAdapter` and :class:`SQLAlchemyBackend`, both
importable from here (on first access): see :mod:`dc_api_x.ext.sql`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SQLAdapter", "SQLAlchemyBackend", "register_adapters"]

_LAZY = {
    "SQLAdapter": "dc_api_x.adapters.sql.adapter",
    "SQLAlchemyBackend": "dc_api_x.adapters.sql.generic",
}


def register_adapters(registry: Any) -> None:
    """Register the ``sql`` adapter (imported on first use), with the head start ``dcapix run`` may
    give its raw options before importing it (a plain ``postgresql://`` URL's ADBC handle opened in
    a thread: :func:`.preopen.open_ahead`)."""
    registry.register(
        "sql", "dc_api_x.adapters.sql.adapter:SQLAdapter", ahead="dc_api_x.adapters.sql.preopen:open_ahead"
    )


def __getattr__(name: str) -> Any:  # the classes import SQLAlchemy: only when asked for
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
