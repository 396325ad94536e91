"""The built-in transforms (registered by :mod:`dc_api_x.transforms`) and their safe expression language.

Every transform works on dict batches and, columnar, on Arrow batches (:mod:`pyarrow.compute`), with
the same result. :mod:`pyarrow` is imported inside the functions that need it.

Expressions (``filter``, ``add_field``) are parsed with :mod:`ast` and checked against a small
grammar: field names, constants (numbers, strings, ``True``/``False``/``None``), comparisons
(``== != < <= > >=``, ``in``/``not in`` a list of constants, ``is None``/``is not None``), ``and``,
``or``, ``not`` and — for ``add_field`` — ``+ - * /`` and unary minus (``+`` concatenates strings).
Nothing is ever passed to :func:`eval`. Nulls follow SQL/Kleene logic: a comparison with a null is
unknown, ``filter`` keeps only the rows whose condition is true.
"""

from __future__ import annotations

import ast
import base64
import copy
import datetime as _dt
import hashlib
import operator
import re
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import Field, field_validator, model_validator

from .arrow import JSON_META, json_types, jsonschema_field
from .exceptions import ConfigError, SchemaError
from .ext.transforms import Transform, TransformOptions, schema_properties, with_properties
from .types import JSONSchema, Record
from .values import DECIMAL_CONTEXT as _DEC_CTX
from .values import arrow_errors, fit_decimal, json_default, parse_datetime

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

__all__ = [
    "AddFieldTransform",
    "CastTransform",
    "Expression",
    "FilterTransform",
    "cast_value",
    "compile_py",
    "py_caster",
    "FlattenTransform",
    "HashTransform",
    "MaskTransform",
    "RenameTransform",
    "SelectTransform",
    "parse_expression",
    "stream_map_to_transforms",
]

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_FLOAT_EXACT = 2**53


# ==================================================================================== helpers
def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _set_column(
    table: pa.Table, name: str, values: Any, prop: Mapping[str, Any], at: int | None = None
) -> pa.Table:
    """Put ``values`` in column ``name`` (replacing it, or inserting it at ``at`` / the end), typed
    as the JSON Schema ``prop`` says."""
    import pyarrow as pa

    field = jsonschema_field(name, prop)
    if isinstance(values, pa.Scalar):
        n = table.num_rows
        values = pa.repeat(values, n) if values.is_valid else pa.nulls(n, field.type)
    if values.type != field.type:
        values = values.cast(field.type, safe=True)
    if name in table.column_names:
        return table.set_column(table.column_names.index(name), field, values)
    if at is None:
        return table.append_column(field, values)
    return table.add_column(at, field, values)


def _is_null_type(t: pa.DataType) -> bool:
    import pyarrow as pa

    return bool(t == pa.null())


def _plain(col: Any) -> Any:
    """Dictionary-encoded arrays decoded to their value type."""
    import pyarrow.types as pt

    if pt.is_dictionary(col.type):
        return col.cast(col.type.value_type)
    return col


