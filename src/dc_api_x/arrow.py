"""JSON Schema ⇄ Arrow conversions used by the batch type and by every columnar adapter.

:mod:`pyarrow` is imported inside the functions, never at module import, so importing this module is
cheap. The JSON Schema conventions (shared by every adapter) are:

=====================================================  =============================================
JSON Schema                                            Arrow
=====================================================  =============================================
``integer``                                            ``int64``
``number``                                             ``float64``
``string`` or ``number`` + ``format: decimal``         ``decimal128(p, s)`` (``string`` when the
(+ ``x-precision``, ``x-scale``)                       precision is unknown: never a float)
``integer`` + ``format: decimal`` (or an ``integer``   ``decimal128(p, 0)``, ``p`` = ``x-precision``
with ``x-precision`` of 19 or more)                    or 38 (``decimal256`` above 38)
``boolean``                                            ``bool``
``string`` + ``format: date-time``                     ``timestamp[us, tz=UTC]``
… + ``x-timezone: false``                              ``timestamp[us]`` (no zone)
``string`` + ``format: date``                          ``date32``
``string`` + ``format: time``                          ``time64[us]``
``string`` + ``contentEncoding: base64``               ``binary``
``object`` with ``properties``                         ``struct`` (recursively)
``object`` without properties / ``x-json: true``       ``string`` holding JSON text (field metadata
                                                       ``dcapix.json = true``)
``array`` with ``items``                               ``list`` (recursively)
``string``                                             ``string``
=====================================================  =============================================

Over 700 lines because both directions (records → Arrow, Arrow → records and JSON text) and the
casts between them share this type table, its metadata markers (JSON text, exact decimals, zones)
and the translation of Arrow errors into one-line messages; splitting by direction would make each
half import the other. The next candidates to move out are the exact-number conversion (with
``json_text``/``json_bytes`` and ``decimal_property``) and the database text forms (``inet_text``).
"""

from __future__ import annotations

import base64
import datetime as _dt
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import orjson

from .values import (
    JSONNumber,
    arrow_errors,
    decimal_text,
    error_line,
    fit_decimal,
    json_default,
    json_form,
    json_loads,
    parse_datetime,
    parse_time,
)

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

__all__ = [
    "JSON_META",
    "NUMBER_META",
    "ConversionError",
    "InexactNumberError",
    "arrow_to_jsonschema",
    "arrow_to_records",
    "cast_table",
    "decimal_property",
    "exact_float",
    "first_variant",
    "inet_text",
    "is_json_property",
    "jsonschema_field",
    "jsonschema_to_arrow",
    "json_bytes",
    "json_text",
    "json_text_default",
    "json_types",
    "number_text",
    "number_text_field",
    "number_text_schema",
    "rebatch",
    "records_to_arrow",
    "records_to_arrow_exact",
]

#: Arrow field metadata key marking a string column that holds JSON text.
JSON_META = b"dcapix.json"
#: Arrow field metadata key marking a string column that holds JSON *number* text, every digit kept
#: (a ``number`` field of a text destination whose values a float64 does not hold).
NUMBER_META = b"dcapix.number"


def json_types(prop: Mapping[str, Any]) -> tuple[set[str], bool]:
    """The set of non-null JSON types of a property and whether it is nullable."""
    t = prop.get("type")
    if t is None:
        for key in ("anyOf", "oneOf"):
            if key in prop:
                types: set[str] = set()
                nullable = False
                for sub in prop[key]:
                    st, sn = json_types(sub)
                    types |= st
                    nullable |= sn
                return types, nullable
        return set(), True
    if isinstance(t, str):
        t = [t]
    types = {x for x in t if x != "null"}
    return types, "null" in t or not types


def first_variant(prop: Mapping[str, Any]) -> Mapping[str, Any]:
    """The first variant of an ``anyOf`` / ``oneOf`` property that has a type (else ``prop``)."""
    for key in ("anyOf", "oneOf"):
        if key in prop:
            for sub in prop[key]:
                if json_types(sub)[0]:
                    return sub
    return prop


