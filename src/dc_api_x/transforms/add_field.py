"""The ``add_field`` transform: a new field holding a constant or an expression's result."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pydantic import Field, model_validator

from ..arrow import jsonschema_field
from ..exceptions import ConfigError, SchemaError
from ..ext.transforms import Transform, TransformOptions, schema_properties, with_properties
from ..types import JSONSchema, Record
from ..values import arrow_errors
from .casting import CastColumn, CastTarget, cast_value
from .columns import set_column, show
from .evaluation import ArrowEvaluator, compile_py
from .expressions import (
    Node,
    check_types,
    decimal_ps,
    infer_kind,
    kind_of_const,
    parse_expression,
    temporal_constants,
)

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

__all__ = ["AddFieldOptions", "AddFieldTransform"]


class AddFieldOptions(TransformOptions):
    #: The name of the new field.
    name: str = Field(min_length=1)
    #: A constant value (give ``value`` or ``expression``).
    value: Any = None
    #: An expression over the record's fields (the filter grammar plus ``+ - * /``).
    expression: str | None = None
    #: Cast the result to this type (a ``cast`` type name); by default the type is inferred.
    cast: str | None = None
    #: Replace a field of the same name instead of failing.
    overwrite: bool = False

    @model_validator(mode="after")
    def _one_of(self) -> AddFieldOptions:
        if self.expression is not None and "value" in self.model_fields_set:
            raise ValueError("give either 'value' or 'expression', not both")
        if self.expression is None and "value" not in self.model_fields_set:
            raise ValueError("give 'value' (a constant) or 'expression'")
        if self.cast is not None:
            CastTarget(self.cast)
        return self


_KIND_PROPS: dict[str, dict[str, Any]] = {
    "integer": {"type": ["integer", "null"]},
    "number": {"type": ["number", "null"]},
    "string": {"type": ["string", "null"]},
    "boolean": {"type": ["boolean", "null"]},
    "date-time": {"type": ["string", "null"], "format": "date-time"},
    "date": {"type": ["string", "null"], "format": "date"},
    "decimal": {"type": ["string", "null"], "format": "decimal"},
}


class AddFieldTransform(Transform):
    """Add a field holding a constant ``value`` or the result of ``expression``."""

    name = "add_field"
    Options = AddFieldOptions

    def __init__(self, options: Any = None, /, **kwargs: Any) -> None:
        super().__init__(options, **kwargs)
        o: AddFieldOptions = self.options
        self.expr = (
            parse_expression(o.expression, arithmetic=True, where=self.label)
            if o.expression is not None
            else None
        )
        self.target = CastTarget(o.cast) if o.cast else None
        untyped = o.value is not None and kind_of_const(o.value) is None
        if self.expr is None and self.target is None and untyped:
            raise self.config_error(f"value {show(o.value)} needs an explicit 'cast' type", field="value")
        if self.expr is None and self.target is not None:
            try:
                self._const = cast_value(o.value, self.target)
            except (ValueError, TypeError, ArithmeticError) as exc:
                raise self.config_error(
                    f"value {show(o.value)} is not a {self.target}: {exc}", field="value"
                ) from None
        else:
            self._const = o.value
        self._node: Node | None = self.expr.node if self.expr else None
        self._inferred = "string"

    def _fail_cfg(self, message: str) -> ConfigError:
        src = self.expr.source if self.expr else ""
        return self.config_error(f"{message} in {src!r}", field="expression")

    def transform_schema(self, schema: JSONSchema) -> JSONSchema:
        o: AddFieldOptions = self.options
        props = schema_properties(schema)
        if props is not None and o.name in props and not o.overwrite:
            raise self.config_error(
                f"field {o.name!r} exists already (set overwrite: true to replace it)", field=o.name
            )
        if self.expr is not None:
            self.require_fields(schema, self.expr.fields)
            check_types(self.expr.node, props, self._fail_cfg)
            self._node = temporal_constants(self.expr.node, props, self._fail_cfg)
            kind = infer_kind(self.expr.node, props)
        else:
            kind = kind_of_const(self._const)
        if self.target is not None:
            prop = self.target.prop()
        elif self.expr is not None and self.expr.node[0] == "field" and props is not None:
            prop = copy.deepcopy(props[self.expr.node[1]])  # a copy of a field keeps its exact type
        elif kind == "decimal" and self.expr is not None:
            self._inferred = kind
            prop = dict(_KIND_PROPS[kind])
            ps = decimal_ps(self.expr.node, props)
            if ps is not None and ps[0] <= 76:
                prop["x-precision"], prop["x-scale"] = ps
        elif kind in _KIND_PROPS:
            self._inferred = str(kind)
            prop = dict(_KIND_PROPS[str(kind)])
        else:
            prop = {"type": ["string", "null"]}
        if props is None:
            return dict(schema)
        out = dict(props)
        out[o.name] = prop
        return with_properties(schema, out)

    def _fail_data(self, message: str, field: str | None) -> SchemaError:
        src = self.expr.source if self.expr else ""
        return self.schema_error(f"{message} in {src!r}", field=field or self.options.name)

    def _finish(self, value: Any) -> Any:
        if self.target is not None:
            try:
                return cast_value(value, self.target)
            except (ValueError, TypeError, ArithmeticError) as exc:
                raise self.schema_error(
                    f"cannot cast {show(value)} to {self.target}: {exc}", field=self.options.name
                ) from None
        if self._inferred == "decimal" and isinstance(value, (int, float)) and not isinstance(value, bool):
            return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
        return value

    def apply_records(self, records: list[Record]) -> list[Record]:
        name = self.options.name
        if self._node is None:
            const = self._const
            return [{**r, name: const} for r in records]
        fn = compile_py(self._node, self._fail_data)
        if self.target is None and self._inferred != "decimal":
            return [{**r, name: fn(r)} for r in records]
        finish = self._finish
        return [{**r, name: finish(fn(r))} for r in records]

    def apply_arrow(self, table: pa.Table) -> pa.Table:
        import pyarrow as pa

        o: AddFieldOptions = self.options
        props = schema_properties(self.output_schema) or {}
        prop = props.get(o.name) or {"type": ["string", "null"]}
        ftype = jsonschema_field(o.name, prop).type
        if self._node is None:
            values: Any = (
                pa.scalar(self._const, type=ftype)
                if self._const is not None
                else pa.nulls(table.num_rows, ftype)
            )
        else:
            values = ArrowEvaluator(table, self._fail_data)(self._node)
            if isinstance(values, pa.Scalar):
                n = table.num_rows
                values = pa.repeat(values, n) if values.is_valid else pa.nulls(n, ftype)
            if self.target is not None:
                values = CastColumn(self, o.name, self.target, ftype)(values)
            elif values.type != ftype:
                try:
                    values = values.cast(ftype, safe=True)
                except arrow_errors() as exc:
                    raise self.schema_error(
                        f"result of {o.expression!r} does not fit {ftype}: {exc}", field=o.name
                    ) from None
        return set_column(table, o.name, values, prop)