def _text(value: Any) -> str | bytes:
    """The canonical text of a value (used by ``hash`` and ``mask``); bytes stay bytes."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS, default=json_default).decode()


def _is_json_column(field: pa.Field) -> bool:
    return bool(field.metadata and field.metadata.get(JSON_META) == b"true")


def _text_column(table: pa.Table, name: str) -> list[str | bytes | None]:
    """The canonical text (:func:`_text`) of every value of a column. Strings, integers and
    booleans are converted by Arrow kernels; other types go through their Python values."""
    import pyarrow as pa
    import pyarrow.types as pt

    col = _plain(table.column(name))
    field = table.schema.field(name)
    t = col.type
    if _is_json_column(field):
        return [None if v is None else _text(orjson.loads(v)) for v in col.to_pylist()]
    if pt.is_string(t) or pt.is_large_string(t):
        return col.to_pylist()  # type: ignore[no-any-return]
    if pt.is_integer(t) or pt.is_boolean(t):
        return col.cast(pa.string()).to_pylist()  # type: ignore[no-any-return]
    return [None if v is None else _text(v) for v in col.to_pylist()]


# ================================================================================= expressions
_CMP_OPS: dict[type[ast.cmpop], str] = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.In: "in",
    ast.NotIn: "not in",
    ast.Is: "is",
    ast.IsNot: "is not",
}
_BIN_OPS: dict[type[ast.operator], str] = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}

# compiled nodes: ("field", name) ("const", value) ("cmp", op, left, right) ("in", negate, left, values)
# ("isnull", negate, operand) ("and", [..]) ("or", [..]) ("not", x) ("neg", x) ("bin", op, left, right)
Node = tuple[Any, ...]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _plain_constant(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def _is_number_node(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and _is_number(node.value)


class Expression:
    """A parsed, validated expression. Use :func:`parse_expression` to build one."""

    def __init__(self, source: str, node: Node, fields: list[str]) -> None:
        self.source = source
        self.node = node
        #: The field names the expression reads, in order of appearance.
        self.fields = fields

    def __repr__(self) -> str:
        return f"<Expression {self.source!r}>"


def parse_expression(source: str, *, arithmetic: bool = False, where: str = "expression") -> Expression:
    """Parse ``source`` with :mod:`ast` and check it against the safe grammar.

    :param arithmetic: allow ``+ - * /`` and unary minus (``add_field``).
    :param where: how to name the owner in errors (``"transform 'filter'"``).
    :raises ConfigError: a syntax error or anything outside the grammar (calls, attributes,
        subscripts, lambdas, dunder names …), naming the offending piece.
    """
    if not isinstance(source, str) or not source.strip():
        raise ConfigError(
            f"{where}: the expression must be a non-empty string", plugin=where, field="expression"
        )
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as exc:
        raise ConfigError(
            f"{where}: invalid expression {source!r}: {exc.msg}", plugin=where, field="expression"
        ) from None
    fields: list[str] = []

    def bad(node: ast.AST, what: str | None = None) -> ConfigError:
        piece = ast.get_source_segment(source.strip(), node) or type(node).__name__
        return ConfigError(
            f"{where}: {what or type(node).__name__ + ' is not allowed'} in expression {source!r} "
            f"(at {piece!r}); allowed: field names, constants, comparisons, in, is None, and/or/not"
            + (", + - * /" if arithmetic else ""),
            plugin=where,
            field="expression",
        )

    def const_of(node: ast.AST) -> Any:
        if isinstance(node, ast.Constant) and _plain_constant(node.value):
            return node.value
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and _is_number_node(node.operand):
            return -node.operand.value  # type: ignore[attr-defined]
        raise bad(node, "only constants are allowed in a list")

    def conv(node: ast.AST) -> Node:
        if isinstance(node, ast.Name):
            if node.id.startswith("__"):
                raise bad(node, f"name {node.id!r} is not allowed")
            if node.id not in fields:
                fields.append(node.id)
            return ("field", node.id)
        if isinstance(node, ast.Constant):
            if node.value is None or isinstance(node.value, (bool, int, float, str)):
                return ("const", node.value)
            raise bad(node, f"constant {node.value!r} is not allowed")
        if isinstance(node, ast.BoolOp):
            kind = "and" if isinstance(node.op, ast.And) else "or"
            return (kind, [conv(v) for v in node.values])
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.Not):
                return ("not", conv(node.operand))
            if arithmetic and isinstance(node.op, ast.USub):
                inner = conv(node.operand)
                if inner[0] == "const" and _is_number(inner[1]):
                    return ("const", -inner[1])
                return ("neg", inner)
            if arithmetic and isinstance(node.op, ast.UAdd):
                return conv(node.operand)
            if isinstance(node.op, ast.USub) and _is_number_node(node.operand):
                return ("const", -node.operand.value)  # type: ignore[attr-defined]
            raise bad(node)
        if isinstance(node, ast.BinOp):
            op = _BIN_OPS.get(type(node.op))
            if not arithmetic or op is None:
                raise bad(node, f"operator {type(node.op).__name__} is not allowed")
            return ("bin", op, conv(node.left), conv(node.right))
        if isinstance(node, ast.Compare):
            parts: list[Node] = []
            left = node.left
            for op_node, right in zip(node.ops, node.comparators, strict=True):
                op = _CMP_OPS[type(op_node)]
                if op in ("is", "is not"):
                    if not (isinstance(right, ast.Constant) and right.value is None):
                        raise bad(right, "'is' / 'is not' only compare with None")
                    parts.append(("isnull", op == "is not", conv(left)))
                elif op in ("in", "not in"):
                    if not isinstance(right, (ast.List, ast.Tuple, ast.Set)):
                        raise bad(right, "'in' needs a list of constants")
                    values = [const_of(e) for e in right.elts]
                    parts.append(("in", op == "not in", conv(left), values))
                else:
                    parts.append(("cmp", op, conv(left), conv(right)))
                left = right
            return parts[0] if len(parts) == 1 else ("and", parts)
        raise bad(node)

    node = conv(tree.body)
    return Expression(source, node, fields)


# ------------------------------------------------------------------------- expression typing
def _kind_of_prop(prop: Mapping[str, Any] | None) -> str | None:
    """A coarse type of a JSON Schema property: integer, number, decimal, string, boolean,
    date-time, date, or None (unknown / other)."""
    if prop is None:
        return None
    types, _ = json_types(prop)
    fmt = prop.get("format")
    if types == {"integer"}:
        return "integer"
    if types and types <= {"integer", "number"}:
        return "number"
    if types == {"boolean"}:
        return "boolean"
    if types == {"string"}:
        if fmt == "decimal":
            # unbounded decimals are text columns: no arithmetic or numeric comparison on them
            return "decimal" if prop.get("x-precision") is not None else "decimal text"
        if fmt in ("date-time", "date"):
            return str(fmt)
        return "string"
    return None


def _decimal_ps(node: Node, props: Mapping[str, Any] | None) -> tuple[int, int] | None:
    """Precision and scale of a decimal expression (Arrow's rules), ``None`` when not a decimal."""
    tag = node[0]
    if tag == "field":
        prop = (props or {}).get(node[1]) or {}
        kind = _kind_of_prop(prop)
        if kind == "decimal":
            return int(prop["x-precision"]), int(prop.get("x-scale") or 0)
        return (19, 0) if kind == "integer" else None
    if tag == "const":
        return (19, 0) if _kind_of_const(node[1]) == "integer" else None
    if tag == "neg":
        return _decimal_ps(node[1], props)
    if tag == "bin" and node[1] != "/":
        a, b = _decimal_ps(node[2], props), _decimal_ps(node[3], props)
        if a is None or b is None:
            return None
        (p1, s1), (p2, s2) = a, b
        if node[1] == "*":
            return p1 + p2 + 1, s1 + s2
        return max(p1 - s1, p2 - s2) + max(s1, s2) + 1, max(s1, s2)
    return None


def _kind_of_const(value: Any) -> str | None:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return None


_NUMERIC = {"integer", "number", "decimal"}


def _infer_kind(node: Node, props: Mapping[str, Any] | None) -> str | None:
    tag = node[0]
    if tag == "field":
        return _kind_of_prop(props.get(node[1])) if props is not None else None
    if tag == "const":
        return _kind_of_const(node[1])
    if tag in ("cmp", "in", "isnull", "and", "or", "not"):
        return "boolean"
    if tag == "neg":
        return _infer_kind(node[1], props)
    if tag == "bin":
        a, b = _infer_kind(node[2], props), _infer_kind(node[3], props)
        if node[1] == "+" and "string" in (a, b):
            return "string"
        if node[1] == "/":
            return "number"
        if a == b == "integer":
            return "integer"
        if a in _NUMERIC and b in _NUMERIC:
            return "number" if "number" in (a, b) else "decimal"
        return None
    return None


def _check_types(node: Node, props: Mapping[str, Any] | None, fail: Callable[[str], Exception]) -> None:
    """Reject type mismatches that are certain from the schema (string vs number, …)."""
    tag = node[0]
    if tag in ("and", "or"):
        for sub in node[1]:
            _check_types(sub, props, fail)
            k = _infer_kind(sub, props)
            if k is not None and k != "boolean":
                raise fail(f"'{tag}' needs boolean operands, got a {k} value")
    elif tag == "not":
        _check_types(node[1], props, fail)
        k = _infer_kind(node[1], props)
        if k is not None and k != "boolean":
            raise fail(f"'not' needs a boolean operand, got a {k} value")
    elif tag == "cmp":
        _check_types(node[2], props, fail)
        _check_types(node[3], props, fail)
        a, b = _infer_kind(node[2], props), _infer_kind(node[3], props)
        if a is not None and b is not None and not _comparable(a, b, node[3]):
            hint = " (cast it to decimal(p,s) first)" if "decimal text" in (a, b) else ""
            raise fail(f"cannot compare a {a} value with a {b} value{hint}")
    elif tag == "in":
        _check_types(node[2], props, fail)
        a = _infer_kind(node[2], props)
        for v in node[3]:
            b = _kind_of_const(v)
            if a is not None and b is not None and not _comparable(a, b, ("const", v)):
                raise fail(f"cannot compare a {a} value with {v!r}")
    elif tag == "isnull":
        _check_types(node[-1], props, fail)
    elif tag == "neg":
        _check_types(node[1], props, fail)
        k = _infer_kind(node[1], props)
        if k is not None and k not in _NUMERIC:
            raise fail(f"unary '-' needs a number, got a {k} value")
    elif tag == "bin":
        _check_types(node[2], props, fail)
        _check_types(node[3], props, fail)
        a, b = _infer_kind(node[2], props), _infer_kind(node[3], props)
        if a is None or b is None:
            return
        if "decimal text" in (a, b):
            raise fail(
                f"operator {node[1]!r} on a decimal without precision (a text column): "
                "cast it to decimal(p,s) first"
            )
        if node[1] == "+" and "string" in (a, b):
            if a != b:
                raise fail(f"cannot add a {a} value and a {b} value (use cast first)")
        elif a not in _NUMERIC or b not in _NUMERIC:
            raise fail(f"operator {node[1]!r} needs numbers, got {a} and {b}")


def _comparable(a: str, b: str, right: Node) -> bool:
    if a == b:
        return True
    if a in _NUMERIC and b in _NUMERIC:
        return True
    # date-time / date fields compare with ISO string constants
    return {a, b} <= {"date-time", "string"} or {a, b} <= {"date", "string"}


def _temporal_constants(
    node: Node, props: Mapping[str, Any] | None, fail: Callable[[str], Exception]
) -> Node:
    """Turn ISO string constants compared with date-time / date fields into datetime / date."""
    tag = node[0]
    if tag in ("and", "or"):
        return (tag, [_temporal_constants(n, props, fail) for n in node[1]])
    if tag == "not":
        return ("not", _temporal_constants(node[1], props, fail))
    if tag == "cmp":
        left, right = node[2], node[3]
        lk, rk = _infer_kind(left, props), _infer_kind(right, props)
        if lk in ("date-time", "date") and right[0] == "const" and isinstance(right[1], str):
            right = ("const", _parse_temporal(right[1], lk, fail))
        if rk in ("date-time", "date") and left[0] == "const" and isinstance(left[1], str):
            left = ("const", _parse_temporal(left[1], rk, fail))
        return ("cmp", node[1], left, right)
    if tag == "in":
        lk = _infer_kind(node[2], props)
        if lk in ("date-time", "date"):
            return (
                "in",
                node[1],
                node[2],
                [_parse_temporal(v, lk, fail) if isinstance(v, str) else v for v in node[3]],
            )
    return node


def _parse_temporal(text: str, kind: str, fail: Callable[[str], Exception]) -> Any:
    try:
        if kind == "date":
            return _dt.date.fromisoformat(text)
        value = parse_datetime(text)
    except ValueError:
        raise fail(f"{text!r} is not an ISO {kind}") from None
    return value.astimezone(_dt.timezone.utc) if value.tzinfo else value.replace(tzinfo=_dt.timezone.utc)


# ----------------------------------------------------------------- expression evaluation: dicts
def _coerce_pair(a: Any, b: Any) -> tuple[Any, Any]:
    """Make a value comparable with a temporal constant (ISO strings → datetime / date, naive → UTC)."""
    for x, y, swap in ((a, b, False), (b, a, True)):
        if isinstance(y, _dt.datetime):
            if isinstance(x, str):
                x = parse_datetime(x)
            if isinstance(x, _dt.datetime) and x.tzinfo is None and y.tzinfo is not None:
                x = x.replace(tzinfo=_dt.timezone.utc)
            return (y, x) if swap else (x, y)
        if isinstance(y, _dt.date) and isinstance(x, str):
            x = _dt.date.fromisoformat(x) if len(x) == 10 else parse_datetime(x).date()
            return (y, x) if swap else (x, y)
    return a, b


_PY_CMP: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}

