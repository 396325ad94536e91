"""PostgreSQL writes set up without SQLAlchemy (issue 15): the destination side of a small sync.

A ``dcapix run`` into PostgreSQL paid SQLAlchemy's import (~0.2 CPU-s), a psycopg engine for the
DDL (~0.1) and ADBC's DB-API module (it imports ``pyarrow.dataset``) before its first row. For a
plain ``postgresql://`` URL (:func:`~.pg_direct.plain_url`) without ``engine_options`` or SQL
extensions, every write (``append``, ``overwrite``, ``upsert``) is instead prepared over the
backend's ADBC connection (:class:`~.pg_direct.DirectConnection`, the driver manager's low-level API):

* the table is looked up with one catalog query (:func:`table_columns`: each column's
  ``format_type()``), created with the DDL SQLAlchemy's PostgreSQL dialect compiles for the columns
  the adapter declares (:func:`column_type`, :func:`create_table_sql`: the same types, ``NOT NULL``
  on the keys, ``BIGSERIAL`` for a single ``bigint`` key as SQLAlchemy's autoincrement rule gives,
  a ``pk_…`` primary key constraint), widened with ``ALTER TABLE … ADD COLUMN``; for ``upsert`` the
  keys' primary key or unique index is checked as the inspector reports them (:func:`unique_keys`);
* the write then holds a :class:`DirectTable` where the SQLAlchemy path holds an ``sa.Table``: the
  column types are ``format_type()`` texts, and the backend's COPY decisions
  (:func:`copy_input`), stage ``INSERT … SELECT`` (:func:`stage_insert_sql`, with ``DISTINCT ON``
  and ``ON CONFLICT … DO UPDATE … WHERE … IS DISTINCT FROM`` for upserts) and failed-batch diagnosis
  read them instead of SQLAlchemy type objects.

A view (or another relation that is no table) of the target's name and everything of a non-plain
URL stay on SQLAlchemy.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ...arrow import decimal_property, first_variant, json_types
from ...types import JSONSchema
from .pg_direct import DirectConnection, format_type_property, qualified, quote

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

__all__ = [
    "MAX_IDENTIFIER_LENGTH",
    "DirectColumn",
    "DirectTable",
    "NotATable",
    "add_column_sql",
    "column_type",
    "copy_input",
    "create_table_sql",
    "diagnose_probes",
    "is_array",
    "jsonb_binary",
    "stage_insert_sql",
    "table_columns",
    "unique_keys",
    "write_property",
]

#: SQLAlchemy's PostgreSQL dialect: ``max_identifier_length = 63`` (the server's NAMEDATALEN - 1)
MAX_IDENTIFIER_LENGTH = 63


# ------------------------------------------------------------------------------------------- types
def column_type(prop: Mapping[str, Any]) -> str:
    """The ``format_type()`` text of the column :func:`~.typemap.jsonschema_to_sqltype` creates
    for ``prop`` on PostgreSQL (what SQLAlchemy's dialect compiles it to, as the server names it)."""
    prop = first_variant(prop)
    types, _ = json_types(prop)
    fmt = prop.get("format")
    if not types:
        return "text"
    if _is_json_blob(prop, types):
        return "jsonb"
    exact = decimal_property(prop)
    if exact is not None:
        prop, types, fmt = exact, {"string"}, "decimal"
    if types == {"integer"}:
        return "bigint"
    if types <= {"integer", "number"}:
        return "double precision"
    if types == {"boolean"}:
        return "boolean"
    if types == {"array"}:
        item = column_type(prop.get("items") or {})
        return "jsonb" if item == "jsonb" or item.endswith("[]") else f"{item}[]"
    if types == {"string"}:
        if fmt == "decimal":
            p, s = prop.get("x-precision"), prop.get("x-scale")
            if p is not None and s is not None and 0 < int(p) <= 1000:
                return f"numeric({int(p)},{int(s)})"
            return "numeric"
        if fmt == "date-time":
            aware = prop.get("x-timezone") is not False
            return "timestamp with time zone" if aware else "timestamp without time zone"
        if fmt == "date":
            return "date"
        if fmt == "time":
            return "time without time zone"
        if prop.get("contentEncoding") == "base64":
            return "bytea"
        if fmt == "uuid":
            return "uuid"
        max_len = prop.get("maxLength")
        return f"character varying({int(max_len)})" if max_len else "text"
    return "text"


def _is_json_blob(prop: Mapping[str, Any], types: set[str]) -> bool:
    # (typemap._is_json_blob, which this module does not import: typemap's callers bring SQLAlchemy)
    if prop.get("x-json") or "object" in types:
        return True
    if "array" in types and not prop.get("items"):
        return True
    return len(types) > 1 and not types <= {"integer", "number"}


_ARGS = re.compile(r"\([^()]*\)")


def _base(ftype: str) -> str:
    """``ftype`` without its modifiers: ``timestamp(3) with time zone`` → ``timestamp with time zone``."""
    return _ARGS.sub("", ftype)


def is_array(ftype: str) -> bool:
    return ftype.endswith("[]")


def _is_text(ftype: str) -> bool:
    """Character types: what the stage ``INSERT`` does not cast (an explicit cast to ``varchar(n)``
    would truncate; the assignment cast refuses), as the SQLAlchemy path leaves ``sa.String``."""
    return _base(ftype) in ("text", "character varying", "character", "bpchar")


def _sized(ftype: str) -> int | None:
    """The length of a ``character varying(n)`` / ``character(n)`` column."""
    m = re.fullmatch(r"(?:character varying|character)\((\d+)\)", ftype)
    return int(m.group(1)) if m else None


# ------------------------------------------------------------------------------------------ tables
class DirectColumn:
    """A column of a :class:`DirectTable`: its name, ``format_type()`` text and nullability."""

    __slots__ = ("name", "nullable", "type")

    def __init__(self, name: str, ftype: str, nullable: bool) -> None:
        self.name, self.type, self.nullable = name, ftype, nullable

    def __repr__(self) -> str:
        return f"DirectColumn({self.name!r}, {self.type!r}, nullable={self.nullable})"


class DirectTable:
    """What the write paths read of an ``sa.Table``: ``name``, ``schema``, ``c`` (columns by
    name) and ``columns`` (in order)."""

    def __init__(self, name: str, schema: str | None, columns: Sequence[DirectColumn]) -> None:
        self.name, self.schema = name, schema
        self.c: dict[str, DirectColumn] = {col.name: col for col in columns}

    @property
    def columns(self) -> list[DirectColumn]:
        return list(self.c.values())

    def append_column(self, col: DirectColumn) -> None:
        self.c[col.name] = col

    @property
    def qualified(self) -> str:
        return qualified(self.name, self.schema)


#: the table's columns (``format_type()``, nullability) and its kind, as SQLAlchemy's ``has_table``
#: finds it: in ``$1``, or (``$1`` NULL) the first one the search path makes visible
_TABLE = """
SELECT c.relkind, a.attname, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
 WHERE c.relname = $2 AND c.relkind IN ('r', 'p', 'f', 'v', 'm')
   AND CASE WHEN $1::text IS NULL THEN pg_catalog.pg_table_is_visible(c.oid) ELSE n.nspname = $1::text END
 ORDER BY a.attnum
"""


class NotATable(Exception):
    """The name is a view, a materialized or a foreign table: left to SQLAlchemy."""


def table_columns(conn: DirectConnection, schema: str | None, name: str) -> list[DirectColumn] | None:
    """The columns of table ``schema.name`` (``None``: no such table); raises :class:`NotATable`
    for a view or another relation that is not a plain or partitioned table."""
    rows = conn.rows(_TABLE, (schema, name))
    if not rows:
        return None
    if any(r[0] not in ("r", "p") for r in rows):
        raise NotATable(name)
    return [DirectColumn(r[1], r[2], bool(r[3])) for r in rows if r[1] is not None]


def _serial_key(cols: Sequence[tuple[str, str]], keys: Sequence[str]) -> str | None:
    """The column SQLAlchemy's PostgreSQL dialect creates as ``BIGSERIAL``: the only key column,
    when it is a ``bigint`` (``Table._autoincrement_column``: one integer primary key, no default)."""
    if len(keys) != 1:
        return None
    types = dict(cols)
    return keys[0] if types.get(keys[0]) == "bigint" else None


def create_table_sql(
    schema: str | None, name: str, cols: Sequence[tuple[str, str]], keys: Sequence[str]
) -> str:
    """The ``CREATE TABLE`` of :meth:`SQLAdapter._table_obj` as SQLAlchemy compiles it: each column
    with its type (``NOT NULL`` on the keys), ``BIGSERIAL`` for a single ``bigint`` key, and the
    primary key as ``CONSTRAINT pk_<16 hex digits> PRIMARY KEY (…)``."""
    serial = _serial_key(cols, keys)
    parts = []
    for col, ftype in cols:
        typ = "BIGSERIAL" if col == serial else ftype
        parts.append(f"{quote(col)} {typ}" + (" NOT NULL" if col in keys else ""))
    if keys:
        pk = quote(f"pk_{uuid.uuid4().hex[:16]}")
        parts.append(f"CONSTRAINT {pk} PRIMARY KEY ({', '.join(quote(k) for k in keys)})")
    return f"CREATE TABLE {qualified(name, schema)} ({', '.join(parts)})"


def add_column_sql(table: DirectTable, name: str, ftype: str) -> str:
    """``ALTER TABLE … ADD COLUMN`` of a nullable column (``SQLAlchemyBackend.add_column``)."""
    return f"ALTER TABLE {table.qualified} ADD COLUMN {quote(name)} {ftype}"


def write_property(col: DirectColumn, prop: JSONSchema) -> JSONSchema:
    """:meth:`SQLAdapter._write_property` for a :class:`DirectColumn`: a ``number`` field written
    into a ``numeric`` column is converted as a decimal of the column's precision and scale."""
    types, _ = json_types(prop)
    if "number" in types and types <= {"integer", "number"} and _base(col.type) == "numeric":
        found = format_type_property(col.type, True)
        if found is not None:
            return found
    return prop


# ------------------------------------------------------------------------------------------ writes
def jsonb_binary(col: Any) -> Any:
    """A string column in ``jsonb``'s binary input format: a version byte (1), then the JSON text
    (``pyarrow._compute``'s kernels: ``pyarrow.compute`` wraps ~300 of them in Python on import)."""
    import pyarrow as pa
    from pyarrow._compute import CastOptions, call_function

    text = call_function("cast", [col], CastOptions.safe(pa.binary()))
    one, empty = pa.scalar(b"\x01", pa.binary()), pa.scalar(b"", pa.binary())
    return call_function("binary_join_element_wise", [one, text, empty])


def copy_input(table: pa.Table, target: DirectTable) -> pa.Table | None:
    """``table`` ready for a binary COPY straight into ``target``, or ``None`` when a column needs a
    cast on the server — the decisions of ``postgresql._direct`` for the SQLAlchemy types these
    ``format_type()`` texts reflect as."""
    import pyarrow as pa
    import pyarrow.types as pt

    cols = []
    for f in table.schema:
        at, ft = f.type, target.c[f.name].type
        base = _base(ft)
        col = table.column(f.name)
        if is_array(ft):
            return None
        if base == "jsonb":
            if not pt.is_string(at):
                return None
            col = jsonb_binary(col)
        elif base == "json":
            if not pt.is_string(at):
                return None
        elif base == "boolean":
            if not pt.is_boolean(at):
                return None
        elif base == "bigint":
            if at != pa.int64():
                return None
        elif base == "double precision":
            if at != pa.float64():
                return None
        elif base == "numeric":
            if not pt.is_decimal(at):
                return None
        elif base in ("timestamp with time zone", "timestamp without time zone"):
            aware = base == "timestamp with time zone"
            if not pt.is_timestamp(at) or at.unit != "us" or (at.tz is not None) != aware:
                return None
            if at.tz not in (None, "UTC", "+00:00"):
                return None
        elif base == "date":
            if not pt.is_date32(at):
                return None
        elif base == "time without time zone":
            if at != pa.time64("us"):
                return None
        elif base == "bytea":
            if not pt.is_binary(at):
                return None
        elif base in ("text", "character varying", "character"):
            if not pt.is_string(at):
                return None
        else:  # integer, smallint, real, uuid, enums, domains …: cast by the server
            return None
        cols.append(col)
    return pa.Table.from_arrays(cols, names=table.column_names)


def stage_insert_sql(
    stage: str, target: DirectTable, names: Sequence[str], keys: Sequence[str] | None = None
) -> str:
    """``INSERT INTO target (names) SELECT … FROM stage``: the stage's columns ``c0, c1 …`` cast to
    the target's types (character columns left to the assignment cast), as the SQLAlchemy path
    compiles it. With ``keys`` (an upsert): the last row of each key (``DISTINCT ON`` the keys,
    ordered by the stage's ``c_ord`` descending), and ``ON CONFLICT (keys) DO UPDATE`` of the other
    columns where one differs (``DO NOTHING`` without other columns) — ``merge_on_conflict``."""
    sel = []
    col = {n: f"{quote(stage)}.{quote(f'c{i}')}" for i, n in enumerate(names)}
    for n in names:
        ft = target.c[n].type
        sel.append(col[n] if _is_text(ft) else f"CAST({col[n]} AS {ft})")
    cols = ", ".join(quote(n) for n in names)
    distinct = f"DISTINCT ON ({', '.join(col[k] for k in keys)}) " if keys else ""
    sql = f"INSERT INTO {target.qualified} ({cols}) SELECT {distinct}{', '.join(sel)} FROM {quote(stage)}"
    if not keys:
        return sql
    order = [col[k] for k in keys] + [f"{quote(stage)}.{quote('c_ord')} DESC"]
    sql += f" ORDER BY {', '.join(order)} ON CONFLICT ({', '.join(quote(k) for k in keys)})"
    others = [n for n in names if n not in keys]
    if not others:
        return sql + " DO NOTHING"
    sets = ", ".join(f"{quote(n)} = excluded.{quote(n)}" for n in others)
    differs = " OR ".join(
        f"{target.qualified}.{quote(n)} IS DISTINCT FROM excluded.{quote(n)}" for n in others
    )
    return f"{sql} DO UPDATE SET {sets} WHERE {differs}"


#: the table's primary key columns (in the constraint's order), and the key columns of every unique
#: index (primary key and unique constraints included; an expression's place is NULL; INCLUDE
#: columns left out) — what SQLAlchemy's inspector reports to ``SQLAdapter._check_unique``
_UNIQUE = """
SELECT i.indisprimary,
       ARRAY(SELECT a.attname FROM unnest(i.indkey[0:i.indnkeyatts - 1]) WITH ORDINALITY k(n, o)
               LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n
              ORDER BY k.o)
  FROM pg_catalog.pg_index i
 WHERE i.indrelid = $1::regclass AND i.indisunique
"""


def unique_keys(conn: DirectConnection, table: DirectTable) -> tuple[list[str], list[list[str]]]:
    """(the primary key's columns, the key columns of every unique index) of ``table``."""
    pk: list[str] = []
    out: list[list[str]] = []
    for primary, cols in conn.rows(_UNIQUE, (table.qualified,)):
        names = [c for c in cols or [] if c]
        if primary:
            pk = list(cols or [])
        out.append(names)
    return pk, out


def diagnose_probes(stage: str, target: DirectTable, names: Sequence[str]) -> list[tuple[str, str, bool]]:
    """For each column: (name, probe, sized) — ``count(*)`` of the stage values longer than a sized
    character column, else ``count(CAST(value AS type))`` (fails on the first bad value)."""
    out = []
    for i, n in enumerate(names):
        c = f"{quote(stage)}.{quote(f'c{i}')}"
        ft = target.c[n].type
        size = _sized(ft)
        if size:
            out.append((n, f"SELECT count(*) FROM {quote(stage)} WHERE char_length({c}) > {size}", True))
        else:
            out.append((n, f"SELECT count(CAST({c} AS {ft})) FROM {quote(stage)}", False))
    return out
