"""Built-in plugin: schema providers, and the schema-override helper.

Providers (``create_plugin("schema_providers", {"type": NAME, …})``):

* ``sql_reflection`` — reflected from a SQL table (lives with the SQL adapter, loaded lazily);
* ``arrow`` — from an Arrow schema or the metadata of a Parquet file (``path`` option or context);
* ``infer`` — inferred from sample records (``records=`` context);
* ``jsonschema_file`` — read from a JSON Schema file (JSON or YAML; a bare schema, a Singer
  catalog, or a ``{stream: schema}`` mapping).

:func:`apply_schema_override` lets config override a discovered stream schema (stream option
``schema``: an inline dict or a file path). Nothing here imports :mod:`pyarrow` at module level.
"""

from __future__ import annotations

import copy
import datetime as _dt
import os
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .exceptions import ConfigError
from .ext.schemas import SchemaProvider, SchemaProviderOptions
from .types import JSONSchema, StreamSpec

if TYPE_CHECKING:  # pragma: no cover
    from .plugins import Registry

__all__ = [
    "ArrowSchemaProvider",
    "InferSchemaProvider",
    "JSONSchemaFileProvider",
    "apply_schema_override",
    "infer_schema",
    "load_schema_file",
    "register_schema_providers",
]


# ------------------------------------------------------------------------------------ inference
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
        elif isinstance(value, float):
            self.kinds.add("number")
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

    def to_schema(self) -> JSONSchema:
        kinds = set(self.kinds)
        nullable = self.nulls > 0 or not kinds
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


_JSON_KIND = {"integer": "integer", "number": "number", "boolean": "boolean", "object": "object",
              "array": "array", "decimal": "string"}


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
            text = value.replace("z", "Z")
            try:
                _dt.datetime.fromisoformat(re.sub(r"(\.\d{6})\d+", r"\1", text.replace("Z", "+00:00")))
            except ValueError:
                return "string"
            return "datetime_tz" if m.group("tz") else "datetime_naive"
    return "string"


def infer_schema(records: Iterable[Mapping[str, Any]], *, sample_size: int | None = None,
                 detect_formats: bool = True) -> JSONSchema:
    """Infer a JSON Schema from sample records.

    Integers widen to ``number`` when floats are seen; ``Decimal`` values give ``format: decimal``
    with precision/scale; ISO strings are detected as ``date-time`` (with or without zone) or
    ``date`` when *every* sampled value parses; nested objects become ``properties`` and arrays
    ``items``; a property missing or ``null`` in any sample is nullable; mixed or empty values become
    ``x-json`` blobs (kept losslessly). Property order is the order of first appearance.
    """
    root = _Node()
    for i, rec in enumerate(records):
        if sample_size is not None and i >= sample_size:
            break
        root.add(dict(rec), detect_formats)
    props = {k: n.to_schema() for k, n in (root.props or {}).items()}
    return {"type": "object", "properties": props}


# --------------------------------------------------------------------------------- file loading
def load_schema_file(path: str | os.PathLike[str], *, stream: str | None = None) -> JSONSchema:
    """Read a JSON Schema from a JSON or YAML file.

    The file may hold the schema itself (``{"type": "object", "properties": …}``), a Singer catalog
    (``{"streams": [{"tap_stream_id": …, "schema": …}]}``) or a ``{stream_name: schema}`` mapping;
    in the last two cases ``stream`` selects the entry.

    :raises ConfigError: naming the file (and the stream) when it cannot be read or has no schema.
    """
    p = Path(os.fspath(path)).expanduser()
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"schema file {str(p)!r}: {exc.strerror or exc}", field="schema") from None
    try:
        if p.suffix.lower() in (".yml", ".yaml"):
            import yaml

            doc = yaml.safe_load(text)
        else:
            import orjson

            doc = orjson.loads(text)
    except Exception as exc:
        raise ConfigError(f"schema file {str(p)!r} is not valid JSON/YAML: {exc}", field="schema") from None
    return _pick_schema(doc, stream, where=f"schema file {str(p)!r}")


def _pick_schema(doc: Any, stream: str | None, *, where: str) -> JSONSchema:
    if not isinstance(doc, Mapping):
        raise ConfigError(f"{where}: expected a JSON object", field="schema")
    if "properties" in doc or doc.get("type") == "object":
        return dict(doc)
    if isinstance(doc.get("streams"), list):
        for entry in doc["streams"]:
            if stream is None or stream in (entry.get("tap_stream_id"), entry.get("stream")):
                return dict(entry["schema"])
        raise ConfigError(f"{where}: no stream {stream!r} in the catalog", field="schema")
    if stream is not None and isinstance(doc.get(stream), Mapping):
        return dict(doc[stream])
    raise ConfigError(f"{where}: no JSON Schema found" + (f" for stream {stream!r}" if stream else ""),
                      field="schema")