PyFn = Callable[[Mapping[str, Any]], Any]
Fail = Callable[[str, "str | None"], Exception]


def _is_temporal_const(node: Node) -> bool:
    return node[0] == "const" and isinstance(node[1], _dt.date)


def compile_py(node: Node, fail: Fail) -> PyFn:
    """Compile an expression node to a function of one record (Kleene logic: ``None`` is unknown)."""
    tag = node[0]
    if tag == "field":
        name = node[1]
        return lambda r: r.get(name)
    if tag == "const":
        const = node[1]
        return lambda r: const
    if tag in ("and", "or"):
        subs = [(compile_py(sub, fail), _field_name(sub)) for sub in node[1]]
        stop = tag == "or"  # the value that decides: True for or, False for and

        def boolop(r: Mapping[str, Any]) -> Any:
            result: bool | None = not stop
            for fn, where in subs:
                v = fn(r)
                if v is stop:
                    return stop
                if v is None:
                    result = None
                elif v is not (not stop):
                    raise fail(f"expected a boolean, got {_show(v)}", where)
            return result

        return boolop
    if tag == "not":
        inner, where = compile_py(node[1], fail), _field_name(node[1])

        def not_(r: Mapping[str, Any]) -> Any:
            v = inner(r)
            if v is None:
                return None
            if v is True or v is False:
                return not v
            raise fail(f"expected a boolean, got {_show(v)}", where)

        return not_
    if tag == "isnull":
        inner = compile_py(node[2], fail)
        if node[1]:
            return lambda r: inner(r) is not None
        return lambda r: inner(r) is None
    if tag == "in":
        inner, where = compile_py(node[2], fail), _field_name(node[2])
        consts = [c for c in node[3] if c is not None]
        negate = bool(node[1])
        temporal = any(isinstance(c, _dt.date) for c in consts)
        try:
            values: Any = frozenset(consts)
        except TypeError:  # pragma: no cover - constants are always hashable
            values = consts

        def in_(r: Mapping[str, Any]) -> Any:
            v = inner(r)
            if v is None:
                return None
            try:
                if temporal:
                    hit = any(x == y for x, y in (_coerce_pair(v, c) for c in consts))
                else:
                    hit = v in values
            except (TypeError, ValueError):
                raise fail(f"cannot compare {_show(v)} with {consts!r}", where) from None
            return hit != negate

        return in_
    if tag == "cmp":
        op = _PY_CMP[node[1]]
        left, right = compile_py(node[2], fail), compile_py(node[3], fail)
        where = _field_name(node)
        temporal = _is_temporal_const(node[2]) or _is_temporal_const(node[3])

        def cmp(r: Mapping[str, Any]) -> Any:
            a = left(r)
            if a is None:
                return None
            b = right(r)
            if b is None:
                return None
            try:
                if temporal:
                    a, b = _coerce_pair(a, b)
                return op(a, b)
            except (TypeError, ValueError):
                raise fail(f"cannot compare {_show(a)} with {_show(b)}", where) from None

        return cmp
    if tag == "neg":
        inner, where = compile_py(node[1], fail), _field_name(node)

        def neg(r: Mapping[str, Any]) -> Any:
            v = inner(r)
            if v is None:
                return None
            if isinstance(v, bool) or not isinstance(v, (int, float, Decimal)):
                raise fail(f"cannot negate {_show(v)}", where)
            return _int_range(-v, fail, where)

        return neg
    if tag == "bin":
        opname = node[1]
        left, right = compile_py(node[2], fail), compile_py(node[3], fail)
        where = _field_name(node)

        def arith(r: Mapping[str, Any]) -> Any:
            a = left(r)
            if a is None:
                return None
            b = right(r)
            if b is None:
                return None
            return _py_arith(opname, a, b, fail, where)

        return arith
    raise AssertionError(tag)  # pragma: no cover


