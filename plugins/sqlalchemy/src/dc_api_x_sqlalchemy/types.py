"""The ``network_types`` SQL extension: a custom type mapping, and the model for writing one.

=============================  ===========================================  ===========
SQL                            JSON Schema                                  Arrow
=============================  ===========================================  ===========
PostgreSQL ``INET``            ``{"type": "string", "format": "inet"}``     ``string``
PostgreSQL ``CIDR``            ``{"type": "string", "format": "cidr"}``     ``string``
PostgreSQL ``MACADDR``         ``{"type": "string", "format": "macaddr"}``  ``string``
=============================  ===========================================  ===========

SQLite has no such types: a SQLite column *declared* ``INET``/``CIDR``/``MACADDR`` (TEXT affinity)
maps the same way, and this extension creates them so, so the type survives a PostgreSQL → SQLite
→ PostgreSQL round trip. Other databases are left alone. Values travel as PostgreSQL's text output
(``192.168.0.1`` for a /32 host, ``192.168.0.0/24`` with any other prefix length; a CIDR always with
its prefix length), on the ADBC and the psycopg read paths alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from dc_api_x.ext.sql import SQLExtension
from dc_api_x.types import JSONSchema

__all__ = ["FORMATS", "NetworkTypes"]

#: The SQL type name of each JSON Schema ``format`` this extension maps.
FORMATS: dict[str, str] = {"inet": "INET", "cidr": "CIDR", "macaddr": "MACADDR"}
_BY_TYPE = {v: k for k, v in FORMATS.items()}


class NetworkTypes(SQLExtension):
    """PostgreSQL network address types ⇄ JSON Schema string formats (see the module docstring)."""

    name = "network_types"
    dialects: ClassVar[tuple[str, ...]] = ("postgresql", "sqlite")

    def column_property(self, type_name: str, dialect: str, nullable: bool) -> JSONSchema | None:
        fmt = _BY_TYPE.get(type_name.strip().upper())
        if fmt is None:
            return None
        return {"type": ["string", "null"] if nullable else "string", "format": fmt}

    def column_type(self, prop: Mapping[str, Any], dialect: Any) -> Any:
        name = FORMATS.get(str(prop.get("format") or ""))
        types = prop.get("type")
        if name is None or not (types == "string" or (isinstance(types, list) and "string" in types)):
            return None
        if dialect.name == "postgresql":
            from sqlalchemy.dialects import postgresql

            return getattr(postgresql, name)()
        return _declared(name)


def _declared(name: str) -> Any:
    """A column type rendered as its name (a SQLite declared type)."""
    from sqlalchemy.types import UserDefinedType

    class Declared(UserDefinedType[str]):
        cache_ok = True

        def get_col_spec(self, **kw: Any) -> str:
            return name

    return Declared()
