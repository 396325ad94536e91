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

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

__all__ = ["arrow_json_records"]

_JSON_META = b"dcapix.json"


def _is_json_prop(prop: Mapping[str, Any] | None) -> bool:
    if not prop:
        return False
    if prop.get("x-json"):
        return True
    t = prop.get("type")
    types = {t} if isinstance(t, str) else set(t or ())
    types.discard("null")
    if types == {"object"} and not prop.get("properties"):
        return True
    if types == {"array"} and not prop.get("items"):
        return True
    return len(types) > 1 and not types <= {"integer", "number"} and not types <= {"string"}


def _column_values(col: Any, field: pa.Field, prop: Mapping[str, Any] | None) -> list[Any]:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.types as pt

    t = col.type
    if pt.is_dictionary(t):
        col = col.cast(t.value_type)
        t = col.type
    if pt.is_timestamp(t):
        if t.unit == "ns":
            try:
                col = col.cast(pa.timestamp("us", tz=t.tz), safe=True)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                pass
        # zone-less cast keeps the stored UTC instant (Arrow stores UTC); its text cast is a fast
        # kernel ("YYYY-MM-DD HH:MM:SS[.ffffff]"), unlike strftime or a zoned cast
        text = col.cast(pa.timestamp(col.type.unit)).cast(pa.string())
        text = pc.utf8_replace_slice(text, 10, 11, "T")
        if t.tz is not None:
            text = pc.binary_join_element_wise(text, pa.scalar("+00:00"), pa.scalar(""))
        return text.to_pylist()  # type: ignore[no-any-return]
    if pt.is_date(t) or pt.is_time(t) or pt.is_decimal(t):
        return col.cast(pa.string()).to_pylist()  # type: ignore[no-any-return]
    if pt.is_binary(t) or pt.is_large_binary(t) or pt.is_fixed_size_binary(t):
        b64 = base64.b64encode
        return [None if v is None else b64(v).decode("ascii") for v in col.to_pylist()]
    is_json = (field.metadata or {}).get(_JSON_META) == b"true" or _is_json_prop(prop)
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
    cols = [_column_values(table.column(i), table.schema.field(i), props.get(name))
            for i, name in enumerate(names)]
    return [dict(zip(names, row, strict=False)) for row in zip(*cols, strict=True)]