def _is_json_blob(prop: Mapping[str, Any], types: set[str]) -> bool:
    if prop.get("x-json"):
        return True
    if "object" in types and not prop.get("properties"):
        return True
    if "array" in types and not prop.get("items"):
        return True
    return len(types) > 1 and not types <= {"integer", "number"} and not types <= {"string"}


def is_json_property(prop: Mapping[str, Any] | None) -> bool:
    """Whether a property's values are JSON documents kept as JSON text (``x-json``, objects
    without ``properties``, arrays without ``items``, mixed types)."""
    if not prop:
        return False
    return _is_json_blob(prop, json_types(prop)[0])


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


#: The precision of a decimal integer column declared without one: decimal128's largest.
INTEGER_DECIMAL_PRECISION = 38
#: The most decimal digits an int64 holds in full (its range ends at 9223372036854775807).
_INT64_DIGITS = 18


def decimal_property(prop: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The decimal property (``string`` + ``format: decimal``) that a numeric property stands for, or
    ``None`` for one that is no decimal: a ``number`` or ``integer`` with ``format: decimal``, and an
    ``integer`` whose ``x-precision`` is beyond what an int64 holds (19 digits or more). An
    integer's decimal has scale 0 and, without ``x-precision``, precision 38 (``decimal128(38, 0)``:
    a value beyond it is refused, never rounded)."""
    types, _ = json_types(prop)
    if not types or not types <= {"integer", "number"}:
        return None
    p = prop.get("x-precision")
    if types == {"integer"}:
        if prop.get("format") != "decimal" and not (p is not None and int(p) > _INT64_DIGITS):
            return None
        return {
            **prop,
            "format": "decimal",
            "x-precision": int(p) if p is not None else INTEGER_DECIMAL_PRECISION,
            "x-scale": int(prop.get("x-scale") or 0),
        }
    return prop if prop.get("format") == "decimal" else None


def _field_type(prop: Mapping[str, Any]) -> tuple[pa.DataType, dict[bytes, bytes] | None]:
    import pyarrow as pa

    prop = first_variant(prop)
    types, _ = json_types(prop)
    fmt = prop.get("format")
    if _is_json_blob(prop, types):
        return pa.string(), {JSON_META: b"true"}
    exact = decimal_property(prop)
    if exact is not None:  # a number or integer declared decimal: the decimal column, every digit kept
        prop, types, fmt = exact, {"string"}, "decimal"
    if types == {"integer"}:
        return pa.int64(), None
    if types <= {"integer", "number"} and types:
        return pa.float64(), None
    if types == {"boolean"}:
        return pa.bool_(), None
    if types == {"object"}:
        fields = [jsonschema_field(n, p) for n, p in prop["properties"].items()]
        return pa.struct(fields), None
    if types == {"array"}:
        item_type, item_meta = _field_type(prop["items"])
        return pa.list_(pa.field("item", item_type, metadata=item_meta)), None
    if types == {"string"}:
        if fmt == "decimal":
            p, s = prop.get("x-precision"), prop.get("x-scale")
            if p is not None and s is not None and 0 < int(p) <= 76:
                return (pa.decimal128 if int(p) <= 38 else pa.decimal256)(int(p), int(s)), None
            return pa.string(), {b"dcapix.decimal": b"true"}
        if fmt == "date-time":
            tz = None if prop.get("x-timezone") is False else "UTC"
            return pa.timestamp("us", tz=tz), None
        if fmt == "date":
            return pa.date32(), None
        if fmt == "time":
            return pa.time64("us"), None
        if prop.get("contentEncoding") == "base64":
            return pa.binary(), None
    return pa.string(), None


def jsonschema_field(name: str, prop: Mapping[str, Any]) -> pa.Field:
    """The (nullable) Arrow field of one JSON Schema property."""
    import pyarrow as pa

    typ, meta = _field_type(prop)
    return pa.field(name, typ, nullable=True, metadata=meta)


def jsonschema_to_arrow(schema: Mapping[str, Any]) -> pa.Schema:
    """The Arrow schema for a stream's JSON Schema (every field nullable)."""
    import pyarrow as pa

    return pa.schema([jsonschema_field(n, p) for n, p in (schema.get("properties") or {}).items()])


