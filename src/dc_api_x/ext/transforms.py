"""The transform contract: per-batch, schema-aware record transformations.

A transform is configured from a ``{type: NAME, …options}`` mapping (validated by its pydantic
:attr:`Transform.Options`), knows the JSON Schema it produces (:meth:`Transform.transform_schema`, so
writers create the right columns) and applies to a whole :class:`~dc_api_x.types.Batch`:

* on the Arrow view when the batch already has one (``batch.has_arrow``), with :mod:`pyarrow.compute`
  (:meth:`Transform.apply_arrow`);
* on the dict view otherwise (:meth:`Transform.apply_records`).

Both paths give the same records. The output batch keeps the input batch's ``bookmark``.

Transforms are composed with :func:`build_transforms`, which reaches every transform through the
registry (``create_plugin("transforms", cfg)``), so a third-party transform is used exactly like a
built-in one::

    chain = build_transforms([{"type": "select", "fields": ["id", "amount"]},
                              {"type": "cast", "fields": {"amount": "decimal(12,2)"}}],
                             spec.schema, stream=spec.name)
    chain.schema          # the JSON Schema of the output records
    out = chain(batch)    # a new Batch (same bookmark)
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel

from ..config import OptionsModel, merge_options, validate_options
from ..exceptions import ConfigError, SchemaError
from ..types import Batch, JSONSchema, Record

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

    from ..plugins import PluginSet

__all__ = [
    "Transform",
    "TransformChain",
    "TransformOptions",
    "build_transforms",
    "schema_properties",
    "with_properties",
]


class TransformOptions(OptionsModel):
    """Base options model of a transform (unknown options are errors)."""


def schema_properties(schema: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The ``properties`` of a JSON Schema, or ``None`` when the schema does not declare any (an
    unknown shape, like :class:`~dc_api_x.types.StreamSpec`'s default ``{"properties": {}}``):
    transforms then skip field validation and bind to each batch's own columns."""
    if not schema:
        return None
    props = schema.get("properties")
    if not isinstance(props, Mapping) or not props:
        return None
    return dict(props)


def with_properties(
    schema: Mapping[str, Any] | None, props: Mapping[str, Any], renames: Mapping[str, str] | None = None
) -> JSONSchema:
    """A copy of ``schema`` with ``properties`` replaced by ``props``; ``required`` is kept for the
    fields that remain (renamed through ``renames``)."""
    out: JSONSchema = {k: v for k, v in (schema or {}).items() if k not in ("properties", "required")}
    out.setdefault("type", "object")
    out["properties"] = dict(props)
    required = (schema or {}).get("required")
    if isinstance(required, list):
        renames = renames or {}
        kept = [renames.get(r, r) for r in required]
        out["required"] = [r for r in kept if r in props]
    return out


