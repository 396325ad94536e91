"""A plain PostgreSQL source's discovery and first read, begun in the head-start thread (issue 15).

``dcapix run`` opens a plain ``postgresql://`` source's ADBC database handle and first connection in a
thread while it imports the rest of the run (:mod:`.preopen`). For a source whose configured streams
are tables, that thread goes on (:class:`ReadAhead`): on that connection it asks the default schema
and runs the catalog query of discovery (:func:`.pg_direct.catalog_rows`) for the configured tables,
then, for the first configured stream when it has no replication key, starts the read the run would
start (:func:`start_read`: the statement of :func:`.pg_direct.table_select` for the discovered
columns; ADBC for a small table, our binary ``COPY`` decoder and page ranges for a large one). The
server's work and the GIL-free decoding then overlap the main thread's imports.

The run **takes** what was begun, and only when it is exactly what it would do itself:

* discovery (:meth:`PostgreSQLBackend.default_schema` / ``reflect``): the rows of the catalog query
  of the same schema and table names, mapped by the run (:func:`.pg_direct.reflected_of`);
* the read (``PostgreSQLBackend.read``): a full-table read (no bookmark, no limit) whose statement
  text, stream name, ``read_connections`` and decoder setting are those the thread used.

Anything else — another stream read first, columns chosen by the run, a bookmark from the state, a
partition, a ``query`` stream, an error in the thread (the run then meets and words the error
itself) — closes what was begun (cursor, connections, threads) and the run reads as before
(:meth:`ReadAhead.close`). Memory stays bounded: the thread hands batches over through a queue of
:data:`QUEUE_BATCHES` (it holds one more while it waits), a page-range read keeps its own bounds
(:mod:`.pg_ranges`). What no read took is closed when the backend closes its handle
(:func:`.preopen.release`) or the run ends (:func:`.preopen.close_all`).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator, Mapping
from functools import partial
from typing import Any

__all__ = [
    "QUEUE_BATCHES",
    "AheadPlan",
    "ReadAhead",
    "Started",
    "copy_connection",
    "plan_of",
    "start_read",
]

log = logging.getLogger("dc_api_x.adapters.sql")

#: batches the thread has read and the run not yet taken (the thread blocks past that)
QUEUE_BATCHES = 1

#: the keys of a configured table stream (SQLStreamOptions without ``query``)
_STREAM_KEYS = frozenset(
    ("name", "table", "schema", "columns", "primary_keys", "primary_key", "replication_key")
)


# ------------------------------------------------------------------------------------------ the plan
class _Stream:
    """One configured table stream, as :meth:`SQLAdapter._configured` reads it."""

    def __init__(
        self,
        table: str,
        schema: str | None,
        name: str | None,
        columns: list[str] | None,
        keys: list[str] | None,
        rk: str | None,
    ) -> None:
        self.table, self.schema, self.name = table, schema, name
        self.columns, self.keys, self.rk = columns, keys, rk


class AheadPlan:
    """What the thread begins for the raw options of a source (:func:`plan_of`)."""

    def __init__(
        self, streams: list[_Stream], schema: str | None, separator: str, read_connections: int
    ) -> None:
        self.streams = streams
        #: the ``schema`` option, the ``stream_name_separator`` and ``read_connections`` options
        self.schema, self.separator, self.read_connections = schema, separator, read_connections
        #: the reflections discovery runs: (schema or None for the default one, table names), in order
        self.discoveries: list[tuple[str | None, tuple[str, ...]]] = []
        by_schema: dict[str | None, list[str]] = {}
        for s in streams:
            by_schema.setdefault(s.schema, []).append(s.table)
        self.discoveries = [(k, tuple(v)) for k, v in by_schema.items()]

    def stream_name(self, s: _Stream, default: str) -> str:
        """The stream's name (:meth:`SQLAdapter._stream_name`)."""
        if s.name:
            return s.name
        if s.schema is None or s.schema == (self.schema or default):
            return s.table
        return f"{s.schema}{self.separator}{s.table}"


def _names(v: Any) -> list[str] | bool | None:
    """A list of names option (``None``; a string for ``primary_key``) or ``False``: not plain."""
    if v is None:
        return None
    if type(v) is str:
        return [v]
    if type(v) is list and all(type(x) is str for x in v):
        return list(v)
    return False


