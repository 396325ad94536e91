"""Column helpers shared by the built-in transforms: setting a typed column, decoding dictionaries,
the canonical text of a value (what ``hash`` and ``mask`` work on)."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import orjson

from ..arrow import JSON_META, jsonschema_field
from ..values import json_default, json_form

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

__all__ = [
    "INT64_MAX",
    "INT64_MIN",
    "canonical_text",
    "is_json_column",
    "is_null_type",
    "nullable",
    "plain",
    "set_column",
    "show",
    "text_column",
]

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def set_column(
    table: pa.Table, name: str, values: Any, prop: Mapping[str, Any], at: int | None = None
) -> pa.Table:
    """Put ``values`` in column ``name`` (replacing it, or inserting it at ``at`` / the end), typed
    as the JSON Schema ``prop`` says."""
    import pyarrow as pa

    field = jsonschema_field(name, prop)
    if isinstance(values, pa.Scalar):
        n = table.num_rows
        values = pa.repeat(values, n) if values.is_valid else pa.nulls(n, field.type)
    if values.type != field.type:
        values = values.cast(field.type, safe=True)
    if name in table.column_names:
        return table.set_column(table.column_names.index(name), field, values)
    if at is None:
        return table.append_column(field, values)
    return table.add_column(at, field, values)


def is_null_type(t: pa.DataType) -> bool:
    import pyarrow as pa

    return bool(t == pa.null())


def plain(col: Any) -> Any:
    """Dictionary-encoded arrays decoded to their value type."""
    import pyarrow.types as pt

    if pt.is_dictionary(col.type):
        return col.cast(col.type.value_type)
    return col


def canonical_text(value: Any) -> str | bytes:
    """The canonical text of a value (used by ``hash`` and ``mask``); bytes stay bytes."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (Decimal, _dt.date, _dt.time)):
        return json_form(value)  # plain-notation decimals, ISO dates and times
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS, default=json_default).decode()


def is_json_column(field: pa.Field) -> bool:
    return bool(field.metadata and field.metadata.get(JSON_META) == b"true")


def text_column(table: pa.Table, name: str) -> list[str | bytes | None]:
    """The canonical text (:func:`canonical_text`) of every value of a column. Strings, integers and
    booleans are converted by Arrow kernels; other types go through their Python values."""
    import pyarrow as pa
    import pyarrow.types as pt

    col = plain(table.column(name))
    field = table.schema.field(name)
    t = col.type
    if is_json_column(field):
        return [None if v is None else canonical_text(orjson.loads(v)) for v in col.to_pylist()]
    if pt.is_string(t) or pt.is_large_string(t):
        return col.to_pylist()  # type: ignore[no-any-return]
    if pt.is_integer(t) or pt.is_boolean(t):
        return col.cast(pa.string()).to_pylist()  # type: ignore[no-any-return]
    return [None if v is None else canonical_text(v) for v in col.to_pylist()]


def nullable(prop: Mapping[str, Any]) -> dict[str, Any]:
    """``prop`` allowing null (a child of a null parent is null)."""
    out = dict(prop)
    t = out.get("type")
    if isinstance(t, str) and t != "null":
        out["type"] = [t, "null"]
    elif isinstance(t, list) and "null" not in t:
        out["type"] = [*t, "null"]
    return out
