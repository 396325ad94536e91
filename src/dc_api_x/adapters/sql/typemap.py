"""Type mapping of the SQL adapter: SQL column types ⇄ the JSON Schema conventions of :mod:`dc_api_x.arrow`.

Reading (reflection, a query's result columns → JSON Schema), writing (JSON Schema → DDL) and bound
parameters (a bookmark's JSON form → the column's Python value) share the conventions documented in
``docs/sql.md``. SQLite has no real types, so its declared type names are mapped by their text
(``DECIMAL_TEXT(p,s)`` and ``TIMESTAMPTZ`` are the names this adapter uses when it creates SQLite
tables, so decimals stay exact and time zones survive a round trip).
"""

from __future__ import annotations

import datetime as _dt
import functools
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ...arrow import decimal_property, first_variant, json_types
from ...types import JSONSchema
from ...values import fit_decimal, parse_datetime, parse_time
from .lazy import lazy_module

if TYPE_CHECKING:  # pragma: no cover
    import sqlalchemy as sa
    from sqlalchemy.engine import Dialect
    from sqlalchemy.types import TypeEngine
else:  # imported on first use: SQLite discovery maps declared types without it
    sa = lazy_module("sqlalchemy")

__all__ = [
    "SQLITE_DECIMAL",
    "SQLITE_TIMESTAMPTZ",
    "column_property",
    "extension_property",
    "extension_type",
    "jsonschema_to_sqltype",
    "load_extensions",
    "pg_oid_property",
    "sample_property",
    "sqlite_declared_property",
    "typed_value",
]

SQLITE_DECIMAL = "DECIMAL_TEXT"
SQLITE_TIMESTAMPTZ = "TIMESTAMPTZ"


def _nullable(prop: dict[str, Any], base: str, nullable: bool) -> dict[str, Any]:
    prop["type"] = [base, "null"] if nullable else base
    return prop


def _decimal(precision: int | None, scale: int | None, nullable: bool) -> dict[str, Any]:
    prop: dict[str, Any] = {"format": "decimal"}
    if precision is not None:
        prop["x-precision"] = int(precision)
        prop["x-scale"] = int(scale or 0)
    return _nullable(prop, "string", nullable)


def _is_inet(typ: Any) -> bool:
    from sqlalchemy.dialects.postgresql import INET

    return isinstance(typ, INET)


def column_property(typ: TypeEngine[Any], nullable: bool = True) -> dict[str, Any]:
    """The JSON Schema property of a column of SQLAlchemy type ``typ`` (from reflection)."""
    if isinstance(typ, sa.Boolean):
        return _nullable({}, "boolean", nullable)
    if isinstance(typ, sa.Integer):
        return _nullable({}, "integer", nullable)
    if isinstance(typ, sa.Float):  # before Numeric: Float subclasses Numeric
        return _nullable({}, "number", nullable)
    if isinstance(typ, sa.Numeric):
        return _decimal(typ.precision, typ.scale, nullable)
    if isinstance(typ, sa.DateTime):
        prop: dict[str, Any] = {"format": "date-time"}
        if not typ.timezone:
            prop["x-timezone"] = False
        return _nullable(prop, "string", nullable)
    if isinstance(typ, sa.Date):
        return _nullable({"format": "date"}, "string", nullable)
    if isinstance(typ, sa.Time):
        if getattr(typ, "timezone", False):  # time with time zone: kept as its text form
            return _nullable({}, "string", nullable)
        return _nullable({"format": "time"}, "string", nullable)
    if isinstance(typ, sa.JSON):
        return {"type": ["object", "array", "string", "number", "boolean", "null"], "x-json": True}
    if isinstance(typ, (sa.LargeBinary, sa.types._Binary)):
        return _nullable({"contentEncoding": "base64"}, "string", nullable)
    if isinstance(typ, sa.Uuid):
        return _nullable({"format": "uuid"}, "string", nullable)
    if _is_inet(typ):  # read as PostgreSQL prints it on every path (arrow.inet_text)
        return _nullable({"format": "inet"}, "string", nullable)
    if isinstance(typ, sa.ARRAY):
        item = column_property(typ.item_type, True)
        if item.get("x-json"):
            return {"type": ["array", "null"] if nullable else "array", "items": item}
        return _nullable({"items": item}, "array", nullable)
    if isinstance(typ, sa.Enum):
        prop = {}
        if typ.enums:
            prop["enum"] = [*typ.enums, *([None] if nullable else [])]
        return _nullable(prop, "string", nullable)
    if isinstance(typ, sa.String):
        prop = {}
        if typ.length:
            prop["maxLength"] = int(typ.length)
        return _nullable(prop, "string", nullable)
    return _nullable({}, "string", nullable)


