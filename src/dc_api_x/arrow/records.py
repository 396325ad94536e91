"""Records (dicts of Python values, native or in their JSON forms) → Arrow, column by column:
``pa.array`` per column, then an Arrow cast / parse of the JSON forms; per-value Python only for
the columns Arrow cannot convert in one go. A value that does not fit raises
:class:`ConversionError` naming the field: nothing is rounded or truncated silently.

:class:`RecordColumns` transposes records page by page as a read loop decodes them (hot in cache)
and :class:`ColumnarBatch` builds its Arrow view from those columns."""

from __future__ import annotations

import base64
import datetime as _dt
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import orjson

from ..types import Batch, JSONSchema, Record
from ..values import arrow_errors, error_line, fit_decimal, json_form, json_loads, parse_datetime, parse_time
from .exact_numbers import (
    InexactNumberError,
    _check_int_range,
    _integer_range,
    exact_float,
    number_text,
    number_text_schema,
)
from .json_text import json_text, json_text_default
from .schema import JSON_META, NUMBER_META, jsonschema_to_arrow

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

__all__ = [
    "ColumnarBatch",
    "ConversionError",
    "RecordColumns",
    "conversion_message",
    "records_to_arrow",
    "records_to_arrow_exact",
]


class ConversionError(ValueError):
    """A value that does not fit its Arrow type. ``field`` names the column (dotted for nested);
    ``detail`` is the message without the ``field '…': `` prefix (for callers that name the field
    themselves)."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.field = field
        self.detail = message
        super().__init__(f"field {field!r}: {message}" if field else message)


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


def _cast(arr: Any, typ: pa.DataType) -> Any:
    """``arr.cast(typ)`` (a safe cast) through ``pyarrow._compute``: ``Array.cast`` imports
    :mod:`pyarrow.compute`, which wraps its ~300 kernels in Python functions on import (30-70 ms of
    CPU, paid by every run whose batches have a date or a date-time)."""
    from pyarrow._compute import CastOptions, call_function

    return call_function("cast", [arr], CastOptions.safe(typ))


def _string_column(values: Sequence[Any], typ: pa.DataType) -> pa.Array | None:
    """Vectorised path for JSON-form strings (ISO timestamps, dates, decimal strings): build a string
    array and let Arrow parse it. ``None`` when the values are not all strings or Arrow refuses them
    (the per-value path then decides, and names the bad value)."""
    import pyarrow as pa

    errors = arrow_errors()
    try:
        strings = pa.array(values, type=pa.string())
    except errors:
        return None
    return _cast_strings(strings, typ)


def _cast_strings(strings: pa.Array, typ: pa.DataType) -> pa.Array | None:
    """A string array of JSON-form values (ISO timestamps, dates, decimal strings) parsed by Arrow
    into ``typ`` as :func:`_string_column` does; ``None`` when Arrow refuses a value."""
    import pyarrow as pa
    import pyarrow.types as pt

    errors = arrow_errors()
    try:
        if pt.is_timestamp(typ):
            if typ.tz is not None:
                try:
                    return _cast(strings, typ)
                except errors:  # no zone offset in the text: the convention reads naive as UTC
                    return _cast(_cast(strings, pa.timestamp(typ.unit)), typ)
            try:
                return _cast(strings, typ)
            except errors:  # offsets in the text of a naive column: converted to UTC wall time
                return _cast(_cast(strings, pa.timestamp(typ.unit, tz="UTC")), typ)
        return _cast(strings, typ)
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
                        return _cast(arr, typ)
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


class RecordColumns:
    """The columns of records transposed page by page as the pages arrive, while each page is
    still hot in the CPU cache (a read loop calls :meth:`add` right after a page's decode):
    :func:`records_to_arrow` given them builds its arrays from these lists instead of transposing
    thousands of records at once (about three times the cost, the records long out of cache).

    ``names`` may grow between pages (a field first seen later: the earlier rows hold ``None``,
    as a record lacking a field does). A name never added is taken from the records themselves."""

    __slots__ = ("columns", "rows")

    def __init__(self) -> None:
        #: name -> the values of that field, one per record added (``None`` where it lacks it)
        self.columns: dict[str, list[Any]] = {}
        #: records added so far
        self.rows = 0

    def add(self, records: Sequence[Mapping[str, Any]], names: Iterable[str]) -> None:
        """Append the values of ``names`` in ``records`` (one page) to the columns."""
        columns, rows = self.columns, self.rows
        for name in names:
            col = columns.get(name)
            if col is None:
                col = columns[name] = [None] * rows
            try:
                col.extend([r[name] for r in records])
            except (KeyError, TypeError):
                del col[rows:]
                col.extend([r.get(name) for r in records])
        if len(records):
            for name, col in columns.items():
                if len(col) == rows:  # a name of an earlier page absent from this one's names
                    col.extend([r.get(name) for r in records])
        self.rows = rows + len(records)


def records_to_arrow(
    records: Sequence[Mapping[str, Any]],
    schema: Mapping[str, Any] | None = None,
    *,
    arrow_schema: pa.Schema | None = None,
    columns: RecordColumns | None = None,
) -> pa.Table:
    """Build an Arrow table from records, typed by ``arrow_schema`` or the JSON Schema.

    Values may be native (``datetime``, ``Decimal``, ``bytes``) or their JSON forms (ISO strings,
    decimal strings, base64). Columns are converted whole (``pa.array`` then an Arrow cast / parse);
    only columns Arrow cannot convert in one go fall back to per-value Python. A value that does not
    fit its type raises :class:`ConversionError` (a :class:`ValueError`) naming the field; nothing is
    rounded or truncated silently. Fields absent from the schema are ignored. ``columns``: the
    records already transposed (:class:`RecordColumns`, every record added in order).
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
    names = arrow_schema.names
    if columns is not None and columns.rows == len(records):
        have = columns.columns
        missing = [n for n in names if n not in have]
        taken = dict(zip(missing, _record_columns(records, missing), strict=True)) if missing else {}
        values_of: list[Sequence[Any]] = [have[n] if n in have else taken[n] for n in names]
    else:
        values_of = _record_columns(records, names)
    arrays = []
    for f, values in zip(arrow_schema, values_of, strict=True):
        name = f.name
        try:
            arr = _column_to_arrow(values, f)
        except arrow_errors() as exc:
            raise ConversionError(conversion_message(exc, values, f.type), field=name) from exc
        arrays.append(arr)
    return pa.Table.from_arrays(arrays, schema=arrow_schema)


class ColumnarBatch(Batch):
    """A :class:`~dc_api_x.types.Batch` of records that also carries them as
    :class:`RecordColumns` (transposed as its pages arrived): its Arrow view, made on first use as
    for any batch, is built from those columns. The records are the batch's contract as for any
    batch (never modified in place once handed on)."""

    __slots__ = ("_columns",)

    def __init__(
        self,
        *,
        records: list[Record],
        columns: RecordColumns | None,
        schema: JSONSchema | None = None,
        bookmark: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(records=records, schema=schema, bookmark=bookmark)
        self._columns = columns

    def to_arrow(self, schema: pa.Schema | None = None) -> pa.Table:
        columns, self._columns = self._columns, None
        if self._arrow is None and columns is not None:
            self._arrow = records_to_arrow(
                self._records or [], self.schema, arrow_schema=schema, columns=columns
            )
        return super().to_arrow(schema)


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