def plan_of(config: Mapping[str, Any]) -> AheadPlan | None:
    """The :class:`AheadPlan` of a source's raw options, or ``None`` (nothing is begun): the options
    must list ``streams``, every one a table (a ``"schema.table"`` string or a mapping without
    ``query``), with plain values, and not ask for partitions (an endpoint file's ``partitions`` /
    ``concurrency``); anything unusual is left to the run, which validates it."""
    streams = config.get("streams")
    schema = config.get("schema")
    sep = config.get("stream_name_separator", "-")
    rc = config.get("read_connections", 2)
    if type(streams) is not list or not streams or (schema is not None and type(schema) is not str):
        return None
    if "partitions" in config or "concurrency" in config:  # (an endpoint file's runner keys)
        return None
    if type(sep) is not str or type(rc) is not int or rc < 1:
        return None
    out: list[_Stream] = []
    for item in streams:
        if type(item) is str:
            prefix, _, bare = item.rpartition(".")
            out.append(_Stream(bare, prefix or schema or None, None, None, None, None))
            continue
        if type(item) is not dict or set(item) - _STREAM_KEYS or not set(item) & {"table", "name"}:
            return None
        if "primary_key" in item and "primary_keys" in item:
            return None
        plain = [item.get(k) for k in ("name", "table", "schema", "replication_key")]
        if any(v is not None and type(v) is not str for v in plain):
            return None
        columns = _names(item.get("columns"))
        keys = _names(item.get("primary_keys", item.get("primary_key")))
        if columns is False or keys is False or (type(item.get("columns")) is str):
            return None
        name, table, sch, rk = plain
        if not (table or name):
            return None
        out.append(_Stream(table or name, sch or schema, name, columns or None, keys, rk))  # type: ignore[arg-type]
    return AheadPlan(out, schema, sep, rc)


# ---------------------------------------------------------------------------------- starting a read
class Started:
    """A read started by :func:`start_read`: ``reader`` (the record batches) and what it holds."""

    def __init__(self) -> None:
        self.reader: Any = None
        #: the page-range reader (:mod:`.pg_ranges`), our COPY decoder's connection (:mod:`.pgcopy`),
        #: the ADBC cursor of the statement (of the caller's connection)
        self.ranges: Any = None
        self.own: Any = None
        self.cur: Any = None

    def close(self) -> None:
        ranges, own, cur = self.ranges, self.own, self.cur
        self.ranges = self.own = self.cur = self.reader = None
        try:
            if ranges is not None:
                ranges.close()
        finally:
            try:
                if own is not None:
                    own.close()
            finally:
                if cur is not None:
                    cur.close()


def copy_connection(uri: str, name: str, sql: str, say: Callable[..., Any], opened: Any = None) -> Any:
    """A libpq connection of ``uri`` reading ``sql`` through our binary COPY decoder (:mod:`.pgcopy`),
    or ``None`` (ADBC reads it): the decoder is not available, or a result column has a type it does
    not read (the server's description of ``sql``), or the connection fails (``say``: logged).
    ``opened``: a fresh connection of ``uri`` opened ahead (:class:`Prep`), used instead of a new one."""
    from . import pgcopy

    ok, why = pgcopy.status()
    if not ok:
        say(logging.DEBUG, "sql: stream %s: read through ADBC (%s)", name, why)
        if opened is not None:
            opened.close()
        return None
    try:
        conn = opened if opened is not None else pgcopy.CopyConnection(uri, name=name)
        conn.name = name
    except Exception as exc:  # (ADBC's connection then reports what is wrong, if anything)
        say(logging.INFO, "sql: stream %s: read through ADBC (%s)", name, exc)
        return None
    try:
        if conn.describe(sql) is not None:
            return conn
        say(logging.DEBUG, "sql: stream %s: read through ADBC (a column type the decoder lacks)", name)
    except Exception as exc:
        say(logging.INFO, "sql: stream %s: read through ADBC (%s)", name, exc)
    conn.close()
    return None