# ------------------------------------------------------------------------------ SQLite declared types
_DECL = re.compile(r"^\s*([A-Za-z_ ]+?)\s*(?:\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\))?\s*$")


def sqlite_declared_property(decl: str, nullable: bool = True) -> dict[str, Any]:
    """The JSON Schema property of a SQLite column declared as ``decl`` (its affinity and name)."""
    m = _DECL.match(decl or "")
    name = (m.group(1) if m else (decl or "")).strip().upper()
    p = int(m.group(2)) if m and m.group(2) else None
    s = int(m.group(3)) if m and m.group(3) else None
    if name == SQLITE_DECIMAL:
        return _decimal(p, s, nullable)
    if name in ("BOOLEAN", "BOOL"):
        return _nullable({}, "boolean", nullable)
    if name in (SQLITE_TIMESTAMPTZ, "TIMESTAMP WITH TIME ZONE", "DATETIMETZ", "DATETIME WITH TIME ZONE"):
        return _nullable({"format": "date-time"}, "string", nullable)
    if name in ("TIMESTAMP", "DATETIME", "TIMESTAMP WITHOUT TIME ZONE"):
        return _nullable({"format": "date-time", "x-timezone": False}, "string", nullable)
    if name == "DATE":
        return _nullable({"format": "date"}, "string", nullable)
    if name in ("TIME", "TIME WITHOUT TIME ZONE"):
        return _nullable({"format": "time"}, "string", nullable)
    if name in ("JSON", "JSONB"):
        return {"type": ["object", "array", "string", "number", "boolean", "null"], "x-json": True}
    if name in ("UUID",):
        return _nullable({"format": "uuid"}, "string", nullable)
    if "INT" in name:
        return _nullable({}, "integer", nullable)
    if any(x in name for x in ("CHAR", "CLOB", "TEXT")):
        prop: dict[str, Any] = {}
        if p and "CHAR" in name:
            prop["maxLength"] = p
        return _nullable(prop, "string", nullable)
    if not name:  # no declared type: anything goes; read as text
        return _nullable({}, "string", nullable)
    if "BLOB" in name:
        return _nullable({"contentEncoding": "base64"}, "string", nullable)
    if any(x in name for x in ("REAL", "FLOA", "DOUB")):
        return _nullable({}, "number", nullable)
    if name in ("NUMERIC", "DECIMAL"):
        # NUMERIC affinity stores REAL/INTEGER: exact only as far as SQLite kept it
        return _decimal(p, s, nullable)
    return _nullable({}, "string", nullable)


# ------------------------------------------------------------------------------ JSON Schema → DDL
@functools.cache
def _sqlite_type_class() -> Any:
    from sqlalchemy.types import UserDefinedType

    class SQLiteDeclaredType(UserDefinedType[Any]):
        """A SQLite column type given by its declared name (affinity rules decide the storage)."""

        cache_ok = True

        def __init__(self, spec: str) -> None:
            self.spec = spec

        def get_col_spec(self, **kw: Any) -> str:
            return self.spec

    return SQLiteDeclaredType


def _SQLiteType(spec: str) -> TypeEngine[Any]:
    """A SQLite column type given by its declared name (the class is made when SQLAlchemy is
    imported, on first use)."""
    return _sqlite_type_class()(spec)  # type: ignore[no-any-return]


def _is_json_blob(prop: Mapping[str, Any], types: set[str]) -> bool:
    if prop.get("x-json"):
        return True
    if "object" in types:
        return True  # objects are stored as JSON documents
    if "array" in types and not prop.get("items"):
        return True
    return len(types) > 1 and not types <= {"integer", "number"}


