"""The generic SQL backend: any database SQLAlchemy 2 has a dialect for, through SQLAlchemy Core only.

* **discovery** — the inspector's bulk reflection (``get_multi_columns`` / ``get_multi_pk_constraint``);
  a custom query's columns are typed from up to 100 sampled rows;
* **reads** — a server-side cursor (``stream_results`` / ``yield_per``), rows converted to dict records;
* **writes** — ``executemany`` of dict records in one transaction per batch; ``upsert`` deletes the
  batch's keys and inserts the rows (the same transaction), see :meth:`SQLAlchemyBackend.upsert`;
* **DDL** — ``CREATE SCHEMA IF NOT EXISTS``, ``ALTER TABLE … ADD COLUMN``, and for ``overwrite``
  ``DROP TABLE`` + ``ALTER TABLE … RENAME TO`` in one transaction.

This is the base of the PostgreSQL and SQLite backends and of a new database's backend: override
what the database does differently (see :mod:`dc_api_x.ext.sql`).
"""

from __future__ import annotations

import importlib
import re
import uuid
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from ...ext.sql import Reflected, SQLBackend, SQLRead, SQLWrite
from ...types import Batch, JSONSchema
from ...values import json_form
from .lazy import lazy_module
from .typemap import column_property, extension_property, jsonschema_to_sqltype, sample_property, typed_value

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa
    import sqlalchemy as sa
    from sqlalchemy.engine import Connection
    from sqlalchemy.types import TypeEngine
else:  # imported on first use (the SQLite backend's sqlite3 paths run without it): .lazy
    sa = lazy_module("sqlalchemy")

__all__ = [
    "ARROW_BATCH_SIZE",
    "DICT_BATCH_SIZE",
    "SQLAlchemyBackend",
    "close_quietly",
    "column_named_in",
    "installed",
    "last_per_key",
    "merge_on_conflict",
]

#: Rows per batch of the dict-record read path (``batch_size`` overrides it).
DICT_BATCH_SIZE = 10_000
#: Rows per batch of the Arrow read paths of the PostgreSQL and SQLite backends.
ARROW_BATCH_SIZE = 50_000


