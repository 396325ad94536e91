"""The ``cast`` transform: fields cast to another type, exactly (see :mod:`.casting`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from pydantic import Field, field_validator

from ..arrow import jsonschema_field
from ..exceptions import SchemaError
from ..ext.transforms import Transform, TransformOptions, schema_properties, with_properties
from ..types import JSONSchema, Record
from ..values import arrow_errors
from .casting import CastTarget, cast_value, declared_scale, fast_cast, py_caster, with_scale
from .columns import is_json_column, is_null_type, plain, set_column, show

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

__all__ = ["CastOptions", "CastTransform"]


class CastOptions(TransformOptions):
    #: ``{field: type}``: integer, number, string, boolean, date-time, date, decimal or decimal(p,s).
    fields: dict[str, str] = Field(min_length=1)

    @field_validator("fields")
    @classmethod
    def _targets(cls, v: dict[str, str]) -> dict[str, str]:
        for name, spec in v.items():
            try:
                CastTarget(spec)
            except ValueError as exc:
                raise ValueError(f"field {name!r}: {exc}") from None
        return v


class CastTransform(Transform):
    """Cast fields to another type. A value that cannot be cast exactly raises
    :class:`SchemaError` naming the stream, the field and the value (never a silent null)."""

    name = "cast"
    Options = CastOptions

    def __init__(self, options: Any = None, /, **kwargs: Any) -> None:
        super().__init__(options, **kwargs)
        self.targets = {k: CastTarget(v) for k, v in self.options.fields.items()}

    def transform_schema(self, schema: JSONSchema) -> JSONSchema:
        self.require_fields(schema, self.targets)
        props = schema_properties(schema)
        if props is None:
            return dict(schema)
        out = dict(props)
        for name, target in self.targets.items():
            prop = target.prop()
            if "description" in props[name]:
                prop["description"] = props[name]["description"]
            out[name] = prop
        return with_properties(schema, out)

    def _error(self, name: str, value: Any, target: CastTarget, why: str) -> SchemaError:
        return self.schema_error(f"cannot cast {show(value)} to {target}: {why}", field=name)

    def apply_records(self, records: list[Record]) -> list[Record]:
        out = [dict(r) for r in records]
        in_props = schema_properties(self.input_schema) or {}
        for name, target in self.targets.items():
            cast = py_caster(target)
            scale = declared_scale(in_props.get(name))
            if scale is not None and target.kind in ("string", "decimal"):
                cast = with_scale(cast, scale)  # Decimal('3') of a decimal(p,4) field is 3.0000
            rec: Record = {}
            try:
                for rec in out:
                    if name in rec:
                        rec[name] = cast(rec[name])
            except (ValueError, TypeError, ArithmeticError) as exc:
                raise self._error(name, rec.get(name), target, str(exc) or type(exc).__name__) from None
        return out

    def apply_arrow(self, table: pa.Table) -> pa.Table:
        import pyarrow as pa

        props = schema_properties(self.output_schema) or {}
        for name, target in self.targets.items():
            if name not in table.column_names:
                continue
            prop = props.get(name) or target.prop()
            arrow_type = jsonschema_field(name, prop).type
            col = plain(table.column(name))
            result = None
            is_json = is_json_column(table.schema.field(name))
            if is_null_type(col.type):
                result = pa.nulls(table.num_rows, arrow_type)
            elif not is_json:  # JSON text columns are cast from their decoded values, like dicts
                try:
                    result = fast_cast(col, target, arrow_type)
                except arrow_errors():
                    result = None
            if result is None:
                # the column goes through Python values: exotic pairs, or a value the kernel
                # refused (cast_value then accepts it or names it)
                values = []
                raw = col.to_pylist()
                if is_json:
                    raw = [None if v is None else orjson.loads(v) for v in raw]
                for v in raw:
                    try:
                        values.append(cast_value(v, target))
                    except (ValueError, TypeError, ArithmeticError) as exc:
                        raise self._error(name, v, target, str(exc) or type(exc).__name__) from None
                try:
                    result = pa.array(values, type=arrow_type)
                except arrow_errors() as exc:
                    raise self.schema_error(f"cannot cast to {target}: {exc}", field=name) from None
            table = set_column(table, name, result, prop)
        return table