def jsonschema_to_sqltype(prop: Mapping[str, Any], dialect: Dialect) -> TypeEngine[Any]:
    """The SQL column type to create for a JSON Schema property on ``dialect``."""
    prop = first_variant(prop)
    types, _ = json_types(prop)
    fmt = prop.get("format")
    sqlite = dialect.name == "sqlite"
    pg = dialect.name == "postgresql"
    if not types:
        return sa.Text()
    if _is_json_blob(prop, types):
        if pg:
            from sqlalchemy.dialects.postgresql import JSONB

            return JSONB()
        return _SQLiteType("JSON") if sqlite else sa.JSON()
    exact = decimal_property(prop)
    if exact is not None:  # a number or integer declared decimal: a decimal column, every digit kept
        prop, types, fmt = exact, {"string"}, "decimal"
    if types == {"integer"}:
        return sa.BigInteger()
    if types <= {"integer", "number"}:
        return sa.Double() if not sqlite else _SQLiteType("REAL")
    if types == {"boolean"}:
        return sa.Boolean() if not sqlite else _SQLiteType("BOOLEAN")
    if types == {"array"}:
        items = prop.get("items") or {}
        if pg:
            it = jsonschema_to_sqltype(items, dialect)
            if not isinstance(it, (sa.JSON, sa.ARRAY)):
                return sa.ARRAY(it)
            from sqlalchemy.dialects.postgresql import JSONB

            return JSONB()
        return _SQLiteType("JSON") if sqlite else sa.JSON()
    if types == {"string"}:
        if fmt == "decimal":
            p: Any = prop.get("x-precision")
            s: Any = prop.get("x-scale")
            known = p is not None and s is not None and 0 < int(p) <= 1000
            if sqlite:
                return _SQLiteType(f"{SQLITE_DECIMAL}({int(p)},{int(s)})" if known else SQLITE_DECIMAL)
            return sa.Numeric(int(p), int(s)) if known else sa.Numeric()
        if fmt == "date-time":
            aware = prop.get("x-timezone") is not False
            if sqlite:
                return _SQLiteType(SQLITE_TIMESTAMPTZ if aware else "TIMESTAMP")
            return sa.DateTime(timezone=aware)
        if fmt == "date":
            return sa.Date() if not sqlite else _SQLiteType("DATE")
        if fmt == "time":
            return sa.Time() if not sqlite else _SQLiteType("TIME")
        if prop.get("contentEncoding") == "base64":
            return sa.LargeBinary() if not sqlite else _SQLiteType("BLOB")
        if fmt == "uuid":
            return sa.Uuid(as_uuid=False) if pg else (_SQLiteType("UUID") if sqlite else sa.String(36))
        if sqlite:
            return _SQLiteType("TEXT")
        max_len = prop.get("maxLength")
        return sa.String(int(max_len)) if max_len else sa.Text()
    return sa.Text() if not sqlite else _SQLiteType("TEXT")


# ------------------------------------------------------------------------------ result columns
_JSON_ANY: JSONSchema = {"type": ["object", "array", "string", "number", "boolean", "null"], "x-json": True}
_PG_OIDS: dict[int, JSONSchema] = {
    16: {"type": ["boolean", "null"]},
    20: {"type": ["integer", "null"]},
    21: {"type": ["integer", "null"]},
    23: {"type": ["integer", "null"]},
    700: {"type": ["number", "null"]},
    701: {"type": ["number", "null"]},
    25: {"type": ["string", "null"]},
    1043: {"type": ["string", "null"]},
    1042: {"type": ["string", "null"]},
    19: {"type": ["string", "null"]},
    1082: {"type": ["string", "null"], "format": "date"},
    1083: {"type": ["string", "null"], "format": "time"},
    1114: {"type": ["string", "null"], "format": "date-time", "x-timezone": False},
    1184: {"type": ["string", "null"], "format": "date-time"},
    114: _JSON_ANY,
    3802: _JSON_ANY,
    17: {"type": ["string", "null"], "contentEncoding": "base64"},
    2950: {"type": ["string", "null"], "format": "uuid"},
    869: {"type": ["string", "null"], "format": "inet"},
    1041: {"type": ["array", "null"], "items": {"type": ["string", "null"], "format": "inet"}},
}