def _arrow_type_to_json(t: pa.DataType, meta: Mapping[bytes, bytes] | None) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.types as pt

    if meta and meta.get(JSON_META) == b"true":
        return {"type": ["object", "array", "string", "number", "boolean", "null"], "x-json": True}
    if meta and meta.get(b"dcapix.decimal") == b"true":
        return {"type": ["string", "null"], "format": "decimal"}
    if pt.is_boolean(t):
        return {"type": ["boolean", "null"]}
    if pt.is_integer(t):
        return {"type": ["integer", "null"]}
    if pt.is_floating(t):
        return {"type": ["number", "null"]}
    if pt.is_decimal(t):
        return {
            "type": ["string", "null"],
            "format": "decimal",
            "x-precision": t.precision,
            "x-scale": t.scale,
        }
    if pt.is_timestamp(t):
        out: dict[str, Any] = {"type": ["string", "null"], "format": "date-time"}
        if t.tz is None:
            out["x-timezone"] = False
        return out
    if pt.is_date(t):
        return {"type": ["string", "null"], "format": "date"}
    if pt.is_time(t):
        return {"type": ["string", "null"], "format": "time"}
    if pt.is_binary(t) or pt.is_large_binary(t) or pt.is_fixed_size_binary(t):
        return {"type": ["string", "null"], "contentEncoding": "base64"}
    if pt.is_struct(t):
        return {
            "type": ["object", "null"],
            "properties": {
                t.field(i).name: _arrow_type_to_json(t.field(i).type, t.field(i).metadata)
                for i in range(t.num_fields)
            },
        }
    if pt.is_list(t) or pt.is_large_list(t):
        vf = t.value_field
        return {"type": ["array", "null"], "items": _arrow_type_to_json(vf.type, vf.metadata)}
    if pt.is_dictionary(t):
        return _arrow_type_to_json(t.value_type, meta)
    if t == pa.null():
        return {"type": ["string", "null"]}
    return {"type": ["string", "null"]}


def arrow_to_jsonschema(schema: pa.Schema) -> dict[str, Any]:
    """The JSON Schema of records with this Arrow schema (the inverse of :func:`jsonschema_to_arrow`)."""
    return {
        "type": "object",
        "properties": {f.name: _arrow_type_to_json(f.type, f.metadata) for f in schema},
    }


