"""Values ⇄ Redis bytes, and Redis commands (RESP) built column-wise with Arrow.

A hash field, a stream entry field and a string value hold bytes. A record's value is stored as its
**text form**, chosen by the stream's JSON Schema (the dc-api-x conventions, see
``dc_api_x.arrow``), and read back to the same value through the same schema:

===========================  =====================================================================
JSON Schema                  stored as
===========================  =====================================================================
string                       the UTF-8 text itself
integer                      decimal digits (``-42``)
number                       the shortest text that reads back as the same double (``0.1``,
                             ``1e+20``, ``nan``, ``inf``)
boolean                      ``true`` / ``false``
string, format decimal       plain decimal text, scale kept (``12.50``)
string, format date-time     ISO 8601 with microseconds: ``2024-01-01T12:00:00.000000+00:00``
                             (zone-aware values in UTC), no offset for ``x-timezone: false``
string, format date / time   ``2024-01-01`` / ``12:00:00.000000``
string, contentEncoding      the raw bytes (hash fields are binary-safe)
base64
object / array / JSON        JSON text
null                         the field is absent (a hash has no null)
===========================  =====================================================================

Writing converts a batch to Arrow (``Batch.to_arrow`` against the stream's schema), turns each column
into its text forms with Arrow kernels and assembles the RESP commands of the whole batch with
``binary_join_element_wise``: no Python loop per value, the concatenated commands are one Arrow
buffer handed to the socket. Reading does the reverse: the bytes of each field become one binary
column, cast by Arrow to the schema's type; a value Arrow refuses is converted again by
``dc_api_x.arrow.records_to_arrow`` value by value, whose error names the field.

``pyarrow`` is imported by the adapter only when it reads or writes (this module is imported then).
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.types as pt

from dc_api_x.arrow import ConversionError, arrow_to_records, records_to_arrow

from .forms import dumps, glob_escape

__all__ = [
    "CommandBuilder",
    "check_json_numbers",
    "KeyTemplate",
    "decode_column",
    "text_column",
]

_BIN = pa.large_binary()
_ARROW_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, ValueError, TypeError)
_JSON_META = b"dcapix.json"


def _const(data: bytes) -> pa.Scalar:
    return pa.scalar(data, type=_BIN)


def _bin(arr: pa.Array) -> pa.Array:
    return arr if arr.type == _BIN else arr.cast(_BIN)


def _array(col: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(col, pa.ChunkedArray):
        return col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    return col


# ---------------------------------------------------------------------------------- writing
def text_column(col: pa.Array | pa.ChunkedArray, field: pa.Field) -> pa.Array:
    """The text forms (see the module doc) of one Arrow column, as ``large_binary``; nulls stay null.

    :raises ConversionError: a value without an exact text form (e.g. a nanosecond timestamp).
    """
    arr = _array(col)
    typ = arr.type
    try:
        if pt.is_dictionary(typ):
            arr = arr.cast(typ.value_type)
            typ = arr.type
        if pt.is_null(typ):
            return pa.nulls(len(arr), type=_BIN)
        if pt.is_string(typ) or pt.is_large_string(typ) or pt.is_binary(typ) or pt.is_large_binary(typ):
            return _bin(arr)
        if pt.is_fixed_size_binary(typ):
            return arr.cast(pa.binary()).cast(_BIN)
        if pt.is_floating(typ):
            return _bin(arr.cast(pa.float64()).cast(pa.string()))
        if pt.is_integer(typ) or pt.is_boolean(typ) or pt.is_decimal(typ) or pt.is_date(typ):
            return _bin(arr.cast(pa.string()))
        if pt.is_timestamp(typ):
            naive = arr.cast(pa.timestamp("us"), safe=True)  # zone-aware: the UTC wall time
            text = pc.replace_substring(naive.cast(pa.string()), " ", "T", max_replacements=1)
            if typ.tz is not None:
                text = pc.binary_join_element_wise(text, "+00:00", "")
            return _bin(text)
        if pt.is_time(typ):
            return _bin(arr.cast(pa.time64("us"), safe=True).cast(pa.string()))
    except _ARROW_ERRORS as exc:
        raise ConversionError(_short(exc), field=field.name) from exc
    # structs, lists, maps: JSON text (the dict view decodes nested JSON-text fields first)
    check_json_numbers(arr, field.name)
    table = pa.Table.from_arrays([arr], schema=pa.schema([field.with_type(typ)]))
    values = [r[field.name] for r in arrow_to_records(table)]
    return pa.array([None if v is None else dumps(v) for v in values], type=_BIN)


def check_json_numbers(arr: pa.Array | pa.ChunkedArray, name: str) -> None:
    """JSON has no NaN nor infinity (a JSON encoder would write ``null``): refuse them.

    :raises ConversionError: naming the field.
    """
    arr = _array(arr)
    typ = arr.type
    if pt.is_floating(typ):
        bad = pc.invert(pc.is_finite(arr))
        if pc.any(bad).as_py():
            value = arr.filter(pc.fill_null(bad, False))[0].as_py()
            raise ConversionError(f"{value!r} has no JSON form (JSON has no NaN or infinity)", field=name)
    elif pt.is_struct(typ):
        for i in range(typ.num_fields):
            check_json_numbers(arr.field(i), f"{name}.{typ.field(i).name}")
    elif pt.is_list(typ) or pt.is_large_list(typ) or pt.is_fixed_size_list(typ):
        check_json_numbers(pc.list_flatten(arr), name)
    elif pt.is_map(typ):
        check_json_numbers(pc.list_flatten(arr).field(1), name)


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


class KeyTemplate:
    """A key template such as ``"user:{id}"``: ``{field}`` is a record field, ``{_stream}`` the
    stream name, ``{{`` and ``}}`` literal braces. No format specs or conversions."""

    def __init__(self, template: str, stream: str) -> None:
        self.template = template
        self.parts: list[tuple[str, str | None]] = []  # (literal, field after it)
        try:
            parsed = list(string.Formatter().parse(template))
        except ValueError as exc:
            raise ValueError(f"key template {template!r}: {exc}") from None
        for literal, name, spec, conv in parsed:
            if name is not None and (spec or conv):
                raise ValueError(f"key template {template!r}: {{{name}}} takes no format spec or conversion")
            if name == "":
                raise ValueError(f"key template {template!r}: empty {{}}")
            if name == "_stream":
                self.parts.append((literal + stream, None))
            else:
                self.parts.append((literal, name))
        self.fields = [f for _, f in self.parts if f is not None]

    def pattern(self) -> str:
        """The SCAN MATCH pattern of the keys this template makes (glob characters escaped)."""
        out = []
        for literal, name in self.parts:
            out.append(glob_escape(literal))
            if name is not None:
                out.append("*")
        return "".join(out)

    def render(self, texts: Mapping[str, pa.Array], n: int) -> pa.Array:
        """The keys of ``n`` rows from the text forms of the template's fields (``large_binary``)."""
        items: list[Any] = []
        for literal, name in self.parts:
            if literal:
                items.append(_const(literal.encode()))
            if name is not None:
                items.append(texts[name])
        if not any(isinstance(x, pa.Array) for x in items):
            return pa.array([b"".join(x.as_py() for x in items)] * n, type=_BIN)
        return pc.binary_join_element_wise(*items, _const(b""))


