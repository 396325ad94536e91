"""The safe expression language of ``filter`` and ``add_field``: parsing and typing.

Expressions are parsed with :mod:`ast` and checked against a small grammar: field names, constants
(numbers, strings, ``True``/``False``/``None``), comparisons (``== != < <= > >=``, ``in``/``not in`` a
list of constants, ``is None``/``is not None``), ``and``, ``or``, ``not`` and — for ``add_field`` —
``+ - * /`` and unary minus (``+`` concatenates strings). Nothing is ever passed to :func:`eval`.
A parsed expression is a tree of tuples (:data:`Node`); :mod:`.evaluation` runs it on dict records
and Arrow tables. The typing functions reject, at build time, what the stream's schema makes
certainly wrong (comparing a number with a string …)."""

from __future__ import annotations

import ast
import datetime as _dt
from collections.abc import Callable, Mapping
from typing import Any

from ..arrow import json_types
from ..exceptions import ConfigError
from ..values import parse_datetime

__all__ = [
    "NUMERIC",
    "Expression",
    "Node",
    "check_types",
    "decimal_ps",
    "infer_kind",
    "kind_of_const",
    "kind_of_prop",
    "parse_expression",
    "temporal_constants",
]


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


def kind_of_prop(prop: Mapping[str, Any] | None) -> str | None:
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


def decimal_ps(node: Node, props: Mapping[str, Any] | None) -> tuple[int, int] | None:
    """Precision and scale of a decimal expression (Arrow's rules), ``None`` when not a decimal."""
    tag = node[0]
    if tag == "field":
        prop = (props or {}).get(node[1]) or {}
        kind = kind_of_prop(prop)
        if kind == "decimal":
            return int(prop["x-precision"]), int(prop.get("x-scale") or 0)
        return (19, 0) if kind == "integer" else None
    if tag == "const":
        return (19, 0) if kind_of_const(node[1]) == "integer" else None
    if tag == "neg":
        return decimal_ps(node[1], props)
    if tag == "bin" and node[1] != "/":
        a, b = decimal_ps(node[2], props), decimal_ps(node[3], props)
        if a is None or b is None:
            return None
        (p1, s1), (p2, s2) = a, b
        if node[1] == "*":
            return p1 + p2 + 1, s1 + s2
        return max(p1 - s1, p2 - s2) + max(s1, s2) + 1, max(s1, s2)
    return None


def kind_of_const(value: Any) -> str | None:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return None


NUMERIC = {"integer", "number", "decimal"}


def infer_kind(node: Node, props: Mapping[str, Any] | None) -> str | None:
    tag = node[0]
    if tag == "field":
        return kind_of_prop(props.get(node[1])) if props is not None else None
    if tag == "const":
        return kind_of_const(node[1])
    if tag in ("cmp", "in", "isnull", "and", "or", "not"):
        return "boolean"
    if tag == "neg":
        return infer_kind(node[1], props)
    if tag == "bin":
        a, b = infer_kind(node[2], props), infer_kind(node[3], props)
        if node[1] == "+" and "string" in (a, b):
            return "string"
        if node[1] == "/":
            return "number"
        if a == b == "integer":
            return "integer"
        if a in NUMERIC and b in NUMERIC:
            return "number" if "number" in (a, b) else "decimal"
        return None
    return None


def check_types(node: Node, props: Mapping[str, Any] | None, fail: Callable[[str], Exception]) -> None:
    """Reject type mismatches that are certain from the schema (string vs number, …)."""
    tag = node[0]
    if tag in ("and", "or"):
        for sub in node[1]:
            check_types(sub, props, fail)
            k = infer_kind(sub, props)
            if k is not None and k != "boolean":
                raise fail(f"'{tag}' needs boolean operands, got a {k} value")
    elif tag == "not":
        check_types(node[1], props, fail)
        k = infer_kind(node[1], props)
        if k is not None and k != "boolean":
            raise fail(f"'not' needs a boolean operand, got a {k} value")
    elif tag == "cmp":
        check_types(node[2], props, fail)
        check_types(node[3], props, fail)
        a, b = infer_kind(node[2], props), infer_kind(node[3], props)
        if a is not None and b is not None and not _comparable(a, b, node[3]):
            hint = " (cast it to decimal(p,s) first)" if "decimal text" in (a, b) else ""
            raise fail(f"cannot compare a {a} value with a {b} value{hint}")
    elif tag == "in":
        check_types(node[2], props, fail)
        a = infer_kind(node[2], props)
        for v in node[3]:
            b = kind_of_const(v)
            if a is not None and b is not None and not _comparable(a, b, ("const", v)):
                raise fail(f"cannot compare a {a} value with {v!r}")
    elif tag == "isnull":
        check_types(node[-1], props, fail)
    elif tag == "neg":
        check_types(node[1], props, fail)
        k = infer_kind(node[1], props)
        if k is not None and k not in NUMERIC:
            raise fail(f"unary '-' needs a number, got a {k} value")
    elif tag == "bin":
        check_types(node[2], props, fail)
        check_types(node[3], props, fail)
        a, b = infer_kind(node[2], props), infer_kind(node[3], props)
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
        elif a not in NUMERIC or b not in NUMERIC:
            raise fail(f"operator {node[1]!r} needs numbers, got {a} and {b}")


def _comparable(a: str, b: str, right: Node) -> bool:
    if a == b:
        return True
    if a in NUMERIC and b in NUMERIC:
        return True
    # date-time / date fields compare with ISO string constants
    return {a, b} <= {"date-time", "string"} or {a, b} <= {"date", "string"}


def temporal_constants(node: Node, props: Mapping[str, Any] | None, fail: Callable[[str], Exception]) -> Node:
    """Turn ISO string constants compared with date-time / date fields into datetime / date."""
    tag = node[0]
    if tag in ("and", "or"):
        return (tag, [temporal_constants(n, props, fail) for n in node[1]])
    if tag == "not":
        return ("not", temporal_constants(node[1], props, fail))
    if tag == "cmp":
        left, right = node[2], node[3]
        lk, rk = infer_kind(left, props), infer_kind(right, props)
        if lk in ("date-time", "date") and right[0] == "const" and isinstance(right[1], str):
            right = ("const", _parse_temporal(right[1], lk, fail))
        if rk in ("date-time", "date") and left[0] == "const" and isinstance(left[1], str):
            left = ("const", _parse_temporal(left[1], rk, fail))
        return ("cmp", node[1], left, right)
    if tag == "in":
        lk = infer_kind(node[2], props)
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
