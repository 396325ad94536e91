"""The PostgreSQL backend: ADBC (``adbc_driver_postgresql``) binary ``COPY`` for reads and writes.

* **read** — ADBC streams Arrow record batches over binary ``COPY``; the bookmark value is passed
  as a bound parameter through a session setting (``set_config('dcapix.rk_value', $1)``) so the
  query itself stays a parameter-free ``COPY``. Columns whose PostgreSQL type has no exact Arrow
  counterpart (uuid, interval, enums …) are read as text.
* **write** — ADBC bulk ingest (binary ``COPY``) into a temporary stage table, then
  ``INSERT … SELECT`` (``ON CONFLICT … DO UPDATE`` for upserts) in the same transaction. Append and
  overwrite batches whose columns need no server-side cast are COPYed straight into the table, and
  the large ones over several connections in parallel (:class:`_ParallelCopy`: one transaction
  each, committed strictly in batch order, so the committed batches are always a prefix).
* **without ADBC** (``arrow: false`` or the driver not installed) — the generic SQLAlchemy paths
  (psycopg 3), with ``INSERT … ON CONFLICT`` for upserts.

Discovery is the generic bulk reflection; a custom query's columns are typed from the result's
type OIDs (no row is read). A plain ``postgresql://`` URL's tables are discovered with one catalog
query and read with statements written without SQLAlchemy (:mod:`.pg_direct`); every read runs on
ADBC connections opened through the driver manager's low-level API. Its writes (append, overwrite,
upsert) are set up without SQLAlchemy too (:mod:`.pg_write`: catalog lookup, DDL, unique-key check,
the stage ``INSERT`` / ``ON CONFLICT`` statements, low-level connections for the COPYs).

Over 700 lines because it is one backend (discovery, reads, the write paths and their parallel COPY);
the SQLAlchemy-free statements are in :mod:`.pg_direct`, the range reads in :mod:`.pg_ranges`, and the
next candidate to move out is the parallel COPY (:class:`_ParallelCopy`).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from ...arrow import ConversionError, arrow_to_records, cast_table, inet_text, json_text, json_types
from ...exceptions import AdapterError
from ...ext.sql import Reflected, SQLAdapterLike, SQLRead, SQLSource, SQLWrite
from ...types import Batch, JSONSchema, StreamSpec
from ...values import json_form
from .generic import (
    ARROW_BATCH_SIZE,
    SQLAlchemyBackend,
    close_quietly,
    installed,
    last_per_key,
    merge_on_conflict,
)
from .lazy import lazy_module
from .pg_ahead import copy_connection, start_read
from .pg_direct import (
    DirectConnection,
    DirectDatabase,
    PlainURL,
    UnmappedType,
    adbc_findable,
    builtin_resolver_allowed,
    catalog_rows,
    current_schema,
    is_adbc_error,
    qualified,
    quote,
    range_where,
    reflected_of,
    rk_cast_type,
    table_select,
)
from .pg_direct import server_message as _server_message
from .pg_direct import text_cast as _text_cast
from .pg_ranges import range_select, read_ranges
from .pg_write import (
    DirectColumn,
    DirectTable,
    NotATable,
    add_column_sql,
    copy_input,
    create_table_sql,
    diagnose_probes,
    is_array,
    jsonb_binary,
    stage_insert_sql,
    table_columns,
    unique_keys,
)
from .pg_write import column_type as pg_column_type
from .typemap import pg_oid_property

if TYPE_CHECKING:  # pragma: no cover
    from concurrent.futures import ThreadPoolExecutor

    import pyarrow as pa
    import sqlalchemy as sa
    from sqlalchemy.engine import Connection
else:  # imported on first use: a plain table stream is discovered and read without it (.pg_direct)
    sa = lazy_module("sqlalchemy")

__all__ = ["PostgreSQLBackend"]

log = logging.getLogger("dc_api_x.adapters.sql")

# appends: batches of at least this many rows that COPY straight into the table are written by
# _PARALLEL connections at once (the server runs one backend per connection)
_PARALLEL = 2
_PARALLEL_MIN_ROWS = 10_000
# a parallel COPY waiting this long for a row lock (e.g. a duplicate key of a batch still in flight
# on another connection) gives up; the batch is then replayed sequentially (see _ParallelCopy.drain)
_LOCK_TIMEOUT_MS = 2000
_GUC = "dcapix.rk_value"
_STAGE = "_dcapix_stage"


def pgcopy() -> Any:
    """The :mod:`.pgcopy` module (imported on a read: it is not needed to start)."""
    from . import pgcopy as mod

    return mod


def _adbc_installed() -> bool:
    return installed("adbc_driver_postgresql.dbapi")


class PostgreSQLBackend(SQLAlchemyBackend):
    """PostgreSQL: ADBC binary COPY when available, else the generic paths (module docstring)."""

    dialects = ("postgresql",)

    def __init__(self, adapter: SQLAdapterLike) -> None:
        super().__init__(adapter)
        #: a plain ``postgresql://`` URL, no ``engine_options``, no SQL extensions: tables are
        #: discovered and read over ADBC without SQLAlchemy (:mod:`.pg_direct`), else ``None``
        plain: PlainURL | None = getattr(adapter, "pg_plain", None)
        if plain is not None and (getattr(adapter, "extensions", None) or adapter.options.engine_options):
            plain = None
        arrow = bool(adapter.options.arrow)
        #: whether reads and writes go through ADBC (decided once)
        self.adbc = arrow and (adbc_findable() if plain is not None else _adbc_installed())
        self.plain: PlainURL | None = plain if self.adbc else None
        self._conn: Any = None  # the ADBC connection of sequential writes
        # the ADBC database handle of reads (the built-in type resolver only without a custom query)
        self._database = DirectDatabase(self.read_uri, builtin_resolver_allowed(adapter.options.streams))
        self._parallel = _ParallelCopy(self)
        #: connections reading one large table's page ranges at once (:mod:`.pg_ranges`; 1: one COPY)
        self.read_connections = int(getattr(adapter.options, "read_connections", 1) or 1)

    def connect(self, autocommit: bool = False) -> Any:
        """A new ADBC connection to the adapter's database (for a plain URL a
        :class:`~.pg_direct.DirectConnection` of the backend's database handle: no DB-API module)."""
        if self.plain is not None:
            try:
                return self._database.connect(autocommit=autocommit)
            except Exception as exc:
                raise self.db_error(exc, "connect (ADBC)") from None
        import adbc_driver_postgresql.dbapi as adbc

        uri = self.adapter.url.set(drivername="postgresql").render_as_string(hide_password=False)
        try:
            return adbc.connect(uri, autocommit=autocommit)
        except Exception as exc:
            raise self.db_error(exc, "connect (ADBC)") from None

    def read_uri(self) -> str:
        """The libpq URI of the adapter's database (the plain URL as written, if it is one)."""
        if self.plain is not None:
            return self.plain.uri
        return str(self.adapter.url.set(drivername="postgresql").render_as_string(hide_password=False))

    def connect_direct(self) -> DirectConnection:
        """A new autocommit ADBC connection through the driver manager's low-level API (reads), of
        the backend's one database handle."""
        try:
            return self._database.connect()
        except Exception as exc:
            raise self.db_error(exc, "connect (ADBC)") from None

    def compile(self, stmt: Any) -> str:
        """SQL text of ``stmt`` for ADBC (no bound parameters; literals are our own constants)."""
        from sqlalchemy.dialects.postgresql.base import PGDialect

        dialect = PGDialect(paramstyle="numeric_dollar")
        return str(stmt.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))

    def close(self) -> None:
        self._parallel.close()
        close_quietly(self._conn, self._database)  # (the database handle reopens on the next read)
        self._conn = None

    # -- discovery -------------------------------------------------------------------------------
    def discovery_connection(self) -> AbstractContextManager[Any]:
        """An ADBC connection (:class:`~.pg_direct.DirectConnection`, no SQLAlchemy) for a plain URL
        whose configured streams are all tables; else the engine's."""
        streams = self.adapter.options.streams or []
        if self.plain is None or any(getattr(s, "query", None) is not None for s in streams):
            return super().discovery_connection()
        return self._discovery_connection()

    @contextmanager
    def _discovery_connection(self) -> Iterator[DirectConnection]:
        conn = self.connect_direct()
        try:
            yield conn
        except BaseException:
            conn.close()
            raise
        # every catalog statement was read to its end: the first read takes the connection over
        self._database.keep(conn)

    def is_driver_error(self, exc: BaseException) -> bool:
        return is_adbc_error(exc)

    def _ahead(self) -> Any:
        """The discovery and read begun ahead for this backend's plain URL (:mod:`.pg_ahead`), if any."""
        if self.plain is None:
            return None
        from .preopen import ahead_of

        return ahead_of(self.plain.uri)

    def default_schema(self, conn: Any = None) -> str:
        if isinstance(conn, DirectConnection):
            ahead = self._ahead()
            found = ahead.default_schema() if ahead is not None else None
            return found if found is not None else current_schema(conn)
        return super().default_schema(conn)

    def reflect(self, conn: Any, schema: str | None, names: list[str] | None) -> dict[str, Reflected]:
        if not isinstance(conn, DirectConnection):
            return super().reflect(conn, schema, names)
        try:
            schema = schema or self.default_schema(conn)
            ahead = self._ahead()
            rows = ahead.catalog(schema, names) if ahead is not None else None  # (its rows, once)
            return reflected_of(catalog_rows(conn, schema, names) if rows is None else rows)
        except UnmappedType as exc:  # a type only SQLAlchemy's reflection maps (a domain, an enum …)
            log.debug("sql: discovery through SQLAlchemy (%s)", exc)
            with self.engine.connect() as sa_conn:
                return super().reflect(sa_conn, schema, names)

    def describe_query(self, conn: Connection, query: Any, stream: str) -> list[tuple[str, JSONSchema]]:
        res: Any = conn.execute(sa.select(sa.literal_column("*")).select_from(query).limit(0))
        desc: Any = res.cursor.description if res.cursor is not None else []
        cols = [(d.name, pg_oid_property(d)) for d in desc]
        res.close()
        return cols

    # -- reading ---------------------------------------------------------------------------------
    def read(self, read: SQLRead) -> Iterator[Batch]:
        if not self.adbc:
            yield from super().read(read)
            return
        import pyarrow as pa

        props, boundary = read.props, read.boundary
        target = read.arrow_schema()
        # inet columns: read with the inet::text cast, shown as PostgreSQL does
        inet = [name for name, p in props.items() if _is_inet(p)]
        sql = self._own_select(read)
        if sql is None:  # compiled by SQLAlchemy (a query, a partition's range, a bookmark type …)
            param = None
            if boundary is not None:
                param = sa.cast(sa.func.current_setting(_GUC), self.column_type(props[boundary.rk]))

            def col_expr(c: Any, name: str) -> Any:
                to = _text_cast(props[name])
                if to == "TEXT":
                    return sa.cast(c, sa.Text).label(name)
                if to == "TEXT[]":
                    return sa.cast(c, sa.ARRAY(sa.Text)).label(name)
                return c

            stmt = read.select(param, col_expr)
        size = read.batch_size or ARROW_BATCH_SIZE
        # the read the head-start thread began, if it is this one (.pg_ahead), else closed
        started: Any = self._take_ahead(read, sql)
        conn: Any = None
        try:
            if started is None:
                conn = self.connect_direct()
                if sql is not None:
                    one, ranged = sql, lambda ranges: [range_where(sql, a, b) for a, b in ranges]
                else:
                    one = self.compile(stmt)
                    ranged = lambda ranges: [self.compile(range_select(stmt, a, b)) for a, b in ranges]  # noqa: E731
                guc = None
                if boundary is not None and boundary.value is not None:
                    guc = (_GUC, str(boundary.value))
                try:
                    started = start_read(
                        read,
                        conn,
                        one,
                        ranged,
                        name=read.spec.name,
                        read_connections=self.read_connections,
                        guc=guc,
                        copy_connection=partial(self._copy_connection, read),
                        connect_reader=self.connect_reader,
                        read_ranges=read_ranges,
                        say=log.log,
                    )
                except Exception as exc:
                    raise self.read_error(exc, read) from None
            reader = started.reader
            for rb in self._batches(reader, read):
                for off in range(0, rb.num_rows, size):
                    table = self._conform(pa.Table.from_batches([rb.slice(off, size)]), target, read)
                    for name in inet:
                        i = table.schema.get_field_index(name)
                        table = table.set_column(i, table.schema.field(i), inet_text(table.column(i)))
                    rk = pk = None
                    if boundary is not None:
                        rk_col = table.column(boundary.rk)
                        pk_cols = [table.column(k) for k in boundary.pks]

                        def rk(i: int, _c: Any = rk_col) -> Any:
                            return json_form(_c[i].as_py())

                        def pk(i: int, _cs: Any = pk_cols) -> tuple[Any, ...]:
                            return tuple(json_form(c[i].as_py()) for c in _cs)

                    batch = read.emit(table, rk, pk)
                    if batch is not None:
                        yield batch
                    if read.done:
                        return
        finally:
            if started is not None:
                started.close()
            if conn is not None:
                conn.close()

    def _take_ahead(self, read: SQLRead, sql: str | None) -> Any:
        """The read begun ahead (:class:`~.pg_ahead.ReadAhead`) when it is the full read of ``sql``
        for this stream; anything begun ahead for another read is closed (``None``)."""
        ahead = self._ahead()
        if ahead is None:
            return None
        if sql is None or read.boundary is not None or read.limit is not None:
            ahead.close()
            return None
        return ahead.take_read(sql, read.spec.name, self.read_connections)

    def connect_reader(self, layout: Any = None, name: str = "") -> Any:
        """A new connection for a range reader: autocommit ADBC, or with ``layout`` (a
        :class:`~.pgcopy.Layout`) one reading through our COPY decoder."""
        if layout is not None:
            return pgcopy().CopyConnection(self.read_uri(), layout, name)
        return self.connect_direct()

    def _copy_connection(self, read: SQLRead, sql: str) -> Any:
        """A libpq connection reading ``sql`` through our binary COPY decoder (:mod:`.pgcopy`), or
        ``None`` (ADBC reads it): :func:`.pg_ahead.copy_connection`."""
        return copy_connection(self.read_uri(), read.spec.name, sql, log.log)

    def _batches(self, reader: Any, read: SQLRead) -> Iterator[Any]:
        """The record batches of ``reader``; an error of our COPY decoder is the stream's read error."""
        try:
            yield from reader
        except Exception as exc:
            if not isinstance(exc, pgcopy().CopyError):
                raise
            raise self.db_error(exc, f"reading {read.source.label}", stream=read.spec.name) from None

    def _own_select(self, read: SQLRead) -> str | None:
        """The statement of a table read written without SQLAlchemy (:func:`.pg_direct.table_select`),
        for a plain URL; ``None``: compile :meth:`SQLRead.select` instead."""
        src = read.source
        if self.plain is None or type(src) is not SQLSource or src.query is not None or src.table is None:
            return None
        boundary = read.boundary
        rk_type = None
        if boundary is not None and boundary.value is not None:
            rk_type = rk_cast_type(read.props[boundary.rk])
            if rk_type is None:
                return None
        return table_select(read, lambda name: _text_cast(read.props[name]), rk_type, _GUC)

    def _conform(self, table: pa.Table, target: pa.Schema, read: SQLRead) -> pa.Table:
        """The driver's Arrow table in the stream's Arrow schema (exact casts only)."""
        try:
            return cast_table(table, target)
        except ConversionError as exc:
            message = str(exc).split(": ", 1)[-1] if exc.field else str(exc)
            raise self.schema_error(message, stream=read.spec.name, field=exc.field) from None

    # -- writing ---------------------------------------------------------------------------------
    def write(self, write: SQLWrite, table: pa.Table) -> int | None:
        if not self.adbc:
            return super().write(write, table)
        if self._parallel.submit(write, table):
            return None  # in flight: committed (in batch order) by a worker; flush() waits for it
        self.flush(write.stream.name)  # the batches before this one commit first
        return self.copy(write, table)

    def flush(self, stream: str | None = None) -> None:
        self._parallel.drain(stream)

    def upsert(self, conn: Connection, write: SQLWrite, records: list[dict[str, Any]]) -> int:
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        stmt = merge_on_conflict(pg_insert(write.table), write.table, write.keys, list(records[0]))
        res = conn.execute(stmt, last_per_key(records, write.keys))
        return int(res.rowcount if res.rowcount is not None else -1)

    def copy(self, write: SQLWrite, table: pa.Table) -> int:
        """Write one batch over the sequential ADBC connection and commit it: binary COPY straight
        into the table when no column needs a server-side cast, else COPY into a temporary stage
        table and ``INSERT … SELECT`` (``ON CONFLICT`` for upserts)."""
        import pyarrow as pa

        if self._conn is None:
            self._conn = self.connect(autocommit=False)
        conn = self._conn
        names = table.column_names
        upsert = write.load_method == "upsert"
        direct = None if upsert else _copy_input(table, write.table)
        # otherwise a stage table with our own column names (c0, c1 …); JSON and arrays go in as
        # text and are cast by the INSERT … SELECT; everything else is binary COPY.
        arrays = {n for n in names if _is_array_column(write.table.c[n])}
        data = _plain_strings(table, arrays).rename_columns([f"c{i}" for i in range(len(names))])
        if upsert:
            data = data.append_column("c_ord", pa.array(range(data.num_rows), pa.int64()))
        sql = ""
        if direct is None:
            key = (_STAGE, *names, str(upsert))
            sql = write.cache.get(key) or ""
            if not sql:
                sql = write.cache[key] = self._insert_sql(write, names, upsert)
        cur = conn.cursor()
        rows: int | None = None
        try:
            if direct is not None:
                # binary COPY straight into the table (the driver quotes the identifiers)
                cur.adbc_ingest(write.table.name, direct, mode="append", db_schema_name=write.table.schema)
            else:
                cur.adbc_ingest(_STAGE, data, mode="replace", temporary=True)
                cur.execute(sql)
                rows = cur.rowcount
            conn.commit()
        except Exception as exc:
            try:
                conn.rollback()
            except Exception:  # pragma: no cover
                self._conn = None
            fld = self._diagnose(data, write, names)
            raise self.schema_error(
                f"batch not written (rolled back): {_server_message(exc)}",
                stream=write.stream.name,
                field=fld,
            ) from None
        finally:
            cur.close()
        if rows is not None and rows >= 0:
            return int(rows)
        return table.num_rows if direct is not None else -1

    def _insert_sql(self, write: SQLWrite, names: list[str], upsert: bool) -> str:
        if isinstance(write.table, DirectTable):  # set up without SQLAlchemy (.pg_write)
            return stage_insert_sql(_STAGE, write.table, names, write.keys if upsert else None)
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        src = sa.table(_STAGE, *[sa.column(f"c{i}") for i in range(len(names))], sa.column("c_ord"))
        sc = {n: src.c[f"c{i}"] for i, n in enumerate(names)}
        target = write.table
        sel = sa.select(*[_cast(sc[n], target.c[n].type) for n in names])
        if upsert:
            from sqlalchemy.dialects.postgresql import distinct_on

            sel = sel.ext(distinct_on(*[sc[k] for k in write.keys])).order_by(
                *[sc[k] for k in write.keys], src.c["c_ord"].desc()
            )
        stmt = pg_insert(target).from_select(names, sel)
        if upsert:
            stmt = merge_on_conflict(stmt, target, write.keys, names)
        return self.compile(stmt)

    def _diagnose(self, data: pa.Table, write: SQLWrite, names: list[str]) -> str | None:
        """After a failed batch: the first column whose values the table's type rejects."""
        conn = self._conn
        if conn is None:
            return None
        cur = conn.cursor()
        try:
            cur.adbc_ingest(_STAGE, data, mode="replace", temporary=True)
            for n, probe, sized in self._diagnose_probes(write, names):
                cur.execute("SAVEPOINT dcapix_diag")
                try:
                    cur.execute(probe)
                    got = cur.fetchall()
                    bad = got[0][0] if sized else 0
                    cur.execute("RELEASE SAVEPOINT dcapix_diag")
                except Exception:
                    cur.execute("ROLLBACK TO SAVEPOINT dcapix_diag")
                    return n
                if bad:
                    return n
            for i, n in enumerate(names):
                if not write.table.c[n].nullable and data.column(f"c{i}").null_count:
                    return n
            return None
        except Exception:
            return None
        finally:
            try:
                conn.rollback()
            except Exception:  # pragma: no cover
                pass
            cur.close()

    def _diagnose_probes(self, write: SQLWrite, names: list[str]) -> list[tuple[str, str, bool]]:
        """For each column: (name, probe, sized) — the stage values longer than a sized character
        column counted, else ``count(CAST(value AS type))`` (fails on the first bad value)."""
        if isinstance(write.table, DirectTable):  # set up without SQLAlchemy (.pg_write)
            return diagnose_probes(_STAGE, write.table, names)
        src = sa.table(_STAGE, *[sa.column(f"c{i}") for i in range(len(names))])
        out = []
        for i, n in enumerate(names):
            col, typ = src.c[f"c{i}"], write.table.c[n].type
            sized = getattr(typ, "length", None) if isinstance(typ, sa.String) else None
            if sized:
                probe = sa.select(sa.func.count()).select_from(src).where(sa.func.char_length(col) > sized)
            else:
                probe = sa.select(sa.func.count(sa.cast(col, typ)))
            out.append((n, self.compile(probe), bool(sized)))
        return out

    # -- write set-up without SQLAlchemy (.pg_write) ---------------------------------------------
    def start_write_direct(
        self,
        stream: StreamSpec,
        schema: str | None,
        name: str,
        props: dict[str, JSONSchema],
        keys: list[str],
        method: str,
        stage_name: str,
    ) -> tuple[DirectTable, DirectTable] | None:
        """Create (or widen) the stream's table, and for ``overwrite`` a fresh stage table, over the
        sequential ADBC connection in one transaction (:mod:`.pg_write`); returns (table written,
        target), or ``None`` when the write is set up through SQLAlchemy instead (not a plain URL,
        a view of that name). ``upsert`` checks the keys' primary key or unique constraint as
        :meth:`SQLAdapter._check_unique` does."""
        if self.plain is None:
            return None
        if self._conn is None:
            self._conn = self.connect(autocommit=False)
        conn = self._conn
        cur = conn.cursor()
        try:
            if schema:
                cur.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(schema)}")
            try:
                existing = table_columns(conn, schema, name)
            except NotATable:
                conn.rollback()
                return None
            if existing is None:
                cols = [(n, pg_column_type(p)) for n, p in props.items()]
                cur.execute(create_table_sql(schema, name, cols, keys))
                target = DirectTable(name, schema, [DirectColumn(n, t, n not in keys) for n, t in cols])
            else:
                target = DirectTable(name, schema, existing)
                for n, p in props.items():
                    if n not in target.c:
                        col = DirectColumn(n, pg_column_type(p), True)
                        cur.execute(add_column_sql(target, n, col.type))
                        target.append_column(col)
            if method == "upsert":
                self._check_unique_direct(conn, target, keys, stream.name)
            table = target
            if method == "overwrite":
                cols = [(n, pg_column_type(p)) for n, p in props.items()]
                cur.execute(f"DROP TABLE IF EXISTS {qualified(stage_name, schema)}")
                cur.execute(create_table_sql(schema, stage_name, cols, keys))
                table = DirectTable(stage_name, schema, [DirectColumn(n, t, n not in keys) for n, t in cols])
            conn.commit()
        except Exception as exc:
            try:
                conn.rollback()
            except Exception:  # pragma: no cover - a broken connection is dropped
                self._conn = None
            if isinstance(exc, AdapterError):
                raise
            raise self.db_error(exc, f"preparing table {name!r}", stream=stream.name) from None
        finally:
            cur.close()
        return table, target

    def _check_unique_direct(self, conn: Any, table: DirectTable, keys: list[str], stream: str) -> None:
        """:meth:`SQLAdapter._check_unique` over the catalog: the keys must be the primary key, or
        the columns of a unique constraint or index, for ``ON CONFLICT``."""
        pk, uniques = unique_keys(conn, table)
        if any(sorted(cols) == sorted(keys) for cols in uniques):
            return
        raise self.adapter.error(
            f"upsert needs a primary key or unique constraint on {keys} in table "
            f"{table.name!r} (it has primary key {pk})",
            stream=stream,
        )

    def widen_direct(self, write: SQLWrite, add: dict[str, JSONSchema]) -> None:
        """Add the columns ``add`` that the table does not have yet (:meth:`SQLAdapter._widen`)."""
        table = write.table
        assert isinstance(table, DirectTable)
        if self._conn is None:
            self._conn = self.connect(autocommit=False)
        conn = self._conn
        cur = conn.cursor()
        try:
            have = {c.name for c in table_columns(conn, table.schema, table.name) or []}
            for n, p in add.items():
                if n not in have:
                    col = DirectColumn(n, pg_column_type(p), True)
                    cur.execute(add_column_sql(table, n, col.type))
                    table.append_column(col)
            conn.commit()
        except Exception as exc:
            try:
                conn.rollback()
            except Exception:  # pragma: no cover
                self._conn = None
            raise self.db_error(exc, f"adding columns {list(add)}", stream=write.stream.name) from None
        finally:
            cur.close()

    def replace_table(self, stage: Any, target: Any) -> None:
        if not isinstance(stage, DirectTable):
            super().replace_table(stage, target)
            return
        if self._conn is None:
            self._conn = self.connect(autocommit=False)
        conn = self._conn
        cur = conn.cursor()
        try:
            cur.execute(f"DROP TABLE IF EXISTS {target.qualified}")
            cur.execute(f"ALTER TABLE {stage.qualified} RENAME TO {quote(target.name)}")
            conn.commit()
        except BaseException:
            try:
                conn.rollback()
            except Exception:  # pragma: no cover
                self._conn = None
            raise
        finally:
            cur.close()


