"""The SQLite backend: the stdlib ``sqlite3`` driver, and ``adbc-driver-sqlite`` where it can be used.

* **read** — with ``adbc-driver-sqlite`` (file databases): the whole result decoded in C into Arrow,
  then exact casts; a first row of typed sentinel values fixes the column types the driver infers.
  Otherwise ``sqlite3`` ``fetchmany`` and column-wise ``pyarrow`` arrays. Either way the values are
  read in this adapter's storage forms (below) and a value that does not fit its column names it.
* **write** — appends through ADBC bulk ingest; upserts (and databases ADBC cannot open) as an
  ``executemany`` of pre-converted values (``INSERT … ON CONFLICT``) in one explicit transaction.
* **storage forms** — SQLite has no real types: timestamps are stored as ISO text (aware ones as
  ``…+00:00``), decimals as plain-notation text in ``DECIMAL_TEXT(p,s)`` columns, booleans as 0/1,
  nested values as JSON text. The bookmark of an SQLite read keeps the stored text (it is compared
  as stored).
* **discovery** — one ``pragma_table_info`` query for every table; ``overwrite`` swaps the tables
  under ``BEGIN IMMEDIATE``.
* **without SQLAlchemy** — a plain ``sqlite:///FILE`` (:attr:`SQLiteBackend.file`) is discovered on a
  ``sqlite3`` connection and its tables are read with statements written here (sqlite3 for files under
  :data:`ADBC_MIN_BYTES`, ADBC above), so a small sync imports neither SQLAlchemy nor ADBC; custom
  queries, partitions and writes still go through SQLAlchemy.
* **rows of megabytes** — a sorted table read whose byte limit leaves at most
  :data:`ROWID_READ_ROWS` rows in a batch is read in two steps: the rowids in the read's order, then
  the rows by rowid, so SQLite's sorter holds the keys rather than the whole rows.

The module is past 700 lines on purpose: it is the one SQLite backend, whose three read paths
(sqlite3, ADBC, by rowid) and writes share the storage-form conversions below; its statements are in
:mod:`.sqlite_statements`.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import importlib.util
import os
import re
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ...arrow import arrow_to_records, json_text, rebatch
from ...ext.sql import Reflected, SQLAdapterLike, SQLRead, SQLSource, SQLWrite
from ...types import Batch, JSONSchema
from ...values import arrow_errors, fit_decimal, json_form, parse_datetime, parse_time
from .generic import (
    ARROW_BATCH_SIZE,
    SQLAlchemyBackend,
    close_quietly,
    column_named_in,
    installed,
    merge_on_conflict,
)
from .lazy import lazy_module
from .sqlite_statements import (
    _table_from,
    quote,
    rowid_alias,
    table_select,
    table_select_keys,
    table_select_rowids,
    table_select_sentinel,
)
from .typemap import extension_property, sqlite_declared_property

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa
    import sqlalchemy as sa
    from sqlalchemy.engine import Connection
else:  # imported on first use: discovery and table reads of a plain file run on sqlite3 alone
    sa = lazy_module("sqlalchemy")

__all__ = ["SQLiteBackend"]

_Getter = Callable[[int, int], Any]


def _adbc_installed() -> bool:
    return installed("adbc_driver_sqlite.dbapi")


def _adbc_importable() -> bool:
    """Whether the ADBC modules a read uses import (the low-level API, not the DB-API module)."""
    return installed("adbc_driver_sqlite") and installed("adbc_driver_manager")


def _adbc_findable() -> bool:
    """Whether adbc-driver-sqlite is installed, without importing it (and pyarrow.dataset)."""
    try:
        return importlib.util.find_spec("adbc_driver_sqlite") is not None
    except (ImportError, ValueError):  # pragma: no cover - a broken installation
        return False


#: Plain database files smaller than this are read with sqlite3 even when adbc-driver-sqlite is
#: installed (loading the driver library costs more than its faster decoding saves on a tiny table);
#: larger ones are read through ADBC. Measured on the benchmark machine (2026-12-02, CPU-s of a whole
#: ``dcapix run``): the demo's 0.5 MB file 0.47 with sqlite3, 0.45 with ADBC; W2's 20,000-row 3.5 MB
#: file 0.66 against 0.55.
ADBC_MIN_BYTES = 256 << 10


class SQLiteBackend(SQLAlchemyBackend):
    """SQLite through ``sqlite3`` and ``adbc-driver-sqlite`` (see the module docstring)."""

    dialects = ("sqlite",)

    def __init__(self, adapter: SQLAdapterLike) -> None:
        super().__init__(adapter)
        #: the database file of a plain ``sqlite:///PATH`` URL without ``engine_options``: discovery
        #: and table reads open it with sqlite3 themselves, SQLAlchemy is not imported for them
        self.file: str | None = getattr(adapter, "sqlite_file", None)
        if self.file is not None and (adapter.options.engine_options or _engine_plugins(adapter)):
            self.file = None
        if self.file is not None:
            self.database: str = self.file
            self.adbc = _adbc_findable()
        else:
            url = adapter.url
            db = url.database
            self.database = str(db)
            #: whether ADBC can open the database (a file, no URI options) and is installed (decided once)
            self.adbc = bool(db) and db != ":memory:" and not str(db).startswith("file:") and not url.query
            self.adbc = self.adbc and _adbc_installed()
        self._raw: Any = None  # the sqlite3 connection of executemany writes
        self._adbc_conn: Any = None  # the ADBC connection of appends

    def close(self) -> None:
        close_quietly(self._raw, self._adbc_conn)
        self._raw = self._adbc_conn = None

    def _field_error(self, stream: str, field: str) -> Callable[[str], Exception]:
        def make(message: str) -> Exception:
            return self.schema_error(message, stream=stream, field=field)

        return make

    # -- discovery and DDL -----------------------------------------------------------------------
    def default_schema(self, conn: Connection | None = None) -> str:
        return "main"

    def discovery_connection(self) -> contextlib.AbstractContextManager[Any]:
        """A sqlite3 connection of the file (no SQLAlchemy) when every configured stream is a
        table; else the engine's."""
        streams = self.adapter.options.streams or []
        if self.file is None or any(getattr(s, "query", None) is not None for s in streams):
            return super().discovery_connection()
        return contextlib.closing(self._connect())

    def is_driver_error(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.Error)

    def _connect(self) -> sqlite3.Connection:
        """A sqlite3 connection of :attr:`file`, opened as SQLAlchemy's pysqlite dialect opens one."""
        return sqlite3.connect(self.database, check_same_thread=False)

    def reflect(self, conn: Any, schema: str | None, names: list[str] | None) -> dict[str, Reflected]:
        # one query over sqlite_master and pragma_table_info, on a sqlite3 connection or an
        # SQLAlchemy one (the statement is the same text either way)
        sch = schema or "main"
        sql = (
            f'SELECT m.name, p.name, p.type, p."notnull", p.pk FROM {quote(sch)}.sqlite_master AS m '
            "JOIN pragma_table_info(m.name, ?) AS p "
            "WHERE m.type IN ('table', 'view') AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
        )
        params: list[Any] = [sch]
        if names is not None:
            sql += f" AND m.name IN ({', '.join('?' * len(names))})" if names else " AND 0"
            params += names
        sql += " ORDER BY m.name, p.cid"
        rows = (
            conn.execute(sql, params)
            if isinstance(conn, sqlite3.Connection)
            else conn.exec_driver_sql(sql, tuple(params))
        )
        out: dict[str, Reflected] = {}
        pkpos: dict[str, list[tuple[int, str]]] = {}
        exts = getattr(self.adapter, "extensions", None)
        for tbl, col, decl, notnull, pk in rows:
            cols, _ = out.setdefault(tbl, ([], []))
            nullable = not (notnull or pk)
            prop = extension_property(exts, decl or "", "sqlite", nullable) if exts else None
            cols.append((col, prop or sqlite_declared_property(decl or "", nullable)))
            if pk:
                pkpos.setdefault(tbl, []).append((int(pk), col))
        for tbl, pos in pkpos.items():
            out[tbl][1].extend(c for _, c in sorted(pos))
        return out

    def create_schema(self, conn: Connection, schema: str) -> None:
        """Nothing to create: an SQLite "schema" is an attached database."""

    def replace_table(self, stage: sa.Table, target: sa.Table) -> None:
        drop, rename = self.replace_statements(stage, target)
        raw = self.engine.raw_connection()
        try:
            con: Any = raw.driver_connection
            con.isolation_level = None
            con.execute("BEGIN IMMEDIATE")
            try:
                con.execute(drop)
                con.execute(rename)
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        finally:
            raw.close()

    # -- reading ---------------------------------------------------------------------------------
    def start_value(self, value: Any, prop: JSONSchema) -> Any:
        return value  # compared with the stored text as it is

    def read(self, read: SQLRead) -> Iterator[Batch]:
        boundary = read.boundary
        target = read.arrow_schema()
        # a table of a plain file: the statement written here, run on sqlite3 (ADBC for a large
        # file) without SQLAlchemy; anything else (a query, a partition's range) compiled by it
        own = self.file is not None and type(read.source) is SQLSource and read.source.query is None
        adbc = self.adbc and (not own or _file_size(self.database) >= ADBC_MIN_BYTES)
        if adbc and self.file is not None and not _adbc_importable():  # found, but does not import
            adbc = self.adbc = False
        size = read.batch_size or ARROW_BATCH_SIZE
        rows: int | None = None
        table = type(read.source) is SQLSource and read.source.query is None and bool(read.source.table)
        # a row of batch_bytes / ROWID_READ_ROWS needs a file at least that large
        large = bool(ROWID_READ_ROWS and read.batch_bytes)
        large = large and _file_size(self.database) >= (read.batch_bytes or 0) // ROWID_READ_ROWS
        mean = None
        if table and (adbc or (boundary is not None and large)):
            # driver batches of about batch_bytes when size rows hold more (sized from the table's
            # first rows, also when SQLAlchemy compiles the statement: engine plugins, partitions)
            mean = _mean_row(self.database, read, target)
            rows = _rows_within(mean, read, size)
        rowid = None
        if table and boundary is not None and mean and mean * ROWID_READ_ROWS >= (read.batch_bytes or 0):
            rowid = _rowid_of(self.database, read)
        if rowid is not None:
            sql, params = "", list[Any]()  # read in two steps (_chunks_rowid)
        elif own:
            sql, params = (table_select_sentinel if adbc else table_select)(read, target)
        else:
            rk_param: Any = sa.bindparam("rk_value", boundary.value if boundary else None)
            stmt = self._select_sentinel(read, rk_param, target) if adbc else read.select(rk_param)
            compiled = stmt.compile(dialect=self.dialect)
            sql = str(compiled)
            params = [compiled.params[name] for name in (compiled.positiontup or [])]
        names = list(read.props)
        rk_i = names.index(boundary.rk) if boundary else -1
        pk_i = [names.index(k) for k in boundary.pks] if boundary else []
        chunks: Any
        if rowid is not None:
            chunks = self._chunks_rowid(read, target, rowid, rows or size)
        elif adbc:
            chunks = self._chunks_adbc(sql, params, target, size, read, rows)
        else:
            chunks = self._chunks(sql, params, target, size, read)
        try:
            for table, raw in chunks:
                rk = pk = None
                if boundary is not None:

                    def rk(i: int, _raw: Any = raw) -> Any:
                        return json_form(_raw(rk_i, i))

                    def pk(i: int, _raw: Any = raw) -> tuple[Any, ...]:
                        return tuple(json_form(_raw(c, i)) for c in pk_i)

                batch = read.emit(table, rk, pk)
                if batch is not None:
                    yield batch
                if read.done:
                    break
        finally:
            chunks.close()

    def _select_sentinel(self, read: SQLRead, rk_param: Any, target: pa.Schema) -> Any:
        """The query for adbc-driver-sqlite, which infers each column's type from the values of its
        first batch (all-NULL → int64, then fails on a string): a first row of typed sentinel values
        (marked ``_o = 0``, dropped on reading) fixes every type. Text-like columns are read
        ``CAST(… AS TEXT)`` so a number stored in them cannot break the inferred type either."""
        import pyarrow.types as pt

        names = list(read.props)
        frm = read.source.clause(names)
        sentinels, cols = [], []
        for f in target:
            c = frm.c[f.name]
            if pt.is_integer(f.type) or pt.is_boolean(f.type):
                sentinels.append(sa.literal(0, sa.Integer))
                cols.append(c)
            elif pt.is_floating(f.type):
                sentinels.append(sa.literal(0.5, sa.Float))
                cols.append(c)
            elif pt.is_binary(f.type):
                sentinels.append(sa.literal(b"\x00", sa.LargeBinary))
                cols.append(sa.cast(c, sa.LargeBinary))
            else:
                sentinels.append(sa.literal("", sa.Text))
                cols.append(sa.cast(c, sa.Text))
        head = sa.select(
            sa.literal(0, sa.Integer).label("_o"), *[v.label(f"s{i}") for i, v in enumerate(sentinels)]
        )
        body = sa.select(
            sa.literal(1, sa.Integer).label("_o"), *[c.label(f"s{i}") for i, c in enumerate(cols)]
        ).select_from(frm)
        order: list[Any] = []
        boundary = read.boundary
        if boundary is not None:
            if boundary.value is not None:
                body = body.where(frm.c[boundary.rk] >= rk_param)
            order = [f"s{names.index(boundary.rk)}", *[f"s{names.index(k)}" for k in boundary.pks]]
        stmt: Any = sa.union_all(head, body)
        if order:
            stmt = stmt.order_by(stmt.selected_columns["_o"], *[stmt.selected_columns[o] for o in order])
        if read.limit is not None:
            stmt = stmt.limit(read.limit + read.extra_rows() + 1)
        return stmt

    def _chunks(
        self, sql: str, params: list[Any], target: pa.Schema, size: int, read: SQLRead
    ) -> Iterator[tuple[pa.Table, _Getter]]:
        """sqlite3 ``fetchmany`` + column-wise Arrow arrays (the fallback without adbc-driver-sqlite)."""
        import pyarrow as pa

        raw: Any = self._connect() if self.file is not None else self.engine.raw_connection()
        try:
            cur = (raw if self.file is not None else raw.driver_connection).cursor()
            try:
                cur.execute(sql, params)
            except Exception as exc:
                raise self.read_error(exc, read) from None
            stream = read.spec.name
            for rows in read.fetch(cur, size, _variable_width(target)):
                cols = list(zip(*rows, strict=True))
                arrays = [_array(cols[i], f, self._field_error(stream, f.name)) for i, f in enumerate(target)]
                yield pa.Table.from_arrays(arrays, schema=target), _tuple_getter(cols)
            cur.close()
        finally:
            raw.close()

    def _chunks_rowid(
        self, read: SQLRead, target: pa.Schema, rowid: str, n: int
    ) -> Iterator[tuple[pa.Table, _Getter]]:
        """A sorted read of rows of megabytes in two steps (:data:`ROWID_READ_ROWS`): the rowids in
        the read's order (filter, order and limit of :func:`table_select`; SQLite's sorter holds
        only the keys), then ``n`` rows at a time fetched by rowid and put back in that order, all
        in one read transaction (one snapshot), ended before the last chunk is handed out."""
        import pyarrow as pa

        raw: Any = self._connect() if self.file is not None else self.engine.raw_connection()
        try:
            con = raw if self.file is not None else raw.driver_connection
            cur = con.cursor()
            began = not con.in_transaction
            try:
                if began:
                    cur.execute("BEGIN")
                sql, params = table_select_keys(read, rowid)
                ids = [r[0] for r in cur.execute(sql, params).fetchall()]
            except Exception as exc:
                raise self.read_error(exc, read) from None
            stream = read.spec.name
            for start in range(0, len(ids), n):
                part = ids[start : start + n]
                try:
                    got = {
                        r[0]: r[1:] for r in cur.execute(table_select_rowids(read, rowid, len(part)), part)
                    }
                    if began and start + n >= len(ids):
                        cur.execute("COMMIT")  # the read lock released before the last chunk
                except Exception as exc:
                    raise self.read_error(exc, read) from None
                cols = list(zip(*[got[i] for i in part], strict=True))
                del got
                arrays = [_array(cols[i], f, self._field_error(stream, f.name)) for i, f in enumerate(target)]
                yield pa.Table.from_arrays(arrays, schema=target), _tuple_getter(cols)
                del cols, arrays  # not held while the next chunk is fetched
            cur.close()
        finally:
            raw.close()

    def _adbc_batches(self, reader: Any, read: SQLRead) -> Iterator[pa.RecordBatch]:
        """The driver's batches without the sentinel row and the marker column."""
        import pyarrow as pa

        def next_batch() -> pa.RecordBatch | None:
            try:
                return reader.read_next_batch()
            except StopIteration:
                return None
            except Exception as exc:
                raise self.db_error(exc, f"reading {read.source.label}", stream=read.spec.name) from None

        # one batch of read-ahead: the last batch is handed out only after the driver has reached the
        # end of the result, so the statement (and SQLite's read lock) is released before a consumer
        # writes to the same database
        rb = next_batch()
        first = True
        while rb is not None:
            nxt = next_batch()
            if first:
                rb, first = rb.slice(1), False
            if rb.num_rows:
                yield pa.RecordBatch.from_arrays(rb.columns[1:], names=rb.schema.names[1:])
            rb = nxt

    def _chunks_adbc(
        self,
        sql: str,
        params: list[Any],
        target: pa.Schema,
        size: int,
        read: SQLRead,
        rows: int | None = None,
    ) -> Iterator[tuple[pa.Table, _Getter]]:
        """adbc-driver-sqlite: the whole result decoded in C into Arrow, then exact casts. ``rows``:
        the driver's batch rows when fewer than ``size`` (the byte limit, :func:`_rows_within`).

        Through the driver manager's low-level API, what its DB-API module does for ``execute`` +
        ``fetch_record_batch``: that module imports ``pyarrow.dataset`` (~0.05 CPU-s, a tenth of a
        small sync) for features a read does not use."""
        import adbc_driver_manager
        import adbc_driver_sqlite
        import pyarrow as pa

        from .preopen import bundled_driver_path

        stream = read.spec.name
        handles: list[Any] = []  # closed in reverse order: statement, connection, database
        try:
            try:
                # adbc_driver_sqlite.connect(database) without its importlib.resources lookup
                # (the driver's own connect where its library is not beside the package)
                driver = bundled_driver_path(adbc_driver_sqlite)
                if driver is None:
                    handles.append(adbc_driver_sqlite.connect(self.database))
                else:
                    uri = {} if self.database is None else {"uri": self.database}
                    handles.append(adbc_driver_manager.AdbcDatabase(driver=driver, **uri))
                # an ADBC connection starts in autocommit mode: no read transaction held
                handles.append(adbc_driver_manager.AdbcConnection(handles[0]))
            except Exception as exc:
                raise self.db_error(exc, "connect (ADBC SQLite)", stream=stream) from None
            stmt = adbc_driver_manager.AdbcStatement(handles[1])
            handles.append(stmt)
            try:
                stmt.set_options(**{"adbc.sqlite.query.batch_rows": str(rows or size)})
                stmt.set_sql_query(sql)
                stmt.prepare()
                if params:  # one row of parameters, as the DB-API module binds a tuple
                    stmt.bind(
                        pa.record_batch([[p] for p in params], names=[str(i) for i in range(len(params))])
                    )
                handle, _ = stmt.execute_query()
                reader = pa.RecordBatchReader._import_from_c(handle.address)
            except Exception as exc:
                raise self.read_error(exc, read) from None
            handles.append(reader)
            parts = self._adbc_batches(reader, read)
            for part in rebatch(parts, size, max_bytes=read.batch_bytes if rows else None):
                arrays = [
                    _coerce(part.column(i), f, self._field_error(stream, f.name))
                    for i, f in enumerate(target)
                ]
                yield pa.Table.from_arrays(arrays, schema=target), _arrow_getter(part)
        finally:
            close_quietly(*reversed(handles))

    # -- writing ---------------------------------------------------------------------------------
    def write(self, write: SQLWrite, table: pa.Table) -> int | None:
        if write.load_method != "upsert" and self.adbc:
            return self._write_adbc(write, table)
        if self._raw is None:
            raw = self.engine.raw_connection()
            raw.driver_connection.isolation_level = None  # type: ignore[union-attr]  # explicit BEGIN
            self._raw = raw
        con = self._raw.driver_connection
        names = table.column_names
        key = tuple(names)
        sql = write.cache.get(key)
        if sql is None:
            sql = write.cache[key] = self._insert_sql(write, names)
        columns = [_storage_values(table.column(n)) for n in names]
        rows = list(zip(*columns, strict=True))
        try:
            con.execute("BEGIN IMMEDIATE")
            try:
                affected = con.executemany(sql, rows).rowcount
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        except Exception as exc:
            raise self.schema_error(
                f"batch not written (rolled back): {exc}",
                stream=write.stream.name,
                field=column_named_in(str(exc), names),
            ) from None
        return int(affected)

    def _write_adbc(self, write: SQLWrite, table: pa.Table) -> int:
        """Append through adbc-driver-sqlite's bulk ingest (the values in this adapter's storage forms)."""
        import adbc_driver_sqlite.dbapi as adbc
        import pyarrow as pa

        if self._adbc_conn is None:
            try:
                self._adbc_conn = adbc.connect(self.database)
                cur = self._adbc_conn.cursor()
                cur.execute("PRAGMA busy_timeout = 60000")  # wait for readers rather than fail
                cur.fetchall()
                cur.close()
            except Exception as exc:
                raise self.db_error(exc, "connect (ADBC SQLite)", stream=write.stream.name) from None
        conn = self._adbc_conn
        names = table.column_names
        data = pa.Table.from_arrays([_storage(table.column(n)) for n in names], names=names)
        schema = write.table.schema if write.table.schema not in (None, "main") else None
        cur = conn.cursor()
        try:
            cur.adbc_ingest(write.table.name, data, mode="append", db_schema_name=schema)
            conn.commit()
        except Exception as exc:
            try:
                conn.rollback()
            except Exception:  # pragma: no cover
                self._adbc_conn = None
            msg = " ".join(str(exc).split()).split(" query was:")[0].replace("INTERNAL: ", "")[:400]
            raise self.schema_error(
                f"batch not written (rolled back): {msg}",
                stream=write.stream.name,
                field=column_named_in(msg, names),
            ) from None
        finally:
            cur.close()
        return table.num_rows

    def _insert_sql(self, write: SQLWrite, names: list[str]) -> str:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        values: dict[Any, Any] = {write.table.c[n]: sa.bindparam(f"p{i}") for i, n in enumerate(names)}
        stmt = sqlite_insert(write.table).values(values)
        if write.load_method == "upsert":
            stmt = merge_on_conflict(stmt, write.table, write.keys, names)
        compiled = stmt.compile(dialect=self.dialect)
        order = list(compiled.positiontup or [])
        if order != [f"p{i}" for i in range(len(names))]:  # pragma: no cover - defensive
            raise self.adapter.error(f"unexpected parameter order {order}")
        return str(compiled)