def _int_range(v: Any, fail: Fail, where: str | None) -> Any:
    if type(v) is int and not _INT64_MIN <= v <= _INT64_MAX:
        raise fail(f"integer overflow: {v}", where)
    return v


def _py_arith(op: str, a: Any, b: Any, fail: Fail, where: str | None) -> Any:
    ta, tb = type(a), type(b)
    if ta is int and tb is int:
        if op == "+":
            return _int_range(a + b, fail, where)
        if op == "-":
            return _int_range(a - b, fail, where)
        if op == "*":
            return _int_range(a * b, fail, where)
    if ta is str or tb is str:
        if op == "+" and ta is str and tb is str:
            return a + b
        raise fail(f"cannot apply {op!r} to {_show(a)} and {_show(b)}", where)
    for v in (a, b):
        if isinstance(v, bool) or not isinstance(v, (int, float, Decimal)):
            raise fail(f"cannot apply {op!r} to {_show(a)} and {_show(b)}", where)
    if isinstance(a, Decimal) != isinstance(b, Decimal):
        # Decimal with float: Python refuses, compute in floats like Arrow does
        if isinstance(a, float) or isinstance(b, float):
            a, b = float(a), float(b)
        else:
            a, b = Decimal(a), Decimal(b)
    try:
        if op == "/":
            return float(a) / float(b)
        if isinstance(a, Decimal):
            # exact: Decimal's default 28-digit context would round silently
            fn = {"+": _DEC_CTX.add, "-": _DEC_CTX.subtract, "*": _DEC_CTX.multiply}[op]
            return fn(a, b)
        if op == "+":
            return _int_range(a + b, fail, where)
        if op == "-":
            return _int_range(a - b, fail, where)
        return _int_range(a * b, fail, where)
    except (ZeroDivisionError, InvalidOperation):
        raise fail(f"division by zero ({_show(a)} / {_show(b)})", where) from None


def _field_name(node: Node) -> str | None:
    """The first field an expression node reads (for error messages)."""
    if node[0] == "field":
        return str(node[1])
    for part in node[1:]:
        if isinstance(part, tuple) and part and isinstance(part[0], str):
            name = _field_name(part)
            if name:
                return name
        if isinstance(part, list):
            for sub in part:
                if isinstance(sub, tuple):
                    name = _field_name(sub)
                    if name:
                        return name
    return None


# ----------------------------------------------------------------- expression evaluation: Arrow
class _ArrowEvaluator:
    def __init__(self, table: pa.Table, fail: Callable[[str, str | None], Exception]) -> None:
        self.table = table
        self.fail = fail

    def __call__(self, node: Node) -> Any:
        import pyarrow as pa
        import pyarrow.compute as pc

        tag = node[0]
        if tag == "field":
            name = node[1]
            if name not in self.table.column_names:
                return pa.nulls(self.table.num_rows)
            col = _plain(self.table.column(name))
            if _is_null_type(col.type):
                return col
            return col
        if tag == "const":
            return pa.scalar(node[1])
        try:
            if tag == "and":
                out = self._bool(self(node[1][0]), node[1][0])
                for sub in node[1][1:]:
                    out = pc.and_kleene(out, self._bool(self(sub), sub))
                return out
            if tag == "or":
                out = self._bool(self(node[1][0]), node[1][0])
                for sub in node[1][1:]:
                    out = pc.or_kleene(out, self._bool(self(sub), sub))
                return out
            if tag == "not":
                return pc.invert(self._bool(self(node[1]), node[1]))
            if tag == "isnull":
                v = self(node[2])
                return pc.is_valid(v) if node[1] else pc.is_null(v)
            if tag == "in":
                v = self(node[2])
                values = [c for c in node[3] if c is not None]
                if isinstance(v, pa.Scalar):
                    v = pa.repeat(v, self.table.num_rows) if v.is_valid else pa.nulls(self.table.num_rows)
                if _is_null_type(v.type):
                    return pa.nulls(self.table.num_rows, pa.bool_())
                # pa.array(values, type=int64) would truncate 2.5 to 2: infer, then cast safely
                vs = pa.array(values) if values else pa.array([], type=v.type)
                if vs.type != v.type:
                    try:
                        vs = vs.cast(v.type, safe=True)
                    except arrow_errors():
                        v = v.cast(vs.type)  # e.g. [1, 2.5] for an integer column: compare as floats
                hit = pc.is_in(v, value_set=vs)
                if node[1]:
                    hit = pc.invert(hit)
                return pc.if_else(pc.is_null(v), pa.scalar(None, pa.bool_()), hit)
            if tag == "cmp":
                a, b = self(node[2]), self(node[3])
                if _is_null_type(a.type) or _is_null_type(b.type):
                    return pa.nulls(self.table.num_rows, pa.bool_())
                fn = {
                    "==": pc.equal,
                    "!=": pc.not_equal,
                    "<": pc.less,
                    "<=": pc.less_equal,
                    ">": pc.greater,
                    ">=": pc.greater_equal,
                }[node[1]]
                a, b = _align_temporal(a, b)
                return fn(a, b)
            if tag == "neg":
                v = self(node[1])
                return v if _is_null_type(v.type) else pc.negate_checked(v)
            if tag == "bin":
                return self._arith(node)
        except arrow_errors() as exc:
            raise self.fail(f"cannot evaluate {tag} ({exc})", _field_name(node)) from None
        raise AssertionError(tag)  # pragma: no cover

    def _bool(self, v: Any, node: Node) -> Any:
        import pyarrow as pa
        import pyarrow.types as pt

        if _is_null_type(v.type):
            return v.cast(pa.bool_())
        if not pt.is_boolean(v.type):
            raise self.fail(f"expected a boolean, got {v.type}", _field_name(node))
        return v

    def _arith(self, node: Node) -> Any:
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.types as pt

        op = node[1]
        a, b = self(node[2]), self(node[3])
        if _is_null_type(a.type) or _is_null_type(b.type):
            return pa.nulls(self.table.num_rows)
        sa = pt.is_string(a.type) or pt.is_large_string(a.type)
        sb = pt.is_string(b.type) or pt.is_large_string(b.type)
        if sa or sb:
            if op == "+" and sa and sb:
                return pc.binary_join_element_wise(a, b, "")
            raise self.fail(f"cannot apply {op!r} to {a.type} and {b.type}", _field_name(node))
        for v in (a, b):
            if not (pt.is_integer(v.type) or pt.is_floating(v.type) or pt.is_decimal(v.type)):
                raise self.fail(f"cannot apply {op!r} to {a.type} and {b.type}", _field_name(node))
        if op == "/":  # always a number (float64), like the dict path
            a, b = a.cast(pa.float64()), b.cast(pa.float64())
        if pt.is_decimal(a.type) != pt.is_decimal(b.type):
            other = b if pt.is_decimal(a.type) else a
            if pt.is_floating(other.type):
                a, b = a.cast(pa.float64()), b.cast(pa.float64())
        if pt.is_decimal(a.type) or pt.is_decimal(b.type):
            a, b = _wide_decimals(op, a, b)
        fn = {
            "+": pc.add_checked,
            "-": pc.subtract_checked,
            "*": pc.multiply_checked,
            "/": pc.divide_checked,
        }[op]
        return fn(a, b)