class CommandBuilder:
    """RESP commands for ``n`` rows, assembled column-wise.

    Each command is a list of arguments: ``bytes`` (the same for every row), an Arrow binary array
    (one value per row, never null) or a :class:`Pairs` (field/value pairs of which null values are
    left out). ``add`` appends one command per row; :meth:`payload` returns the bytes of every
    command of every row, row by row, ready for the socket. Every value is copied once: the pieces
    (``$<len>`` prefixes, values, constants) of all commands are joined by one
    ``binary_join_element_wise``.
    """

    def __init__(self, n: int) -> None:
        self.n = n
        self.items: list[Any] = []
        self.per_row = 0

    def _append(self, item: Any) -> None:
        items = self.items
        if isinstance(item, bytes) and items and isinstance(items[-1], bytes):
            items[-1] += item
        else:
            items.append(item)

    def add(self, *args: bytes | pa.Array | Pairs) -> None:
        fixed = 0
        pair_counts: pa.Array | None = None
        pieces: list[Any] = []
        for a in args:
            if isinstance(a, Pairs):
                pieces.extend(a.pieces)
                pair_counts = a.counts if pair_counts is None else pc.add(pair_counts, a.counts)
            elif isinstance(a, bytes):
                fixed += 1
                pieces.append(b"$%d\r\n%s\r\n" % (len(a), a))
            else:
                fixed += 1
                arr = _bin(a)
                pieces += [b"$", _bin(pc.binary_length(arr).cast(pa.string())), b"\r\n", arr, b"\r\n"]
        if pair_counts is None:
            self._append(b"*%d\r\n" % fixed)
        else:
            total = pc.add(pc.multiply(pair_counts, 2), fixed)
            self._append(b"*")
            self._append(_bin(total.cast(pa.string())))
            self._append(b"\r\n")
        for piece in pieces:
            self._append(piece)
        self.per_row += 1

    def payload(self) -> memoryview:
        """Every command of every row, row by row, as one buffer."""
        if not any(isinstance(x, pa.Array) for x in self.items):
            rows = pa.array([b"".join(self.items)] * self.n, type=_BIN)
        else:
            items = [_const(x) if isinstance(x, bytes) else x for x in self.items]
            rows = pc.binary_join_element_wise(
                *items, _const(b""), null_handling="replace", null_replacement=""
            )
        if rows.offset:
            rows = pa.concat_arrays([rows])
        offsets = memoryview(rows.buffers()[1]).cast("q")
        start, end = offsets[0], offsets[len(rows)]
        data = rows.buffers()[2]
        if data is None:
            return memoryview(b"")
        return memoryview(data)[start:end]


