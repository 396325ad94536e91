"""Oracle types ⇄ the JSON Schema conventions of :mod:`dc_api_x.arrow` (see the README's table).

* reading (reflection: :func:`oracle_column_property`; a query's or a ref cursor's result columns:
  :func:`description_property`) — ``NUMBER(p,s)`` with ``s > 0`` (and ``NUMBER``/``FLOAT`` without
  precision) are exact decimals, ``NUMBER(p)`` up to 19 digits integers, ``BINARY_DOUBLE`` numbers,
  ``DATE``/``TIMESTAMP`` date-times without zone, ``TIMESTAMP WITH [LOCAL] TIME ZONE`` instants;
* writing (:func:`oracle_column_type`) — the column type created for a JSON Schema property;
* values (:func:`fetch_value`, :func:`bind_value`) — python-oracledb ignores a ``datetime``'s
  ``tzinfo`` when binding and drops the zone when fetching, so instants are bound in UTC (the
  session time zone is UTC) and read through ``SYS_EXTRACT_UTC``.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import oracle
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeEngine

from dc_api_x.adapters.sql.typemap import column_property
from dc_api_x.arrow import first_variant, json_types
from dc_api_x.types import JSONSchema

__all__ = [
    "KEY_STRING_LENGTH",
    "MAX_NUMBER_PRECISION",
    "MAX_VARCHAR_CHARS",
    "bind_value",
    "description_property",
    "fetch_value",
    "is_instant",
    "is_json_document",
    "iso_duration",
    "oracle_column_property",
    "oracle_column_type",
]

#: NUMBER holds at most 38 significant digits: a decimal of more is refused, never rounded.
MAX_NUMBER_PRECISION = 38
#: VARCHAR2(n CHAR) is used up to this length (4000 bytes at 4 bytes per character); CLOB beyond.
MAX_VARCHAR_CHARS = 1000
#: A string key column cannot be a CLOB: it is created as VARCHAR2(this CHAR).
KEY_STRING_LENGTH = 1000
#: NUMBER(p) with p up to this many digits is read as an integer (int64 holds 18 digits and most of 19).
MAX_INTEGER_DIGITS = 19


def _null(prop: dict[str, Any], base: str, nullable: bool) -> dict[str, Any]:
    prop["type"] = [base, "null"] if nullable else base
    return prop


def _number(precision: int | None, scale: int | None, nullable: bool) -> dict[str, Any]:
    """NUMBER(precision, scale) (``None``/``None``: NUMBER, 38 significant digits, any scale)."""
    if precision is None and scale is None:
        return _null({"format": "decimal"}, "string", nullable)
    scale = int(scale or 0)
    if precision is None:  # NUMBER(*, s)
        precision = MAX_NUMBER_PRECISION
    if scale <= 0:  # NUMBER(p) or NUMBER(p, -s): integers of p - s digits
        digits = int(precision) - scale
        if digits <= MAX_INTEGER_DIGITS:
            return _null({}, "integer", nullable)
        return _null({"format": "decimal", "x-precision": digits, "x-scale": 0}, "string", nullable)
    # NUMBER(3, 5) holds 0.00xyz: the Arrow/JSON precision counts the leading zeros too
    return _null(
        {"format": "decimal", "x-precision": max(int(precision), scale), "x-scale": scale}, "string", nullable
    )


def oracle_column_property(typ: TypeEngine[Any], nullable: bool = True) -> dict[str, Any]:
    """The JSON Schema property of a reflected Oracle column of SQLAlchemy type ``typ``."""
    if isinstance(typ, oracle.NUMBER):  # before Integer and Numeric: NUMBER subclasses both
        return _number(typ.precision, typ.scale, nullable)
    if isinstance(typ, (oracle.BINARY_DOUBLE, oracle.BINARY_FLOAT)):
        return _null({}, "number", nullable)
    if isinstance(typ, sa.Float):  # FLOAT(b), DOUBLE PRECISION, REAL: decimal NUMBERs in Oracle
        return _null({"format": "decimal"}, "string", nullable)
    if isinstance(typ, oracle.DATE):  # an Oracle DATE has a time of day
        return _null({"format": "date-time", "x-timezone": False}, "string", nullable)
    if isinstance(typ, sa.TIMESTAMP):
        aware = bool(typ.timezone or getattr(typ, "local_timezone", False))
        return _null({"format": "date-time", **({} if aware else {"x-timezone": False})}, "string", nullable)
    if isinstance(typ, oracle.INTERVAL):
        return _null({"format": "duration"}, "string", nullable)
    if isinstance(typ, oracle.ROWID):
        return _null({}, "string", nullable)
    return column_property(typ, nullable)


def description_property(desc: Any) -> JSONSchema:
    """The property of a result column from python-oracledb's cursor ``description`` entry (a
    query's columns, a ref cursor's columns): ``type_code`` is an ``oracledb.DbType``."""
    import oracledb

    t = desc.type_code
    nullable = bool(getattr(desc, "null_ok", True))
    precision = getattr(desc, "precision", None) or 0
    scale = getattr(desc, "scale", None)
    if t is oracledb.DB_TYPE_NUMBER:
        if scale == -127 or precision == 0:  # FLOAT(b) or a NUMBER without precision
            return _null({"format": "decimal"}, "string", nullable)
        return _number(precision, scale, nullable)
    if t in (oracledb.DB_TYPE_BINARY_DOUBLE, oracledb.DB_TYPE_BINARY_FLOAT, oracledb.DB_TYPE_BINARY_INTEGER):
        base = "integer" if t is oracledb.DB_TYPE_BINARY_INTEGER else "number"
        return _null({}, base, nullable)
    if t is oracledb.DB_TYPE_BOOLEAN:
        return _null({}, "boolean", nullable)
    if t in (oracledb.DB_TYPE_DATE, oracledb.DB_TYPE_TIMESTAMP):
        return _null({"format": "date-time", "x-timezone": False}, "string", nullable)
    if t in (oracledb.DB_TYPE_TIMESTAMP_TZ, oracledb.DB_TYPE_TIMESTAMP_LTZ):
        # a ref cursor's rows cannot be wrapped in SYS_EXTRACT_UTC, and python-oracledb drops the
        # zone: the wall-clock time is all that arrives (return SYS_EXTRACT_UTC(col) for instants)
        return _null({"format": "date-time", "x-timezone": False}, "string", nullable)
    if t is oracledb.DB_TYPE_INTERVAL_DS:
        return _null({"format": "duration"}, "string", nullable)
    if t in (oracledb.DB_TYPE_RAW, oracledb.DB_TYPE_LONG_RAW, oracledb.DB_TYPE_BLOB):
        return _null({"contentEncoding": "base64"}, "string", nullable)
    if t is oracledb.DB_TYPE_JSON:
        return {"type": ["object", "array", "string", "number", "boolean", "null"], "x-json": True}
    return _null({}, "string", nullable)


def is_json_document(prop: Mapping[str, Any]) -> bool:
    """Whether values of a property are stored as JSON text (objects, arrays, mixed types)."""
    prop = first_variant(prop)
    types, _ = json_types(prop)
    if prop.get("x-json") or "object" in types or "array" in types:
        return True
    return len(types) > 1 and not types <= {"integer", "number"}


def is_instant(prop: Mapping[str, Any]) -> bool:
    """Whether a property is a zone-aware date-time (read in UTC, bound in UTC)."""
    return prop.get("format") == "date-time" and prop.get("x-timezone") is not False


def oracle_column_type(prop: Mapping[str, Any], dialect: Dialect, *, key: bool = False) -> TypeEngine[Any]:
    """The Oracle column type created for a JSON Schema property (``key``: a primary-key column,
    which cannot be a LOB). A decimal of more than 38 digits raises ``ValueError``."""
    prop = first_variant(prop)
    types, _ = json_types(prop)
    fmt = prop.get("format")
    if not types or is_json_document(prop):
        return _string_type(None, key)  # JSON documents as JSON text
    if types == {"integer", "number"}:
        return oracle.BINARY_DOUBLE()
    if types == {"integer"}:
        return oracle.NUMBER(MAX_INTEGER_DIGITS, 0)
    if types == {"number"}:
        return oracle.BINARY_DOUBLE()  # IEEE 754 double: every float round-trips
    if types == {"boolean"}:
        return sa.Boolean()  # BOOLEAN on Oracle 23ai, SMALLINT (0/1) before
    if fmt == "decimal":
        p, s = prop.get("x-precision"), prop.get("x-scale")
        if p is None or s is None:
            return oracle.NUMBER()
        if int(p) > MAX_NUMBER_PRECISION:
            raise ValueError(
                f"decimal({p},{s}) does not fit Oracle NUMBER (at most {MAX_NUMBER_PRECISION} digits)"
            )
        return oracle.NUMBER(int(p), int(s))
    if fmt == "date-time":
        return oracle.TIMESTAMP(timezone=is_instant(prop))
    if fmt == "date":
        return oracle.DATE()
    if prop.get("contentEncoding") == "base64":
        return oracle.RAW(2000) if key else sa.LargeBinary()
    if fmt == "uuid":
        return oracle.VARCHAR2(36)
    return _string_type(prop.get("maxLength"), key)


def _string_type(max_length: Any, key: bool) -> TypeEngine[Any]:
    if max_length and int(max_length) <= MAX_VARCHAR_CHARS:
        return oracle.VARCHAR2(int(max_length))
    if key:
        return oracle.VARCHAR2(KEY_STRING_LENGTH)
    return oracle.CLOB()


# ------------------------------------------------------------------------------------------ values
def iso_duration(value: _dt.timedelta) -> str:
    """An INTERVAL DAY TO SECOND as ISO 8601 (``P1DT2H3M4.5S``, ``-P0DT0H0M1S``)."""
    sign = "-" if value < _dt.timedelta(0) else ""
    value = abs(value)
    hours, rest = divmod(value.seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    sec = (
        f"{seconds}.{value.microseconds:06d}".rstrip("0").rstrip(".") if value.microseconds else str(seconds)
    )
    return f"{sign}P{value.days}DT{hours}H{minutes}M{sec}S"


def fetch_value(value: Any, prop: Mapping[str, Any]) -> Any:
    """A fetched value in the form the stream's property promises."""
    if value is None:
        return None
    if isinstance(value, _dt.datetime) and is_instant(prop) and value.tzinfo is None:
        return value.replace(tzinfo=_dt.timezone.utc)  # read through SYS_EXTRACT_UTC
    if isinstance(value, _dt.timedelta):
        return iso_duration(value)
    return value


def bind_value(value: Any, prop: Mapping[str, Any], native_boolean: bool) -> Any:
    """A record value as python-oracledb binds it exactly: aware date-times in UTC (zone dropped),
    JSON documents as JSON text, booleans as 0/1 where the server has no BOOLEAN."""
    if value is None:
        return None
    if is_json_document(prop) or isinstance(value, (dict, list)):
        import json

        from dc_api_x.values import json_default

        return json.dumps(value, default=json_default, ensure_ascii=False, separators=(",", ":"))
    if isinstance(value, _dt.datetime) and value.tzinfo is not None:
        return value.astimezone(_dt.timezone.utc).replace(tzinfo=None)
    if isinstance(value, bool):
        return value if native_boolean else int(value)
    if isinstance(value, float) and prop.get("format") == "decimal":
        return Decimal(repr(value))
    return value
