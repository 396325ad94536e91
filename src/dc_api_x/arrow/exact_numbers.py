"""Exact numbers between Python and Arrow: a float64 or integer column never rounds or wraps a
number silently (:func:`exact_float`, :class:`InexactNumberError`), and a number a float64 /
int64 column does not hold travels as JSON number text (:data:`~.schema.NUMBER_META`,
:func:`number_text_field`) with every digit."""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ..values import JSONNumber, decimal_text
from .schema import NUMBER_META

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

__all__ = ["InexactNumberError", "exact_float", "number_text", "number_text_field", "number_text_schema"]


class InexactNumberError(ValueError):
    """A number a float64 column would round (raised by :func:`exact_float`)."""


def exact_float(value: int | Decimal) -> float:
    """``float(value)`` when a float64 holds ``value`` exactly (as the digits it is written with),
    else :class:`ValueError` naming the value: a number is never rounded silently."""
    try:
        out = float(value)
    except OverflowError:
        out = float("inf")
    if isinstance(value, int):
        if out - out == 0.0 and int(out) == value:
            return out
    elif out - out == 0.0 and Decimal(repr(out)) == value:
        return out
    text = str(value) if isinstance(value, int) else decimal_text(value)
    if len(text) > 60:
        text = str(value) if len(str(value)) <= 60 else f"{text[:28]}…{text[-28:]}"
    shown = text
    if out - out != 0.0:
        reason = "is beyond the range of a float64 (double) column"
    else:
        digits = len(text.lstrip("-").replace(".", "").strip("0")) or 1
        reason = (
            f"has {digits} significant digits, more than a float64 (double) column holds: it would be "
            f"rounded to {out!r}"
        )
    raise InexactNumberError(
        f'{shown} {reason}, so it is not written (declare the field "format": "decimal" for a decimal '
        f"column, or write it as JSON text)"
    )


def number_text(value: Any) -> str:
    """A JSON number's exact text (for a column of JSON number text, :data:`NUMBER_META`)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise ValueError(f"{_short_repr(value)} is not a number")
    if isinstance(value, float):
        if value - value != 0.0:
            raise ValueError(f"{value!r} cannot be written as JSON (NaN/Infinity)")
        return repr(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value} cannot be written as JSON (NaN/Infinity)")
        text = getattr(value, "text", None)  # a JSONNumber as its document wrote it
        return text if type(value) is JSONNumber and text is not None else decimal_text(value)
    return str(value)


def number_text_field(f: pa.Field) -> pa.Field:
    """``f`` as a column of JSON number text (:data:`NUMBER_META`): a number field whose values a
    float64 / int64 column would not hold, carried with every digit."""
    import pyarrow as pa

    return pa.field(f.name, pa.string(), f.nullable, metadata={NUMBER_META: b"true"})


def number_text_schema(schema: pa.Schema, name: str | None) -> pa.Schema | None:
    """``schema`` with its float / integer column ``name`` turned into JSON number text
    (:func:`number_text_field`), or ``None`` when ``name`` is no such column."""
    import pyarrow.types as pt

    i = schema.get_field_index(name or "")
    if i < 0:
        return None
    f = schema.field(i)
    if f.metadata or not (pt.is_floating(f.type) or pt.is_integer(f.type)):
        return None
    return schema.set(i, number_text_field(f))


#: A JSON number (kept as written) and the looser forms text files use (``+1``, ``.5``, ``007``).
_JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")


_LOOSE_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def _number_value(text: str) -> int | Decimal:
    """A number's text as an exact Python number (``int``, or a :class:`JSONNumber` keeping the text
    when it is JSON's form of a number); :class:`ValueError` for text that is no number."""
    text = text.strip()
    if _JSON_NUMBER.fullmatch(text):
        if text.lstrip("-").isdigit():
            return int(text)
        number = JSONNumber(text)
        number.text = text
        return number
    if _LOOSE_NUMBER.fullmatch(text):
        return int(text) if text.lstrip("+-").isdigit() else JSONNumber(text)
    raise ValueError(f"{_short_repr(text)} is not a number")


def _exact_float_column(col: Any, f: pa.Field) -> Any:
    """Number text (or any text) → a float column, refusing what a float64 would round: Arrow's
    cast rounds silently, so texts with 16+ digits in a row are checked exactly, one by one."""
    import pyarrow as pa
    import pyarrow.compute as pc

    long_runs = pc.match_substring_regex(col, r"[0-9.]{16}")
    if pc.any(long_runs).as_py():
        for text, hit in zip(col.to_pylist(), long_runs.to_pylist(), strict=True):
            if hit:
                try:
                    value = _number_value(text)
                except (ArithmeticError, ValueError):
                    continue  # not a number: the cast below names it
                exact_float(value)
    if isinstance(col, pa.ChunkedArray) and col.num_chunks == 0:
        return pa.chunked_array([], type=f.type)
    return col.cast(f.type, safe=True)


def _integer_range(typ: pa.DataType) -> tuple[int, int] | None:
    import pyarrow as pa

    if not pa.types.is_integer(typ):
        return None
    bits = typ.bit_width
    if pa.types.is_signed_integer(typ):
        return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return 0, 2**bits - 1


def _check_int_range(values: Sequence[Any], typ: pa.DataType) -> None:
    """Refuse (:class:`InexactNumberError`) an integer beyond the range of the integer column ``typ``."""
    low, high = _integer_range(typ) or (None, None)
    if low is None or high is None:
        return
    for v in values:
        if type(v) is int and not low <= v <= high:
            text = str(v) if len(str(v)) <= 60 else f"{str(v)[:28]}…{str(v)[-28:]}"
            raise InexactNumberError(
                f"integer {text} is outside the range of {typ} ({low} to {high}), so it is not written "
                '(declare the field "format": "decimal" for a decimal column, or write it as JSON text)'
            )


def _short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
