"""The ``filter`` transform: keep the rows for which an expression (:mod:`.expressions`) is true."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..exceptions import ConfigError, SchemaError
from ..ext.transforms import Transform, TransformOptions, schema_properties
from ..types import JSONSchema, Record
from .columns import is_null_type, show
from .evaluation import ArrowEvaluator, compile_py, field_name
from .expressions import Node, check_types, infer_kind, parse_expression, temporal_constants

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

__all__ = ["FilterOptions", "FilterTransform"]


class FilterOptions(TransformOptions):
    #: A condition such as ``"amount > 10 and category == 'a'"``; rows where it is true are kept.
    expression: str


class FilterTransform(Transform):
    """Keep the rows for which ``expression`` is true (false and unknown/null rows are dropped)."""

    name = "filter"
    Options = FilterOptions

    def __init__(self, options: Any = None, /, **kwargs: Any) -> None:
        super().__init__(options, **kwargs)
        self.expr = parse_expression(self.options.expression, where=self.label)
        self._node: Node = self.expr.node

    def _fail_cfg(self, message: str) -> ConfigError:
        return self.config_error(f"{message} in {self.expr.source!r}", field="expression")

    def transform_schema(self, schema: JSONSchema) -> JSONSchema:
        self.require_fields(schema, self.expr.fields)
        props = schema_properties(schema)
        if self.expr.node[0] in ("field", "const", "bin", "neg"):
            kind = infer_kind(self.expr.node, props)
            if kind is not None and kind != "boolean":
                raise self._fail_cfg(f"the condition must be boolean, got a {kind} value")
        check_types(self.expr.node, props, self._fail_cfg)
        self._node = temporal_constants(self.expr.node, props, self._fail_cfg)
        return dict(schema)

    def _fail_data(self, message: str, field: str | None) -> SchemaError:
        return self.schema_error(f"{message} in {self.expr.source!r}", field=field)

    def apply_records(self, records: list[Record]) -> list[Record]:
        fn = compile_py(self._node, self._fail_data)
        out = []
        for r in records:
            v = fn(r)
            if v is True:
                out.append(r)
            elif v is not None and v is not False:
                where = field_name(self._node)
                raise self._fail_data(f"the condition gave {show(v)}, not a boolean", where)
        return out

    def apply_arrow(self, table: pa.Table) -> pa.Table:
        import pyarrow as pa
        import pyarrow.types as pt

        mask = ArrowEvaluator(table, self._fail_data)(self._node)
        if isinstance(mask, pa.Scalar):
            if not pt.is_boolean(mask.type) and mask.is_valid:
                raise self._fail_data(f"the condition gave {mask!r}, not a boolean", None)
            return table if mask.is_valid and mask.as_py() else table.slice(0, 0)
        if is_null_type(mask.type):
            return table.slice(0, 0)
        if not pt.is_boolean(mask.type):
            raise self._fail_data(f"the condition gives {mask.type}, not a boolean", field_name(self._node))
        return table.filter(mask, null_selection_behavior="drop")
