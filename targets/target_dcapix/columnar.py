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

__all__ = ["ARROW_ADAPTERS", "ColumnarPlan", "LineSpans", "columnar_plan"]

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


class LineSpans:
    """Lines ``i0`` to ``i1`` of a block of input given as its bytes ``data`` and the int64
    (start, end) offsets of its lines (``bounds``, from the scanner): the lines are cut out of the
    block only when they are needed (a chunk the dict path must read again)."""

    __slots__ = ("bounds", "data", "i0", "i1")

    def __init__(self, data: bytes, bounds: Any, i0: int, i1: int) -> None:
        self.data, self.bounds, self.i0, self.i1 = data, bounds, i0, i1

    def __len__(self) -> int:
        return self.i1 - self.i0

    def __getitem__(self, part: slice) -> LineSpans:
        start, stop, _ = part.indices(self.i1 - self.i0)
        return LineSpans(self.data, self.bounds, self.i0 + start, self.i0 + stop)

    def nbytes(self) -> int:
        """Bytes of the lines, without their newlines."""
        if self.i1 <= self.i0:
            return 0
        b = self.bounds
        return b[2 * self.i1 - 1] - b[2 * self.i0] - (self.i1 - self.i0 - 1)

    def lines(self) -> list[bytes]:
        b, data = self.bounds, self.data
        return [data[b[2 * i] : b[2 * i + 1]] for i in range(self.i0, self.i1)]


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
        #: The compiled scanner's arguments for this stream (:func:`_native_spec`), or ``None``.
        self.native = _native_spec(stream, names, kinds, required)

    def native_table(
        self, block: list[bytes] | bytes, schema: Mapping[str, Any]
    ) -> tuple[bytes, pa.Table, bytes | None] | None:
        """The block's RECORD lines read by the compiled scanner (``dc_api_x.arrow._recordscan``): the
        kind of each line (``R``: a RECORD of this stream, ``O``: another message type, which the
        caller decodes) and the Arrow table of the records typed by ``schema`` (the writer's),
        the table :meth:`to_arrow` makes of the same records, and for a block given as its bytes
        (lines ending with a newline but perhaps the last) the int64 (start, end) offsets of each
        line in them. ``None`` when the scanner leaves the block to the Python path (or a column
        is not one it converts as that path does)."""
        native = self.native
        if native is None:
            return None
        scan, args, kinds = native
        got = scan(block, *args)
        if got is None:
            return None
        line_kinds, columns, bounds = got
        rows = line_kinds.count(b"R")
        import pyarrow as pa

        from dc_api_x.arrow.native import arrays_of

        arrow = self.arrow_schema(schema)
        own = arrays_of(columns, kinds, rows)
        arrays = []
        for f in arrow:
            i = self._index.get(f.name)
            if i is None:
                arrays.append(pa.nulls(rows, type=f.type))
                continue
            if columns[i][4]:  # JSON texts not spelled as orjson spells them: rebuilt as _json_column does
                arr = self._json_column(_texts_of(own[i]), f, self._json[i])
            else:
                arr = _native_column(own[i], kinds[i], f)
            if arr is None:
                return None
            arrays.append(arr)
        return line_kinds, pa.Table.from_arrays(arrays, schema=arrow), bounds

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


_FLAG_OF_TYPE = {type(None): "F_NULL", dict: "F_OBJECT", list: "F_ARRAY", str: "F_STRING", int: "F_INT"}
_FLAG_OF_TYPE.update({float: "F_FLOAT", bool: "F_BOOL"})


