"""Arrow compute kernels called by name through ``pyarrow._compute``, without importing
:mod:`pyarrow.compute`: that module wraps its ~300 functions in Python when imported (~60 ms of
CPU idle, ~150 ms on a loaded machine: a fifth of a 50,000-entry ``dcapix run``), and the read path
needs a dozen kernels. The core's Parquet writer does the same (issue 15). ``Array.cast``,
``Array.is_null`` and ``Table.filter`` import :mod:`pyarrow.compute` themselves, so the read path
calls :func:`cast`, ``call("is_null", a)`` and ``call("filter", a, mask)`` instead.
"""

from __future__ import annotations

from typing import Any

from pyarrow._compute import CastOptions, SetLookupOptions, StrptimeOptions, call_function

__all__ = ["call", "cast", "is_in", "strptime"]


def call(name: str, *args: Any, options: Any = None) -> Any:
    """The kernel ``name`` on ``args`` (arrays or scalars) with its default options or ``options``."""
    return call_function(name, list(args), options)


def cast(values: Any, typ: Any) -> Any:
    """``values.cast(typ)`` (a safe cast: overflow, truncation and invalid UTF-8 raise)."""
    return call_function("cast", [values], CastOptions.safe(typ))


def is_in(values: Any, value_set: Any) -> Any:
    return call_function("is_in", [values], SetLookupOptions(value_set=value_set))


def strptime(text: Any, format: str, unit: str) -> Any:
    return call_function("strptime", [text], StrptimeOptions(format, unit, error_is_null=False))
