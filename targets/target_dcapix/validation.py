"""Record validation against a stream's JSON Schema, compiled once per schema.

singer-sdk validates every record with :mod:`jsonschema` (tens of microseconds per record). Here a
schema is compiled once into plain closures that check what Singer schemas actually use (``type``,
``required``, ``enum``/``const``, string lengths and ``pattern``, numeric bounds, nested
``properties``/``items``, ``additionalProperties``); a sub-schema using anything else (``anyOf``,
``$ref``, ``if``…) is checked by a :mod:`jsonschema` validator built once for that sub-schema, so the
result is the same as full JSON Schema validation. ``format`` is an annotation, as in singer-sdk
(``validate_field_string_format = False``): bad dates are rejected later by the batch-wise Arrow
conversion, which names the field.

A compiled validator returns ``None`` for a valid record, or ``(field_path, message)``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from dc_api_x.values import JSONNumber

__all__ = ["RecordValidator", "compile_record_validator"]

#: ``check(value) -> None | (path, message)``.
_Check = Callable[[Any], "tuple[str, str] | None"]
RecordValidator = Callable[[Mapping[str, Any]], "tuple[str, str] | None"]

_PY_TYPES: dict[str, tuple[type, ...]] = {
    "null": (type(None),),
    "boolean": (bool,),
    "integer": (int,),
    # JSONNumber (a Decimal): a number float64 does not keep (the reader's exact path)
    "number": (int, float, JSONNumber, Decimal),
    "string": (str,),
    "object": (dict,),
    "array": (list,),
}
#: Keywords that never constrain a value.
_ANNOTATIONS = frozenset(
    {
        "title",
        "description",
        "default",
        "examples",
        "format",
        "contentEncoding",
        "contentMediaType",
        "$comment",
        "readOnly",
        "writeOnly",
        "deprecated",
        "$schema",
        "$id",
        "inclusion",
        "selected",
    }
)
#: Keywords compiled here (anything else → jsonschema for that sub-schema).
_HANDLED = frozenset(
    {
        "type",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "enum",
        "const",
        "maxLength",
        "minLength",
        "pattern",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
        "minItems",
        "maxItems",
    }
)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _json_equal(a: Any, b: Any) -> bool:
    """JSON equality: ``1 == 1.0`` but ``true != 1``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b)


def _join(path: str, sub: str) -> str:
    if not sub:
        return path
    return f"{path}{sub}" if sub.startswith("[") else f"{path}.{sub}"


def _jsonschema_check(schema: Mapping[str, Any]) -> _Check:
    """A check backed by a :mod:`jsonschema` validator compiled once for ``schema``."""
    import jsonschema

    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    validator = cls(schema, format_checker=None)

    def check(value: Any) -> tuple[str, str] | None:
        err = jsonschema.exceptions.best_match(validator.iter_errors(value))
        if err is None:
            return None
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.absolute_path)
        return path.lstrip("."), err.message

    return check


def _needs_fallback(schema: Mapping[str, Any]) -> bool:
    for key in schema:
        if key in _HANDLED or key in _ANNOTATIONS or key.startswith("x-"):
            continue
        return True
    props = schema.get("properties")
    if props is not None and not isinstance(props, Mapping):
        return True
    items = schema.get("items")
    if items is not None and not isinstance(items, Mapping):
        return True  # tuple validation / boolean items
    addl = schema.get("additionalProperties")
    return addl is not None and not isinstance(addl, (bool, Mapping))


def _as_decimal(x: Any) -> Decimal:
    return x if isinstance(x, Decimal) else Decimal(repr(x))


def _decimal_bounds(v: Decimal, lo: Any, hi: Any, xlo: Any, xhi: Any, mult: Any) -> tuple[str, str] | None:
    """The numeric keywords for a Decimal value (exact: the bounds as the decimals they are written as)."""
    if lo is not None and v < _as_decimal(lo):
        return "", f"{v} is less than the minimum {lo!r}"
    if hi is not None and v > _as_decimal(hi):
        return "", f"{v} is greater than the maximum {hi!r}"
    if xlo is not None and v <= _as_decimal(xlo):
        return "", f"{v} is not greater than {xlo!r}"
    if xhi is not None and v >= _as_decimal(xhi):
        return "", f"{v} is not less than {xhi!r}"
    if mult:
        from dc_api_x.values import DECIMAL_CONTEXT

        try:
            rest = DECIMAL_CONTEXT.remainder(v, _as_decimal(mult))
        except ArithmeticError:  # the quotient has more than 160 digits
            rest = None
        if rest != 0:
            return "", f"{v} is not a multiple of {mult!r}"
    return None