# ------------------------------------------------------------------------------------ parallel COPY
@dataclass
class _CopyJob:
    """One batch COPYed by a worker connection in its own transaction; it commits only after the
    previous batch of the same stream committed (so the committed batches are always a prefix)."""

    write: SQLWrite
    stream: StreamSpec
    table: pa.Table | None  # the converted batch (replayed sequentially if not committed)
    direct: pa.Table | None  # the COPY input (released when done)
    prev: _CopyJob | None
    #: the backend's sequential connection, lent to this job (:meth:`_ParallelCopy.lend`), or None
    lent: Any = None
    done: threading.Event = field(default_factory=threading.Event)
    committed: bool = False
    error: BaseException | None = None


class _ParallelCopy:
    """Large append / overwrite batches COPYed over :data:`_PARALLEL` worker connections, each in
    its own transaction, committed strictly in batch order per stream.

    A job started while no worker connection is idle borrows the backend's sequential connection
    (the one :meth:`PostgreSQLBackend.start_write_direct` created the table on) when that one is open
    and idle, instead of opening one more (a backend start and a SCRAM authentication, ~57 M
    instructions, on the way to the first row written: a 20,000-row W1 run is one such batch);
    :meth:`reclaim` hands it back once the job is done. While it is lent the backend has no
    sequential connection (``_conn`` is ``None``): a sequential write of another stream meanwhile
    opens one, as it would have opened a worker's before."""

    def __init__(self, backend: PostgreSQLBackend) -> None:
        self.backend = backend
        self.pool: ThreadPoolExecutor | None = None
        self.idle: queue.SimpleQueue[Any] = queue.SimpleQueue()  # idle worker connections
        self.conns: list[Any] = []  # every worker connection (closed by close())
        self.abort = False  # close(): roll back whatever is still in flight
        self.jobs: dict[str, list[_CopyJob]] = {}  # per stream: not yet known to be committed
        #: the job holding the backend's sequential connection (:meth:`lend`), or None
        self.borrower: _CopyJob | None = None

    def submit(self, write: SQLWrite, table: pa.Table) -> bool:
        """Hand a large append batch that COPYs straight into the table to a worker connection;
        ``False``: write it sequentially (upserts, small batches, columns cast by the server)."""
        if write.load_method == "upsert" or table.num_rows < _PARALLEL_MIN_ROWS:
            return False
        direct = _copy_input(table, write.table)
        if direct is None:
            return False
        name = write.stream.name
        jobs = self.jobs.setdefault(name, [])
        if any(j.done.is_set() and not j.committed for j in jobs):
            self.drain(name)  # a batch failed: replay (raises the batch's error)
            jobs = self.jobs.setdefault(name, [])
        # at most _PARALLEL batches in flight per stream (bounded memory, no queue behind the workers)
        while sum(not j.done.is_set() for j in jobs) >= _PARALLEL:
            next(j for j in jobs if not j.done.is_set()).done.wait()
        while jobs and jobs[0].committed and len(jobs) > 1:
            jobs.pop(0)  # keep the newest job as the predecessor of the next one
        if self.pool is None:
            from concurrent.futures import ThreadPoolExecutor  # (not imported by a run that never needs it)

            self.pool = ThreadPoolExecutor(max_workers=_PARALLEL, thread_name_prefix="dcapix-pg-copy")
        job = _CopyJob(write, write.stream, table, direct, prev=jobs[-1] if jobs else None)
        self.lend(job)
        jobs.append(job)
        self.pool.submit(self._copy, job, write.table.name, write.table.schema)
        return True

    def lend(self, job: _CopyJob) -> None:
        """Give ``job`` the backend's sequential connection when no worker connection is idle and
        that one is open and not lent already (called in the writing thread, which alone uses it)."""
        self.reclaim()
        backend = self.backend
        if self.borrower is None and backend._conn is not None and self.idle.empty():
            job.lent, backend._conn = backend._conn, None
            self.borrower = job

    def reclaim(self) -> None:
        """Take the sequential connection back from a finished borrower (writing thread): the
        backend's again, or closed when the backend opened another meanwhile (or it broke)."""
        job = self.borrower
        if job is None or not job.done.is_set():
            return
        self.borrower = None
        conn, job.lent = job.lent, None
        if conn is None:
            return
        if self.backend._conn is None:
            self.backend._conn = conn
        else:
            close_quietly(conn)

    def _worker_conn(self) -> Any:
        try:
            return self.idle.get_nowait()
        except queue.Empty:
            pass
        conn = self.backend.connect(autocommit=False)
        self.conns.append(conn)
        cur = conn.cursor()
        try:
            cur.execute(f"SET lock_timeout = {int(_LOCK_TIMEOUT_MS)}")
        finally:
            cur.close()
        conn.commit()
        return conn

    def _copy(self, job: _CopyJob, name: str, schema: str | None) -> None:
        """Worker: COPY the batch, then commit once the previous batch committed (else roll back)."""
        conn = None
        try:
            conn = job.lent or self._worker_conn()
            cur = conn.cursor()
            try:
                if job.lent is not None:  # (a worker connection has it for the session: _worker_conn)
                    cur.execute(f"SET LOCAL lock_timeout = {int(_LOCK_TIMEOUT_MS)}")
                cur.adbc_ingest(name, job.direct, mode="append", db_schema_name=schema)
            finally:
                cur.close()
            prev, job.prev = job.prev, None  # (no chain of finished jobs kept alive)
            if prev is not None:
                prev.done.wait()
            if (prev is None or prev.committed) and not self.abort:
                conn.commit()
                job.committed = True
                job.table = None  # never replayed
            else:
                conn.rollback()
        except BaseException as exc:
            job.error = exc
            if conn is not None:
                try:
                    conn.rollback()
                except Exception:  # pragma: no cover - a broken connection is dropped
                    conn = None
                    if job.lent is not None:
                        close_quietly(job.lent)
                        job.lent = None
        finally:
            if conn is not None and job.lent is None:
                self.idle.put(conn)
            job.direct = None
            job.done.set()

    def drain(self, stream: str | None = None) -> None:
        """Wait for the parallel COPYs of ``stream`` (all streams: ``None``). The committed ones are
        a prefix of the batches; the others (a failed one and every later one, all rolled back) are
        written again sequentially, so the first bad batch raises exactly the error a sequential
        write raises and nothing after it is committed."""
        names = list(self.jobs) if stream is None else [stream]
        for name in names:
            jobs = self.jobs.pop(name, None)
            if not jobs:
                continue
            for j in jobs:
                j.done.wait()
            self.reclaim()  # (a replay below writes over the sequential connection)
            for j in jobs:
                if not j.committed and j.table is not None:
                    if j.error is not None:
                        log.info(
                            "sql: stream %s: a parallel COPY failed (%s); writing the batch again "
                            "sequentially",
                            name,
                            _server_message(j.error),
                        )
                    self.backend.copy(j.write, j.table)

    def close(self) -> None:
        """Roll back the batches still in flight, then close the worker connections."""
        if self.pool is not None:
            self.abort = True
            self.pool.shutdown(wait=True)
            self.pool = None
            self.abort = False
        self.reclaim()
        self.jobs.clear()
        close_quietly(*self.conns)
        self.conns.clear()
        self.idle = queue.SimpleQueue()


