"""Schema inference from sample records (layer 0: no heavy imports).

One implementation for every caller: the ``infer`` schema provider (:mod:`dc_api_x.schemas`), the
HTTP adapter (schemas of streams without a declared schema) and the files adapter (JSONL/CSV).
The result follows the JSON Schema ⇄ Arrow conventions of :mod:`dc_api_x.arrow`: decimals as
``format: decimal`` strings with ``x-precision``/``x-scale``, naive date-times with
``x-timezone: false``, bytes as ``contentEncoding: base64``, mixed values as ``x-json`` blobs.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from .types import JSONSchema
from .values import JSONNumber, parse_datetime

__all__ = ["infer_schema"]

_DATETIME_RE = re.compile(
    r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(?P<tz>Z|z|[+-]\d{2}(:?\d{2})?)?$"
)
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class _Node:
    """What was seen for one property across the sample."""

    __slots__ = ("count", "dec_int", "dec_scale", "items", "kinds", "nulls", "objects", "props")

    def __init__(self) -> None:
        self.kinds: set[str] = set()
        self.nulls = 0
        self.count = 0
        self.props: dict[str, _Node] | None = None
        self.items: _Node | None = None
        self.dec_int = 0
        self.dec_scale = 0
        self.objects = 0

    def add(self, value: Any, detect_formats: bool) -> None:
        self.count += 1
        if value is None:
            self.nulls += 1
            return
        if isinstance(value, bool):
            self.kinds.add("boolean")
        elif isinstance(value, int):
            self.kinds.add("integer")
        elif isinstance(value, (float, JSONNumber)):
            self.kinds.add("number")  # a JSON number read exactly (16+ digits): a number all the same
        elif isinstance(value, Decimal):
            self.kinds.add("decimal")
            _sign, digits, exp = value.as_tuple()
            scale = max(0, -int(exp)) if isinstance(exp, int) else 0
            self.dec_scale = max(self.dec_scale, scale)
            self.dec_int = max(self.dec_int, len(digits) - scale)
        elif isinstance(value, _dt.datetime):
            self.kinds.add("datetime_tz" if value.tzinfo is not None else "datetime_naive")
        elif isinstance(value, _dt.date):
            self.kinds.add("date")
        elif isinstance(value, _dt.time):
            self.kinds.add("time")
        elif isinstance(value, (bytes, bytearray, memoryview)):
            self.kinds.add("bytes")
        elif isinstance(value, str):
            self.kinds.add(_string_kind(value) if detect_formats else "string")
        elif isinstance(value, Mapping):
            self.kinds.add("object")
            self.objects += 1
            if self.props is None:
                self.props = {}
            seen = set()
            for k, v in value.items():
                node = self.props.get(k)
                if node is None:
                    node = self.props[k] = _Node()
                    # absent from the objects seen before: nullable
                    node.count = node.nulls = self.objects - 1
                node.add(v, detect_formats)
                seen.add(k)
            for k, node in self.props.items():
                if k not in seen:
                    node.add(None, detect_formats)
        elif isinstance(value, (list, tuple)):
            self.kinds.add("array")
            if self.items is None:
                self.items = _Node()
            for v in value:
                self.items.add(v, detect_formats)
        else:
            self.kinds.add("string")

    def to_schema(self, *, nested: bool = True, all_nullable: bool = False) -> JSONSchema:
        kinds = set(self.kinds)
        nullable = all_nullable or self.nulls > 0 or not kinds
        out: JSONSchema
        if not kinds:
            return {"type": ["string", "null"]}
        if kinds <= {"integer", "number"}:
            out = {"type": ["integer"] if kinds == {"integer"} else ["number"]}
        elif kinds == {"boolean"}:
            out = {"type": ["boolean"]}
        elif kinds <= {"decimal", "integer"} and "decimal" in kinds:
            out = {"type": ["string"], "format": "decimal"}
            precision = max(self.dec_int, 1) + self.dec_scale
            if "integer" not in kinds:
                out["x-precision"], out["x-scale"] = max(precision, 1), self.dec_scale
        elif kinds <= {"datetime_tz"}:
            out = {"type": ["string"], "format": "date-time"}
        elif kinds <= {"datetime_naive"}:
            out = {"type": ["string"], "format": "date-time", "x-timezone": False}
        elif kinds == {"date"}:
            out = {"type": ["string"], "format": "date"}
        elif kinds == {"time"}:
            out = {"type": ["string"], "format": "time"}
        elif kinds == {"bytes"}:
            out = {"type": ["string"], "contentEncoding": "base64"}
        elif kinds <= {"string", "datetime_tz", "datetime_naive", "date", "time"}:
            out = {"type": ["string"]}
        elif not nested and kinds <= {"object", "array"} and len(kinds) == 1:
            out = {"type": sorted(kinds), "x-json": True}
        elif kinds == {"object"} and self.props:
            out = {"type": ["object"], "properties": {k: n.to_schema() for k, n in self.props.items()}}
        elif kinds == {"array"} and self.items is not None and self.items.kinds:
            out = {"type": ["array"], "items": self.items.to_schema()}
        else:  # mixed kinds, empty objects/arrays: kept losslessly as JSON
            json_types = sorted({_JSON_KIND.get(k, "string") for k in kinds})
            out = {"type": json_types, "x-json": True}
            nullable = True
        if nullable:
            out["type"] = [*out["type"], "null"]
        return out


_JSON_KIND = {
    "integer": "integer",
    "number": "number",
    "boolean": "boolean",
    "object": "object",
    "array": "array",
    "decimal": "string",
}


def _string_kind(value: str) -> str:
    if len(value) == 10 and _DATE_RE.match(value):
        try:
            _dt.date.fromisoformat(value)
            return "date"
        except ValueError:
            return "string"
    if 16 <= len(value) <= 40:
        m = _DATETIME_RE.match(value)
        if m:
            try:  # nanoseconds that are not zeros would be truncated: such text stays a string
                parse_datetime(value)
            except ValueError:
                return "string"
            return "datetime_tz" if m.group("tz") else "datetime_naive"
    return "string"


def infer_schema(
    records: Iterable[Mapping[str, Any]],
    *,
    sample_size: int | None = None,
    detect_formats: bool = True,
    nested: bool = True,
    all_nullable: bool = False,
) -> JSONSchema:
    """Infer a JSON Schema from sample records.

    Integers widen to ``number`` when floats are seen; ``Decimal`` values give ``format: decimal``
    with precision/scale; ISO strings are detected as ``date-time`` (with or without zone) or
    ``date`` when *every* sampled value parses; nested objects become ``properties`` and arrays
    ``items``; a property missing or ``null`` in any sample is nullable; mixed or empty values become
    ``x-json`` blobs (kept losslessly). Property order is the order of first appearance.

    ``nested=False``: top-level objects and arrays are ``x-json`` blobs (no ``properties`` /
    ``items``); ``all_nullable=True``: every top-level property is nullable (for sources whose
    fields come and go between pages, such as HTTP APIs).
    """
    root = _Node()
    for i, rec in enumerate(records):
        if sample_size is not None and i >= sample_size:
            break
        root.add(dict(rec), detect_formats)
    props = {k: n.to_schema(nested=nested, all_nullable=all_nullable) for k, n in (root.props or {}).items()}
    return {"type": "object", "properties": props}