# --------------------------------------------------------------------------------- values
class ConversionError(ValueError):
    """A value that does not fit its Arrow type. ``field`` names the column (dotted for nested);
    ``detail`` is the message without the ``field '…': `` prefix (for callers that name the field
    themselves)."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.field = field
        self.detail = message
        super().__init__(f"field {field!r}: {message}" if field else message)


def _integer_range(typ: pa.DataType) -> tuple[int, int] | None:
    import pyarrow as pa

    if not pa.types.is_integer(typ):
        return None
    bits = typ.bit_width
    if pa.types.is_signed_integer(typ):
        return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return 0, 2**bits - 1


def conversion_message(exc: BaseException, values: Sequence[Any], typ: pa.DataType) -> str:
    """One line for a column that did not convert to ``typ``: an integer out of the type's range is
    named with that range (not pyarrow's "Python int too large to convert to C long")."""
    bounds = _integer_range(typ)
    if bounds is not None:
        lo, hi = bounds
        for v in values:
            if isinstance(v, int) and not isinstance(v, bool) and not lo <= v <= hi:
                return f"integer {v} is outside the range of {typ} ({lo} to {hi})"
    return error_line(exc)


def _to_arrow_value(value: Any, typ: pa.DataType, meta: Mapping[bytes, bytes] | None) -> Any:
    """One Python value (native or its JSON form) converted for ``pa.array(..., type=typ)``.

    Raises :class:`ValueError` / :class:`TypeError` when the value does not fit (never rounds).
    """
    import pyarrow.types as pt

    if value is None:
        return None
    if meta and meta.get(JSON_META) == b"true":
        if isinstance(value, str):
            # a JSON column whose value is a string: keep it as a JSON string literal
            return orjson.dumps(value).decode()
        return json_text(value)
    if meta and meta.get(NUMBER_META) == b"true":
        return number_text(value)
    if pt.is_decimal(typ):
        if isinstance(value, bool):
            raise ValueError(f"{value!r} is not a decimal")
        try:
            dec = value if isinstance(value, Decimal) else Decimal(str(value).strip())
        except ArithmeticError:
            raise ValueError(f"{value!r} is not a decimal") from None
        try:  # Arrow rescales `dec` itself; this only refuses what it would round or overflow
            fit_decimal(dec, typ.scale, typ.precision)
        except ValueError as exc:
            raise ValueError(f"{value!r} {exc}") from None
        return dec
    if pt.is_timestamp(typ):
        if isinstance(value, str):
            value = parse_datetime(value)
        elif isinstance(value, _dt.date) and not isinstance(value, _dt.datetime):
            value = _dt.datetime(value.year, value.month, value.day)
        if not isinstance(value, _dt.datetime):
            raise ValueError(f"{value!r} is not a date-time")
        if typ.tz is not None and value.tzinfo is None:
            value = value.replace(tzinfo=_dt.timezone.utc)
        elif typ.tz is None and value.tzinfo is not None:
            value = value.astimezone(_dt.timezone.utc).replace(tzinfo=None)
        return value
    if pt.is_date(typ):
        if isinstance(value, str):
            if len(value.strip()) <= 10:
                return _dt.date.fromisoformat(value.strip())
            value = parse_datetime(value)
        if isinstance(value, _dt.datetime):
            if value.time() != _dt.time(0) and value.utcoffset() in (None, _dt.timedelta(0)):
                raise ValueError(f"{value!r} is not a date (it has a time of day)")
            return value.date()
        if isinstance(value, _dt.date):
            return value
        raise ValueError(f"{value!r} is not a date")
    if pt.is_time(typ):
        if isinstance(value, str):
            return parse_time(value)
        if isinstance(value, _dt.time):
            return value
        raise ValueError(f"{value!r} is not a time")
    if pt.is_binary(typ) or pt.is_large_binary(typ) or pt.is_fixed_size_binary(typ):
        if isinstance(value, str):
            return base64.b64decode(value, validate=True)
        if isinstance(value, (bytes, bytearray, memoryview)):
            return bytes(value)
        raise ValueError(f"{type(value).__name__} value is not bytes nor base64 text")
    if pt.is_string(typ) or pt.is_large_string(typ):
        if isinstance(value, str):
            return value
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (dict, list)):
            return json_text(value)
        return str(json_form(value))
    if pt.is_integer(typ):
        if isinstance(value, bool):
            raise ValueError(f"{value!r} is not an integer")
        if isinstance(value, int):
            _check_int_range((value,), typ)  # (Arrow's "Python int too large" names no range)
            return value
        if isinstance(value, float):
            if not value.is_integer():
                raise ValueError(f"{value!r} is not an integer")
            return int(value)
        if isinstance(value, Decimal):
            if value != value.to_integral_value():
                raise ValueError(f"{value!r} is not an integer")
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                raise ValueError(f"{value!r} is not an integer") from None
        raise ValueError(f"{value!r} is not an integer")
    if pt.is_floating(typ):
        if isinstance(value, bool):
            raise ValueError(f"{value!r} is not a number")
        if isinstance(value, float):
            return value
        if isinstance(value, (int, Decimal)):
            return exact_float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                raise ValueError(f"{value!r} is not a number") from None
        raise ValueError(f"{value!r} is not a number")
    if pt.is_boolean(typ):
        if isinstance(value, bool):
            return value
        if isinstance(value, str):
            low = value.strip().lower()
            if low in ("true", "t", "1", "yes", "y"):
                return True
            if low in ("false", "f", "0", "no", "n"):
                return False
        elif isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise ValueError(f"{value!r} is not a boolean")
    if pt.is_struct(typ):
        if isinstance(value, str):
            value = json_loads(value)
        if not isinstance(value, Mapping):
            raise ValueError(f"{type(value).__name__} value is not an object")
        return {
            typ.field(i).name: _to_arrow_value(
                value.get(typ.field(i).name), typ.field(i).type, typ.field(i).metadata
            )
            for i in range(typ.num_fields)
        }
    if pt.is_list(typ) or pt.is_large_list(typ):
        if isinstance(value, str):
            value = json_loads(value)
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{type(value).__name__} value is not an array")
        vf = typ.value_field
        return [_to_arrow_value(v, vf.type, vf.metadata) for v in value]
    return value


