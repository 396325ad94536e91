"""The Arrow compute kernels the tap's JSON path uses, called through ``pyarrow._compute``.

``import pyarrow.compute`` wraps its ~300 kernels in Python functions and scrapes their docstrings:
~60 ms of CPU, a tenth of a small sync through the pipe (issue 15). The same kernels are reached
by name with :func:`pyarrow._compute.call_function` and the same options classes (the file
adapters' Parquet writer does the same); each function here has the signature and defaults of
its ``pyarrow.compute`` namesake for the arguments the tap passes.
"""

from __future__ import annotations

from typing import Any

from pyarrow._compute import (
    CastOptions,
    JoinOptions,
    MatchSubstringOptions,
    ReplaceSliceOptions,
    ReplaceSubstringOptions,
    ScalarAggregateOptions,
    call_function,
)

__all__ = [
    "any_true",
    "binary_join_element_wise",
    "cast",
    "fill_null",
    "if_else",
    "is_finite",
    "match_substring_regex",
    "replace_substring",
    "utf8_replace_slice",
]


def cast(values: Any, target_type: Any) -> Any:
    """``values.cast(target_type)`` (a safe cast): ``Array.cast`` imports ``pyarrow.compute``."""
    return call_function("cast", [values], CastOptions.safe(target_type))


def fill_null(values: Any, fill_value: str) -> Any:
    """``values.fill_null(fill_value)`` for a string array (``coalesce`` with a string scalar)."""
    import pyarrow as pa

    return call_function("coalesce", [values, pa.scalar(fill_value, type=values.type)])


def utf8_replace_slice(strings: Any, start: int, stop: int, replacement: str) -> Any:
    return call_function("utf8_replace_slice", [strings], ReplaceSliceOptions(start, stop, replacement))


def binary_join_element_wise(*strings: Any) -> Any:
    """The last argument is the separator; a null in any argument gives null (``emit_null``)."""
    return call_function("binary_join_element_wise", list(strings), JoinOptions())


def any_true(values: Any) -> Any:
    """``pyarrow.compute.any`` (nulls skipped, false for no value)."""
    return call_function("any", [values], ScalarAggregateOptions(skip_nulls=True, min_count=1))


def match_substring_regex(strings: Any, pattern: str) -> Any:
    return call_function("match_substring_regex", [strings], MatchSubstringOptions(pattern))


def replace_substring(strings: Any, pattern: str, replacement: str) -> Any:
    return call_function("replace_substring", [strings], ReplaceSubstringOptions(pattern, replacement))


def if_else(cond: Any, left: Any, right: Any) -> Any:
    return call_function("if_else", [cond, left, right])


def is_finite(values: Any) -> Any:
    return call_function("is_finite", [values])
