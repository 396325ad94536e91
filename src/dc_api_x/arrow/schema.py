"""The JSON Schema ⇄ Arrow type conventions (the table of :mod:`dc_api_x.arrow`): a property's
Arrow field and back, the JSON types of a property, which properties are JSON text and which
numbers are exact decimals, and the field metadata markers (JSON text, JSON number text)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

__all__ = [
    "INTEGER_DECIMAL_PRECISION",
    "JSON_META",
    "NUMBER_META",
    "arrow_to_jsonschema",
    "decimal_property",
    "first_variant",
    "is_json_property",
    "json_types",
    "jsonschema_field",
    "jsonschema_to_arrow",
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