def _first_value(values: Sequence[Any]) -> Any:
    for v in values:
        if v is not None:
            return v
    return None


def _string_column(values: Sequence[Any], typ: pa.DataType) -> pa.Array | None:
    """Vectorised path for JSON-form strings (ISO timestamps, dates, decimal strings): build a string
    array and let Arrow parse it. ``None`` when the values are not all strings or Arrow refuses them
    (the per-value path then decides, and names the bad value)."""
    import pyarrow as pa
    import pyarrow.types as pt

    errors = arrow_errors()
    try:
        strings = pa.array(values, type=pa.string())
    except errors:
        return None
    try:
        if pt.is_timestamp(typ):
            if typ.tz is not None:
                try:
                    return strings.cast(typ)
                except errors:  # no zone offset in the text: the convention reads naive as UTC
                    return strings.cast(pa.timestamp(typ.unit)).cast(typ)
            try:
                return strings.cast(typ)
            except errors:  # offsets in the text of a naive column: converted to UTC wall time
                return strings.cast(pa.timestamp(typ.unit, tz="UTC")).cast(typ)
        return strings.cast(typ)
    except errors:
        return None


def _column_to_arrow(values: Sequence[Any], f: pa.Field) -> pa.Array:
    """One column of Python values → an Arrow array of ``f.type``, column-wise when possible."""
    import pyarrow as pa
    import pyarrow.types as pt

    typ, meta = f.type, f.metadata
    errors = arrow_errors()
    # JSON text and JSON number text: per value (a string must not pass as either)
    is_json = bool(meta and (meta.get(JSON_META) == b"true" or meta.get(NUMBER_META) == b"true"))
    if is_json and meta and meta.get(JSON_META) == b"true" and (pt.is_string(typ) or pt.is_large_string(typ)):
        # JSON text in one pass (what _to_arrow_value does per value). Decoded at once: orjson's
        # bytes keep a large allocation while alive, str does not (10x the time for 100k values)
        dumps, default = orjson.dumps, json_text_default
        try:
            return pa.array(
                [None if v is None else dumps(v, default=default).decode() for v in values], type=typ
            )
        except (TypeError, orjson.JSONEncodeError):
            pass  # the per-value path names the value
        except errors:
            pass
    if not is_json:
        if pt.is_integer(typ) or pt.is_floating(typ):
            # infer first: pa.array(type=int64) would silently truncate 2.5 to 2
            try:
                arr = pa.array(values, from_pandas=False)
            except errors:
                arr = None
            if arr is not None:
                if arr.type == typ:
                    return arr
                if (
                    pt.is_integer(arr.type)
                    or pt.is_floating(arr.type)
                    or pt.is_null(arr.type)
                    # decimal → float: Arrow's cast rounds without a check (exact_float refuses)
                    or (pt.is_decimal(arr.type) and pt.is_integer(typ))
                ):
                    try:
                        return arr.cast(typ, safe=True)
                    except errors:
                        pass
        elif pt.is_timestamp(typ) or pt.is_date(typ) or pt.is_decimal(typ):
            if isinstance(_first_value(values), str):
                arr = _string_column(values, typ)
                if arr is not None:
                    return arr
            elif pt.is_date(typ) and any(isinstance(v, _dt.datetime) for v in values):
                pass  # pa.array would drop a time of day silently: the per-value path checks it
            else:
                try:
                    return pa.array(values, type=typ, from_pandas=False)
                except errors:
                    pass
        elif not (pt.is_binary(typ) or pt.is_large_binary(typ)) or not isinstance(_first_value(values), str):
            try:
                return pa.array(values, type=typ, from_pandas=False)
            except errors:
                pass
    return pa.array([_to_arrow_value(v, typ, meta) for v in values], type=typ)