class Pairs:
    """Field/value argument pairs for HSET / XADD: a pair whose value is null is left out.

    Per field three pieces: ``$<len(name)> CRLF <name> CRLF $<len(value)> CRLF`` (null when the value
    is null), the value, and ``CRLF`` (null when the value is null); nulls join as nothing.
    """

    def __init__(self, columns: Sequence[tuple[str, pa.Array]], n: int) -> None:
        self.pieces: list[Any] = []
        counts: pa.Array | None = None
        crlf = _const(b"\r\n")
        for name, column in columns:
            raw = name.encode()
            values = _bin(column)
            lengths = _bin(pc.binary_length(values).cast(pa.string()))  # null where the value is null
            head = pc.binary_join_element_wise(
                _const(b"$%d\r\n%s\r\n$" % (len(raw), raw)), lengths, crlf, _const(b"")
            )
            valid = pc.is_valid(values)
            tail: Any = b"\r\n"
            if values.null_count:
                tail = pc.if_else(valid, crlf, pa.scalar(None, type=_BIN))
            self.pieces += [head, values, tail]
            ones = valid.cast(pa.int64())
            counts = ones if counts is None else pc.add(counts, ones)
        self.counts = counts if counts is not None else pa.array([0] * n, type=pa.int64())

    def empty_rows(self) -> pa.Array:
        """Indices of the rows without any pair."""
        return pc.indices_nonzero(pc.equal(self.counts, 0))


# ---------------------------------------------------------------------------------- reading
def decode_column(values: Sequence[bytes | None], field: pa.Field) -> pa.Array:
    """An Arrow column of ``field``'s type from the stored bytes of one field (``None``: null).

    :raises ConversionError: naming the field, when a value is not a valid text form of its type.
    """
    typ = field.type
    raw = pa.array(values, type=pa.binary())
    if pt.is_binary(typ):
        return raw
    if pt.is_large_binary(typ):
        return raw.cast(typ)
    try:
        text = raw.cast(pa.string())
    except _ARROW_ERRORS:
        return _slow(values, field)
    if pt.is_string(typ):
        return text
    if pt.is_struct(typ) or pt.is_list(typ) or pt.is_large_list(typ):
        return _slow(values, field)
    try:
        if pt.is_timestamp(typ) and typ.tz is None:
            return text.cast(typ)  # an offset in the text of a naive column: Arrow refuses, _slow decides
        return text.cast(typ)
    except _ARROW_ERRORS:
        return _slow(values, field)


def _slow(values: Sequence[bytes | None], field: pa.Field) -> pa.Array:
    name = field.name
    rows = []
    for v in values:
        if v is None:
            rows.append({name: None})
            continue
        try:
            text: Any = v.decode()
        except UnicodeDecodeError:
            raise ConversionError(f"{bytes(v[:40])!r}… is not UTF-8 text", field=name) from None
        typ = field.type
        if pt.is_struct(typ) or pt.is_list(typ) or pt.is_large_list(typ):
            try:
                text = orjson.loads(text)
            except orjson.JSONDecodeError as exc:
                raise ConversionError(f"{text[:60]!r} is not JSON: {exc}", field=name) from None
        rows.append({name: text})
    table = records_to_arrow(rows, arrow_schema=pa.schema([field]))
    return _array(table.column(0))