def apply_schema_override(
    spec: StreamSpec,
    override: Mapping[str, Any] | str | os.PathLike[str] | None,
) -> StreamSpec:
    """``spec`` with its schema overridden by config (a stream's ``schema`` option).

    ``override`` is ``None`` (no change), a path to a JSON/YAML schema file (see
    :func:`load_schema_file`; the stream's name selects the entry of a catalog/mapping), or an
    inline dict: a JSON Schema (``{"properties": {...}}``) or just a ``{field: schema}`` mapping.
    The overriding properties *replace* the discovered properties of the same name; other discovered
    properties are kept and new ones are added. With ``"x-replace": true`` the override replaces the
    whole schema. ``required`` from the override is kept.
    """
    if override is None:
        return spec
    if isinstance(override, (str, os.PathLike)):
        doc = load_schema_file(override, stream=spec.name)
    elif isinstance(override, Mapping):
        doc = dict(override)
        if "properties" not in doc and "type" not in doc and "x-replace" not in doc:
            doc = {"properties": doc}
    else:
        raise ConfigError(f"stream {spec.name!r}: option 'schema' must be a dict or a file path, "
                          f"got {type(override).__name__}", field="schema")
    props = doc.get("properties") or {}
    if not isinstance(props, Mapping) or not all(isinstance(v, Mapping) for v in props.values()):
        raise ConfigError(f"stream {spec.name!r}: option 'schema': 'properties' must map field names to "
                          "JSON Schemas", field="schema")
    if doc.get("x-replace"):
        new = {k: copy.deepcopy(v) for k, v in doc.items() if k != "x-replace"}
        new.setdefault("type", "object")
    else:
        new = copy.deepcopy(dict(spec.schema))
        new.setdefault("type", "object")
        merged = dict(new.get("properties") or {})
        for name, prop in props.items():
            merged[name] = copy.deepcopy(dict(prop))
        new["properties"] = merged
        if "required" in doc:
            new["required"] = list(doc["required"])
    return spec.with_(schema=new)


# ------------------------------------------------------------------------------------ providers
class InferOptions(SchemaProviderOptions):
    #: how many records to look at (``None``: all given).
    sample_size: int | None = 1000
    #: detect ``date-time`` / ``date`` in ISO strings.
    detect_formats: bool = True


class InferSchemaProvider(SchemaProvider):
    """``infer``: the schema inferred from sample records (context ``records``)."""

    name = "infer"
    Options = InferOptions

    def schema(self, **context: Any) -> JSONSchema:
        records = self.require(context, "records")
        return infer_schema(records, sample_size=self.options.sample_size,
                            detect_formats=self.options.detect_formats)


class ArrowOptions(SchemaProviderOptions):
    #: a Parquet file (or a directory of them); context ``path`` / ``arrow_schema`` win over it.
    path: str | None = None


class ArrowSchemaProvider(SchemaProvider):
    """``arrow``: the schema of an Arrow schema (context ``arrow_schema``) or of a Parquet file's
    metadata (context or option ``path``; a directory uses its first ``*.parquet`` file)."""

    name = "arrow"
    Options = ArrowOptions

    def schema(self, **context: Any) -> JSONSchema:
        from .arrow import arrow_to_jsonschema

        arrow_schema = context.get("arrow_schema")
        if arrow_schema is None:
            path = context.get("path") or self.options.path
            if not path:
                raise ConfigError("schema provider 'arrow': give 'arrow_schema' or 'path'",
                                  plugin="schema provider 'arrow'", field="path")
            arrow_schema = _parquet_schema(str(path))
        stored = _stored_schema(arrow_schema)
        return stored if stored is not None else arrow_to_jsonschema(arrow_schema)


def _parquet_schema(path: str) -> Any:
    import pyarrow.parquet as pq

    p = Path(path)
    if p.is_dir():
        files = sorted(x for x in p.rglob("*.parquet") if not x.name.startswith((".", "_")))
        if not files:
            raise ConfigError(f"schema provider 'arrow': no *.parquet file under {path!r}", field="path")
        p = files[0]
    try:
        return pq.read_schema(str(p))
    except Exception as exc:
        raise ConfigError(f"schema provider 'arrow': {str(p)!r} is not a readable Parquet file: {exc}",
                          field="path") from None


def _stored_schema(arrow_schema: Any) -> JSONSchema | None:
    """The JSON Schema the files adapter stored in the Arrow metadata, if it still matches."""
    import orjson

    from .arrow import jsonschema_to_arrow

    meta = arrow_schema.metadata or {}
    raw = meta.get(b"dcapix.stream")
    if not raw:
        return None
    try:
        schema = orjson.loads(raw).get("schema")
        if isinstance(schema, dict) and jsonschema_to_arrow(schema).remove_metadata().equals(
            arrow_schema.remove_metadata()
        ):
            return schema
    except Exception:
        return None
    return None


class JSONSchemaFileOptions(SchemaProviderOptions):
    #: the JSON/YAML file holding the schema (a schema, a Singer catalog or a ``{stream: schema}`` map).
    path: str


class JSONSchemaFileProvider(SchemaProvider):
    """``jsonschema_file``: a JSON Schema read from a file (context ``stream`` selects the entry of
    a catalog or a mapping)."""

    name = "jsonschema_file"
    Options = JSONSchemaFileOptions

    def schema(self, **context: Any) -> JSONSchema:
        return load_schema_file(self.options.path, stream=context.get("stream"))


def register_schema_providers(registry: Registry) -> None:
    """Register the built-in schema providers."""
    registry.register("sql_reflection", "dc_api_x.adapters._sql:SQLReflectionSchemaProvider")
    registry.register("arrow", ArrowSchemaProvider)
    registry.register("infer", InferSchemaProvider)
    registry.register("jsonschema_file", JSONSchemaFileProvider)
