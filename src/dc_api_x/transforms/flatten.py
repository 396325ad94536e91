"""The ``flatten`` transform: nested objects become ``parent__child`` fields."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import Field

from ..arrow import json_types
from ..ext.transforms import Transform, TransformOptions, schema_properties, with_properties
from ..types import JSONSchema, Record
from .columns import is_json_column, nullable, show

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

__all__ = ["FlattenOptions", "FlattenTransform"]


class FlattenOptions(TransformOptions):
    #: Joins parent and child names: ``a`` + ``b`` → ``a__b``.
    separator: str = Field(default="__", min_length=1)
    #: How many levels of nesting to flatten (``None``: all). Deeper objects are kept as objects.
    max_depth: int | None = Field(default=None, ge=1)


class FlattenTransform(Transform):
    """Flatten nested objects into ``parent__child`` columns. Arrays, objects without declared
    properties (JSON values) and objects below ``max_depth`` are kept as they are."""

    name = "flatten"
    Options = FlattenOptions
    #: (output name, path, output property, flattened?) per output column; ``None`` when the
    #: input schema is unknown (records are then flattened as they come).
    plan: list[tuple[str, tuple[str, ...], Mapping[str, Any], bool]] | None = None

    def _expandable(self, prop: Mapping[str, Any]) -> bool:
        types, _ = json_types(prop)
        return (
            types == {"object"}
            and not prop.get("x-json")
            and isinstance(prop.get("properties"), Mapping)
            and bool(prop["properties"])
        )

    def _plan(
        self,
        name: str,
        prop: Mapping[str, Any],
        depth: int,
        path: tuple[str, ...],
        out: list[tuple[str, tuple[str, ...], Mapping[str, Any], bool]],
    ) -> None:
        o: FlattenOptions = self.options
        if self._expandable(prop) and (o.max_depth is None or depth < o.max_depth):
            for child, cprop in prop["properties"].items():
                self._plan(f"{name}{o.separator}{child}", cprop, depth + 1, (*path, child), out)
        else:
            out.append((name, path, nullable(prop) if depth else prop, depth > 0))

    def transform_schema(self, schema: JSONSchema) -> JSONSchema:
        props = schema_properties(schema)
        if props is None:
            self.plan = None
            return dict(schema)
        plan: list[tuple[str, tuple[str, ...], Mapping[str, Any], bool]] = []
        for name, prop in props.items():
            self._plan(name, prop, 0, (name,), plan)
        seen: dict[str, tuple[str, ...]] = {}
        for out_name, path, _, _ in plan:
            if out_name in seen:
                raise self.config_error(
                    f"flattening {'.'.join(path)!r} gives {out_name!r}, which already exists "
                    f"(from {'.'.join(seen[out_name])!r}); choose another separator",
                    field=out_name,
                )
            seen[out_name] = path
        self.plan = plan
        return with_properties(schema, {n: p for n, _, p, _ in plan})

    def output_field(self, name: str) -> str | None:
        props = schema_properties(self.output_schema)
        return name if props is None or name in props else None

    def apply_records(self, records: list[Record]) -> list[Record]:
        if self.plan is None:
            return [self._flatten_dynamic(r) for r in records]
        top: list[tuple[str, Callable[[Any, Record], None] | None]] = []
        for name, prop in (schema_properties(self.input_schema) or {}).items():
            if self._expandable(prop) and (self.options.max_depth is None or self.options.max_depth > 0):
                top.append((name, self._emitter(name, prop, 1, name)))
            else:
                top.append((name, None))
        known = frozenset(name for name, _ in top)
        out = []
        for r in records:
            new: Record = {}
            for name, emit in top:
                if emit is None:
                    if name in r:
                        new[name] = r[name]
                else:
                    emit(r.get(name), new)
            if not known.issuperset(r):
                for k in r.keys() - known:  # undeclared top-level fields pass through unchanged
                    new[k] = r[k]
            out.append(new)
        return out

    def _emitter(
        self, out_name: str, prop: Mapping[str, Any], depth: int, where: str
    ) -> Callable[[Any, Record], None]:
        """A function writing the flattened leaves of one object value into the output record."""
        o: FlattenOptions = self.options
        children: list[tuple[str, str, Callable[[Any, Record], None] | None]] = []
        for child, cprop in prop["properties"].items():
            name = f"{out_name}{o.separator}{child}"
            if self._expandable(cprop) and (o.max_depth is None or depth < o.max_depth):
                children.append((child, name, self._emitter(name, cprop, depth + 1, f"{where}.{child}")))
            else:
                children.append((child, name, None))
        declared = frozenset(prop["properties"])
        error = self.schema_error

        def emit(value: Any, out: Record) -> None:
            if value is None:
                for _, name, sub in children:
                    if sub is None:
                        out[name] = None
                    else:
                        sub(None, out)
                return
            if type(value) is not dict and not isinstance(value, Mapping):
                raise error(f"expected an object, got {show(value)}", field=where)
            if not declared.issuperset(value):
                extra = sorted(set(value) - declared)
                raise error(
                    f"undeclared key(s) {extra} (declare them in the schema so they are not lost)",
                    field=where,
                )
            get = value.get
            for child, name, sub in children:
                if sub is None:
                    out[name] = get(child)
                else:
                    sub(get(child), out)

        return emit

    def _flatten_dynamic(self, rec: Mapping[str, Any], prefix: str = "", depth: int = 0) -> Record:
        o: FlattenOptions = self.options
        out: Record = {}
        for k, v in rec.items():
            name = f"{prefix}{o.separator}{k}" if prefix else k
            if isinstance(v, Mapping) and v and (o.max_depth is None or depth < o.max_depth):
                out.update(self._flatten_dynamic(v, name, depth + 1))
            else:
                out[name] = v
        return out

    def apply_arrow(self, table: pa.Table) -> pa.Table:
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.types as pt

        o: FlattenOptions = self.options
        arrays: list[Any] = []
        fields: list[pa.Field] = []

        def walk(name: str, col: Any, field: pa.Field, depth: int) -> None:
            if (
                pt.is_struct(col.type)
                and col.type.num_fields
                and not is_json_column(field)
                and (o.max_depth is None or depth < o.max_depth)
            ):
                for i in range(col.type.num_fields):
                    child = col.type.field(i)
                    walk(f"{name}{o.separator}{child.name}", pc.struct_field(col, [i]), child, depth + 1)
            else:
                arrays.append(col)
                fields.append(pa.field(name, col.type, nullable=True, metadata=field.metadata))

        for f in table.schema:
            walk(f.name, table.column(f.name), f, 0)
        names = [f.name for f in fields]
        if len(set(names)) != len(names):
            dup = next(n for n in names if names.count(n) > 1)
            raise self.config_error(f"flattening gives {dup!r} twice; choose another separator", field=dup)
        return pa.Table.from_arrays(arrays, schema=pa.schema(fields))