def _types_of(schema: Mapping[str, Any]) -> tuple[frozenset[type] | None, bool, str]:
    """(allowed python types or None for any, integer-allowed, description)."""
    t = schema.get("type")
    if t is None:
        return None, False, "any"
    names = [t] if isinstance(t, str) else list(t)
    allowed: set[type] = set()
    for name in names:
        allowed.update(_PY_TYPES.get(name, ()))
    return frozenset(allowed), "integer" in names, "/".join(names)


def _compile(schema: Mapping[str, Any]) -> _Check | None:
    """A check for one (sub-)schema, or ``None`` when it accepts everything."""
    if not isinstance(schema, Mapping):
        if schema is False:
            return lambda v: ("", "no value is allowed here (schema false)")
        return None
    if _needs_fallback(schema):
        return _jsonschema_check(schema)
    allowed, int_ok, tdesc = _types_of(schema)
    checks: list[_Check] = []

    if "enum" in schema:
        options = list(schema["enum"])

        def c_enum(v: Any) -> tuple[str, str] | None:
            if any(_json_equal(v, o) for o in options):
                return None
            return "", f"{_short(v)} is not one of {_short(options)}"

        checks.append(c_enum)
    if "const" in schema:
        const = schema["const"]
        checks.append(
            lambda v: None if _json_equal(v, const) else ("", f"{_short(v)} is not {_short(const)}")
        )

    max_len, min_len, pattern = schema.get("maxLength"), schema.get("minLength"), schema.get("pattern")
    if max_len is not None or min_len is not None or pattern is not None:
        rx = re.compile(pattern) if pattern is not None else None

        def c_str(v: Any) -> tuple[str, str] | None:
            if type(v) is not str:
                return None
            if max_len is not None and len(v) > max_len:
                return "", f"string of length {len(v)} is longer than maxLength {max_len}"
            if min_len is not None and len(v) < min_len:
                return "", f"string of length {len(v)} is shorter than minLength {min_len}"
            if rx is not None and rx.search(v) is None:
                return "", f"{_short(v)} does not match pattern {pattern!r}"
            return None

        checks.append(c_str)

    bounds = {
        k: schema[k]
        for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")
        if k in schema
    }
    if bounds:
        lo, hi = bounds.get("minimum"), bounds.get("maximum")
        xlo, xhi = bounds.get("exclusiveMinimum"), bounds.get("exclusiveMaximum")
        mult = bounds.get("multipleOf")

        def c_num(v: Any) -> tuple[str, str] | None:
            if type(v) not in (int, float):
                if isinstance(v, Decimal):
                    return _decimal_bounds(v, lo, hi, xlo, xhi, mult)
                return None
            if lo is not None and v < lo:
                return "", f"{v!r} is less than the minimum {lo!r}"
            if hi is not None and v > hi:
                return "", f"{v!r} is greater than the maximum {hi!r}"
            if xlo is not None and v <= xlo:
                return "", f"{v!r} is not greater than {xlo!r}"
            if xhi is not None and v >= xhi:
                return "", f"{v!r} is not less than {xhi!r}"
            if mult and (v / mult) != int(v / mult):
                return "", f"{v!r} is not a multiple of {mult!r}"
            return None

        checks.append(c_num)

    if (
        "properties" in schema
        or "required" in schema
        or isinstance(schema.get("additionalProperties"), (bool, Mapping))
    ):
        obj_check = _compile_object(schema)
        if obj_check is not None:
            checks.append(lambda v: obj_check(v) if type(v) is dict else None)

    min_items, max_items = schema.get("minItems"), schema.get("maxItems")
    item_check = _compile(schema["items"]) if isinstance(schema.get("items"), Mapping) else None
    if item_check is not None or min_items is not None or max_items is not None:

        def c_arr(v: Any) -> tuple[str, str] | None:
            if type(v) is not list:
                return None
            if min_items is not None and len(v) < min_items:
                return "", f"array has {len(v)} items, fewer than minItems {min_items}"
            if max_items is not None and len(v) > max_items:
                return "", f"array has {len(v)} items, more than maxItems {max_items}"
            if item_check is not None:
                for i, item in enumerate(v):
                    err = item_check(item)
                    if err is not None:
                        return _join(f"[{i}]", err[0]), err[1]
            return None

        checks.append(c_arr)

    if allowed is None and not checks:
        return None

    def check(v: Any) -> tuple[str, str] | None:
        if (
            allowed is not None
            and type(v) not in allowed
            and not (int_ok and type(v) is float and v.is_integer())
        ):
            return "", f"{_short(v)} is not of type {tdesc}"
        for c in checks:
            err = c(v)
            if err is not None:
                return err
        return None

    return check


