"""Arrow → JSON-ready rows, column-wise (the tap's fast path for adapters that yield Arrow).

``Table.to_pylist()`` builds a ``datetime`` / ``date`` / ``Decimal`` object per cell and the JSON
text columns need one ``json.loads`` each; that costs several microseconds a row. Here every
column is converted with vectorised Arrow kernels first: timestamps to RFC 3339 text (UTC with
``+00:00``; naive stays naive), dates / times / decimals to their exact text, and JSON text
columns are passed through as :class:`orjson.Fragment` (embedded as they are, not re-parsed).
The rows are plain dicts that :func:`orjson.dumps` serialises directly; the values are exactly
what the Singer conventions of :mod:`dc_api_x.arrow` say (no rounding, no shifting).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson

from dc_api_x.arrow import JSON_META, is_json_property
from dc_api_x.values import singer_json_default

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

__all__ = ["arrow_json_lines", "arrow_json_records"]


def _temporal_text(col: Any, *, zone_suffix: bool = True) -> Any:
    """RFC 3339 / exact text (an Arrow string array) of a timestamp, date, time or decimal column;
    ``None`` for other types. ``zone_suffix=False`` leaves the ``+00:00`` of zoned timestamps out
    (the caller appends it)."""
    import pyarrow as pa
    import pyarrow.types as pt

    from . import kernels as pc

    t = col.type
    if pt.is_timestamp(t):
        if t.unit == "ns":
            try:
                col = pc.cast(col, pa.timestamp("us", tz=t.tz))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                pass
        # zone-less cast keeps the stored UTC instant (Arrow stores UTC); its text cast is a fast
        # kernel ("YYYY-MM-DD HH:MM:SS[.ffffff]"), unlike strftime or a zoned cast
        text = pc.cast(pc.cast(col, pa.timestamp(col.type.unit)), pa.string())
        text = pc.utf8_replace_slice(text, 10, 11, "T")
        if t.tz is not None and zone_suffix:
            text = pc.binary_join_element_wise(text, pa.scalar("+00:00"), pa.scalar(""))
        return text
    if pt.is_date(t) or pt.is_time(t) or pt.is_decimal(t):
        return pc.cast(col, pa.string())
    return None


def _column_values(col: Any, field: pa.Field, prop: Mapping[str, Any] | None) -> list[Any]:
    import pyarrow.types as pt

    from . import kernels as pc

    t = col.type
    if pt.is_dictionary(t):
        col = pc.cast(col, t.value_type)
        t = col.type
    text = _temporal_text(col)
    if text is not None:
        return text.to_pylist()  # type: ignore[no-any-return]
    if pt.is_binary(t) or pt.is_large_binary(t) or pt.is_fixed_size_binary(t):
        b64 = base64.b64encode
        return [None if v is None else b64(v).decode("ascii") for v in col.to_pylist()]
    is_json = (field.metadata or {}).get(JSON_META) == b"true" or is_json_property(prop)
    if is_json and (pt.is_string(t) or pt.is_large_string(t)):
        frag = orjson.Fragment
        return [None if v is None else frag(v) for v in col.to_pylist()]
    return col.to_pylist()  # type: ignore[no-any-return]


def arrow_json_records(table: pa.Table, schema: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """The rows of ``table`` as dicts of JSON-ready values (see the module docstring).

    Only for serialisation with orjson: JSON columns hold :class:`orjson.Fragment` objects.
    """
    props = (schema or {}).get("properties") or {}
    names = table.column_names
    cols = [
        _column_values(table.column(i), table.schema.field(i), props.get(name))
        for i, name in enumerate(names)
    ]
    return [dict(zip(names, row, strict=False)) for row in zip(*cols, strict=True)]


# ------------------------------------------------------------------------------ whole lines in Arrow
_CTRL = r"[\x00-\x1f]"


def _quoted(text: Any) -> Any:
    import pyarrow as pa

    from . import kernels as pc

    return pc.binary_join_element_wise(pa.scalar('"'), text, pa.scalar('"'), pa.scalar(""))


def _escape_strings(col: Any) -> Any:
    """The JSON-escaped content (without the quotes) of a string column; ``None`` if a control
    character other than \\n, \\r, \\t needs ``\\u`` escaping (the caller falls back to orjson)."""
    from . import kernels as pc

    if not pc.any_true(pc.match_substring_regex(col, r'["\\\x00-\x1f]')).as_py():
        return col  # nothing to escape (the usual case): no copy at all
    s = pc.replace_substring(col, "\\", "\\\\")
    s = pc.replace_substring(s, '"', '\\"')
    if pc.any_true(pc.match_substring_regex(s, _CTRL)).as_py():
        s = pc.replace_substring(s, "\n", "\\n")
        s = pc.replace_substring(s, "\r", "\\r")
        s = pc.replace_substring(s, "\t", "\\t")
        if pc.any_true(pc.match_substring_regex(s, _CTRL)).as_py():
            return None
    return s


def _json_text_column(col: Any, field: pa.Field, prop: Mapping[str, Any] | None) -> tuple[Any, str]:
    """The column as JSON text, one value per row, ``null`` for nulls (an Arrow string array), and
    the closing text the caller must add after every value: ``""``, or for string content without
    nulls ``'"'`` (an opening quote is then due too) or ``'+00:00"'`` (zoned timestamps). Those
    go into the constant parts of the line, which saves a pass per column."""
    import pyarrow as pa
    import pyarrow.types as pt

    from . import kernels as pc

    t = col.type
    if pt.is_dictionary(t):
        col = pc.cast(col, t.value_type)
        t = col.type
    out: Any
    if pt.is_null(t):
        out = pa.array(["null"] * len(col), pa.string())
    elif pt.is_boolean(t):
        out = pc.if_else(col, pa.scalar("true"), pa.scalar("false"))
    elif pt.is_integer(t):
        out = pc.cast(col, pa.string())
    elif pt.is_floating(t):
        if not pt.is_float64(t):  # the values Python (and the records path) would see
            col = pc.cast(col, pa.float64())
        finite = pc.is_finite(col)
        col = pc.if_else(finite, col, pa.scalar(None, col.type))  # NaN/inf -> null, as orjson does
        text = pc.cast(col, pa.string())
        integral = pc.match_substring_regex(text, r"^-?[0-9]+$")
        out = pc.if_else(integral, pc.binary_join_element_wise(text, pa.scalar(".0"), pa.scalar("")), text)
    elif pt.is_timestamp(t) or pt.is_date(t) or pt.is_time(t) or pt.is_decimal(t):
        if not col.null_count:
            zoned = pt.is_timestamp(t) and t.tz is not None
            return _temporal_text(col, zone_suffix=False), ('+00:00"' if zoned else '"')
        out = _quoted(_temporal_text(col))
    elif (field.metadata or {}).get(JSON_META) == b"true" or is_json_property(prop):
        if not (pt.is_string(t) or pt.is_large_string(t)):
            raise TypeError("JSON column not stored as text")
        out = col
    elif pt.is_string(t) or pt.is_large_string(t):
        esc = _escape_strings(col)
        if esc is None:
            dumps = orjson.dumps
            out = pa.array([None if v is None else dumps(v).decode() for v in col.to_pylist()], pa.string())
        elif not esc.null_count:
            return (esc if esc.type == pa.string() else pc.cast(esc, pa.string())), '"'
        else:
            out = _quoted(esc)
    else:  # binary, struct, list, map, …: per value
        vals = _column_values(col, field, prop)
        dumps = orjson.dumps
        out = pa.array(
            [None if v is None else dumps(v, default=singer_json_default).decode() for v in vals], pa.string()
        )
    if out.type != pa.string():
        out = pc.cast(out, pa.string())
    return (pc.fill_null(out, "null") if out.null_count else out), ""


def arrow_json_lines(table: pa.Table, schema: Mapping[str, Any] | None, head: bytes, tail: bytes) -> bytes:
    """Whole Singer lines for ``table``: ``head + {"col": value, …} + tail`` per row, built with
    Arrow string kernels (no Python object per row). ``tail`` must end with a newline.

    The values are the same as :func:`arrow_json_records` + ``orjson.dumps`` would give.
    :raises TypeError / pyarrow.ArrowException: a column type this path does not handle (the caller
        falls back to :func:`arrow_json_records`).
    """
    import pyarrow as pa

    from . import kernels as pc

    if table.num_rows == 0:
        return b""
    props = (schema or {}).get("properties") or {}
    table = table.combine_chunks()
    parts: list[Any] = []
    prefix = head.decode("utf-8") + "{"
    for i, name in enumerate(table.column_names):
        col = table.column(i)
        arr = col.chunk(0) if col.num_chunks == 1 else pa.concat_arrays(col.chunks)
        text, close = _json_text_column(arr, table.schema.field(i), props.get(name))
        parts.append(pa.scalar(prefix + orjson.dumps(name).decode("utf-8") + ":" + ('"' if close else "")))
        parts.append(text)
        prefix = close + ","
    if not parts:
        return (head + b"{}" + tail) * table.num_rows
    parts.append(pa.scalar(prefix[:-1] + "}" + tail.decode("utf-8")))
    lines = pc.binary_join_element_wise(*parts, pa.scalar(""))
    if isinstance(lines, pa.ChunkedArray):
        lines = lines.combine_chunks()
    if lines.null_count:
        raise TypeError("a line came out null")
    offsets = memoryview(lines.buffers()[1]).cast("i" if lines.type == pa.string() else "q")
    start, end = offsets[lines.offset], offsets[lines.offset + len(lines)]
    return bytes(memoryview(lines.buffers()[2])[start:end])