def _native_spec(
    stream: str, names: list[str], kinds: list[tuple[Any, frozenset[type] | str]], required: set[str]
) -> tuple[Any, tuple[bytes, tuple[bytes, ...], bytes, bytes], bytes] | None:
    """``(scan, (stream, names, kinds, flags), kinds)`` for ``dc_api_x.arrow._recordscan.scan``, or
    ``None`` when the extension is not there or a name would need a JSON escape (the scanner
    compares the names' bytes) or a field is of a kind it does not read."""
    import msgspec

    from dc_api_x.arrow.native import load

    mod = load()
    if mod is None:
        return None

    def plain(text: str) -> bytes | None:
        if '"' in text or "\\" in text or any(ord(c) < 0x20 for c in text):
            return None
        try:
            return text.encode()
        except UnicodeEncodeError:  # a lone surrogate
            return None

    s = plain(stream)
    encoded = [plain(n) for n in names]
    if s is None or any(n is None for n in encoded):
        return None
    letters = bytearray()
    flags = bytearray()
    for name, (ann, kind) in zip(names, kinds, strict=True):
        flag = mod.F_REQUIRED if name in required else 0
        if ann is msgspec.Raw and isinstance(kind, frozenset):  # JSON text
            letter = "j"
            for t in kind:
                if t not in _FLAG_OF_TYPE:
                    return None
                flag |= getattr(mod, _FLAG_OF_TYPE[t])
        elif ann is msgspec.Raw:  # float64 number
            letter = "n"
            flag |= mod.F_NULL if kind == "number?" else 0
        else:
            base = {int: "i", bool: "b", str: "s"}
            inner = [a for a in getattr(ann, "__args__", ()) if a is not type(None)]
            nullable = ann not in base
            typ = inner[0] if nullable and len(inner) == 1 else ann
            if typ not in base:
                return None
            letter = base[typ]
            flag |= mod.F_NULL if nullable else 0
        letters += letter.encode()
        flags.append(flag)
    enc = tuple(n for n in encoded if n is not None)
    return mod.scan, (s, enc, bytes(letters), bytes(flags)), bytes(letters)


def _texts_of(arr: pa.StringArray) -> list[bytes]:
    """The JSON texts of the scanner's JSON-text column ``arr``, ``null`` for a null (a null and a
    field left out are both ``None`` to the Python path, and the scanner refused a null the schema
    does not allow)."""
    from itertools import pairwise

    import pyarrow as pa

    offsets = arr.buffers()[1]
    assert offsets is not None
    data = arr.buffers()[2]
    raw = b"" if data is None else data.to_pybytes()
    ends = memoryview(offsets).cast("i").tolist()
    bitmap = arr.buffers()[0] if arr.null_count else None  # (is_valid() would import pyarrow.compute)
    valid = (
        None if bitmap is None else pa.Array.from_buffers(pa.bool_(), len(arr), [None, bitmap]).to_pylist()
    )
    texts = [raw[a:b] for a, b in pairwise(ends)]
    if valid is not None:
        texts = [t if v else b"null" for t, v in zip(texts, valid, strict=True)]
    return texts


def _native_column(arr: pa.Array, kind: int, f: pa.Field) -> pa.Array | None:
    """The scanner's column ``arr`` (letter ``kind``) as the Python path converts the same values
    into ``f``: directly when ``f`` is its own type, through Arrow's cast for date / date-time /
    decimal strings, else through :func:`dc_api_x.arrow._column_to_arrow` of its Python values.
    ``None`` for a JSON-text or number column the writer does not type as the stream does."""
    import pyarrow as pa
    import pyarrow.types as pt

    from dc_api_x.arrow import JSON_META, NUMBER_META, _column_to_arrow
    from dc_api_x.arrow.records import _cast_strings

    meta = f.metadata or {}
    letter = chr(kind)
    if letter == "j":
        if pt.is_string(f.type) and meta.get(JSON_META) == b"true":
            return arr
        return None
    if letter == "n":
        return arr if f.type == pa.float64() else None  # (as to_arrow refuses it)
    if meta.get(JSON_META) or meta.get(NUMBER_META):
        return _column_to_arrow(arr.to_pylist(), f)
    if f.type == arr.type:
        return arr
    if letter == "s" and (pt.is_timestamp(f.type) or pt.is_date(f.type) or pt.is_decimal(f.type)):
        cast = _cast_strings(arr, f.type)
        if cast is not None:
            return cast
    return _column_to_arrow(arr.to_pylist(), f)


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