def pg_oid_property(desc: Any) -> JSONSchema:
    """The property of a PostgreSQL result column (a DB-API ``description`` entry: type OID,
    precision and scale)."""
    oid = int(desc.type_code)
    if oid == 1700:
        prec, scale = getattr(desc, "precision", None), getattr(desc, "scale", None)
        prop: JSONSchema = {"type": ["string", "null"], "format": "decimal"}
        if prec:
            prop["x-precision"], prop["x-scale"] = int(prec), int(scale or 0)
        return prop
    return dict(_PG_OIDS.get(oid, {"type": ["string", "null"]}))


def sample_property(values: list[Any]) -> JSONSchema:
    """The property of a result column from sampled values (dialects that do not type a query's
    columns before running it)."""
    kinds = {type(v) for v in values if v is not None}
    if kinds and kinds <= {int}:
        return {"type": ["integer", "null"]}
    if kinds and kinds <= {int, float}:
        return {"type": ["number", "null"]}
    if kinds and kinds <= {bytes}:
        return {"type": ["string", "null"], "contentEncoding": "base64"}
    return {"type": ["string", "null"]}


# ------------------------------------------------------------------------------ bound parameters
def typed_value(value: Any, prop: Mapping[str, Any]) -> Any:
    """A JSON-form value (a stored bookmark) as the Python value of its column type, for a bound
    parameter. A decimal with more places than the column's scale raises ``ValueError`` (it is
    never rounded); so does text that is not of the type."""
    if value is None:
        return None
    types, _ = json_types(prop)
    fmt = prop.get("format")
    if types == {"integer"}:
        return int(value)
    if types <= {"integer", "number"} and types:
        return value if isinstance(value, int) else float(value)
    if fmt == "decimal":
        dec = Decimal(str(value))
        scale = prop.get("x-scale")
        if scale is None:
            return dec
        try:
            return fit_decimal(dec, int(scale))
        except ValueError as exc:
            raise ValueError(f"{value!r} {exc}") from None
    if fmt == "date-time" and isinstance(value, str):
        d = parse_datetime(value)
        if prop.get("x-timezone") is False:
            return d.astimezone(_dt.timezone.utc).replace(tzinfo=None) if d.tzinfo else d
        return (d if d.tzinfo else d.replace(tzinfo=_dt.timezone.utc)).astimezone(_dt.timezone.utc)
    if fmt == "date" and isinstance(value, str):
        return _dt.date.fromisoformat(value[:10])
    if fmt == "time" and isinstance(value, str):
        return parse_time(value)
    return value


# ------------------------------------------------------------------------------ extensions
def load_extensions(dialect: str, plugins: Any = None) -> list[Any]:
    """One instance of every registered :class:`~dc_api_x.ext.sql.SQLExtension` that applies to
    ``dialect``, in registration order (``plugins``: the plugin set, default the current one)."""
    from ...plugins import get_plugins

    registry = (plugins or get_plugins()).sql_extensions
    out = []
    for name in registry.names():
        cls = registry.get(name)
        if not cls.dialects or dialect in cls.dialects:
            out.append(cls())
    return out


def extension_property(
    extensions: list[Any], type_name: str, dialect: str, nullable: bool
) -> JSONSchema | None:
    """The first extension's property for a column type named ``type_name`` (``None``: none)."""
    for ext in extensions:
        prop = ext.column_property(type_name, dialect, nullable)
        if prop is not None:
            return dict(prop)
    return None


def extension_type(
    extensions: list[Any], prop: Mapping[str, Any], dialect: Dialect
) -> TypeEngine[Any] | None:
    """The first extension's column type for ``prop`` (``None``: none)."""
    for ext in extensions:
        typ = ext.column_type(prop, dialect)
        if typ is not None:
            return typ  # type: ignore[no-any-return]
    return None