def _wide_decimals(op: str, a: Any, b: Any) -> tuple[Any, Any]:
    """Promote decimal operands to decimal256 when the exact result needs more than 38 digits."""
    import pyarrow as pa
    import pyarrow.types as pt

    def ps(t: pa.DataType) -> tuple[int, int]:
        if pt.is_decimal(t):
            return t.precision, t.scale
        return 19, 0  # int64

    (p1, s1), (p2, s2) = ps(a.type), ps(b.type)
    need = p1 + p2 + 1 if op == "*" else max(p1 - s1, p2 - s2) + max(s1, s2) + 1
    if need <= 38 or need > 76:
        return a, b  # fits decimal128, or Arrow reports the overflow
    return (a.cast(pa.decimal256(max(p1, 1), s1)), b.cast(pa.decimal256(max(p2, 1), s2)))


def _align_temporal(a: Any, b: Any) -> tuple[Any, Any]:
    """Compare naive timestamps with aware constants (and vice versa) as UTC."""
    import pyarrow as pa
    import pyarrow.types as pt

    if pt.is_timestamp(a.type) and pt.is_timestamp(b.type) and (a.type.tz is None) != (b.type.tz is None):
        target = pa.timestamp("us", tz="UTC")
        return a.cast(target), b.cast(target)
    return a, b


# ===================================================================================== select
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


# ===================================================================================== rename
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


# ======================================================================================= cast
_CAST_KINDS = ("integer", "number", "string", "boolean", "date-time", "date", "decimal")
_DECIMAL_RE = re.compile(r"^decimal\s*\(\s*(\d+)\s*,\s*(\d+)\s*\)$")
_DECIMAL_TEXT = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_INT_TEXT = re.compile(r"^\s*[+-]?\d+\s*$")
_TRUE = frozenset({"true", "t", "1", "yes", "y"})
_FALSE = frozenset({"false", "f", "0", "no", "n"})


class CastTarget:
    """A parsed cast target: ``kind`` plus ``precision``/``scale`` for ``decimal(p,s)``."""

    __slots__ = ("kind", "precision", "scale")

    def __init__(self, spec: str) -> None:
        spec = spec.strip()
        m = _DECIMAL_RE.match(spec)
        if m:
            self.kind = "decimal"
            self.precision: int | None = int(m.group(1))
            self.scale: int | None = int(m.group(2))
            if not 0 < self.precision <= 76 or self.scale > self.precision:
                raise ValueError(f"invalid decimal precision/scale in {spec!r} (1 <= p <= 76, s <= p)")
        elif spec in _CAST_KINDS:
            self.kind, self.precision, self.scale = spec, None, None
        else:
            raise ValueError(f"unknown cast type {spec!r}; known: {', '.join(_CAST_KINDS)}, decimal(p,s)")

    def prop(self) -> dict[str, Any]:
        if self.kind in ("integer", "number", "boolean", "string"):
            return {"type": [self.kind, "null"]}
        if self.kind in ("date-time", "date"):
            return {"type": ["string", "null"], "format": self.kind}
        out: dict[str, Any] = {"type": ["string", "null"], "format": "decimal"}
        if self.precision is not None:
            out["x-precision"], out["x-scale"] = self.precision, self.scale
        return out

    def __str__(self) -> str:
        if self.kind == "decimal" and self.precision is not None:
            return f"decimal({self.precision},{self.scale})"
        return self.kind


def cast_value(value: Any, target: CastTarget) -> Any:
    """Cast one Python value; raise :class:`ValueError` when it cannot be cast exactly."""
    if value is None:
        return None
    kind = target.kind
    if kind == "integer":
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int):
            out = value
        elif isinstance(value, float):
            if not value.is_integer():
                raise ValueError("not an integer")
            out = int(value)
        elif isinstance(value, Decimal):
            if not value.is_finite() or value != value.to_integral_value():
                raise ValueError("not an integer")
            out = int(value)
        elif isinstance(value, str) and _INT_TEXT.match(value):
            out = int(value)
        else:
            raise ValueError("not an integer")
        if not _INT64_MIN <= out <= _INT64_MAX:
            raise ValueError("out of the 64-bit integer range")
        return out
    if kind == "number":
        if isinstance(value, bool):
            return float(value)
        if isinstance(value, int):
            if abs(value) > _FLOAT_EXACT:
                raise ValueError("integer too large to be exact as a number")
            return float(value)
        if isinstance(value, (float, Decimal)):
            return float(value)
        if isinstance(value, str):
            return float(value.strip())
        raise ValueError("not a number")
    if kind == "string":
        if isinstance(value, (bytes, bytearray, memoryview)):
            return base64.b64encode(bytes(value)).decode()
        text = _text(value)
        return text if isinstance(text, str) else text.decode()
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, (int, float)):
            return value != 0
        if isinstance(value, str):
            low = value.strip().lower()
            if low in _TRUE:
                return True
            if low in _FALSE:
                return False
        raise ValueError("not a boolean")
    if kind == "date-time":
        if isinstance(value, str):
            value = parse_datetime(value)
        elif isinstance(value, _dt.date) and not isinstance(value, _dt.datetime):
            value = _dt.datetime(value.year, value.month, value.day)
        if not isinstance(value, _dt.datetime):
            raise ValueError("not a date-time")
        if value.tzinfo is None:
            return value.replace(tzinfo=_dt.timezone.utc)
        return value.astimezone(_dt.timezone.utc)
    if kind == "date":
        if isinstance(value, str):
            text = value.strip()
            value = _dt.date.fromisoformat(text) if len(text) <= 10 else parse_datetime(text)
        if isinstance(value, _dt.datetime):
            if value.tzinfo is not None:
                value = value.astimezone(_dt.timezone.utc)
            if value.time() != _dt.time(0):
                raise ValueError("has a time of day (casting to date would drop it)")
            return value.date()
        if isinstance(value, _dt.date):
            return value
        raise ValueError("not a date")
    # decimal
    if isinstance(value, bool):
        raise ValueError("not a decimal")
    if isinstance(value, Decimal):
        dec = value
    elif isinstance(value, int):
        dec = Decimal(value)
    elif isinstance(value, float):
        dec = Decimal(repr(value))
    elif isinstance(value, str) and _DECIMAL_TEXT.match(value):
        dec = Decimal(value)
    else:
        raise ValueError("not a decimal")
    if not dec.is_finite():
        raise ValueError("not a finite decimal")
    if target.precision is None:
        return value if isinstance(value, str) else format(dec, "f")
    assert target.scale is not None
    return fit_decimal(dec, target.scale, target.precision)


