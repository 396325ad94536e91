"""The Oracle backend of the SQL adapter (python-oracledb thin mode through SQLAlchemy's
``oracle+oracledb`` dialect).

What differs from :class:`dc_api_x.adapters.sql.SQLAlchemyBackend`:

* **types** — :mod:`dc_api_x_oracle_db.typemap` (exact ``NUMBER(p,s)``, ``DATE``, ``TIMESTAMP WITH
  TIME ZONE``, LOBs);
* **reads** — one raw python-oracledb cursor per read with an output type handler that fetches every
  ``NUMBER`` that is not an integer as ``Decimal`` (never a float), zone-aware columns selected
  through ``SYS_EXTRACT_UTC``, ``arraysize``/``prefetchrows`` set to the batch size; limits render
  as ``FETCH FIRST n ROWS ONLY``; with ``page_size`` the read is a series of ``OFFSET … ROWS FETCH
  NEXT n ROWS ONLY`` queries inside one ``SET TRANSACTION READ ONLY`` transaction (every page sees
  the same snapshot, so no row is skipped or repeated);
* **writes** — ``executemany`` of the batch (python-oracledb binds the whole batch as arrays: one
  round trip), instants bound in UTC in a session whose time zone is UTC;
* **DDL** — ``ALTER TABLE t ADD (c type)``; ``DROP TABLE`` without ``IF EXISTS`` (before 23ai) in a
  PL/SQL block that ignores ORA-00942; an Oracle schema is a user and is never created here; DDL
  commits implicitly, so ``overwrite``'s drop + rename are two statements, not one transaction.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Generator, Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.types import TypeEngine

from dc_api_x.adapters.sql.generic import DICT_BATCH_SIZE, SQLAlchemyBackend
from dc_api_x.ext.sql import SQLRead, SQLWrite
from dc_api_x.types import Batch, JSONSchema
from dc_api_x.values import json_form

from .typemap import (
    bind_value,
    description_property,
    fetch_value,
    is_instant,
    oracle_column_property,
    oracle_column_type,
)

__all__ = ["OracleBackend", "compile_sql", "number_output_handler"]


def compile_sql(stmt: Any, dialect: Any) -> tuple[str, dict[str, Any]]:
    """The SQL text and bind parameters of a SQLAlchemy statement on the Oracle dialect (named
    ``:param`` binds, as python-oracledb takes them)."""
    # limits and offsets are "post-compile" parameters on Oracle: rendered into the text here
    compiled = stmt.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    inlined = {b.key for b in (*compiled.literal_execute_params, *compiled.post_compile_params)}
    return str(compiled), {k: v for k, v in compiled.params.items() if k not in inlined}


def number_output_handler(fallback: Callable[..., Any] | None) -> Callable[..., Any]:
    """A python-oracledb output type handler: ``NUMBER`` columns that are not integers
    (``NUMBER(p,s)`` with ``s > 0``, ``NUMBER`` and ``FLOAT`` without precision) are fetched as
    ``decimal.Decimal``; every other column is left to ``fallback`` (SQLAlchemy's connection handler:
    LOBs as ``str``/``bytes``)."""
    import decimal

    import oracledb

    def handler(cursor: Any, name: Any, default_type: Any, size: Any, precision: Any, scale: Any) -> Any:
        if default_type is oracledb.DB_TYPE_NUMBER:
            if scale == 0 and precision:  # NUMBER(p): Python int, exact
                return None
            return cursor.var(decimal.Decimal, arraysize=cursor.arraysize)
        if fallback is not None:
            return fallback(cursor, name, default_type, size, precision, scale)
        return None

    return handler


class OracleBackend(SQLAlchemyBackend):
    """Oracle Database through python-oracledb (see the module docstring)."""

    dialects = ("oracle",)

    # -- discovery -------------------------------------------------------------------------------
    def column_property(self, typ: TypeEngine[Any], nullable: bool = True) -> JSONSchema:
        return oracle_column_property(typ, nullable)

    def describe_query(self, conn: Connection, query: Any, stream: str) -> list[tuple[str, JSONSchema]]:
        """The columns of a custom query from its cursor description (``WHERE 1 = 0``: no rows)."""
        stmt: Any = sa.select(sa.literal_column("*")).select_from(query).where(sa.text("1 = 0"))
        sql, params = compile_sql(stmt, self.dialect)
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(sql, params)
            return [(_column_name(self, d.name), description_property(d)) for d in cursor.description]
        finally:
            cursor.close()

    # -- DDL -------------------------------------------------------------------------------------
    def column_type(self, prop: JSONSchema) -> TypeEngine[Any]:
        return oracle_column_type(prop, self.dialect)

    def create_schema(self, conn: Connection, schema: str) -> None:
        """An Oracle schema is a user: it must exist (creating users is the DBA's job)."""
        name = self.dialect.denormalize_name(schema)
        found = conn.execute(
            sa.text("SELECT COUNT(*) FROM all_users WHERE username = :u"), {"u": name}
        ).scalar()
        if not found:
            raise self.adapter.error(
                f"schema {schema!r} does not exist on {self.adapter.safe_url} (an Oracle schema is a "
                "user: CREATE USER it, or leave 'schema' unset to write into the connected user's)"
            )

    def add_column_statement(self, table: sa.Table, column: sa.Column[Any]) -> str:
        """``ALTER TABLE t ADD (c type)`` (Oracle has no ``ADD COLUMN``)."""
        prep = self.dialect.identifier_preparer
        spec = sa.schema.CreateColumn(column).compile(dialect=self.dialect)
        return f"ALTER TABLE {prep.format_table(table)} ADD ({spec})"

    def add_column(self, conn: Connection, table: sa.Table, column: sa.Column[Any]) -> None:
        conn.exec_driver_sql(self.add_column_statement(table, column))

    def drop_statement(self, table: sa.Table) -> str:
        """``DROP TABLE t PURGE`` in a PL/SQL block that ignores ORA-00942 (no such table): Oracle
        before 23ai has no ``DROP TABLE IF EXISTS``."""
        prep = self.dialect.identifier_preparer
        drop = f"DROP TABLE {prep.format_table(table)} PURGE".replace("'", "''")
        return (
            f"BEGIN EXECUTE IMMEDIATE '{drop}'; "
            "EXCEPTION WHEN OTHERS THEN IF SQLCODE != -942 THEN RAISE; END IF; END;"
        )

    def drop_table(self, conn: Connection, table: sa.Table) -> None:
        conn.exec_driver_sql(self.drop_statement(table))

    def replace_statements(self, stage: sa.Table, target: sa.Table) -> tuple[str, str]:
        prep = self.dialect.identifier_preparer
        rename = f"ALTER TABLE {prep.format_table(stage)} RENAME TO {prep.quote(target.name)}"
        return self.drop_statement(target), rename

    # -- reading ---------------------------------------------------------------------------------
    def read_statement(self, read: SQLRead, value: Any) -> Any:
        """The ``SELECT`` of a read: zone-aware columns through ``SYS_EXTRACT_UTC``."""

        def col_expr(col: Any, name: str) -> Any:
            if is_instant(read.props[name]):
                return sa.func.sys_extract_utc(col).label(name)
            return col

        return read.select(sa.bindparam("rk_value", value), col_expr)

    def page_order(self, read: SQLRead) -> list[str]:
        """The columns a paged read is ordered by (the replication key and primary key)."""
        if read.boundary is not None:
            return [read.boundary.rk, *read.boundary.pks]
        keys = list(read.spec.key_properties)
        if not keys:
            raise self.adapter.error(
                "'page_size' pages by OFFSET: the stream needs a primary key or a replication key "
                "(or leave 'page_size' unset to read with one cursor)",
                stream=read.spec.name,
            )
        return keys

    def paged_statements(self, read: SQLRead, value: Any, page_size: int) -> Iterator[Any]:
        """The pages of a read: its ``SELECT`` ordered by :meth:`page_order` with ``OFFSET k ROWS
        FETCH NEXT page_size ROWS ONLY`` for k = 0, page_size, … (the caller stops at a short page)."""
        stmt = self.read_statement(read, value)
        if read.boundary is None:
            cols = {c.name: c for c in stmt.selected_columns}
            stmt = stmt.order_by(*[cols[k] for k in self.page_order(read)])
        total = read.limit + read.extra_rows() if read.limit is not None else None
        stmt = stmt.limit(None)
        offset = 0
        while total is None or offset < total:
            n = page_size if total is None else min(page_size, total - offset)
            yield stmt.offset(offset).limit(n)
            offset += n

    def start_param(self, read: SQLRead) -> Any:
        """The bound value of ``replication key >= :rk_value`` (an instant: naive UTC, compared in
        the session's UTC time zone; python-oracledb would drop its zone)."""
        from dc_api_x.adapters.sql.typemap import typed_value

        boundary = read.boundary
        if boundary is None or boundary.value is None:
            return None
        value = typed_value(boundary.value, read.props[boundary.rk])
        if isinstance(value, _dt.datetime) and value.tzinfo is not None:
            value = value.astimezone(_dt.timezone.utc).replace(tzinfo=None)
        return value

    def read(self, read: SQLRead) -> Iterator[Batch]:

        value = self.start_param(read)
        size = read.batch_size or DICT_BATCH_SIZE
        page_size = getattr(self.adapter.options, "page_size", None)
        with self.engine.connect() as conn:
            dbapi = conn.connection.driver_connection
            assert dbapi is not None
            if page_size:
                conn.exec_driver_sql("SET TRANSACTION READ ONLY")
                statements: Iterator[Any] = self.paged_statements(read, value, page_size)
            else:
                statements = iter([self.read_statement(read, value)])
            try:
                for stmt in statements:
                    fetched = yield from self._run(dbapi, read, stmt, size)
                    if read.done or not page_size or fetched < page_size:
                        break
            finally:
                conn.rollback()  # ends the read-only transaction

    def _run(self, dbapi: Any, read: SQLRead, stmt: Any, size: int) -> Generator[Batch, None, int]:
        """Run one statement on a raw cursor, yield its batches; return the rows fetched."""
        import oracledb

        sql, params = compile_sql(stmt, self.dialect)
        cursor = dbapi.cursor()
        cursor.arraysize = size
        cursor.prefetchrows = size + 1
        cursor.outputtypehandler = number_output_handler(dbapi.outputtypehandler)
        fetched = 0
        stamps = {k: oracledb.DB_TYPE_TIMESTAMP for k, v in params.items() if isinstance(v, _dt.datetime)}
        if stamps:  # a datetime binds as DATE (whole seconds) unless told otherwise
            cursor.setinputsizes(**stamps)
        try:
            try:
                cursor.execute(sql, params)
            except oracledb.Error as exc:
                raise self.read_error(exc, read) from None
            yield from self.batches(read, cursor, size)
            fetched = cursor.rowcount
        finally:
            cursor.close()
        return int(fetched or 0)

    def batches(self, read: SQLRead, cursor: Any, size: int) -> Iterator[Batch]:
        """Batches of ``size`` rows fetched from a python-oracledb ``cursor`` whose columns are
        ``read.props`` in order (a table's read, a ref cursor)."""
        names = list(read.props)
        props = [read.props[n] for n in names]
        boundary = read.boundary
        rk_name = boundary.rk if boundary is not None else ""
        pk_names = boundary.pks if boundary is not None else []
        while True:
            rows = cursor.fetchmany(size)
            if not rows:
                break
            records = [
                {n: fetch_value(v, p) for n, p, v in zip(names, props, row, strict=True)} for row in rows
            ]

            def rk(i: int, _r: list[dict[str, Any]] = records) -> Any:
                return json_form(_r[i][rk_name])

            def pk(i: int, _r: list[dict[str, Any]] = records) -> tuple[Any, ...]:
                return tuple(json_form(_r[i][k]) for k in pk_names)

            batch = read.emit(records, rk, pk)
            if batch is not None:
                yield batch
            if read.done:
                break

    def read_error(self, exc: BaseException, read: SQLRead) -> Exception:
        src = read.source
        if "ORA-00942" in str(exc) and src.table is not None:
            return self.adapter.error(
                f"table {src.label!r} not found on {self.adapter.safe_url}", stream=read.spec.name
            )
        return self.db_error(exc, f"reading {src.label}", stream=read.spec.name)

    # -- writing ---------------------------------------------------------------------------------
    def bind_records(self, write: SQLWrite, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        native = bool(self.dialect.supports_native_boolean)
        props = write.props
        return [{k: bind_value(v, props.get(k) or {}, native) for k, v in r.items()} for r in records]


def _column_name(backend: OracleBackend, name: str) -> str:
    """A result column's name as SQLAlchemy reflects it (``ID`` → ``id``; ``"Mixed"`` as is)."""
    return str(backend.dialect.normalize_name(name))
