"""Arrow → records (dicts of native Python values), column by column: zone-aware timestamps as
aware ``datetime`` objects in UTC, JSON text columns decoded (every digit of their numbers kept)."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..values import json_loads
from .schema import JSON_META, is_json_property

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

__all__ = ["arrow_to_records"]


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
