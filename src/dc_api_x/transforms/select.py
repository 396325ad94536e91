"""The ``select`` transform: keep some fields (in that order) or drop some."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import model_validator

from ..arrow import jsonschema_field
from ..ext.transforms import Transform, TransformOptions, schema_properties, with_properties
from ..types import JSONSchema, Record

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

__all__ = ["SelectOptions", "SelectTransform"]


class SelectOptions(TransformOptions):
    #: The fields to keep, in output order.
    fields: list[str] | None = None
    #: The fields to drop (instead of ``fields``).
    exclude: list[str] | None = None

    @model_validator(mode="after")
    def _one_of(self) -> SelectOptions:
        if (self.fields is None) == (self.exclude is None):
            raise ValueError("give exactly one of 'fields' (to keep) or 'exclude' (to drop)")
        names = self.fields if self.fields is not None else self.exclude
        if names is not None and len(set(names)) != len(names):
            raise ValueError("a field is listed twice")
        return self


class SelectTransform(Transform):
    """Keep ``fields`` (in that order) or drop ``exclude``."""

    name = "select"
    Options = SelectOptions

    def transform_schema(self, schema: JSONSchema) -> JSONSchema:
        o: SelectOptions = self.options
        props = schema_properties(schema)
        names = o.fields if o.fields is not None else o.exclude or []
        self.require_fields(schema, names)
        if props is None:
            return dict(schema)
        if o.fields is not None:
            return with_properties(schema, {f: props[f] for f in o.fields})
        drop = set(names)
        return with_properties(schema, {k: v for k, v in props.items() if k not in drop})

    def apply_records(self, records: list[Record]) -> list[Record]:
        o: SelectOptions = self.options
        if o.fields is not None:
            fields = o.fields
            return [{f: r.get(f) for f in fields} for r in records]
        drop = set(o.exclude or ())
        return [{k: v for k, v in r.items() if k not in drop} for r in records]

    def apply_arrow(self, table: pa.Table) -> pa.Table:
        import pyarrow as pa

        o: SelectOptions = self.options
        if o.exclude is not None:
            return table.drop_columns([c for c in o.exclude if c in table.column_names])
        props = schema_properties(self.output_schema) or {}
        arrays, fields = [], []
        for f in o.fields or ():
            if f in table.column_names:
                arrays.append(table.column(f))
                fields.append(table.schema.field(f))
            else:
                field = jsonschema_field(f, props.get(f, {}))
                arrays.append(pa.chunked_array([pa.nulls(table.num_rows, field.type)]))
                fields.append(field)
        return pa.Table.from_arrays(arrays, schema=pa.schema(fields))
