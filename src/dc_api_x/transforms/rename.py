"""The ``rename`` transform: new names for fields, order and values kept."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from ..ext.transforms import Transform, TransformOptions, schema_properties, with_properties
from ..types import JSONSchema, Record

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

__all__ = ["RenameOptions", "RenameTransform"]


class RenameOptions(TransformOptions):
    #: ``{old_name: new_name}``.
    fields: dict[str, str] = Field(min_length=1)


class RenameTransform(Transform):
    """Rename fields: ``fields: {old: new}``. Order and values are kept."""

    name = "rename"
    Options = RenameOptions

    def transform_schema(self, schema: JSONSchema) -> JSONSchema:
        mapping: dict[str, str] = self.options.fields
        self.require_fields(schema, mapping)
        props = schema_properties(schema)
        targets = list(mapping.values())
        for new in targets:
            if not new:
                raise self.config_error("the new name is empty", field=new)
            if targets.count(new) > 1:
                raise self.config_error(f"two fields are renamed to {new!r}", field=new)
            if props is not None and new in props and new not in mapping:
                raise self.config_error(f"cannot rename to {new!r}: a field with that name exists", field=new)
        if props is None:
            return dict(schema)
        return with_properties(schema, {mapping.get(k, k): v for k, v in props.items()}, renames=mapping)

    def output_field(self, name: str) -> str | None:
        return self.options.fields.get(name, name)  # type: ignore[no-any-return]

    def apply_records(self, records: list[Record]) -> list[Record]:
        m: dict[str, str] = self.options.fields
        return [{m.get(k, k): v for k, v in r.items()} for r in records]

    def apply_arrow(self, table: pa.Table) -> pa.Table:
        m: dict[str, str] = self.options.fields
        return table.rename_columns([m.get(n, n) for n in table.column_names])
