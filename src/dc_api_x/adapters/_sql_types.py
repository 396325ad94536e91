"""Type mapping of the SQL adapter: SQL column types ⇄ the JSON Schema conventions of :mod:`dc_api_x.arrow`.

Reading (reflection → JSON Schema) and writing (JSON Schema → DDL) share the conventions documented in
``docs/sql.md``. SQLite has no real types, so its declared type names are mapped by their text
(``DECIMAL_TEXT(p,s)`` and ``TIMESTAMPTZ`` are the names this adapter uses when it creates SQLite
tables, so decimals stay exact and time zones survive a round trip).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeEngine, UserDefinedType

from ..arrow import json_types

__all__ = [
    "SQLITE_DECIMAL",
    "SQLITE_TIMESTAMPTZ",
    "column_property",
    "jsonschema_to_sqltype",
    "sqlite_declared_property",
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
class _SQLiteType(UserDefinedType[Any]):
    """A SQLite column type given by its declared name (affinity rules decide the storage)."""

    cache_ok = True

    def __init__(self, spec: str) -> None:
        self.spec = spec

    def get_col_spec(self, **kw: Any) -> str:
        return self.spec


def _first_variant(prop: Mapping[str, Any]) -> Mapping[str, Any]:
    for key in ("anyOf", "oneOf"):
        if key in prop:
            for sub in prop[key]:
                if json_types(sub)[0]:
                    return sub  # type: ignore[no-any-return]
    return prop


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
    prop = _first_variant(prop)
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