def start_read(
    read: Any,
    conn: Any,
    one: str,
    ranged: Callable[[list[tuple[int | None, int | None]]], list[str]],
    *,
    name: str,
    read_connections: int,
    guc: tuple[str, str] | None,
    copy_connection: Callable[[str], Any],
    connect_reader: Callable[..., Any],
    read_ranges: Callable[..., Any],
    say: Callable[..., Any],
) -> Started:
    """Start reading ``one`` (the statement of ``read``) on the autocommit ADBC connection ``conn``,
    as ``PostgreSQLBackend.read`` does and the thread of :class:`ReadAhead` does for it: the table's
    size (:func:`.pg_ranges.table_estimate`) picks page ranges (``ranged``: their statements) over
    ``read_connections`` connections, our COPY decoder (``copy_connection(sql)``, a table of at least
    :data:`.pgcopy.MIN_ROWS` estimated rows) or ADBC; ``guc``: the bookmark's session setting
    (name, value). ``connect_reader(layout=None, name="")`` opens a further range connection.
    Raises what the server or driver raised (what is open then is closed)."""
    from . import pgcopy
    from .pg_direct import server_message
    from .pg_ranges import plan_ranges, table_estimate

    started = Started()
    try:
        cur = started.cur = conn.cursor()
        decoder = pgcopy.enabled()
        sizes = None  # (estimated rows, bytes, …) of a full-table read's table
        if decoder[0] or read_connections >= 2:
            sizes = table_estimate(read, cur)
        plan = plan_ranges(read, cur, read_connections, sizes)
        if guc is not None:
            cur.execute("SELECT set_config($1, $2, false)", parameters=guc)
            cur.fetchall()
        sqls: list[str] = []
        if plan is not None:
            say(
                logging.INFO,
                "sql: stream %s: ~%d rows, %d page ranges over %d connections (one snapshot)",
                name,
                plan.estimate,
                len(plan.bounds) + 1,
                read_connections,
            )
            sqls = ranged(plan.ranges())
        # our own binary COPY decoder (.pgcopy) when every column has a type it reads
        # (a small table: ADBC, whose connection is open; ours costs ~0.02 CPU-s to set up)
        first: Any = None
        if decoder[0] and (plan is not None or sizes is None or sizes[0] >= pgcopy.MIN_ROWS):
            first = started.own = copy_connection(sqls[0] if plan is not None else one)
        else:
            say(logging.DEBUG, "sql: stream %s: read through ADBC (%s)", name, decoder[1])
        if first is not None and guc is not None:
            first.exec("SELECT set_config($1, $2, false)", list(guc))
        if plan is not None:
            cur.close()
            connect: Any = connect_reader
            if first is None:
                first = conn
            else:  # further connections of our decoder, of the same columns
                connect = partial(connect_reader, first.layout, name)
            try:
                started.reader = started.ranges = read_ranges(connect, first, sqls, read_connections)
            except Exception as exc:  # no shared snapshot (e.g. a pooler in transaction mode)
                say(logging.INFO, "sql: stream %s: one COPY (%s)", name, server_message(exc))
                plan = None
                cur = started.cur = conn.cursor()
        if plan is None:
            if started.own is not None:
                started.reader = started.own.record_batches(one)
            else:
                cur.execute(one)
                started.reader = cur.fetch_record_batch()
    except BaseException:
        try:
            started.close()
        except Exception:  # pragma: no cover - the first error is the one reported
            pass
        raise
    return started


# ------------------------------------------------------------------------------- the head-start read
class _TableSource:
    def __init__(self, table: str, schema: str | None) -> None:
        self.table, self.schema, self.query = table, schema, None


class _TableRead:
    """What :func:`.pg_direct.table_select` and :mod:`.pg_ranges` read of a full-table ``SQLRead``."""

    boundary = None
    limit = None

    def __init__(self, props: dict[str, Any], table: str, schema: str | None) -> None:
        self.props = props
        self.source = _TableSource(table, schema)