def _record_columns(records: Sequence[Mapping[str, Any]], names: list[str]) -> list[Sequence[Any]]:
    """The values of each of ``names`` in ``records`` (``None`` where a record lacks the field).

    Records that all hold every field are transposed at C speed (``itemgetter`` + ``zip``: several
    times faster than one ``dict.get`` per value); otherwise one list per field is built."""
    if not names or not records:
        return [[None] * len(records) for _ in names]
    from operator import itemgetter

    try:
        rows = list(map(itemgetter(*names), records))
    except (KeyError, TypeError):
        return [[r.get(name) for r in records] for name in names]
    if len(names) == 1:
        return [rows]
    return list(zip(*rows, strict=True))


def records_to_arrow(
    records: Sequence[Mapping[str, Any]],
    schema: Mapping[str, Any] | None = None,
    *,
    arrow_schema: pa.Schema | None = None,
) -> pa.Table:
    """Build an Arrow table from records, typed by ``arrow_schema`` or the JSON Schema.

    Values may be native (``datetime``, ``Decimal``, ``bytes``) or their JSON forms (ISO strings,
    decimal strings, base64). Columns are converted whole (``pa.array`` then an Arrow cast / parse);
    only columns Arrow cannot convert in one go fall back to per-value Python. A value that does not
    fit its type raises :class:`ConversionError` (a :class:`ValueError`) naming the field; nothing is
    rounded or truncated silently. Fields absent from the schema are ignored.
    """
    import pyarrow as pa

    if arrow_schema is None:
        if schema and schema.get("properties"):
            arrow_schema = jsonschema_to_arrow(schema)
        else:
            try:
                return pa.Table.from_pylist(list(records))
            except arrow_errors() as exc:
                raise ConversionError(f"cannot infer Arrow types: {exc}") from exc
    if not isinstance(records, Sequence):
        records = list(records)
    columns = []
    for f, values in zip(arrow_schema, _record_columns(records, arrow_schema.names), strict=True):
        name = f.name
        try:
            arr = _column_to_arrow(values, f)
        except arrow_errors() as exc:
            raise ConversionError(conversion_message(exc, values, f.type), field=name) from exc
        columns.append(arr)
    return pa.Table.from_arrays(columns, schema=arrow_schema)


def records_to_arrow_exact(records: Sequence[Mapping[str, Any]], arrow_schema: pa.Schema) -> pa.Table:
    """:func:`records_to_arrow`, except that a number field whose values a float64 / int64 column
    would not hold (16+ significant digits, integers beyond 64 bits, ``1e400``) becomes a column of
    JSON number text (:func:`number_text_field`), every digit kept: a source's batch carries the
    numbers as read and the destination keeps them or refuses (:func:`cast_table`)."""
    schema = arrow_schema
    while True:
        try:
            return records_to_arrow(records, arrow_schema=schema)
        except ConversionError as exc:
            wider = number_text_schema(schema, exc.field)
            if wider is None or not isinstance(exc.__cause__, InexactNumberError):
                raise
            schema = wider


def _from_arrow_value(value: Any, typ: pa.DataType, meta: Mapping[bytes, bytes] | None) -> Any:
    import pyarrow.types as pt

    if value is None:
        return None
    if meta and meta.get(JSON_META) == b"true" and isinstance(value, str):
        return json_loads(value)  # orjson's fast path unless a number would change: every digit kept
    if pt.is_struct(typ) and isinstance(value, dict):
        return {
            typ.field(i).name: _from_arrow_value(
                value.get(typ.field(i).name), typ.field(i).type, typ.field(i).metadata
            )
            for i in range(typ.num_fields)
        }
    if (pt.is_list(typ) or pt.is_large_list(typ)) and isinstance(value, list):
        vf = typ.value_field
        return [_from_arrow_value(v, vf.type, vf.metadata) for v in value]
    return value