def _compile_object(schema: Mapping[str, Any]) -> RecordValidator | None:
    """The check of an object's members (properties, required, additionalProperties)."""
    props: Mapping[str, Any] = schema.get("properties") or {}
    required = tuple(schema.get("required") or ())
    addl = schema.get("additionalProperties", True)
    addl_check = _compile(addl) if isinstance(addl, Mapping) else None
    forbid_extra = addl is False

    # name -> (allowed types | None, float-as-integer ok, type text, extra check | None)
    compiled: dict[str, tuple[frozenset[type] | None, bool, str, _Check | None]] = {}
    for name, sub in props.items():
        if not isinstance(sub, Mapping) or _needs_fallback(sub):
            compiled[name] = (None, False, "any", _compile(sub))
            continue
        allowed, int_ok, tdesc = _types_of(sub)
        rest = {k: v for k, v in sub.items() if k != "type"}
        compiled[name] = (allowed, int_ok, tdesc, _compile(rest))

    if not compiled and not required and not forbid_extra and addl_check is None:
        return None
    if addl_check is None:
        check_fn = _generate_object_check(compiled, required, forbid_extra)
        # type_only: validity depends on the field names and value types alone (callers may cache)
        check_fn.type_only = all(extra is None for _, _, _, extra in compiled.values())  # type: ignore[attr-defined]
        check_fn.int_only = tuple(  # type: ignore[attr-defined]
            name
            for name, (allowed, int_ok, _, _) in compiled.items()
            if int_ok and allowed is not None and float not in allowed
        )
        return check_fn

    def check(rec: Mapping[str, Any]) -> tuple[str, str] | None:
        for name, value in rec.items():
            entry = compiled.get(name)
            if entry is None:
                if forbid_extra:
                    return name, "additional property is not allowed (additionalProperties: false)"
                if addl_check is not None:
                    err = addl_check(value)
                    if err is not None:
                        return _join(name, err[0]), err[1]
                continue
            allowed, int_ok, tdesc, extra = entry
            if (
                allowed is not None
                and type(value) not in allowed
                and not (int_ok and type(value) is float and value.is_integer())
            ):
                return name, f"{_short(value)} is not of type {tdesc}"
            if extra is not None:
                err = extra(value)
                if err is not None:
                    return _join(name, err[0]), err[1]
        for name in required:
            if name not in rec:
                return name, "required property is missing"
        return None

    return check


_MISSING = object()


def _bad_type(value: Any, int_ok: bool) -> bool:
    """True unless ``value`` is a float holding an integer where integers are allowed."""
    return not (int_ok and type(value) is float and value.is_integer())


def _generate_object_check(
    compiled: Mapping[str, tuple[frozenset[type] | None, bool, str, _Check | None]],
    required: tuple[str, ...],
    forbid_extra: bool,
) -> RecordValidator:
    """Generate straight-line Python for one object schema (no per-field loop, no tuple unpacking):
    this is the per-record hot path of the target."""
    env: dict[str, Any] = {
        "_M": _MISSING,
        "_bad_type": _bad_type,
        "_short": _short,
        "_join": _join,
        "_NAMES": frozenset(compiled),
    }
    lines = ["def check(rec):", "    get = rec.get"]
    for i, (name, (allowed, int_ok, tdesc, extra)) in enumerate(compiled.items()):
        env[f"N{i}"] = name
        if allowed is None and extra is None:
            continue
        lines.append(f"    v = get(N{i}, _M)")
        lines.append("    if v is not _M:")
        if allowed is not None:
            env[f"T{i}"] = allowed
            env[f"D{i}"] = tdesc
            lines.append(f"        if type(v) not in T{i} and _bad_type(v, {int_ok!r}):")
            lines.append(f"            return N{i}, _short(v) + ' is not of type ' + D{i}")
        if extra is not None:
            env[f"E{i}"] = extra
            lines.append(f"        err = E{i}(v)")
            lines.append("        if err is not None:")
            lines.append(f"            return _join(N{i}, err[0]), err[1]")
    for j, name in enumerate(required):
        env[f"R{j}"] = name
        lines.append(f"    if R{j} not in rec:")
        lines.append(f"        return R{j}, 'required property is missing'")
    if forbid_extra:
        lines.append("    if len(rec) > len(_NAMES) or not _NAMES.issuperset(rec):")
        lines.append("        for k in rec:")
        lines.append("            if k not in _NAMES:")
        env["_EXTRA"] = "additional property is not allowed (additionalProperties: false)"
        lines.append("                return k, _EXTRA")
    lines.append("    return None")
    # only the structure comes from the schema; every name and value is passed in ``env``
    exec("\n".join(lines), env)
    return env["check"]  # type: ignore[no-any-return]


def compile_record_validator(schema: Mapping[str, Any]) -> RecordValidator:
    """Compile ``schema`` (a stream's JSON Schema) into ``check(record) -> None | (field, message)``.

    A schema that itself uses ``$ref`` or combinators at the top level is checked by
    :mod:`jsonschema` as a whole (compiled once).
    """
    if _needs_fallback(schema) or "$defs" in schema or "definitions" in schema:
        return _jsonschema_check(schema)
    obj = _compile_object(schema)
    if obj is None:
        return lambda rec: None
    return obj