# ------------------------------------------------------------------------------------------ helpers
def _is_inet(prop: JSONSchema) -> bool:
    """Whether a column holds PostgreSQL ``inet`` values (``format: inet``), or arrays of them."""
    if json_types(prop)[0] == {"array"}:
        return (prop.get("items") or {}).get("format") == "inet"
    return prop.get("format") == "inet"


def _copy_input(table: pa.Table, target: Any) -> pa.Table | None:
    """``table`` ready for a binary COPY straight into ``target`` (an ``sa.Table`` or a
    :class:`~.pg_write.DirectTable`), or ``None`` when a column needs a cast on the server."""
    if isinstance(target, DirectTable):
        return copy_input(table, target)
    return _direct(table, target)


def _is_array_column(col: Any) -> bool:
    """Whether a column (SQLAlchemy's or a :class:`~.pg_write.DirectColumn`) is a PostgreSQL array."""
    if isinstance(col, DirectColumn):
        return is_array(col.type)
    return isinstance(col.type, sa.ARRAY)


def _direct(table: pa.Table, target: sa.Table) -> pa.Table | None:
    """``table`` ready for a binary COPY straight into ``target``, or ``None`` when a column needs a
    cast on the server (uuid, arrays, enums, int4 columns …)."""
    import pyarrow as pa
    import pyarrow.types as pt
    from sqlalchemy.dialects.postgresql import JSONB

    cols = []
    for f in table.schema:
        at, tt = f.type, target.c[f.name].type
        col = table.column(f.name)
        if isinstance(tt, JSONB):
            if not pt.is_string(at):
                return None
            col = jsonb_binary(col)  # jsonb's binary input format: a version byte (1) then the JSON text
        elif isinstance(tt, sa.JSON):
            if not pt.is_string(at):
                return None
        elif isinstance(tt, sa.Boolean):
            if not pt.is_boolean(at):
                return None
        elif isinstance(tt, sa.BigInteger):
            if at != pa.int64():
                return None
        elif isinstance(tt, sa.Integer):
            return None
        elif isinstance(tt, sa.Float):
            if at != pa.float64() or (tt.precision or 53) <= 24 or type(tt).__name__ == "REAL":
                return None
        elif isinstance(tt, sa.Numeric):
            if not pt.is_decimal(at):
                return None
        elif isinstance(tt, sa.DateTime):
            if (
                not pt.is_timestamp(at)
                or at.unit != "us"
                or (at.tz is not None) != bool(tt.timezone)
                or (at.tz not in (None, "UTC", "+00:00"))
            ):
                return None
        elif isinstance(tt, sa.Date):
            if not pt.is_date32(at):
                return None
        elif isinstance(tt, sa.Time):
            if getattr(tt, "timezone", False) or at != pa.time64("us"):
                return None
        elif isinstance(tt, sa.LargeBinary):
            if not pt.is_binary(at):
                return None
        elif (
            isinstance(tt, sa.String)
            and not isinstance(tt, sa.Enum)
            and type(tt).__name__ in ("TEXT", "VARCHAR", "Text", "String", "CHAR")
        ):
            if not pt.is_string(at):
                return None
        else:
            return None
        cols.append(col)
    return pa.Table.from_arrays(cols, names=table.column_names)