class Transform:
    """Base class of every transform. Subclasses set :attr:`name` and :attr:`Options` and override
    :meth:`transform_schema`, :meth:`apply_records` and (for a columnar path) :meth:`apply_arrow`.

    :param options: the transform's options (a mapping, or an instance of :attr:`Options`).
    :param stream: the stream name, used in error messages.
    """

    #: The registry name users write as ``type: NAME``.
    name: ClassVar[str] = ""
    #: The pydantic model of this transform's options.
    Options: ClassVar[type[BaseModel]] = TransformOptions

    def __init__(
        self,
        options: Mapping[str, Any] | BaseModel | None = None,
        /,
        *,
        stream: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.stream = stream
        merged = merge_options(options, kwargs)
        self.options: Any = validate_options(self.Options, merged, plugin=self.label)
        #: The schema this transform was bound to (see :meth:`bind`), or ``None``.
        self.input_schema: JSONSchema | None = None
        #: ``transform_schema(input_schema)``, set by :meth:`bind`.
        self.output_schema: JSONSchema | None = None
        self._static = False  # bound to a schema with declared properties

    # -- naming and errors --------------------------------------------------------------------
    @property
    def label(self) -> str:
        """``transform 'NAME'`` (plus the stream when known), the prefix of every error message."""
        text = f"transform {self.name!r}"
        if self.stream:
            text += f", stream {self.stream!r}"
        return text

    def config_error(self, message: str, *, field: str | None = None) -> ConfigError:
        """A :class:`ConfigError` naming this transform, the stream and the field."""
        where = self.label + (f", field {field!r}" if field else "")
        return ConfigError(f"{where}: {message}", plugin=f"transform {self.name!r}", field=field)

    def schema_error(self, message: str, *, field: str | None = None) -> SchemaError:
        """A :class:`SchemaError` (bad data) naming this transform, the stream and the field."""
        where = self.label + (f", field {field!r}" if field else "")
        return SchemaError(f"{where}: {message}", adapter=f"transform {self.name!r}", stream=self.stream)

    def require_fields(self, schema: Mapping[str, Any] | None, names: Iterable[str]) -> None:
        """Raise :class:`ConfigError` for the first name that is not a property of ``schema``
        (nothing is checked when the schema declares no properties)."""
        props = schema_properties(schema)
        if props is None:
            return
        for n in names:
            if n not in props:
                known = ", ".join(props) or "(none)"
                raise self.config_error(f"unknown field {n!r}; known: {known}", field=n)

    # -- schema ---------------------------------------------------------------------------------
    def transform_schema(self, schema: JSONSchema) -> JSONSchema:
        """The JSON Schema of the output records for input records of ``schema``.

        Raise :class:`ConfigError` (via :meth:`config_error`) naming the field when the options
        refer to a field the schema does not have. The default returns a copy of ``schema``.
        """
        return copy.deepcopy(dict(schema))

    def bind(self, schema: JSONSchema | None) -> JSONSchema:
        """Validate the options against ``schema``, remember it and return the output schema."""
        schema = dict(schema) if schema is not None else {"type": "object"}
        self.input_schema = schema
        self.output_schema = self.transform_schema(schema)
        self._static = schema_properties(schema) is not None
        return self.output_schema

    def output_field(self, name: str) -> str | None:
        """The output name of input field ``name`` (``None`` when the transform drops it); used to
        carry key properties and replication keys through a chain."""
        props = schema_properties(self.output_schema)
        if props is None or name in props:
            return name
        return None

    # -- applying -------------------------------------------------------------------------------
    def _ensure_bound(self, batch: Batch) -> None:
        """Bind to the batch's own columns when the schema given at build time was unknown (then
        every batch is bound anew: batches of an unknown shape may differ)."""
        if self._static:
            return
        if batch.schema is not None and schema_properties(batch.schema) is not None:
            schema: JSONSchema = batch.schema
        elif batch.has_arrow:
            from ..arrow import arrow_to_jsonschema

            schema = arrow_to_jsonschema(batch.to_arrow().schema)
        else:  # dicts of an unknown shape: transforms work on the keys each record has
            schema = dict(batch.schema or self.input_schema or {"type": "object"})
        self.bind(schema)
        self._static = False

    def apply(self, batch: Batch) -> Batch:
        """Transform one batch: columnar when ``batch.has_arrow``, on dicts otherwise. The result
        keeps ``batch.bookmark`` and carries :attr:`output_schema`."""
        self._ensure_bound(batch)
        if batch.has_arrow:
            table = self.apply_arrow(batch.to_arrow())
            return Batch(arrow=table, schema=self.output_schema, bookmark=batch.bookmark)
        records = self.apply_records(batch.records)
        return Batch(records=records, schema=self.output_schema, bookmark=batch.bookmark)

    __call__ = apply

    def apply_records(self, records: list[Record]) -> list[Record]:
        """Transform the dict view. Never modify the input dicts in place: return new ones."""
        raise NotImplementedError(f"{self.label} does not implement apply_records()")

    def apply_arrow(self, table: pa.Table) -> pa.Table:
        """Transform the Arrow view. The default converts to dicts and back (override it for a
        columnar implementation)."""
        from ..arrow import arrow_to_records, records_to_arrow

        records = self.apply_records(arrow_to_records(table, self.input_schema))
        return records_to_arrow(records, self.output_schema)

    def __repr__(self) -> str:
        opts = self.options.model_dump(exclude_defaults=True) if isinstance(self.options, BaseModel) else {}
        return f"<{type(self).__name__} {self.name!r} {opts!r}>"


class TransformChain(Sequence[Transform]):
    """Transforms applied in order. ``chain.schema`` is the final output schema; ``chain(batch)``
    applies every transform (an empty chain returns the batch unchanged)."""

    def __init__(self, transforms: Iterable[Transform], schema: JSONSchema | None) -> None:
        self.transforms: list[Transform] = list(transforms)
        self.input_schema: JSONSchema = dict(schema) if schema is not None else {"type": "object"}
        current = self.input_schema
        for t in self.transforms:
            current = t.bind(current)
        self._schema = current

    @property
    def schema(self) -> JSONSchema:
        """The JSON Schema of the records the chain outputs."""
        return self._schema

    def apply(self, batch: Batch) -> Batch:
        for t in self.transforms:
            batch = t.apply(batch)
        return batch

    __call__ = apply

    def output_field(self, name: str) -> str | None:
        """The output name of input field ``name`` after every transform (``None`` if dropped)."""
        current: str | None = name
        for t in self.transforms:
            if current is None:
                return None
            current = t.output_field(current)
        return current

    def output_fields(self, names: Iterable[str]) -> tuple[str, ...]:
        """Output names of ``names`` (e.g. key properties), leaving out the dropped ones."""
        out = (self.output_field(n) for n in names)
        return tuple(n for n in out if n is not None)

    def __getitem__(self, index: Any) -> Any:
        return self.transforms[index]

    def __len__(self) -> int:
        return len(self.transforms)

    def __iter__(self) -> Iterator[Transform]:
        return iter(self.transforms)

    def __repr__(self) -> str:
        return f"<TransformChain {[t.name for t in self.transforms]}>"


def build_transforms(
    configs: Iterable[Mapping[str, Any] | str | Transform] | None,
    schema: JSONSchema | None,
    *,
    stream: str | None = None,
    plugins: PluginSet | None = None,
) -> TransformChain:
    """Build a :class:`TransformChain` from ``[{type: NAME, …options}, …]`` through the transform
    registry, validating every option and every field reference against ``schema``.

    :param configs: transform configs (a bare string is a type without options); ready
        :class:`Transform` instances are used as they are.
    :param schema: the JSON Schema of the input records.
    :param stream: the stream name used in error messages.
    :param plugins: the plugin set to look transforms up in (default: the current one).
    :raises ConfigError: a bad option or an unknown field (names the transform and the field).
    :raises UnknownPluginError: an unknown transform type (lists the known ones).
    """
    from ..plugins import create_plugin

    transforms: list[Transform] = []
    for i, cfg in enumerate(configs or ()):
        if isinstance(cfg, Transform):
            transforms.append(cfg)
            continue
        if not isinstance(cfg, (str, Mapping)) and not hasattr(cfg, "model_dump"):
            raise ConfigError(
                f"transforms[{i}]: expected a mapping {{type: NAME, ...}}, got {cfg!r}",
                plugin="transform",
                field=f"transforms[{i}]",
            )
        obj = create_plugin("transforms", cfg, plugins=plugins, stream=stream)
        if not isinstance(obj, Transform):
            raise ConfigError(
                f"transforms[{i}]: {obj!r} is not a dc_api_x.ext.transforms.Transform",
                plugin="transform",
                field=f"transforms[{i}]",
            )
        transforms.append(obj)
    return TransformChain(transforms, schema)
