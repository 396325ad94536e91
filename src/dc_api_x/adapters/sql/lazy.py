"""SQLAlchemy, imported on first use: ``sa = lazy_module("sqlalchemy")`` in the SQL adapter's modules.

Importing SQLAlchemy costs ~0.2 CPU-s (every dialect's base, the ORM-free Core, asyncio). The SQLite
backend reads and discovers file databases through the stdlib ``sqlite3`` driver alone
(:mod:`dc_api_x.adapters.sql.sqlite`), so the SQL adapter's modules must import without it: they
name ``sa.X`` at call time only, through this proxy, and import SQLAlchemy's types for annotations
under ``TYPE_CHECKING``. The first attribute read imports the module (an ``except
sa.exc.SQLAlchemyError`` clause is evaluated only when an exception reaches it).
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

__all__ = ["is_sqlalchemy_error", "lazy_module"]


class _LazyModule:
    """A module imported on the first attribute read."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        object.__setattr__(self, "_name", name)

    def __getattr__(self, attr: str) -> Any:
        return getattr(importlib.import_module(self._name), attr)

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}>"


def lazy_module(name: str) -> Any:
    """A stand-in for module ``name`` that imports it on the first attribute read."""
    return _LazyModule(name)


def is_sqlalchemy_error(exc: BaseException) -> bool:
    """Whether ``exc`` is a ``sqlalchemy.exc.SQLAlchemyError`` (never, when SQLAlchemy was not
    imported: nothing could have raised one), without importing SQLAlchemy."""
    # (getattr: the module may be half imported by another thread)
    cls = getattr(sys.modules.get("sqlalchemy.exc"), "SQLAlchemyError", None)
    return cls is not None and isinstance(exc, cls)