# ------------------------------------------------------------------------------------------ helpers
def _engine_plugins(adapter: Any) -> bool:
    """Whether the adapter's SQL extensions load SQLAlchemy engine plugins (then its engine opens
    every connection)."""
    return any(ext.engine_plugins for ext in getattr(adapter, "extensions", None) or ())


def _variable_width(target: pa.Schema) -> list[int]:
    """The indexes of the text and binary columns of ``target`` (what a byte limit measures)."""
    import pyarrow.types as pt

    return [
        i
        for i, f in enumerate(target)
        if pt.is_string(f.type)
        or pt.is_large_string(f.type)
        or pt.is_binary(f.type)
        or pt.is_large_binary(f.type)
    ]


#: Rows of the table's start measured by :func:`_rows_within`.
SAMPLE_ROWS = 100


def _mean_row(database: str, read: SQLRead, target: pa.Schema) -> float | None:
    """The mean length of the text and binary values of a row of the table's first
    :data:`SAMPLE_ROWS` rows (``None``: no byte limit, nothing to measure, or an empty table)."""
    var = _variable_width(target)
    if not var or not read.batch_bytes:
        return None
    names = list(read.props)
    lengths = " + ".join(f"coalesce(length({quote(names[i])}), 0)" for i in var)
    cols = ", ".join(quote(names[i]) for i in var)
    sql = f"SELECT avg({lengths}) FROM (SELECT {cols} FROM {_table_from(read)} LIMIT {SAMPLE_ROWS})"
    try:
        con = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
        try:
            mean = con.execute(sql).fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return None  # the read itself reports what is wrong
    return float(mean) if mean else None


