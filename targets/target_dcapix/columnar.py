"""The column-wise RECORD path of target-dcapix: RECORD lines decoded by msgspec into typed structs
(no Python dict per record), turned into Arrow columns for the adapter.

The ordinary fast path decodes each RECORD line with orjson into a dict, checks the dict against the
stream's schema, transposes the dicts into columns and converts each column to Arrow: every stage
touches each record as a Python dict. Here, for a stream whose schema constrains nothing but types
(and for an adapter that converts batches with the stream's own Arrow schema, :data:`ARROW_ADAPTERS`),
a block of input lines is decoded by one :class:`msgspec.json.Decoder` of a tagged union (RECORD of
this stream | STATE) whose record type is a struct typed by the schema, so the decode itself is the
type check (``required`` and key properties are fields without a default, a field the schema does
not declare is refused). The structs are transposed with ``astuple`` + ``zip`` and each column is
converted by :func:`dc_api_x.arrow._column_to_arrow`, the function the adapter itself uses on the
dict path: the same Python values (msgspec and orjson decode the same text to equal ints, floats,
strings, booleans and ``None``) give the same Arrow values.

A ``number`` column (float64) is kept as :class:`msgspec.Raw` too and parsed by Arrow from the
texts (correctly rounded, as orjson parses them for the dict path); texts that hold a long number
(16+ digits or a 3-digit exponent: ``has_long_digit_run`` over the column's texts), ``-0`` (the
integer 0 on the dict path) or anything but a number are refused. A free-form JSON column (an
object without ``properties``, mixed types: stored as JSON text) is kept as :class:`msgspec.Raw`:
the dict path stores ``orjson.dumps`` of the decoded value, so the texts of a chunk are checked at
once — their JSON array is decoded and dumped again by orjson and must give back the same bytes
(no whitespace, escapes or number spellings orjson would change); otherwise the decoded values go
through the dict path's conversion, unless the texts hold a long number (refused). Integers are
exact in msgspec, strings and booleans cannot be rounded: so no value can be rounded on this path,
and its blocks are not scanned for long numbers (a STATE line is decoded as the line-by-line path
does).

Anything else goes the old way, which names the line: a block that msgspec refuses (bad JSON, a
value of the wrong type, a missing or an unknown field, another stream, a message other than RECORD
and STATE), and a chunk whose conversion fails or is refused (its lines are decoded again by
orjson, exactly where they hold a long number, and written by the dict path). After
``COLUMNAR_REFUSALS`` such chunks the stream's column path is turned off.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .validation import _ANNOTATIONS

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

__all__ = ["ARROW_ADAPTERS", "ColumnarPlan", "columnar_plan"]

#: Adapters whose ``write`` converts a batch with ``jsonschema_to_arrow`` of the stream's schema
#: (the Arrow table built here is then exactly the one the dict path gives them).
ARROW_ADAPTERS = frozenset({"parquet"})

_RAW = "raw"
_PY_TYPES: dict[str, tuple[type, ...]] = {
    "null": (type(None),),
    "boolean": (bool,),
    "integer": (int,),
    "number": (int, float),
    "string": (str,),
    "object": (dict,),
    "array": (list,),
}
_SCHEMA_KEYS = frozenset({"type", "properties", "required", "additionalProperties"}) | _ANNOTATIONS


class _Refused(Exception):
    """A chunk the column path does not convert (the dict path then decides)."""


def _property_kind(prop: Any) -> tuple[Any, frozenset[type] | str] | None:
    """(msgspec annotation, allowed Python types of a JSON-text column, or ``"number"`` /
    ``"number?"`` (nullable) for a float64 number column) of one property, or ``None`` when the
    property needs more than a type check (or has no type). A JSON-text column and a float64
    number column are :class:`msgspec.Raw` (the value's text)."""
    import msgspec

    from dc_api_x.arrow import JSON_META, jsonschema_field

    if not isinstance(prop, Mapping):
        return None
    for key, value in prop.items():
        if key == "type" or key in _ANNOTATIONS or key.startswith("x-"):
            continue
        if key == "additionalProperties" and value in (True, {}):
            continue
        return None
    raw = prop.get("type")
    names = [raw] if isinstance(raw, str) else raw
    if not isinstance(names, list) or not names or not all(n in _PY_TYPES for n in names):
        return None
    types = {n for n in names if n != "null"}
    nullable = "null" in names
    if not types:
        return None
    meta = jsonschema_field("x", prop).metadata or {}
    if meta.get(JSON_META) == b"true":  # JSON text: the value's text, checked by _json_column
        allowed = frozenset(t for n in names for t in _PY_TYPES[n])
        return msgspec.Raw, allowed
    if types == {"integer"}:
        ann: Any = int
    elif types <= {"integer", "number"}:
        import pyarrow as pa

        if jsonschema_field("x", prop).type != pa.float64():
            return None  # a decimal column: msgspec would read its numbers as floats
        return msgspec.Raw, ("number?" if nullable else "number")  # parsed by Arrow from the text
    elif types == {"boolean"}:
        ann = bool
    elif types == {"string"}:
        ann = str
    else:
        return None
    return (ann | None if nullable else ann), frozenset()


class ColumnarPlan:
    """The msgspec decoder of one stream's RECORD (and STATE) lines and the conversion of its
    records to an Arrow table."""

    def __init__(
        self,
        stream: str,
        names: list[str],
        kinds: list[tuple[Any, frozenset[type] | str]],
        required: set[str],
    ) -> None:
        import msgspec

        self.stream = stream
        self.names = names
        attrs = [f"f{i}" for i in range(len(names))]
        fields: list[Any] = []
        for attr, name, (ann, _) in zip(attrs, names, kinds, strict=True):
            # a field the record may leave out is None (what the dict path reads for it); a null
            # that is present is still refused by the annotation
            fields.append((attr, ann) if name in required else (attr, ann, None))
        record = msgspec.defstruct(
            f"Record_{len(names)}",
            fields,
            kw_only=True,
            forbid_unknown_fields=True,
            gc=False,
            rename=dict(zip(attrs, names, strict=True)),
        )
        self.record_type = record
        self.message_type = msgspec.defstruct(
            "RecordMessage",
            [("stream", str), ("record", record)],
            tag_field="type",
            tag="RECORD",
            gc=False,
        )
        self.state_type = msgspec.defstruct("StateMessage", [], tag_field="type", tag="STATE", gc=False)
        self.decode = msgspec.json.Decoder(self.message_type | self.state_type).decode
        self.decode_error = (msgspec.DecodeError, msgspec.ValidationError)
        self._index = {name: i for i, name in enumerate(names)}
        self._json = {
            i: kind for i, (ann, kind) in enumerate(kinds) if ann is msgspec.Raw and not isinstance(kind, str)
        }
        self._numbers = {i: kind == "number?" for i, (_, kind) in enumerate(kinds) if isinstance(kind, str)}
        self._arrow: tuple[Mapping[str, Any], Any] | None = None

    def arrow_schema(self, schema: Mapping[str, Any]) -> pa.Schema:
        """``jsonschema_to_arrow(schema)``, cached for the last schema object."""
        cached = self._arrow
        if cached is not None and cached[0] is schema:
            return cached[1]
        from dc_api_x.arrow import jsonschema_to_arrow

        arrow = jsonschema_to_arrow(schema)
        self._arrow = (schema, arrow)
        return arrow

    def to_arrow(self, records: Sequence[Any], schema: Mapping[str, Any]) -> pa.Table:
        """The Arrow table of ``records`` (structs of this plan) typed by ``schema`` (the writer's
        JSON Schema: it may hold more columns than the stream's, which are null). Raises
        :class:`_Refused` (or an Arrow / conversion error) when the dict path must decide."""
        import pyarrow as pa
        from msgspec.structs import astuple

        from dc_api_x.arrow import _column_to_arrow

        arrow = self.arrow_schema(schema)
        n = len(records)
        columns = list(zip(*map(astuple, records), strict=True))
        arrays = []
        for f in arrow:
            i = self._index.get(f.name)
            if i is None:
                arrays.append(pa.nulls(n, type=f.type))
            elif i in self._json:
                arrays.append(self._json_column(columns[i], f, self._json[i]))
            elif i in self._numbers:
                if f.type != pa.float64():  # (the writer's spec always agrees with the stream's)
                    raise _Refused(f"field {f.name!r} is {f.type} in the writer's schema")
                arrays.append(self._number_column(columns[i], self._numbers[i]))
            else:
                arrays.append(_column_to_arrow(columns[i], f))
        return pa.Table.from_arrays(arrays, schema=arrow)

    @staticmethod
    def _number_column(raws: Sequence[Any], nullable: bool) -> pa.Array:
        return _number_column_impl(raws, nullable)

    @staticmethod
    def _json_column(raws: Sequence[Any], f: pa.Field, allowed: frozenset[type]) -> pa.Array:
        """A JSON-text column from the values' own texts, when they are what ``orjson.dumps`` of
        the decoded values gives (one check for the whole column); else from the decoded values,
        as the dict path converts them."""
        import orjson
        import pyarrow as pa

        from dc_api_x.arrow import JSON_META, _column_to_arrow

        if None in raws:  # fields left out of their records: null, as the dict path reads them
            raws = [b"null" if r is None else r for r in raws]
        joined = b"[" + b",".join(raws) + b"]"
        values = orjson.loads(joined)
        if not set(map(type, values)) <= allowed:
            raise _Refused("a value of a type the schema does not allow")
        if not (pa.types.is_string(f.type) and (f.metadata or {}).get(JSON_META) == b"true"):
            return _column_to_arrow(values, f)
        if orjson.dumps(values) != joined:
            from dc_api_x.values import has_long_digit_run

            if has_long_digit_run(joined):  # orjson may have rounded a number: the exact path decides
                raise _Refused("a long number in a JSON column")
            return _column_to_arrow(values, f)
        text = _texts(raws)
        if None in values:
            text = _null_where_null(text)
        return text


def _null_where_null(text: pa.Array) -> pa.Array:
    """``text`` (a string array of JSON texts) with null where the text is ``null``.

    Arrow kernels are called through ``pyarrow._compute`` (as :func:`dc_api_x.arrow.records._cast`
    does): importing :mod:`pyarrow.compute` wraps its ~300 kernels in Python functions, 45 ms of CPU
    and 8 MiB of RSS that a run of this path does not otherwise pay."""
    import pyarrow as pa
    from pyarrow._compute import call_function

    is_null = call_function("equal", [text, pa.scalar("null", type=pa.string())])
    return call_function("if_else", [is_null, pa.scalar(None, type=pa.string()), text])


def _texts(raws: Sequence[Any]) -> pa.Array:
    """A string array of the texts ``raws`` (bytes-like), without a copy per value."""
    from itertools import accumulate

    import pyarrow as pa

    data = b"".join(raws)
    if len(data) >= 1 << 31:
        raise _Refused("more than 2 GiB of text in one column")
    offsets = pa.array(list(accumulate(map(len, raws), initial=0)), type=pa.int32())
    return pa.StringArray.from_buffers(len(raws), offsets.buffers()[1], pa.py_buffer(data))


def _number_column_impl(raws: Sequence[Any], nullable: bool) -> pa.Array:
    """A float64 column from the JSON number texts ``raws`` (``None``: the field was left out),
    parsed by Arrow — correctly rounded, as orjson parses them for the dict path, which converts the
    same numbers exactly (ints below 2**53) — when no text holds a long number (16+ digits, or a
    3-digit exponent: ``has_long_digit_run``). Anything else (a string, a boolean, an object,
    ``-0``, which the dict path reads as the integer 0, a long number, a null in a non-nullable
    field) is refused: the dict path decides."""
    import pyarrow as pa

    from dc_api_x.arrow.records import _cast
    from dc_api_x.values import has_long_digit_run

    present = [r for r in raws if r is not None] if None in raws else raws
    joined = b"," + b",".join(present) + b","
    for bad in (b'"', b"t", b"f", b"{", b"[", b",-0,"):
        if bad in joined:
            raise _Refused(f"{bad!r} in a number column")
    if has_long_digit_run(joined):  # 16+ digits or a 3-digit exponent: the exact path decides
        raise _Refused("a long number")
    if not nullable and b",null," in joined:
        raise _Refused("null in a non-nullable number field")
    if present is not raws:  # fields left out of their records: null, as the dict path reads them
        raws = [b"null" if r is None else r for r in raws]
    has_null = b"n" in joined or present is not raws
    text = _texts(raws)
    if has_null:
        text = _null_where_null(text)
    return _cast(text, pa.float64())


def columnar_plan(
    stream: str, schema: Mapping[str, Any], key_properties: Sequence[str]
) -> ColumnarPlan | None:
    """The column path of a stream, or ``None`` when its schema needs more than type checks
    (``enum``, bounds, patterns, nested properties, ``anyOf`` …) or msgspec is not installed."""
    try:
        import msgspec  # noqa: F401
    except ImportError:  # pragma: no cover - an optional speed-up
        return None
    if not isinstance(schema, Mapping) or any(k not in _SCHEMA_KEYS for k in schema):
        return None
    props = schema.get("properties")
    if not isinstance(props, Mapping) or not props:
        return None
    required = schema.get("required") or []
    if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
        return None
    names = list(props)
    if not set(required) <= set(names) or not set(key_properties) <= set(names):
        return None
    kinds = []
    for name in names:
        kind = _property_kind(props[name])
        if kind is None:
            return None
        kinds.append(kind)
    return ColumnarPlan(stream, names, kinds, set(required) | set(key_properties))
