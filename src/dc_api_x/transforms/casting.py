"""Casting values to a type exactly (``cast`` and ``add_field``'s ``cast``): a value that cannot be cast
without loss raises instead of becoming null, rounded or truncated. :func:`cast_value` is the rule;
:func:`py_caster` is it with fast paths for values that are already right, :func:`fast_cast` the
Arrow kernels for the (source, target) pairs whose result is the same, :class:`CastColumn` an Arrow
column through both."""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ..ext.transforms import Transform
from ..values import DECIMAL_CONTEXT, arrow_errors, fit_decimal, json_form, parse_datetime
from .columns import INT64_MAX, INT64_MIN, canonical_text, is_null_type, plain, show
from .expressions import kind_of_prop

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

__all__ = ["CastColumn", "CastTarget", "cast_value", "declared_scale", "fast_cast", "py_caster", "with_scale"]

#: Integers above this are not exact as a float64.
FLOAT_EXACT = 2**53


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
        if not INT64_MIN <= out <= INT64_MAX:
            raise ValueError("out of the 64-bit integer range")
        return out
    if kind == "number":
        if isinstance(value, bool):
            return float(value)
        if isinstance(value, int):
            if abs(value) > FLOAT_EXACT:
                raise ValueError("integer too large to be exact as a number")
            return float(value)
        if isinstance(value, (float, Decimal)):
            return float(value)
        if isinstance(value, str):
            return float(value.strip())
        raise ValueError("not a number")
    if kind == "string":
        if isinstance(value, (bytes, bytearray, memoryview)):
            return json_form(value)  # base64
        text = canonical_text(value)
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
        return value if isinstance(value, str) else json_form(dec)
    assert target.scale is not None
    return fit_decimal(dec, target.scale, target.precision)


_UTC = _dt.timezone.utc


def declared_scale(prop: Mapping[str, Any] | None) -> int | None:
    if prop and kind_of_prop(prop) == "decimal" and prop.get("x-scale") is not None:
        return int(prop["x-scale"])
    return None


def with_scale(cast: Callable[[Any], Any], scale: int) -> Callable[[Any], Any]:
    """``cast`` applied to Decimal values first padded to the field's declared scale (never rounded)."""
    quant = Decimal(1).scaleb(-scale)

    def padded(v: Any) -> Any:
        if type(v) is Decimal and v.is_finite():
            exp = v.as_tuple().exponent
            if isinstance(exp, int) and exp > -scale:
                v = v.quantize(quant, context=DECIMAL_CONTEXT)
        return cast(v)

    return padded


def py_caster(target: CastTarget) -> Callable[[Any], Any]:
    """:func:`cast_value` for one target, with fast paths for values that are already right."""
    kind = target.kind

    def slow(v: Any) -> Any:
        return cast_value(v, target)

    if kind == "integer":

        def to_int(v: Any) -> Any:
            if v is None or (type(v) is int and INT64_MIN <= v <= INT64_MAX):
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
        ctx = DECIMAL_CONTEXT

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


def fast_cast(col: Any, target: CastTarget, arrow_type: pa.DataType) -> Any | None:
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


class CastColumn:
    """Cast an Arrow column like the ``cast`` transform does (kernels, then Python values)."""

    def __init__(self, owner: Transform, name: str, target: CastTarget, arrow_type: pa.DataType) -> None:
        self.owner, self.name, self.target, self.arrow_type = owner, name, target, arrow_type

    def __call__(self, col: Any) -> Any:
        import pyarrow as pa

        col = plain(col)
        if is_null_type(col.type):
            return pa.nulls(len(col), self.arrow_type)
        try:
            result = fast_cast(col, self.target, self.arrow_type)
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
                    f"cannot cast {show(v)} to {self.target}: {exc}", field=self.name
                ) from None
        return pa.array(out, type=self.arrow_type)