def _cast(col: Any, typ: Any) -> Any:
    """Stage column → target type (JSON and arrays arrive as text). Character columns are not cast:
    an explicit cast to ``varchar(n)`` would truncate, the assignment cast of the INSERT refuses."""
    if isinstance(typ, sa.String) and not isinstance(typ, sa.Enum):
        return col
    return sa.cast(col, typ)


def _plain_strings(table: pa.Table, pg_arrays: set[str]) -> pa.Table:
    """Arrow columns ADBC cannot ingest as such: structs and lists become text (a PostgreSQL array
    literal for ``pg_arrays`` columns, JSON otherwise)."""
    import pyarrow as pa
    import pyarrow.types as pt

    fields, cols = [], []
    changed = False
    for f in table.schema:
        col = table.column(f.name)
        if pt.is_struct(f.type) or pt.is_list(f.type) or pt.is_large_list(f.type):
            vals = [r[f.name] for r in arrow_to_records(table.select([f.name]))]
            if f.name in pg_arrays:
                texts = [None if v is None else _array_literal(v) for v in vals]
            else:
                texts = [None if v is None else json_text(v) for v in vals]
            col = pa.chunked_array([pa.array(texts, pa.string())])
            f = pa.field(f.name, pa.string())
            changed = True
        fields.append(f)
        cols.append(col)
    if not changed:
        return table
    return pa.Table.from_arrays(cols, schema=pa.schema(fields))


def _array_literal(values: list[Any]) -> str:
    """A PostgreSQL array literal (``{"a","b"}``) for a list of scalars (nested lists allowed)."""
    parts = []
    for v in values:
        if v is None:
            parts.append("NULL")
        elif isinstance(v, list):
            parts.append(_array_literal(v))
        elif isinstance(v, bool):
            parts.append("true" if v else "false")
        elif isinstance(v, bytes):
            parts.append('"\\\\x' + v.hex() + '"')
        elif isinstance(v, dict):  # an element of a json[] / jsonb[] column: its JSON text
            s = json_text(v).replace("\\", "\\\\").replace('"', '\\"')
            parts.append(f'"{s}"')
        else:
            s = json_form(v) if not isinstance(v, str) else v
            s = str(s).replace("\\", "\\\\").replace('"', '\\"')
            parts.append(f'"{s}"')
    return "{" + ",".join(parts) + "}"