class SQLAlchemyBackend(SQLBackend):
    """Any SQLAlchemy dialect, through SQLAlchemy Core (see the module docstring)."""

    # -- discovery -------------------------------------------------------------------------------
    def default_schema(self, conn: Connection | None = None) -> str:
        if conn is not None:
            return str(sa.inspect(conn).default_schema_name or "public")
        with self.engine.connect() as c:
            return str(sa.inspect(c).default_schema_name or "public")

    def reflect(self, conn: Connection, schema: str | None, names: list[str] | None) -> dict[str, Reflected]:
        from sqlalchemy.engine.reflection import ObjectKind

        insp = sa.inspect(conn)
        kw: dict[str, Any] = {"schema": schema, "kind": ObjectKind.ANY}
        if names is not None:
            kw["filter_names"] = names
        try:
            columns = insp.get_multi_columns(**kw)
            pks = insp.get_multi_pk_constraint(**kw)
        except sa.exc.NoSuchTableError:
            return {}
        out: dict[str, Reflected] = {}
        for (sch, tname), cols in columns.items():
            pkc: Any = pks.get((sch, tname)) or {}
            out[tname] = (
                [
                    (c["name"], self.reflected_property(c["type"], bool(c.get("nullable", True))))
                    for c in cols
                ],
                list(pkc.get("constrained_columns") or []),
            )
        return out

    def reflected_property(self, typ: TypeEngine[Any], nullable: bool = True) -> JSONSchema:
        """A reflected column's property: the SQL extensions' mapping first, else
        :meth:`column_property`."""
        extensions = getattr(self.adapter, "extensions", None)
        if extensions:
            try:
                name = str(typ.compile(dialect=self.dialect))
            except Exception:  # a type the dialect cannot render (NullType …)
                name = type(typ).__name__.upper()
            prop = extension_property(extensions, name, self.dialect.name, nullable)
            if prop is not None:
                return prop
        return self.column_property(typ, nullable)

    def column_property(self, typ: TypeEngine[Any], nullable: bool = True) -> JSONSchema:
        """The JSON Schema property of a reflected column (:func:`~.typemap.column_property`)."""
        return column_property(typ, nullable)

    def describe_query(self, conn: Connection, query: Any, stream: str) -> list[tuple[str, JSONSchema]]:
        res: Any = conn.execute(sa.select(sa.literal_column("*")).select_from(query).limit(100))
        keys = list(res.keys())
        rows = res.fetchall()
        return [(k, sample_property([r[i] for r in rows])) for i, k in enumerate(keys)]

    # -- DDL -------------------------------------------------------------------------------------
    def column_type(self, prop: JSONSchema) -> TypeEngine[Any]:
        return jsonschema_to_sqltype(prop, self.dialect)

    def create_schema(self, conn: Connection, schema: str) -> None:
        conn.execute(sa.schema.CreateSchema(schema, if_not_exists=True))

    def add_column(self, conn: Connection, table: sa.Table, column: sa.Column[Any]) -> None:
        prep = self.dialect.identifier_preparer
        ddl = (
            f"ALTER TABLE {prep.format_table(table)} ADD COLUMN "
            f"{sa.schema.CreateColumn(column).compile(dialect=self.dialect)}"
        )
        conn.exec_driver_sql(ddl)

    def replace_table(self, stage: sa.Table, target: sa.Table) -> None:
        drop, rename = self.replace_statements(stage, target)
        with self.engine.begin() as conn:
            conn.exec_driver_sql(drop)
            conn.exec_driver_sql(rename)

    def replace_statements(self, stage: sa.Table, target: sa.Table) -> tuple[str, str]:
        """The ``DROP TABLE`` of the target and the ``ALTER TABLE … RENAME TO`` of the stage table."""
        prep = self.dialect.identifier_preparer
        drop = str(sa.schema.DropTable(target, if_exists=True).compile(dialect=self.dialect))
        rename = f"ALTER TABLE {prep.format_table(stage)} RENAME TO {prep.quote(target.name)}"
        return drop, rename

    # -- reading ---------------------------------------------------------------------------------
    def start_value(self, value: Any, prop: JSONSchema) -> Any:
        # the form this backend's rows produce (UTC ISO text, the column's decimal scale)
        return json_form(typed_value(value, prop))

    def read(self, read: SQLRead) -> Iterator[Batch]:
        boundary = read.boundary
        value = typed_value(boundary.value, read.props[boundary.rk]) if boundary is not None else None
        stmt = read.select(sa.bindparam("rk_value", value))
        size = read.batch_size or DICT_BATCH_SIZE
        names = list(read.props)
        rk_name = boundary.rk if boundary is not None else ""
        pk_names = boundary.pks if boundary is not None else []
        with self.engine.connect() as conn:
            try:
                result = conn.execution_options(stream_results=True, yield_per=size).execute(stmt)
            except sa.exc.SQLAlchemyError as exc:
                raise self.read_error(exc, read) from None
            for part in result.partitions(size):
                records = [{n: _py(v) for n, v in zip(names, row, strict=True)} for row in part]

                def rk(i: int, _r: list[dict[str, Any]] = records) -> Any:
                    return json_form(_r[i][rk_name])

                def pk(i: int, _r: list[dict[str, Any]] = records) -> tuple[Any, ...]:
                    return tuple(json_form(_r[i][k]) for k in pk_names)

                batch = read.emit(records, rk, pk)
                if batch is not None:
                    yield batch
                if read.done:
                    break
            result.close()

    def read_error(self, exc: BaseException, read: SQLRead) -> Exception:
        """The error of a read that failed to start: a missing table is named as such."""
        msg = str(exc)
        src = read.source
        if "does not exist" in msg and src.table is not None and "relation" in msg:
            return self.adapter.error(
                f"table {src.label!r} not found on {self.adapter.safe_url}", stream=read.spec.name
            )
        return self.db_error(exc, f"reading {src.label}", stream=read.spec.name)

    # -- writing ---------------------------------------------------------------------------------
    def write(self, write: SQLWrite, table: pa.Table) -> int | None:
        from ...arrow import arrow_to_records

        props = {n: write.props.get(n) or {} for n in table.column_names}
        records = self.bind_records(write, arrow_to_records(table, {"properties": props}))
        try:
            with self.engine.begin() as conn:
                if write.load_method == "upsert":
                    return self.upsert(conn, write, records)
                res = conn.execute(write.table.insert(), records)
                affected = res.rowcount if res.rowcount is not None and res.rowcount >= 0 else len(records)
        except sa.exc.SQLAlchemyError as exc:
            raise self.schema_error(
                f"batch not written (rolled back): {_short_msg(exc)}",
                stream=write.stream.name,
                field=column_named_in(str(exc), table.column_names),
            ) from None
        return int(affected)

    def bind_records(self, write: SQLWrite, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The records of a batch as the driver binds them (here: unchanged)."""
        return records

    def upsert(self, conn: Connection, write: SQLWrite, records: list[dict[str, Any]]) -> int:
        """Merge ``records`` on ``write.keys`` inside the batch's transaction: here a delete of the
        keys, then an insert of the rows (the last record of a repeated key wins)."""
        table, keys = write.table, write.keys
        cond = sa.and_(*[table.c[k] == sa.bindparam(f"k_{i}") for i, k in enumerate(keys)])
        conn.execute(
            table.delete().where(cond), [{f"k_{i}": r[k] for i, k in enumerate(keys)} for r in records]
        )
        records = last_per_key(records, keys)
        res = conn.execute(table.insert(), records)
        return int(res.rowcount if res.rowcount is not None and res.rowcount >= 0 else len(records))


# ------------------------------------------------------------------------------------------ helpers
def installed(module: str) -> bool:
    """Whether an optional driver (``adbc_driver_postgresql.dbapi`` …) can be imported."""
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def close_quietly(*connections: Any) -> None:
    """Close each connection that is not ``None``; a broken one is dropped without an error."""
    for conn in connections:
        if conn is not None:
            try:
                conn.close()
            except Exception:  # pragma: no cover - closing a broken connection
                pass


def _py(v: Any) -> Any:
    if isinstance(v, uuid.UUID):
        return str(v)
    if isinstance(v, memoryview):
        return bytes(v)
    return v


def last_per_key(records: list[dict[str, Any]], keys: Sequence[str]) -> list[dict[str, Any]]:
    """The last record of each key (an upsert batch may repeat a key)."""
    seen: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in records:
        seen[tuple(r.get(k) for k in keys)] = r
    return list(seen.values())


def merge_on_conflict(stmt: Any, table: sa.Table, keys: Sequence[str], names: Sequence[str]) -> Any:
    """A PostgreSQL or SQLite ``INSERT`` (``stmt``) that, for a row whose ``keys`` exist, updates the
    row's other columns — only where a value differs — or does nothing when there is no other column."""
    others = [n for n in names if n not in keys]
    if not others:
        return stmt.on_conflict_do_nothing(index_elements=list(keys))
    return stmt.on_conflict_do_update(
        index_elements=list(keys),
        set_={n: stmt.excluded[n] for n in others},
        where=sa.or_(*[table.c[n].is_distinct_from(stmt.excluded[n]) for n in others]),
    )


def _short_msg(exc: BaseException) -> str:
    return " ".join(str(getattr(exc, "orig", None) or exc).split())[:400]


def column_named_in(msg: str, names: Sequence[str]) -> str | None:
    """The column a database error names (``NOT NULL constraint failed: t.col`` …), if any."""
    m = re.search(r"constraint failed: ([^,]+?)(?:,| query was:|$)", msg)
    if m:
        col = m.group(1).strip()
        for n in sorted(names, key=len, reverse=True):
            if col == n or col.endswith(f".{n}"):
                return n
    for n in names:
        if f"column {n!r}" in msg or f"column {n}" in msg:
            return n
    return None