def _needs_fixup(typ: pa.DataType, meta: Mapping[bytes, bytes] | None) -> bool:
    import pyarrow.types as pt

    if meta and meta.get(JSON_META) == b"true":
        return True
    if pt.is_struct(typ):
        return any(_needs_fixup(typ.field(i).type, typ.field(i).metadata) for i in range(typ.num_fields))
    if pt.is_list(typ) or pt.is_large_list(typ):
        return _needs_fixup(typ.value_field.type, typ.value_field.metadata)
    return False


_UTC_NAMES = ("UTC", "utc", "+00:00", "Z", "Etc/UTC", "GMT")


def _column_values(col: Any, typ: pa.DataType) -> list[Any]:
    """``col.to_pylist()``, faster for UTC timestamps (pyarrow builds a zone per value otherwise)."""
    import pyarrow as pa
    import pyarrow.types as pt

    if pt.is_timestamp(typ) and typ.tz in _UTC_NAMES and typ.unit in ("s", "ms", "us"):
        utc = _dt.timezone.utc
        return [
            None if v is None else v.replace(tzinfo=utc) for v in col.cast(pa.timestamp(typ.unit)).to_pylist()
        ]
    return list(col.to_pylist())


def arrow_to_records(table: pa.Table, schema: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """Records (dicts of Python values) from an Arrow table; JSON-text columns are decoded.

    Converted column by column; zone-aware timestamps come back as aware ``datetime`` objects in UTC.
    """
    props = (schema or {}).get("properties") or {}
    names = list(table.column_names)
    if not names:
        return [{} for _ in range(table.num_rows)]
    columns: list[list[Any]] = []
    for f, col in zip(table.schema, table.columns, strict=True):
        values = _column_values(col, f.type)
        meta = f.metadata
        if not _needs_fixup(f.type, meta):
            p = props.get(f.name)
            if p is not None and f.type == _pa_string() and is_json_property(p):
                meta = {JSON_META: b"true"}
            else:
                columns.append(values)
                continue
        typ = f.type
        columns.append([_from_arrow_value(v, typ, meta) for v in values])
    return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]


def _pa_string() -> pa.DataType:
    import pyarrow as pa

    return pa.string()