class _End:
    """The end of the batches (or, with ``error``, what reading them raised)."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


class Prep:
    """What the first read needs besides the handle, made in threads of their own: pyarrow imported
    while the handle opens (started here), and — once the table's estimated size says our COPY
    decoder reads it (:meth:`connect`, asked first on the handle's connection) — a libpq connection
    for the decoder opened (:mod:`.pgcopy`: libpq loaded, the server connection and its SCRAM
    exchange, ~60 M instructions) while discovery runs; :func:`copy_connection` then uses it instead
    of opening one: the same fresh connection of the same URI. Unused, it is closed (:meth:`close`)."""

    def __init__(self, uri: str) -> None:
        from .preopen import _import_pyarrow

        self.uri = uri
        self.conn: Any = None
        self.closed = False
        self._lock = threading.Lock()
        self._arrow = threading.Thread(target=_import_pyarrow, name="dcapix-pg-preopen-arrow", daemon=True)
        self._arrow.start()
        self._copy: threading.Thread | None = None

    def connect(self) -> None:
        """Open the COPY connection, in a thread."""
        with self._lock:
            if self.closed or self._copy is not None:
                return
            self._copy = threading.Thread(target=self._connect, name="dcapix-pg-preopen-copy", daemon=True)
            self._copy.start()

    def _connect(self) -> None:
        try:
            from . import pgcopy

            if pgcopy.status()[0]:
                conn = pgcopy.CopyConnection(self.uri)
                with self._lock:
                    keep = not self.closed
                    if keep:
                        self.conn = conn
                if not keep:
                    conn.close()
        except Exception:  # copy_connection opens one itself and reports what is wrong
            pass

    def take(self) -> Any:
        """The connection (once), or ``None``."""
        with self._lock:
            copy = self._copy
        if copy is not None:
            copy.join()
        with self._lock:
            conn, self.conn = self.conn, None
        return conn

    def close(self, wait: bool = True) -> None:
        """Close the connection if no read took it, once the threads are done (``wait`` false:
        without waiting for them, e.g. for a server that does not answer: a connection still being
        opened is closed by its thread)."""
        with self._lock:
            self.closed = True
            threads = [t for t in (self._arrow, self._copy) if t is not None]
        if wait:
            for t in threads:
                if t is not threading.current_thread():
                    t.join()
        with self._lock:
            conn, self.conn = self.conn, None
        if conn is not None:
            conn.close()


#: whether a table is large enough for our COPY decoder (one row) or not (none), asked on the
#: handle's connection with ``execute_update`` (its row count: no result set, so no pyarrow) before
#: discovery; the same size :func:`.pg_ranges.table_estimate` reads (``reltuples``, else the heap
#: bytes / 128), and a relation that is not a table or materialized view counts as large (no size:
#: the decoder reads it). Formatted with the table's quoted name (a literal) and the row threshold.
_LARGE_SQL = """
SELECT 1 WHERE COALESCE((
  SELECT CASE WHEN c.reltuples >= 0 THEN c.reltuples ELSE pg_relation_size(c.oid) / 128 END
    FROM pg_catalog.pg_class c
   WHERE c.oid = to_regclass({name}) AND c.relkind IN ('r', 'm')), {rows}) >= {rows}
"""


class ReadAhead:
    """Discovery and the first read of a source, begun on the connection opened ahead (module
    docstring). :meth:`run` runs in the thread that opened the handle ``db`` and its autocommit
    connection ``conn``; the run takes the results (:meth:`default_schema`, :meth:`catalog`,
    :meth:`take_read`) and :meth:`close` closes what it began."""

    def __init__(
        self,
        uri: str,
        plan: AheadPlan,
        db: Any,
        conn: Any,
        forget: Callable[[ReadAhead], None],
        prep: Prep | None = None,
    ) -> None:
        self.uri, self.plan, self.db = uri, plan, db
        self.prep = prep
        self._raw_conn = conn
        self._forget = forget
        self.conn: Any = None  # the DirectConnection of conn
        #: the thread that runs this (made in it: :meth:`close` waits for it)
        self.thread: threading.Thread | None = threading.current_thread()
        self._lock = threading.Lock()
        self.cancel = threading.Event()
        self.closed = False
        #: discovery's results: set once they are in (or will not be)
        self.discovered = threading.Event()
        self._default: str | None = None
        self._catalog: dict[tuple[str, tuple[str, ...]], list[tuple[Any, ...]]] = {}
        #: the read: set once it is started (or will not be)
        self.decided = threading.Event()
        self.sql: str | None = None
        self.name: str | None = None
        self.decoder: tuple[bool, str] | None = None
        self.started: Started | None = None
        self.reader: Any = None  # what the run iterates (the page-range reader, or the queue)
        self.taken = False
        self._queue: queue.Queue[Any] = queue.Queue(QUEUE_BATCHES)
        self._said: list[tuple[Any, ...]] = []  # the log records of start_read, emitted by the taker

    # -- the thread ----------------------------------------------------------------------------
    def run(self, started: Callable[[], Any] | None = None) -> None:
        """Discovery, then the first stream's read; the batches of a single statement are read here
        into the queue until the run has them all or closes this (in the opener's thread).
        ``started`` is called once the read is started (or will not be)."""
        try:
            reader = None if self.cancel.is_set() else self._begin()
        except BaseException:  # the run does it again and words the error
            reader = None
        finally:
            prep, self.prep = self.prep, None
            if prep is not None:  # not used (a small table, ADBC): closed
                prep.close()
            self.discovered.set()
            self.decided.set()
            if started is not None:
                started()
        if reader is not None:
            self._pump(reader)

    def _begin(self) -> Any:
        from .pg_direct import DirectConnection, catalog_rows, current_schema

        first = self.plan.streams[0]
        if self.prep is not None and first.rk is None and self._copy_wanted(first):
            self.prep.connect()
        conn = self.conn = DirectConnection.adopt(self._raw_conn)
        default = current_schema(conn)
        catalog = {}
        for schema, names in self.plan.discoveries:
            if self.cancel.is_set():
                return None
            key = (schema or default, names)
            catalog[key] = catalog_rows(conn, key[0], list(names))
        with self._lock:
            self._default, self._catalog = default, catalog
        self.discovered.set()
        if first.rk is not None or self.cancel.is_set():
            return None
        return self._start(first, catalog[(first.schema or default, self.plan.discoveries[0][1])], default)

    def _copy_wanted(self, s: _Stream) -> bool:
        """Whether :func:`start_read` will read the stream's table through our COPY decoder, as its
        estimated size says (:data:`_LARGE_SQL`, asked before discovery and without pyarrow: the
        decoder's connection is then opened meanwhile)."""
        import adbc_driver_manager

        from . import pg_ranges, pgcopy
        from .pg_direct import qualified

        if not pgcopy.enabled()[0]:
            return False
        rows = pgcopy.MIN_ROWS
        if self.plan.read_connections >= 2:
            rows = min(rows, pg_ranges.MIN_ROWS)
        name = "'" + qualified(s.table, s.schema).replace("'", "''") + "'"
        stmt = adbc_driver_manager.AdbcStatement(self._raw_conn)
        try:
            stmt.set_sql_query(_LARGE_SQL.format(name=name, rows=int(rows)))
            found = stmt.execute_update()
        except Exception:  # (the read asks again, and meets the error if there is one)
            return False
        finally:
            stmt.close()
        return found is None or int(found) != 0

    def _start(self, s: _Stream, rows: list[tuple[Any, ...]], default: str) -> Any:
        from . import pgcopy
        from .pg_direct import (
            DirectConnection,
            UnmappedType,
            range_where,
            reflected_of,
            table_select,
            text_cast,
        )
        from .pg_ranges import read_ranges

        try:
            found = reflected_of(rows).get(s.table)
        except UnmappedType:  # discovered through SQLAlchemy: its read is the run's
            return None
        if found is None:  # not found: the run says so
            return None
        cols, pk = found
        props = dict(cols)
        if s.columns:
            if any(c not in props for c in s.columns):
                return None
            props = {c: props[c] for c in s.columns}
        if any(k not in props for k in (s.keys or pk)):
            return None
        read = _TableRead(props, s.table, s.schema)
        sql = table_select(read, lambda n: text_cast(props[n]), None, "")  # type: ignore[arg-type]
        name = self.plan.stream_name(s, default)
        rc = self.plan.read_connections
        uri, db = self.uri, self.db

        def connect_reader(layout: Any = None, name: str = "") -> Any:
            if layout is not None:
                return pgcopy.CopyConnection(uri, layout, name)
            return DirectConnection(db)

        def say(*record: Any) -> None:
            self._said.append(record)

        decoder = pgcopy.enabled()
        started = start_read(
            read,
            self.conn,
            sql,
            lambda ranges: [range_where(sql, a, b) for a, b in ranges],
            name=name,
            read_connections=rc,
            guc=None,
            copy_connection=lambda stmt: copy_connection(uri, name, stmt, say, self._prepped()),
            connect_reader=connect_reader,
            read_ranges=read_ranges,
            say=say,
        )
        with self._lock:
            self.started, self.sql, self.name, self.decoder = started, sql, name, decoder
            if started.ranges is not None:  # its workers read ahead within their own bounds
                self.reader = started.ranges
                return None
            self.reader = self._batches()
        return started.reader

    def _prepped(self) -> Any:
        """The COPY connection :class:`Prep` opened (once), or ``None``."""
        prep, self.prep = self.prep, None
        return prep.take() if prep is not None else None

    def _pump(self, reader: Any) -> None:
        try:
            for rb in reader:
                if not self._put(rb):
                    return
        except BaseException as exc:
            self._put(_End(exc))
            return
        self._put(_End())

    def _put(self, item: Any) -> bool:
        while not self.cancel.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _batches(self) -> Iterator[Any]:
        """The batches the thread read, in order; what reading raised, raised here."""
        while True:
            try:
                item = self._queue.get(timeout=0.1)
            except queue.Empty:
                if self.cancel.is_set():
                    raise RuntimeError("the read begun ahead was closed") from None
                continue
            if isinstance(item, _End):
                if item.error is not None:
                    raise item.error
                return
            yield item

    # -- the run -------------------------------------------------------------------------------
    def default_schema(self) -> str | None:
        """The connection's default schema (``current_schema()``) as the thread found it, or ``None``."""
        self.discovered.wait()
        with self._lock:
            return None if self.closed else self._default

    def catalog(self, schema: str, names: list[str] | None) -> list[tuple[Any, ...]] | None:
        """The catalog query's rows of ``schema`` and ``names``, if the thread ran that query (each
        given once), else ``None``."""
        if names is None:
            return None
        self.discovered.wait()
        with self._lock:
            if self.closed:
                return None
            return self._catalog.pop((schema, tuple(names)), None)

    def take_read(self, sql: str, name: str, read_connections: int) -> ReadAhead | None:
        """This (its :attr:`reader`, closed by :meth:`close`) when the read begun ahead is the full
        read of ``sql`` the run would start for the stream ``name``; else everything begun is
        closed and ``None`` returned (the run reads itself)."""
        from . import pgcopy

        self.decided.wait()
        with self._lock:
            ok = (
                not self.closed
                and not self.taken
                and self.reader is not None
                and self.sql == sql
                and self.name == name
                and self.plan.read_connections == read_connections
                and self.decoder == pgcopy.enabled()
            )
            if ok:
                self.taken = True
        if not ok:
            self.close()
            return None
        for level, msg, *args in self._said:
            log.log(level, msg, *args)
        log.debug("sql: stream %s: the read begun ahead taken", name)
        return self

    def close(self) -> None:
        """Stop the thread, close the read it began (cursor, connections, range readers) and its
        connection. Safe to call from any thread but the head-start one, and more than once."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
        self.cancel.set()
        thread = self.thread
        if thread is not None and thread is not threading.current_thread():
            while thread.is_alive():
                try:  # (unblock a put)
                    self._queue.get_nowait()
                except queue.Empty:
                    pass
                thread.join(0.05)
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        started, conn, raw, prep = self.started, self.conn, self._raw_conn, self.prep
        self.started = self.conn = self._raw_conn = self.reader = self.prep = None
        if prep is not None:
            prep.close()
        try:
            if started is not None:
                started.close()
        except Exception:  # pragma: no cover - a connection the server dropped
            pass
        try:
            if conn is not None:
                conn.close()  # (its cursors too)
            elif raw is not None:
                raw.close()
        except Exception:  # pragma: no cover - a connection the server dropped
            pass
        self._forget(self)
