"""Casting an Arrow table to a schema by column name, exactly: safe casts only, per-value
conversion where Arrow cannot cast, text → float and JSON number text checked digit by digit."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..values import arrow_errors
from .exact_numbers import _check_int_range, _exact_float_column, _number_value
from .records import ConversionError, _cast, _column_to_arrow, conversion_message
from .schema import NUMBER_META

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

__all__ = ["cast_table"]


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
                    arrays.append(_cast(col, f.type))  # no pyarrow.compute import
                except arrow_errors():
                    # e.g. struct → JSON text, string → timestamp with a zone-less text, …
                    values = col.to_pylist()
                    arrays.append(_column_to_arrow(values, f))
            except arrow_errors() as exc:
                raise ConversionError(conversion_message(exc, values, f.type), field=f.name) from exc
        else:
            arrays.append(pa.nulls(table.num_rows, type=f.type))
    return pa.Table.from_arrays(arrays, schema=schema)
