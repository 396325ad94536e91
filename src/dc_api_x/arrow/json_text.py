"""The JSON text of decoded values, every number exact: the values of JSON text columns
(``dcapix.json``) and of a tap's JSON documents. orjson's fast path; a
:class:`~dc_api_x.values.JSONNumber` stays a number with all its digits and an integer beyond
64 bits (which orjson refuses) is written with all its digits too."""

from __future__ import annotations

from typing import Any

import orjson

from ..values import JSONNumber, decimal_text, json_default

__all__ = ["json_bytes", "json_text", "json_text_default"]


def json_text_default(value: Any) -> Any:
    """``default=`` for JSON text columns: :func:`~dc_api_x.values.json_default`, except that a
    :class:`~dc_api_x.values.JSONNumber` stays a JSON *number* with all its digits (``orjson.Fragment``)."""
    if isinstance(value, JSONNumber) and value.is_finite():
        return orjson.Fragment(decimal_text(value))
    return json_default(value)


#: The integers orjson writes itself (64-bit signed and unsigned); one beyond them is a Fragment.
_ORJSON_INT_MIN, _ORJSON_INT_MAX = -(2**63), 2**64 - 1


def _big_ints_as_numbers(value: Any) -> Any:
    """``value`` with every ``int`` beyond 64 bits replaced by its digits as an ``orjson.Fragment``
    (orjson refuses such integers; JSON has no limit on them)."""
    t = type(value)
    if t is dict:
        return {k: _big_ints_as_numbers(v) for k, v in value.items()}
    if t is list or t is tuple:
        return [_big_ints_as_numbers(v) for v in value]
    if t is int and not _ORJSON_INT_MIN <= value <= _ORJSON_INT_MAX:
        return orjson.Fragment(str(value))
    return value


def json_bytes(value: Any, option: int | None = None) -> bytes:
    """The JSON text (bytes) of a decoded value, every number exact: orjson's fast path; a
    :class:`~dc_api_x.values.JSONNumber` stays a number with all its digits (:func:`json_text_default`)
    and an integer beyond 64 bits (which orjson refuses) is written with all its digits too."""
    try:
        return orjson.dumps(value, default=json_text_default, option=option)
    except orjson.JSONEncodeError as exc:
        if "64-bit" not in str(exc):
            raise
        return orjson.dumps(_big_ints_as_numbers(value), default=json_text_default, option=option)


def json_text(value: Any) -> str:
    """:func:`json_bytes` as a ``str``: the value of a JSON text column."""
    return json_bytes(value).decode()