_UTC = _dt.timezone.utc


def _declared_scale(prop: Mapping[str, Any] | None) -> int | None:
    if prop and _kind_of_prop(prop) == "decimal" and prop.get("x-scale") is not None:
        return int(prop["x-scale"])
    return None


def _with_scale(cast: Callable[[Any], Any], scale: int) -> Callable[[Any], Any]:
    """``cast`` applied to Decimal values first padded to the field's declared scale (never rounded)."""
    quant = Decimal(1).scaleb(-scale)

    def padded(v: Any) -> Any:
        if type(v) is Decimal and v.is_finite():
            exp = v.as_tuple().exponent
            if isinstance(exp, int) and exp > -scale:
                v = v.quantize(quant, context=_DEC_CTX)
        return cast(v)

    return padded


def py_caster(target: CastTarget) -> Callable[[Any], Any]:
    """:func:`cast_value` for one target, with fast paths for values that are already right."""
    kind = target.kind

    def slow(v: Any) -> Any:
        return cast_value(v, target)

    if kind == "integer":

        def to_int(v: Any) -> Any:
            if v is None or (type(v) is int and _INT64_MIN <= v <= _INT64_MAX):
                return v
            return cast_value(v, target)

        return to_int
    if kind in ("number", "boolean", "string"):
        same = {"number": float, "boolean": bool, "string": str}[kind]

        def keep(v: Any) -> Any:
            if v is None or type(v) is same:
                return v
            return cast_value(v, target)

        return keep
    if kind == "date-time":

        def to_dt(v: Any) -> Any:
            if v is None:
                return None
            t = type(v)
            if t is str:
                try:
                    d = parse_datetime(v)
                except ValueError:
                    return cast_value(v, target)
                tz = d.tzinfo
                return d.replace(tzinfo=_UTC) if tz is None else d if tz is _UTC else d.astimezone(_UTC)
            if t is _dt.datetime and v.tzinfo is _UTC:
                return v
            return cast_value(v, target)

        return to_dt
    if kind == "decimal" and target.precision is not None:
        assert target.scale is not None
        quant = Decimal(1).scaleb(-target.scale)
        limit = Decimal(10) ** (target.precision - target.scale)
        match = _DECIMAL_TEXT.match
        ctx = _DEC_CTX

        def to_dec(v: Any) -> Any:
            if v is None:
                return None
            if type(v) is str and match(v):
                d = Decimal(v)
                if d.is_finite() and abs(d) < limit:
                    q = d.quantize(quant, context=ctx)
                    if q == d:
                        return q
            return cast_value(v, target)

        return to_dec
    return slow


