"""Evaluation of parsed expressions (:mod:`.expressions`): on dict records (:func:`compile_py`) and on
Arrow tables (:class:`ArrowEvaluator`, :mod:`pyarrow.compute`), with the same results. Nulls follow
SQL/Kleene logic: a comparison with a null is unknown; arithmetic is exact (checked integers, decimals
without rounding)."""

from __future__ import annotations

import datetime as _dt
import operator
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from ..values import DECIMAL_CONTEXT, arrow_errors, parse_datetime
from .columns import INT64_MAX, INT64_MIN, is_null_type, plain, show
from .expressions import Node

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

__all__ = ["ArrowEvaluator", "Fail", "PyFn", "compile_py", "field_name"]


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
        subs = [(compile_py(sub, fail), field_name(sub)) for sub in node[1]]
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
                    raise fail(f"expected a boolean, got {show(v)}", where)
            return result

        return boolop
    if tag == "not":
        inner, where = compile_py(node[1], fail), field_name(node[1])

        def not_(r: Mapping[str, Any]) -> Any:
            v = inner(r)
            if v is None:
                return None
            if v is True or v is False:
                return not v
            raise fail(f"expected a boolean, got {show(v)}", where)

        return not_
    if tag == "isnull":
        inner = compile_py(node[2], fail)
        if node[1]:
            return lambda r: inner(r) is not None
        return lambda r: inner(r) is None
    if tag == "in":
        inner, where = compile_py(node[2], fail), field_name(node[2])
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
                raise fail(f"cannot compare {show(v)} with {consts!r}", where) from None
            return hit != negate

        return in_
    if tag == "cmp":
        op = _PY_CMP[node[1]]
        left, right = compile_py(node[2], fail), compile_py(node[3], fail)
        where = field_name(node)
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
                raise fail(f"cannot compare {show(a)} with {show(b)}", where) from None

        return cmp
    if tag == "neg":
        inner, where = compile_py(node[1], fail), field_name(node)

        def neg(r: Mapping[str, Any]) -> Any:
            v = inner(r)
            if v is None:
                return None
            if isinstance(v, bool) or not isinstance(v, (int, float, Decimal)):
                raise fail(f"cannot negate {show(v)}", where)
            return _int_range(-v, fail, where)

        return neg
    if tag == "bin":
        opname = node[1]
        left, right = compile_py(node[2], fail), compile_py(node[3], fail)
        where = field_name(node)

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
    if type(v) is int and not INT64_MIN <= v <= INT64_MAX:
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
        raise fail(f"cannot apply {op!r} to {show(a)} and {show(b)}", where)
    for v in (a, b):
        if isinstance(v, bool) or not isinstance(v, (int, float, Decimal)):
            raise fail(f"cannot apply {op!r} to {show(a)} and {show(b)}", where)
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
            fn = {"+": DECIMAL_CONTEXT.add, "-": DECIMAL_CONTEXT.subtract, "*": DECIMAL_CONTEXT.multiply}[op]
            return fn(a, b)
        if op == "+":
            return _int_range(a + b, fail, where)
        if op == "-":
            return _int_range(a - b, fail, where)
        return _int_range(a * b, fail, where)
    except (ZeroDivisionError, InvalidOperation):
        raise fail(f"division by zero ({show(a)} / {show(b)})", where) from None


def field_name(node: Node) -> str | None:
    """The first field an expression node reads (for error messages)."""
    if node[0] == "field":
        return str(node[1])
    for part in node[1:]:
        if isinstance(part, tuple) and part and isinstance(part[0], str):
            name = field_name(part)
            if name:
                return name
        if isinstance(part, list):
            for sub in part:
                if isinstance(sub, tuple):
                    name = field_name(sub)
                    if name:
                        return name
    return None


# ----------------------------------------------------------------- expression evaluation: Arrow
class ArrowEvaluator:
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
            col = plain(self.table.column(name))
            if is_null_type(col.type):
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
                if is_null_type(v.type):
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
                if is_null_type(a.type) or is_null_type(b.type):
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
                return v if is_null_type(v.type) else pc.negate_checked(v)
            if tag == "bin":
                return self._arith(node)
        except arrow_errors() as exc:
            raise self.fail(f"cannot evaluate {tag} ({exc})", field_name(node)) from None
        raise AssertionError(tag)  # pragma: no cover

    def _bool(self, v: Any, node: Node) -> Any:
        import pyarrow as pa
        import pyarrow.types as pt

        if is_null_type(v.type):
            return v.cast(pa.bool_())
        if not pt.is_boolean(v.type):
            raise self.fail(f"expected a boolean, got {v.type}", field_name(node))
        return v

    def _arith(self, node: Node) -> Any:
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.types as pt

        op = node[1]
        a, b = self(node[2]), self(node[3])
        if is_null_type(a.type) or is_null_type(b.type):
            return pa.nulls(self.table.num_rows)
        sa = pt.is_string(a.type) or pt.is_large_string(a.type)
        sb = pt.is_string(b.type) or pt.is_large_string(b.type)
        if sa or sb:
            if op == "+" and sa and sb:
                return pc.binary_join_element_wise(a, b, "")
            raise self.fail(f"cannot apply {op!r} to {a.type} and {b.type}", field_name(node))
        for v in (a, b):
            if not (pt.is_integer(v.type) or pt.is_floating(v.type) or pt.is_decimal(v.type)):
                raise self.fail(f"cannot apply {op!r} to {a.type} and {b.type}", field_name(node))
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