def cast_table(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Cast ``table`` to ``schema`` by column name (missing columns become nulls); safe casts only.

    JSON-text fields (metadata ``dcapix.json``) accept any source column (structs, lists, … are
    serialised to JSON text); extension-type columns are cast from their storage. A column that
    cannot be cast exactly falls back to per-value conversion (never rounding), and one whose values
    do not fit raises :class:`ConversionError` naming it. Text → float and JSON number text
    (:data:`NUMBER_META`) → any type are checked exactly: a float64 never rounds a number silently.
    """
    import pyarrow as pa
    import pyarrow.types as pt

    arrays = []
    for f in schema:
        if f.name in table.column_names:
            col = table.column(f.name)
            if isinstance(col.type, pa.ExtensionType):  # e.g. a driver's opaque type: its storage
                col = pa.chunked_array([c.storage for c in col.chunks], type=col.type.storage_type)
            src_meta = table.schema.field(f.name).metadata
            if col.type == f.type and (
                not f.metadata or f.metadata.get(NUMBER_META) != b"true" or src_meta == f.metadata
            ):  # (JSON number text stays text in a text column)
                arrays.append(col)
                continue
            values: list[Any] = []
            try:
                if src_meta and src_meta.get(NUMBER_META) == b"true":
                    # JSON number text: exact values, checked against the target type
                    values = [None if v is None else _number_value(v) for v in col.to_pylist()]
                    if pt.is_integer(f.type):
                        _check_int_range(values, f.type)
                    arrays.append(_column_to_arrow(values, f))
                    continue
                if f.metadata and f.metadata.get(NUMBER_META) == b"true":  # text → JSON number text
                    values = [None if v is None else _number_value(str(v)) for v in col.to_pylist()]
                    arrays.append(_column_to_arrow(values, f))
                    continue
                if pt.is_floating(f.type) and (pt.is_string(col.type) or pt.is_large_string(col.type)):
                    arrays.append(_exact_float_column(col, f))
                    continue
                try:
                    arrays.append(_safe_cast(col, f.type))
                except arrow_errors():
                    # e.g. struct → JSON text, string → timestamp with a zone-less text, …
                    values = col.to_pylist()
                    arrays.append(_column_to_arrow(values, f))
            except arrow_errors() as exc:
                raise ConversionError(conversion_message(exc, values, f.type), field=f.name) from exc
        else:
            arrays.append(pa.nulls(table.num_rows, type=f.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def _safe_cast(col: Any, typ: pa.DataType) -> Any:
    """``col.cast(typ, safe=True)``, calling the kernel through ``pyarrow._compute``: the ``cast``
    method imports ``pyarrow.compute``, which wraps its ~300 functions in Python (~60 ms of CPU, a
    noticeable part of a small sync; issue 15)."""
    from pyarrow._compute import CastOptions, call_function

    return call_function("cast", [col], CastOptions.safe(typ))


#: PostgreSQL's text output of an ``inet`` host leaves out the prefix length of a whole address.
_INET_HOST_PREFIX = (
    (r"^([0-9.]+)/32$", r"\1"),  # IPv4 /32
    (r"^([0-9A-Fa-f.]*:[0-9A-Fa-f:.]*)/128$", r"\1"),  # IPv6 /128
)


def inet_text(col: Any) -> Any:
    """A string column (or a list-of-strings column) of PostgreSQL ``inet`` values in the text
    PostgreSQL's output gives (what psycopg reads): ``10.0.0.1`` for a ``/32`` host (``::1`` for a
    ``/128``), every other prefix kept (``10.1.2.0/24``, ``2001:db8::1/64``). The ``inet::text``
    cast, which a read as text through Arrow uses, writes ``10.0.0.1/32``. Arrow kernels only."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.types as pt

    def host(arr: Any) -> Any:
        for pattern, replacement in _INET_HOST_PREFIX:
            arr = pc.replace_substring_regex(arr, pattern=pattern, replacement=replacement)
        return arr

    def one(arr: Any) -> Any:
        if pt.is_list(arr.type) or pt.is_large_list(arr.type):
            cls = pa.ListArray if pt.is_list(arr.type) else pa.LargeListArray
            if arr.offset:  # a slice: its own copy (from_arrays takes no null bitmap with a slice)
                arr = pa.concat_arrays([arr])
            values = one(arr.values)
            return cls.from_arrays(arr.offsets, values, type=arr.type, mask=arr.is_null())
        if pt.is_string(arr.type) or pt.is_large_string(arr.type):
            return host(arr)
        return arr

    if isinstance(col, pa.ChunkedArray):
        return pa.chunked_array([one(c) for c in col.chunks], type=col.type)
    return one(col)


def rebatch(
    batches: Iterable[pa.RecordBatch], size: int, schema: pa.Schema | None = None
) -> Iterator[pa.Table]:
    """Tables of exactly ``size`` rows (the last one shorter) from record batches of any sizes, such
    as a driver's or a file reader's. ``schema``: the schema of the last table (for readers whose
    batches may be empty)."""
    import pyarrow as pa

    pending: list[pa.RecordBatch] = []
    rows = 0
    for rb in batches:
        pending.append(rb)
        rows += rb.num_rows
        while rows >= size:
            table = pa.Table.from_batches(pending)
            yield table.slice(0, size)
            rest = table.slice(size)
            pending, rows = rest.to_batches(), rest.num_rows
    if rows:
        yield pa.Table.from_batches(pending, schema=schema)