def _fast_cast(col: Any, target: CastTarget, arrow_type: pa.DataType) -> Any | None:
    """A columnar cast with Arrow kernels for the (source, target) pairs whose kernel result is the
    same as :func:`cast_value`; ``None`` when the column must go through Python values."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.types as pt

    t = col.type
    is_str = pt.is_string(t) or pt.is_large_string(t)
    kind = target.kind
    if kind == "integer" and (pt.is_integer(t) or pt.is_boolean(t) or pt.is_floating(t) or is_str):
        if is_str:  # Arrow also parses hex ("0x10"): only plain digits go to the kernel
            ok = pc.all(pc.match_substring_regex(col, r"^[+-]?\d+$"))
            if ok.is_valid and not ok.as_py():
                return None
        return pc.cast(col, arrow_type, safe=True)
    if kind == "number" and (
        pt.is_integer(t) or pt.is_floating(t) or pt.is_boolean(t) or is_str or pt.is_decimal(t)
    ):
        return pc.cast(col, arrow_type, safe=True)
    if kind == "string" and (
        is_str or pt.is_integer(t) or pt.is_boolean(t) or pt.is_decimal(t) or pt.is_date(t)
    ):
        return pc.cast(col, arrow_type, safe=True)
    if kind == "boolean" and (pt.is_boolean(t) or pt.is_integer(t) or pt.is_floating(t) or is_str):
        return pc.cast(col, arrow_type, safe=True)
    if kind == "date-time" and (is_str or pt.is_timestamp(t) or pt.is_date(t)):
        return pc.cast(col, arrow_type, safe=True)
    if kind == "date":
        if is_str or pt.is_date(t):
            return pc.cast(col, arrow_type, safe=True)
        if pt.is_timestamp(t):
            utc = col.cast(pa.timestamp(t.unit, tz="UTC")) if t.tz is not None else col
            days = pc.cast(utc, pa.date32())
            back = pc.cast(days, utc.type)
            exact = pc.all(pc.equal(back, utc))
            if exact.is_valid and not exact.as_py():
                return None
            return days
    if kind == "decimal":
        if target.precision is not None and (is_str or pt.is_integer(t) or pt.is_decimal(t)):
            return pc.cast(col, arrow_type, safe=True)
        if target.precision is None:
            if is_str:
                ok = pc.all(pc.match_substring_regex(col, _DECIMAL_TEXT.pattern))
                return col if not ok.is_valid or ok.as_py() else None
            if pt.is_integer(t) or pt.is_decimal(t):
                return pc.cast(col, pa.string())
    return None


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
        return self.schema_error(f"cannot cast {_show(value)} to {target}: {why}", field=name)

    def apply_records(self, records: list[Record]) -> list[Record]:
        out = [dict(r) for r in records]
        in_props = schema_properties(self.input_schema) or {}
        for name, target in self.targets.items():
            cast = py_caster(target)
            scale = _declared_scale(in_props.get(name))
            if scale is not None and target.kind in ("string", "decimal"):
                cast = _with_scale(cast, scale)  # Decimal('3') of a decimal(p,4) field is 3.0000
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
            col = _plain(table.column(name))
            result = None
            is_json = _is_json_column(table.schema.field(name))
            if _is_null_type(col.type):
                result = pa.nulls(table.num_rows, arrow_type)
            elif not is_json:  # JSON text columns are cast from their decoded values, like dicts
                try:
                    result = _fast_cast(col, target, arrow_type)
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
            table = _set_column(table, name, result, prop)
        return table


# ==================================================================================== flatten
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
            out.append((name, path, _nullable(prop) if depth else prop, depth > 0))

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
                raise error(f"expected an object, got {_show(value)}", field=where)
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
                and not _is_json_column(field)
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


def _nullable(prop: Mapping[str, Any]) -> dict[str, Any]:
    """``prop`` allowing null (a child of a null parent is null)."""
    out = dict(prop)
    t = out.get("type")
    if isinstance(t, str) and t != "null":
        out["type"] = [t, "null"]
    elif isinstance(t, list) and "null" not in t:
        out["type"] = [*t, "null"]
    return out


# ======================================================================================= hash
class HashOptions(TransformOptions):
    #: The fields to replace by the hex SHA-256 of their text.
    fields: list[str] = Field(min_length=1)
    #: Prepended to the text before hashing (keep it secret; it is never logged).
    salt: str = ""


class _TextFieldsTransform(Transform):
    """Base of ``hash`` and ``mask``: each listed field becomes a nullable string made from its value
    by :meth:`text_of` (nulls stay null)."""

    def transform_schema(self, schema: JSONSchema) -> JSONSchema:
        self.require_fields(schema, self.options.fields)
        props = schema_properties(schema)
        if props is None:
            return dict(schema)
        out = dict(props)
        for f in self.options.fields:
            out[f] = {"type": ["string", "null"]}
        return with_properties(schema, out)

    def text_of(self, value: Any) -> str | None:
        raise NotImplementedError

    def apply_records(self, records: list[Record]) -> list[Record]:
        out = [dict(r) for r in records]
        in_props = schema_properties(self.input_schema) or {}
        for f in self.options.fields:
            fn: Callable[[Any], Any] = self.text_of
            scale = _declared_scale(in_props.get(f))
            if scale is not None:
                fn = _with_scale(fn, scale)
            for rec in out:
                if f in rec:
                    rec[f] = fn(rec[f])
        return out


class HashTransform(_TextFieldsTransform):
    """Replace values by ``sha256(salt + text)`` as 64 hex digits (nulls stay null). The text of a
    value is its canonical form: strings as they are, ``true``/``false``, integers in decimal,
    ISO dates, decimals without exponent, objects as sorted-key JSON."""

    name = "hash"
    Options = HashOptions

    def __init__(self, options: Any = None, /, **kwargs: Any) -> None:
        super().__init__(options, **kwargs)
        if self.options.salt:
            from .logs import register_secret

            register_secret(self.options.salt)
        self._salt = self.options.salt.encode()

    def digest(self, value: Any) -> str | None:
        """The hex digest of one value (``None`` for ``None``)."""
        if value is None:
            return None
        text = _text(value)
        data = text if isinstance(text, bytes) else text.encode()
        return hashlib.sha256(self._salt + data).hexdigest()

    text_of = digest

    def apply_arrow(self, table: pa.Table) -> pa.Table:
        import pyarrow as pa

        salt = self._salt
        sha = hashlib.sha256
        for f in self.options.fields:
            if f not in table.column_names:
                continue
            texts = _text_column(table, f)
            digests = [
                None if t is None else sha(salt + (t if isinstance(t, bytes) else t.encode())).hexdigest()
                for t in texts
            ]
            table = _set_column(table, f, pa.array(digests, type=pa.string()), {"type": ["string", "null"]})
        return table


# ======================================================================================= mask
class MaskOptions(TransformOptions):
    #: The fields to mask.
    fields: list[str] = Field(min_length=1)
    #: The constant that replaces each non-null value (when ``keep_last`` is not set).
    value: str = "****"
    #: Keep the last N characters and replace the others by ``mask_char`` (values of N characters
    #: or fewer are masked entirely).
    keep_last: int | None = Field(default=None, ge=1)
    #: The character used with ``keep_last``.
    mask_char: str = Field(default="*", min_length=1, max_length=1)


class MaskTransform(_TextFieldsTransform):
    """Mask values: a constant, or all but the last ``keep_last`` characters. Nulls stay null."""

    name = "mask"
    Options = MaskOptions

    def mask(self, value: Any) -> str | None:
        o: MaskOptions = self.options
        if value is None:
            return None
        if o.keep_last is None:
            return o.value
        text = _text(value)
        if isinstance(text, bytes):
            text = base64.b64encode(text).decode()
        n = o.keep_last
        if len(text) <= n:
            return o.mask_char * len(text)
        return o.mask_char * (len(text) - n) + text[-n:]

    text_of = mask

    def apply_arrow(self, table: pa.Table) -> pa.Table:
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.types as pt

        o: MaskOptions = self.options
        prop = {"type": ["string", "null"]}
        for f in self.options.fields:
            if f not in table.column_names:
                continue
            col = _plain(table.column(f))
            if o.keep_last is None:
                result = pc.if_else(pc.is_valid(col), pa.scalar(o.value), pa.scalar(None, pa.string()))
            else:
                if _is_json_column(table.schema.field(f)):
                    text = pa.array(
                        [
                            None if v is None else self._text_for_mask(orjson.loads(v))
                            for v in col.to_pylist()
                        ],
                        type=pa.string(),
                    )
                elif pt.is_string(col.type) or pt.is_large_string(col.type):
                    text = col
                elif pt.is_integer(col.type) or pt.is_boolean(col.type):
                    text = pc.cast(col, pa.string())
                else:
                    text = pa.array([self._text_for_mask(v) for v in col.to_pylist()], type=pa.string())
                n = o.keep_last
                length = pc.utf8_length(text)
                reveal = pc.greater(length, n)
                stars = pc.binary_repeat(
                    pa.scalar(o.mask_char),
                    pc.fill_null(pc.if_else(reveal, pc.subtract(length, n), length), 0),
                )
                tail = pc.if_else(reveal, pc.utf8_slice_codeunits(text, start=-n), pa.scalar(""))
                result = pc.if_else(
                    pc.is_valid(text),
                    pc.binary_join_element_wise(stars, tail, ""),
                    pa.scalar(None, pa.string()),
                )
            table = _set_column(table, f, result, prop)
        return table

    @staticmethod
    def _text_for_mask(value: Any) -> str | None:
        if value is None:
            return None
        text = _text(value)
        return base64.b64encode(text).decode() if isinstance(text, bytes) else text


# ===================================================================================== filter
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
            kind = _infer_kind(self.expr.node, props)
            if kind is not None and kind != "boolean":
                raise self._fail_cfg(f"the condition must be boolean, got a {kind} value")
        _check_types(self.expr.node, props, self._fail_cfg)
        self._node = _temporal_constants(self.expr.node, props, self._fail_cfg)
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
                where = _field_name(self._node)
                raise self._fail_data(f"the condition gave {_show(v)}, not a boolean", where)
        return out

    def apply_arrow(self, table: pa.Table) -> pa.Table:
        import pyarrow as pa
        import pyarrow.types as pt

        mask = _ArrowEvaluator(table, self._fail_data)(self._node)
        if isinstance(mask, pa.Scalar):
            if not pt.is_boolean(mask.type) and mask.is_valid:
                raise self._fail_data(f"the condition gave {mask!r}, not a boolean", None)
            return table if mask.is_valid and mask.as_py() else table.slice(0, 0)
        if _is_null_type(mask.type):
            return table.slice(0, 0)
        if not pt.is_boolean(mask.type):
            raise self._fail_data(f"the condition gives {mask.type}, not a boolean", _field_name(self._node))
        return table.filter(mask, null_selection_behavior="drop")


# ================================================================================== add_field
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
        untyped = o.value is not None and _kind_of_const(o.value) is None
        if self.expr is None and self.target is None and untyped:
            raise self.config_error(f"value {_show(o.value)} needs an explicit 'cast' type", field="value")
        if self.expr is None and self.target is not None:
            try:
                self._const = cast_value(o.value, self.target)
            except (ValueError, TypeError, ArithmeticError) as exc:
                raise self.config_error(
                    f"value {_show(o.value)} is not a {self.target}: {exc}", field="value"
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
            _check_types(self.expr.node, props, self._fail_cfg)
            self._node = _temporal_constants(self.expr.node, props, self._fail_cfg)
            kind = _infer_kind(self.expr.node, props)
        else:
            kind = _kind_of_const(self._const)
        if self.target is not None:
            prop = self.target.prop()
        elif self.expr is not None and self.expr.node[0] == "field" and props is not None:
            prop = copy.deepcopy(props[self.expr.node[1]])  # a copy of a field keeps its exact type
        elif kind == "decimal" and self.expr is not None:
            self._inferred = kind
            prop = dict(_KIND_PROPS[kind])
            ps = _decimal_ps(self.expr.node, props)
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
                    f"cannot cast {_show(value)} to {self.target}: {exc}", field=self.options.name
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
            values = _ArrowEvaluator(table, self._fail_data)(self._node)
            if isinstance(values, pa.Scalar):
                n = table.num_rows
                values = pa.repeat(values, n) if values.is_valid else pa.nulls(n, ftype)
            if self.target is not None:
                values = _CastColumn(self, o.name, self.target, ftype)(values)
            elif values.type != ftype:
                try:
                    values = values.cast(ftype, safe=True)
                except arrow_errors() as exc:
                    raise self.schema_error(
                        f"result of {o.expression!r} does not fit {ftype}: {exc}", field=o.name
                    ) from None
        return _set_column(table, o.name, values, prop)


class _CastColumn:
    """Cast an Arrow column like the ``cast`` transform does (kernels, then Python values)."""

    def __init__(self, owner: Transform, name: str, target: CastTarget, arrow_type: pa.DataType) -> None:
        self.owner, self.name, self.target, self.arrow_type = owner, name, target, arrow_type

    def __call__(self, col: Any) -> Any:
        import pyarrow as pa

        col = _plain(col)
        if _is_null_type(col.type):
            return pa.nulls(len(col), self.arrow_type)
        try:
            result = _fast_cast(col, self.target, self.arrow_type)
        except arrow_errors():
            result = None
        if result is not None:
            return result
        out = []
        for v in col.to_pylist():
            try:
                out.append(cast_value(v, self.target))
            except (ValueError, TypeError, ArithmeticError) as exc:
                raise self.owner.schema_error(
                    f"cannot cast {_show(v)} to {self.target}: {exc}", field=self.name
                ) from None
        return pa.array(out, type=self.arrow_type)


# ============================================================================= Singer stream maps
_SM_UNSUPPORTED = ("__alias__", "__key_properties__", "__source__")


def stream_map_to_transforms(mapping: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Convert one stream's Singer stream map (``{"new": "expr", "old": None, "__else__": None,
    "__filter__": "expr"}``) to transform configs.

    What converts: ``"prop": None`` (drop), ``"__else__": None`` (keep only the mapped properties),
    ``"__filter__": expr`` (``filter``), ``"prop": "other"`` and ``"prop": "expr"`` (``add_field``,
    overwriting when ``prop`` exists) for expressions inside our safe grammar.

    Limits: Singer evaluates every expression against the *input* record, we apply them in order
    (an expression that reads a property mapped earlier in the same map sees the new value);
    functions (``md5()``, ``datetime``, ``int()`` …), ``record[...]``, ``config``, ``__alias__``,
    ``__key_properties__`` and ``__source__`` are not supported and raise :class:`ConfigError`
    naming the property; a stream map of ``None`` (drop the stream) is a selection matter, not a
    transform.
    """
    if mapping is None or not isinstance(mapping, Mapping):
        raise ConfigError(
            f"stream map: expected a mapping of property -> expression, got {mapping!r} "
            "(dropping a whole stream is done by stream selection)",
            plugin="stream map",
            field="(root)",
        )
    out: list[dict[str, Any]] = []
    drops: list[str] = []
    kept: list[str] = []
    adds: list[dict[str, Any]] = []
    else_drop = False
    for key, value in mapping.items():
        if key in _SM_UNSUPPORTED:
            raise ConfigError(
                f"stream map: {key!r} is not supported by transforms", plugin="stream map", field=key
            )
        if key == "__else__":
            if value is not None:
                raise ConfigError(
                    "stream map: only '__else__: null' is supported", plugin="stream map", field=key
                )
            else_drop = True
            continue
        if key == "__filter__":
            if not isinstance(value, str):
                raise ConfigError(
                    "stream map: '__filter__' must be an expression string", plugin="stream map", field=key
                )
            parse_expression(value, where="stream map '__filter__'")
            out.append({"type": "filter", "expression": value})
            continue
        if value is None:
            drops.append(key)
            continue
        if not isinstance(value, str):
            raise ConfigError(
                f"stream map: property {key!r}: expected an expression string or null, got {value!r}",
                plugin="stream map",
                field=key,
            )
        expr = parse_expression(value, arithmetic=True, where=f"stream map property {key!r}")
        kept.append(key)
        if expr.node == ("field", key):
            continue  # "id": "id" keeps the property as it is
        adds.append({"type": "add_field", "name": key, "expression": value, "overwrite": True})
    out.extend(adds)
    if else_drop:
        out.append({"type": "select", "fields": kept})
    elif drops:
        out.append({"type": "select", "exclude": drops})
    return out
