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
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .exceptions import ConfigError
from .ext.schemas import SchemaProvider, SchemaProviderOptions
from .inference import infer_schema
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
    raise ConfigError(
        f"{where}: no JSON Schema found" + (f" for stream {stream!r}" if stream else ""), field="schema"
    )


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
        raise ConfigError(
            f"stream {spec.name!r}: option 'schema' must be a dict or a file path, "
            f"got {type(override).__name__}",
            field="schema",
        )
    props = doc.get("properties") or {}
    if not isinstance(props, Mapping) or not all(isinstance(v, Mapping) for v in props.values()):
        raise ConfigError(
            f"stream {spec.name!r}: option 'schema': 'properties' must map field names to JSON Schemas",
            field="schema",
        )
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
        return infer_schema(
            records, sample_size=self.options.sample_size, detect_formats=self.options.detect_formats
        )


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
                raise ConfigError(
                    "schema provider 'arrow': give 'arrow_schema' or 'path'",
                    plugin="schema provider 'arrow'",
                    field="path",
                )
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
        raise ConfigError(
            f"schema provider 'arrow': {str(p)!r} is not a readable Parquet file: {exc}", field="path"
        ) from None


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
    registry.register("sql_reflection", "dc_api_x.adapters.sql.reflection:SQLReflectionSchemaProvider")
    registry.register("arrow", ArrowSchemaProvider)
    registry.register("infer", InferSchemaProvider)
    registry.register("jsonschema_file", JSONSchemaFileProvider)
