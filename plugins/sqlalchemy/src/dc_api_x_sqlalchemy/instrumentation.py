"""The ``dcapix_instrumentation`` SQLAlchemy engine plugin (``CreateEnginePlugin``).

Loaded by name — ``create_engine(url, plugins=["dcapix_instrumentation"])`` or
``…?plugin=dcapix_instrumentation`` in the URL — through the ``sqlalchemy.plugins`` entry point;
the SQL adapter asks for it on every engine it creates (:mod:`dc_api_x_sqlalchemy.extension`).

Per engine it counts, with SQLAlchemy's ``before_cursor_execute`` / ``after_cursor_execute`` /
``handle_error`` events: ``statements`` (an ``executemany`` is one statement of
``parameter_sets`` sets), ``seconds`` spent executing, ``rows`` (``cursor.rowcount`` where the driver
reports one: rows inserted, updated or deleted; drivers report ``-1`` for most ``SELECT``\\ s) and
``errors``. A statement taking ``slow_ms`` or more is logged (logger ``dc_api_x.sql.slow``, level
WARNING) with its text and its parameters **redacted** — each value replaced by its type name — and
counted as ``slow_statements``.

What bypasses SQLAlchemy's cursor events is not seen: the PostgreSQL backend's ADBC ``COPY`` and
the SQLite backend's raw ``sqlite3``/ADBC fast paths (``arrow: false`` routes reads and writes
through SQLAlchemy, and so through this plugin).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, CreateEnginePlugin, Engine

__all__ = ["EngineFigures", "InstrumentationPlugin", "figures_of", "redacted_parameters"]

log = logging.getLogger("dc_api_x.sql.slow")

#: Engines instrumented in this process → their counters (dropped with the engine).
_FIGURES: weakref.WeakKeyDictionary[Engine, EngineFigures] = weakref.WeakKeyDictionary()


@dataclass
class EngineFigures:
    """The counters of one engine (thread-safe)."""

    slow_ms: float
    statements: int = 0
    parameter_sets: int = 0
    seconds: float = 0.0
    rows: int = 0
    errors: int = 0
    slow_statements: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            return {
                "statements": self.statements,
                "parameter_sets": self.parameter_sets,
                "seconds": round(self.seconds, 6),
                "rows": self.rows,
                "errors": self.errors,
                "slow_statements": self.slow_statements,
            }


def figures_of(engine: Engine) -> EngineFigures | None:
    """The counters of an instrumented engine (``None``: the plugin was not loaded into it)."""
    return _FIGURES.get(engine)


def _slow_ms(url: URL, kwargs: dict[str, Any]) -> float:
    raw = kwargs.pop("dcapix_slow_ms", None)
    if raw is None:
        raw = url.query.get("dcapix_slow_ms")
    if raw is None:
        raw = os.environ.get("DC_API_X_SQL_SLOW_MS") or 1000
    try:
        value = float(raw if not isinstance(raw, (tuple, list)) else raw[-1])
    except (TypeError, ValueError):
        raise ValueError(f"dcapix_instrumentation: slow_ms {raw!r} is not a number of milliseconds") from None
    if value < 0:
        raise ValueError(f"dcapix_instrumentation: slow_ms {raw!r} must be 0 or more")
    return value


def redacted_parameters(parameters: Any, executemany: bool) -> str:
    """Bound parameters with every value replaced by its type name (values may be secrets or
    personal data): ``{'id': <int>, 'email': <str>}``, ``(<int>, <NoneType>)``, ``<1000 parameter sets>``."""
    if executemany and isinstance(parameters, Sequence) and not isinstance(parameters, (str, bytes)):
        first = redacted_parameters(parameters[0], False) if parameters else "-"
        return f"<{len(parameters)} parameter sets, the first: {first}>"
    if isinstance(parameters, Mapping):
        return "{" + ", ".join(f"{k!r}: <{type(v).__name__}>" for k, v in parameters.items()) + "}"
    if isinstance(parameters, Sequence) and not isinstance(parameters, (str, bytes)):
        return "(" + ", ".join(f"<{type(v).__name__}>" for v in parameters) + ")"
    return "<none>" if parameters is None else f"<{type(parameters).__name__}>"


class InstrumentationPlugin(CreateEnginePlugin):
    """Counts and times every statement of the engine it is loaded into (see the module docstring).

    Options: ``dcapix_slow_ms`` as a ``create_engine`` keyword or URL query parameter, else
    ``DC_API_X_SQL_SLOW_MS``, else 1000 (milliseconds; 0 logs every statement).
    """

    def __init__(self, url: URL, kwargs: dict[str, Any]) -> None:
        super().__init__(url, kwargs)
        self.slow_ms = _slow_ms(url, kwargs)

    def update_url(self, url: URL) -> URL:
        return url.difference_update_query(["dcapix_slow_ms"])

    def engine_created(self, engine: Engine) -> None:
        figures = EngineFigures(self.slow_ms)
        _FIGURES[engine] = figures
        slow_s = self.slow_ms / 1000.0
        # the dialect and database name (a whole URL is a secret the log redaction would mask)
        where = f"{engine.dialect.name} database {engine.url.database or '(default)'!r}"

        def before(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
            conn.info.setdefault("dcapix_started", []).append(time.perf_counter())

        def after(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
            started = conn.info.get("dcapix_started")
            elapsed = time.perf_counter() - started.pop() if started else 0.0
            count = getattr(cursor, "rowcount", -1)
            rows = count if isinstance(count, int) and count > 0 else 0
            sets = len(parameters) if many and isinstance(parameters, Sequence) else 1
            slow = elapsed >= slow_s
            with figures._lock:
                figures.statements += 1
                figures.parameter_sets += sets
                figures.seconds += elapsed
                figures.rows += rows
                figures.slow_statements += slow
            if slow:
                log.warning(
                    "slow statement on %s (%.1f ms, %d rows): %s -- parameters: %s",
                    where,
                    elapsed * 1000,
                    rows,
                    " ".join(statement.split())[:2000],
                    redacted_parameters(parameters, many),
                )

        def error(context: Any) -> None:
            conn = context.connection
            started = conn.info.get("dcapix_started") if conn is not None else None
            if started:
                started.pop()
            with figures._lock:
                figures.errors += 1

        event.listen(engine, "before_cursor_execute", before)
        event.listen(engine, "after_cursor_execute", after)
        event.listen(engine, "handle_error", error)