def _rows_within(mean: float | None, read: SQLRead, size: int) -> int | None:
    """The rows of a driver batch within ``read.batch_bytes`` at a row of ``mean`` bytes
    (:func:`_mean_row`; ``None``: ``size`` rows fit, or nothing measured). ADBC decodes a whole
    batch at once, so its batch size is set up front; a table whose first rows are much smaller than
    its later ones still gets batches of the first rows' size (the sqlite3 path measures every
    fetch)."""
    if not mean or not read.batch_bytes or mean * size <= read.batch_bytes:
        return None
    return max(1, min(size, int(read.batch_bytes // mean)))


#: A sorted table read whose byte limit leaves at most this many rows in a batch (a mean row of
#: ``batch_bytes / 256`` — 64 KiB at the default — or more) is read in two steps by rowid
#: (:meth:`SQLiteBackend._chunks_rowid`): SQLite's sorter for ``ORDER BY (replication key, primary
#: key)`` keeps large records in memory rather than spilling them. Peak RSS over a 15-18 MB base of a
#: bare sqlite3 ``SELECT * … ORDER BY`` of 300 MB of rows (2026-12-02): 1 KB rows +3 MB, 10 KB +5,
#: 100 KB +19, 256 KB +49, 512 KB +110; ten 10 MB rows +160 (177 MB) against none sorting the keys
#: only. A second lookup per row by rowid costs microseconds against reading 64 KiB; ordinary rows
#: keep the one statement (and ADBC's decoding in C).
ROWID_READ_ROWS = 256


def _rowid_of(database: str, read: SQLRead) -> str | None:
    """The rowid name of the read's table (:func:`rowid_alias`), ``None`` when it has none."""
    try:
        con = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
        try:
            return rowid_alias(con, read)
        finally:
            con.close()
    except sqlite3.Error:
        return None  # the one-statement read reports what is wrong


def _file_size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _value_errors() -> tuple[type[BaseException], ...]:
    """A stored value that does not fit its column: Arrow's errors and a decimal's."""
    return (*arrow_errors(), ArithmeticError)


def _tuple_getter(cols: list[tuple[Any, ...]]) -> _Getter:
    def get(c: int, i: int) -> Any:
        return cols[c][i]

    return get


def _arrow_getter(table: Any) -> _Getter:
    def get(c: int, i: int) -> Any:
        return table.column(c)[i].as_py()

    return get


def _array(values: Sequence[Any], f: pa.Field, err: Callable[[str], Exception]) -> pa.Array:
    """One column of SQLite values as an Arrow array of ``f.type`` (fast cast, Python fallback)."""
    import pyarrow as pa
    import pyarrow.types as pt

    t = f.type
    try:
        if pt.is_timestamp(t) or pt.is_date(t) or pt.is_time(t) or pt.is_decimal(t):
            if all(isinstance(v, str) or v is None for v in values):
                try:
                    return pa.array(values, pa.string()).cast(t)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                    if pt.is_timestamp(t) and t.tz is None:
                        try:  # offsets in a naive column: normalised to UTC
                            return pa.array(values, pa.string()).cast(pa.timestamp(t.unit, "UTC")).cast(t)
                        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                            pass
            return pa.array([_value(v, t) for v in values], t)
        if pt.is_boolean(t):
            try:
                return pa.array(values, pa.int64()).cast(t)
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                return pa.array([_value(v, t) for v in values], t)
        if pt.is_integer(t) or pt.is_floating(t):
            return pa.array(values, t)
        if pt.is_binary(t):
            return pa.array([v.encode() if isinstance(v, str) else v for v in values], t)
        if pt.is_string(t):
            try:
                return pa.array(values, t)
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                return pa.array([None if v is None else _text(v) for v in values], t)
        return pa.array(values, t)
    except _value_errors() as exc:
        raise err(f"cannot read a value as {t}: {exc}") from None


def _coerce(arr: pa.Array, f: pa.Field, err: Callable[[str], Exception]) -> pa.Array:
    """An Arrow column read by adbc-driver-sqlite cast to ``f.type`` (exact casts; Python fallback)."""
    import pyarrow as pa
    import pyarrow.types as pt

    t = f.type
    if arr.type == t:
        return arr
    if pt.is_string(arr.type) and (pt.is_timestamp(t) or pt.is_date(t) or pt.is_time(t) or pt.is_decimal(t)):
        return _array(arr.to_pylist(), f, err) if pt.is_time(t) else _string_cast(arr, t, err)
    try:
        if pt.is_decimal(t) and pt.is_floating(arr.type):
            return arr.cast(pa.string()).cast(t)
        if pt.is_string(t) and not pt.is_string(arr.type):
            return _array(arr.to_pylist(), f, err)
        return arr.cast(t, safe=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return _array(arr.to_pylist(), f, err)


_OFFSET = re.compile(r"(?:[+-]\d\d:?\d\d|[Zz])$")


def _has_offset(arr: pa.Array) -> bool:
    """Whether the first non-null text of ``arr`` ends with a zone offset."""
    valid = arr.drop_null()
    return len(valid) > 0 and bool(_OFFSET.search(str(valid[0].as_py())))


def _string_cast(arr: pa.Array, t: pa.DataType, err: Callable[[str], Exception]) -> pa.Array:
    import pyarrow as pa
    import pyarrow.types as pt

    if pt.is_timestamp(t) and t.tz is None and _has_offset(arr):
        try:  # offsets in a naive column: normalised to UTC
            return arr.cast(pa.timestamp(t.unit, "UTC")).cast(t)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    try:
        return arr.cast(t)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    if pt.is_timestamp(t) and t.tz is None:
        try:  # offsets in a naive column: normalised to UTC
            return arr.cast(pa.timestamp(t.unit, "UTC")).cast(t)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    try:
        return pa.array([_value(v, t) for v in arr.to_pylist()], t)
    except _value_errors() as exc:
        raise err(f"cannot read a value as {t}: {exc}") from None


def _text(v: Any) -> str:
    if isinstance(v, bytes):
        return v.decode("utf-8")
    if isinstance(v, float) and v.is_integer():
        return repr(v)
    return str(v)


def _value(v: Any, t: pa.DataType) -> Any:
    import pyarrow.types as pt

    if v is None:
        return None
    if pt.is_timestamp(t):
        if isinstance(v, int | float):
            d = _dt.datetime.fromtimestamp(v, _dt.timezone.utc)
        else:
            d = parse_datetime(str(v))
        if t.tz is None:
            return d.astimezone(_dt.timezone.utc).replace(tzinfo=None) if d.tzinfo else d
        return d if d.tzinfo else d.replace(tzinfo=_dt.timezone.utc)
    if pt.is_date(t):
        return _dt.date.fromisoformat(str(v)[:10])
    if pt.is_time(t):
        return parse_time(str(v))
    if pt.is_decimal(t):
        if isinstance(v, float):
            v = repr(v)
        try:
            return fit_decimal(Decimal(str(v)), t.scale, t.precision)
        except ValueError as exc:
            raise ValueError(f"{v!r} {exc}") from None
    if pt.is_boolean(t):
        if isinstance(v, str):
            low = v.strip().lower()
            if low in ("true", "t", "1", "yes"):
                return True
            if low in ("false", "f", "0", "no"):
                return False
            raise ValueError(f"{v!r} is not a boolean")
        return bool(v)
    return v


def _storage(col: pa.ChunkedArray) -> pa.ChunkedArray:
    """An Arrow column in this adapter's SQLite storage forms (text timestamps, plain decimals, 0/1 …)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.types as pt

    t = col.type
    if pt.is_timestamp(t):
        if t.tz is not None:
            return pc.strftime(col.cast(pa.timestamp("us", "UTC")), format="%Y-%m-%dT%H:%M:%S+00:00")
        return pc.strftime(col.cast(pa.timestamp("us")), format="%Y-%m-%d %H:%M:%S")
    if pt.is_date(t) or pt.is_time(t) or pt.is_large_string(t):
        return col.cast(pa.string())
    if pt.is_boolean(t):
        return col.cast(pa.int64())
    if pt.is_decimal(t):  # plain notation (Arrow's cast may give "1E-10")
        texts = [None if v is None else json_form(v) for v in col.to_pylist()]
        return pa.chunked_array([pa.array(texts, pa.string())])
    if pt.is_struct(t) or pt.is_list(t) or pt.is_large_list(t):
        vals = [r["v"] for r in arrow_to_records(pa.table({"v": col}))]
        texts = [None if v is None else json_text(v) for v in vals]
        return pa.chunked_array([pa.array(texts, pa.string())])
    return col


def _storage_values(col: pa.ChunkedArray) -> list[Any]:
    """Python values of an Arrow column in the storage form this adapter uses on SQLite."""
    return _storage(col).to_pylist()  # type: ignore[no-any-return]
