"""PostgreSQL without SQLAlchemy: a plain table stream discovered and read over ADBC alone (issue 15).

A scheduled sync of a few thousand rows pays the fixed cost of a run, and on the PostgreSQL path most
of it was imports: SQLAlchemy and its PostgreSQL dialects (~0.2-0.6 CPU-s), psycopg for a discovery
connection (~0.1-0.4) and ADBC's DB-API module (it imports ``pyarrow.dataset``). A source whose URL is a
plain ``postgresql://`` (or ``postgres://``) URL without ``engine_options`` or SQL extensions
(:func:`plain_url`), whose configured streams are tables, is instead

* **discovered** with one catalog query (:data:`_COLUMNS`) on an ADBC connection opened through the
  driver manager's low-level API (:class:`DirectConnection`), each column's ``format_type()`` mapped
  by :func:`format_type_property` to the property SQLAlchemy's reflection +
  :func:`~dc_api_x.adapters.sql.typemap.column_property` give it; a column of any other type (a
  domain, an enum, ``money`` …) sends the whole discovery back to SQLAlchemy;
* **read** with the statement of :func:`table_select` — what :meth:`dc_api_x.ext.sql.SQLRead.select`
  and the backend's column casts compile to, written here (identifiers always double-quoted, which is
  what SQLAlchemy's quoting means for the names it leaves bare).

Custom queries, partitions of a partitioned run and writes still go through SQLAlchemy.

One module past ~700 lines on purpose: the connection wrappers, the catalog query and its mapping,
and the statements (with their column casts, :func:`text_cast`) are the one thing "PostgreSQL
without SQLAlchemy" is, and both the backend (``postgresql.py``) and the read begun ahead
(``pg_ahead.py``, which the backend imports, so it cannot import the backend) use all of them; split,
each part would import the others.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlsplit

from ...arrow import decimal_property, json_types
from ...types import JSONSchema

if TYPE_CHECKING:  # pragma: no cover
    from ...ext.sql import Reflected, SQLRead

__all__ = [
    "DRIVER_ENV",
    "DirectConnection",
    "DirectDatabase",
    "PlainURL",
    "catalog_rows",
    "current_schema",
    "format_type_property",
    "needs_text",
    "plain_url",
    "quote",
    "reflect_catalog",
    "reflected_of",
    "rk_cast_type",
    "server_message",
    "table_select",
    "text_cast",
]


# ---------------------------------------------------------------------------------------------- URL
class PlainURL:
    """A plain ``postgresql://`` URL: what libpq is given (the URL as written, scheme
    ``postgresql``), its password (masked in messages) and its text for messages."""

    def __init__(self, uri: str, password: str, safe: str) -> None:
        self.uri, self.password, self.safe = uri, password, safe


#: libpq URI parameters a plain URL may carry (the others, ``password`` first, go through SQLAlchemy)
_QUERY_KEYS = frozenset(
    ("sslmode", "application_name", "connect_timeout", "target_session_attrs", "sslrootcert", "options")
)
_SCHEME = re.compile(r"(postgresql|postgres)://", re.IGNORECASE)


def plain_url(url: str) -> PlainURL | None:
    """The :class:`PlainURL` of ``postgresql://user:pw@host:port/db[?libpq options]``, else ``None``
    (a URL naming a driver, ``postgresql+psycopg://`` …, is left to SQLAlchemy). ``safe`` renders
    the URL as SQLAlchemy does in messages: ``postgresql+psycopg://user:***@host:port/db``."""
    text = url.strip()
    m = _SCHEME.match(text)
    if m is None:
        return None
    try:
        parts = urlsplit(text)
        if parts.port is not None and not 0 < parts.port < 65536:
            return None
    except ValueError:  # not a URL, a port that is no number: SQLAlchemy's parser words the error
        return None
    if parts.fragment or (not parts.hostname and not parts.path.strip("/")):
        return None
    if any(key not in _QUERY_KEYS for key, _ in parse_qsl(parts.query, keep_blank_values=True)):
        return None  # (a password in the query, driver options …: left to SQLAlchemy)
    uri = "postgresql://" + text[m.end() :]
    password = unquote(parts.password or "")
    netloc = parts.netloc
    if parts.password is not None:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.split(':', 1)[0]}:***@{host}"
    safe = f"postgresql+psycopg://{netloc}{parts.path}" + (f"?{parts.query}" if parts.query else "")
    return PlainURL(uri, password, safe)


def adbc_findable() -> bool:
    """Whether the ADBC PostgreSQL driver and manager are installed (without importing them)."""
    try:
        names = ("adbc_driver_postgresql", "adbc_driver_manager")
        return all(importlib.util.find_spec(m) is not None for m in names)
    except (ImportError, ValueError):  # pragma: no cover - a broken installation
        return False


# ------------------------------------------------------------------------------------- connection
class DirectCursor:
    """The part of an ADBC DB-API cursor the PostgreSQL reads and writes use (``execute`` with
    positional ``$n`` parameters, ``rowcount``, ``fetchone``/``fetchall``, ``fetch_record_batch``,
    ``adbc_ingest``, ``close``), over the driver manager's low-level API: the DB-API module imports
    ``pyarrow.dataset`` (issue 15)."""

    def __init__(self, conn: Any, owner: DirectConnection | None = None) -> None:
        self._conn, self._owner = conn, owner
        self._stmt: Any = None
        self._reader: Any = None
        #: rows the last statement affected (-1: not known), as the DB-API cursor's
        self.rowcount = -1

    def _release(self) -> None:
        reader, stmt = self._reader, self._stmt
        self._reader = self._stmt = None
        if reader is not None:
            reader.close()
        if stmt is not None:
            stmt.close()

    def execute(self, sql: str, parameters: tuple[Any, ...] | list[Any] | None = None) -> None:
        import adbc_driver_manager
        import pyarrow as pa

        self._release()
        stmt = self._stmt = adbc_driver_manager.AdbcStatement(self._conn)
        stmt.set_sql_query(sql)
        try:  # as the DB-API module executes a statement
            stmt.prepare()
        except adbc_driver_manager.NotSupportedError:  # pragma: no cover
            pass
        if parameters:  # one row of parameters, as the DB-API module binds a tuple
            names = [str(i) for i in range(len(parameters))]
            stmt.bind(pa.record_batch([[p] for p in parameters], names=names))
        handle, rowcount = stmt.execute_query()
        self.rowcount = -1 if rowcount is None else int(rowcount)
        self._reader = pa.RecordBatchReader._import_from_c(handle.address)

    def adbc_ingest(
        self,
        table_name: str,
        data: Any,
        mode: str = "append",
        *,
        db_schema_name: str | None = None,
        temporary: bool = False,
    ) -> int:
        """Bulk-load the Arrow table ``data`` (binary ``COPY``) into ``table_name``: ``mode``
        ``"append"`` (the table exists) or ``"replace"`` — the options the DB-API cursor's
        ``adbc_ingest`` sets; returns the rows loaded (-1: not known)."""
        import adbc_driver_manager

        if mode not in ("append", "replace"):  # pragma: no cover - a programming error
            raise ValueError(f"ingest mode {mode!r}")
        self._release()
        stmt = self._stmt = adbc_driver_manager.AdbcStatement(self._conn)
        options = {"adbc.ingest.target_table": table_name, "adbc.ingest.mode": f"adbc.ingest.mode.{mode}"}
        if db_schema_name is not None:
            options["adbc.ingest.target_db_schema"] = db_schema_name
        options["adbc.ingest.temporary"] = "true" if temporary else "false"
        stmt.set_options(**options)
        stmt.bind_stream(data)  # (a pyarrow Table exports itself as an Arrow C stream)
        rows = stmt.execute_update()
        self.rowcount = -1 if rows is None else int(rows)
        return self.rowcount

    def fetch_record_batch(self) -> Any:
        """The result as a ``pyarrow.RecordBatchReader`` (closed with the cursor)."""
        return self._reader

    def fetchall(self) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = []
        for rb in self._reader:
            cols = [c.to_pylist() for c in rb.columns]
            rows.extend(zip(*cols, strict=True))
        return rows

    def fetchone(self) -> tuple[Any, ...] | None:
        rows = self.fetchall()
        return rows[0] if rows else None

    def close(self) -> None:
        self._release()
        if self._owner is not None:
            self._owner._cursors.discard(self)
            self._owner = None


#: the ADBC PostgreSQL driver library to load instead of the one the ``adbc-driver-postgresql`` wheel
#: ships (a path): that wheel's library is built without compiler optimisation (1.13.0: ``-O0`` code,
#: every ``std::unique_ptr::get`` a call), and decoding the binary ``COPY`` is most of a large read's
#: CPU; an optimised build of the same driver reads the same Arrow data with about a third less CPU
#: for the whole W2 run (docs/benchmarks.md)
DRIVER_ENV = "DCAPIX_ADBC_POSTGRESQL_DRIVER"


#: the driver's type resolver built from its own table of PostgreSQL's built-in types instead of a
#: read of the server's ``pg_type`` (``"server"``, the default: ~0.02 CPU-s and 176 M instructions
#: of every handle, 12 % of a 20,000-row W2 run, docs/benchmarks.md). Both resolve every built-in
#: scalar type and its array alike (tests/sql/test_pg_resolver.py); only the server's knows a type of
#: the database's own (an enum, a composite, a range, an extension's type), an array of a domain or of
#: a row type, so a handle gets the built-in one only when :data:`USER_TYPES_SQL` says no column can
#: have such a type, and only for statements of our own (no ``query`` stream: :func:`open_handle`).
_BUILTIN_RESOLVER = {"adbc.postgresql.type_resolver_mode": "builtin"}
#: one row when the database has a type of its own other than the row types of its tables and views
#: (and their arrays: only a whole-row value has one, which no statement of ours reads), or a column
#: of a table or view of a type the built-in resolver does not know: a composite (a row type), an
#: array of one, or a type made after the built-in ones (OID 10000 on: information_schema's domains'
#: arrays); no row otherwise. 16384 (FirstNormalObjectId) is the first OID of a database's own
#: objects. Asked with ``execute_update`` (its row count): no result set to read, so a handle opened
#: ahead (:mod:`.preopen`) is ready without pyarrow (which that thread imports only afterwards).
USER_TYPES_SQL = """
SELECT 1 WHERE EXISTS (
  SELECT 1 FROM pg_catalog.pg_type t
   WHERE t.oid >= 16384
     AND NOT EXISTS (
       SELECT 1 FROM pg_catalog.pg_type r JOIN pg_catalog.pg_class c ON c.oid = r.typrelid
        WHERE c.relkind <> 'c' AND (r.oid = t.oid OR r.oid = t.typelem AND r.typarray = t.oid)))
    OR EXISTS (
  SELECT 1 FROM pg_catalog.pg_attribute a
    JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
    LEFT JOIN pg_catalog.pg_type e ON e.oid = t.typelem
   WHERE a.attrelid >= 16384 AND a.attnum > 0
     AND (t.oid >= 10000 OR t.typtype = 'c' OR e.typtype = 'c'))
"""


def open_database(uri: str) -> Any:
    """A new ADBC PostgreSQL database handle of the libpq URI ``uri``: of the driver build
    :data:`DRIVER_ENV` names (docs/sql.md), else of the adbc-driver-postgresql wheel. The server's
    type resolver (see :func:`open_handle` for the one that avoids it)."""
    driver = os.environ.get(DRIVER_ENV)
    if driver:  # a build of the driver the user chose (docs/sql.md)
        import adbc_driver_manager

        return adbc_driver_manager.AdbcDatabase(driver=driver, uri=uri)
    from .preopen import open_pg_database

    return open_pg_database(uri)


def builtin_resolver_allowed(streams: Any) -> bool:
    """Whether an adapter with these ``streams`` may read through a handle with the built-in type
    resolver (:func:`open_handle`): none of them is a custom ``query``, whose result may have any
    type. ``streams``: the raw option (names and mappings) or the validated stream options."""
    for s in streams if isinstance(streams, list) else ():
        query = s.get("query") if isinstance(s, Mapping) else getattr(s, "query", None)
        if query is not None:
            return False
    return True


def open_handle(uri: str, builtin: bool = True) -> tuple[Any, Any]:
    """``(database handle, its first autocommit connection or None)`` of the libpq URI ``uri``.

    With ``builtin`` (the adapter runs only statements of our own: no ``query`` stream), the handle
    of the wheel's driver is opened with the built-in type resolver, and its connection
    asks the server whether the database has types of its own (:data:`USER_TYPES_SQL`, one round
    trip); if it has, or the question fails, both are closed and the handle is opened again with
    the server's resolver (:func:`open_database`), so every result has the types it always had.
    A driver build :data:`DRIVER_ENV` names gets the server's resolver (it may not know the option).
    """
    import adbc_driver_manager

    db: Any = None
    if builtin and not os.environ.get(DRIVER_ENV):
        from .preopen import open_pg_database

        try:  # (a server that cannot be reached: the same error open_database's handle raises)
            db = open_pg_database(uri, _BUILTIN_RESOLVER)
        except adbc_driver_manager.NotSupportedError:  # pragma: no cover - a wheel without the option
            db = None
    if db is not None:
        conn = None
        try:
            conn = adbc_driver_manager.AdbcConnection(db)
            if not _has_user_types(conn):
                return db, conn
        except Exception:  # opened again below, whose error is the one reported
            pass
        for h in (conn, db):
            if h is not None:
                try:
                    h.close()
                except Exception:  # pragma: no cover - a connection the server dropped
                    pass
    db = open_database(uri)
    try:
        return db, adbc_driver_manager.AdbcConnection(db)
    except Exception:  # (the backend's own connect() words it)
        return db, None


def _has_user_types(conn: Any) -> bool:
    """Whether :data:`USER_TYPES_SQL` returns its row on the autocommit connection ``conn`` (a row
    count the driver does not report counts as yes: the server's resolver)."""
    import adbc_driver_manager

    stmt = adbc_driver_manager.AdbcStatement(conn)
    try:
        stmt.set_sql_query(USER_TYPES_SQL)
        rows = stmt.execute_update()
    finally:
        stmt.close()
    return rows is None or int(rows) != 0


class DirectDatabase:
    """One ADBC PostgreSQL database handle of a backend, shared by its read connections.

    Opening the handle costs what ``adbc_driver_postgresql.dbapi.connect()`` pays on every call — a
    connection to the server and a read of ``pg_type`` for the driver's type resolver (~0.045 CPU-s,
    0.1-0.2 s on a busy machine); each further connection of the same handle costs ~0.004 CPU-s."""

    def __init__(self, uri: Callable[[], str], builtin: bool = True) -> None:
        self.uri = uri  # the libpq URI, asked for when the handle is opened
        #: whether the handle may get the built-in type resolver (:func:`open_handle`)
        self.builtin = builtin
        self._db: Any = None
        self._lock = threading.Lock()
        #: a finished discovery's connection, handed to the next autocommit connect() (the read
        #: after discovery does not open a second server connection); used once, then closed
        self._spare: DirectConnection | None = None
        #: a connection opened ahead with the handle (:mod:`.preopen`), never used: the first connect()
        self._fresh: DirectConnection | None = None

    def handle(self) -> Any:
        with self._lock:
            if self._db is None:
                from .preopen import ahead_of, take

                uri = self.uri()
                opened = take(uri, self.builtin)  # opened ahead by `dcapix run` (adapters/sql/preopen.py)
                self._db, conn = open_handle(uri, self.builtin) if opened is None else opened
                if conn is not None:
                    self._fresh = DirectConnection.adopt(conn)
                elif opened is not None and ahead_of(uri) is not None:
                    # the connection opened ahead reads the catalog and the first stream in its
                    # thread (.pg_ahead): discovery takes its rows and connects only if it must
                    self._fresh = DirectConnection.deferred(self._db)
            return self._db

    def connect(self, autocommit: bool = True) -> DirectConnection:
        if autocommit:
            with self._lock:
                spare, self._spare = self._spare, None
            if spare is not None:
                return spare
        db = self.handle()
        with self._lock:
            fresh, self._fresh = self._fresh, None
        if fresh is not None:
            if not autocommit:
                fresh.begin()
            return fresh
        return DirectConnection(db, autocommit=autocommit)

    def keep(self, conn: DirectConnection) -> None:
        """Keep the autocommit connection ``conn``, whose statements were all read to their end
        (discovery's), for the next :meth:`connect`; closed if one is kept already."""
        with self._lock:
            kept = self._spare is None and self._db is not None
            if kept:
                conn.close_cursors()
                self._spare = conn
        if not kept:
            conn.close()

    def close(self) -> None:
        with self._lock:
            db, self._db = self._db, None
            spare, self._spare = self._spare, None
            fresh, self._fresh = self._fresh, None
        for conn in (spare, fresh):
            if conn is not None:
                try:
                    conn.close()
                except Exception:  # pragma: no cover - a broken connection
                    pass
        if db is not None:
            from .preopen import release

            release(db)  # a read begun ahead on a connection of the handle (.pg_ahead): closed first
            db.close()


class DirectConnection:
    """An ADBC PostgreSQL connection opened through the driver manager's low-level API (what
    ``adbc_driver_postgresql.dbapi.connect(uri, autocommit=...)`` opens), of the database handle
    ``database`` (:class:`DirectDatabase`); with ``autocommit=False`` it runs in a transaction
    that :meth:`commit` / :meth:`rollback` end, as a DB-API connection does."""

    def __init__(self, database: Any, autocommit: bool = True) -> None:
        import adbc_driver_manager

        # an ADBC connection starts in autocommit mode
        self._conn: Any = adbc_driver_manager.AdbcConnection(database)
        if not autocommit:
            try:
                self._conn.set_autocommit(False)
            except BaseException:
                self._conn.close()
                raise
        self._cursors: set[DirectCursor] = set()  # open cursors (closed with the connection)

    @classmethod
    def adopt(cls, conn: Any) -> DirectConnection:
        """A :class:`DirectConnection` of the open autocommit ``AdbcConnection`` ``conn``."""
        self = cls.__new__(cls)
        self._conn = conn
        self._cursors = set()
        return self

    @classmethod
    def deferred(cls, database: Any) -> DirectConnection:
        """An autocommit connection of the ADBC database handle ``database`` that connects to the
        server only when a statement is first run on it: the discovery connection of a backend whose
        catalog rows and first read were begun ahead (:mod:`.pg_ahead`), which then never runs one.
        :meth:`close` of one never opened closes nothing."""
        self = cls.__new__(cls)
        self._conn = _Unopened(database)
        self._cursors = set()
        return self

    def _open(self) -> Any:
        """The ADBC connection, connected now if it was :meth:`deferred`."""
        if type(self._conn) is _Unopened:
            import adbc_driver_manager

            self._conn = adbc_driver_manager.AdbcConnection(self._conn.database)
        return self._conn

    def begin(self) -> None:
        """Leave autocommit mode (what ``autocommit=False`` does at open); closed if that fails."""
        try:
            self._open().set_autocommit(False)
        except BaseException:
            self._conn.close()
            raise

    def cursor(self) -> DirectCursor:
        cur = DirectCursor(self._open(), self)
        self._cursors.add(cur)
        return cur

    def rows(self, sql: str, parameters: tuple[Any, ...] | None = None) -> list[tuple[Any, ...]]:
        cur = self.cursor()
        try:
            cur.execute(sql, parameters)
            return cur.fetchall()
        finally:
            cur.close()

    def commit(self) -> None:
        self._open().commit()

    def rollback(self) -> None:
        self._open().rollback()

    def close_cursors(self) -> None:
        for cur in list(self._cursors):
            try:
                cur.close()
            except Exception:  # pragma: no cover - a statement of a broken connection
                pass
        self._cursors.clear()

    def close(self) -> None:
        self.close_cursors()
        if type(self._conn) is not _Unopened:
            self._conn.close()

    def __enter__(self) -> DirectConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Unopened:
    """The ADBC connection of a :meth:`DirectConnection.deferred` connection not connected yet."""

    def __init__(self, database: Any) -> None:
        self.database = database


def is_adbc_error(exc: BaseException) -> bool:
    """Whether ``exc`` is an ADBC driver error (without importing the driver manager)."""
    import sys

    # (getattr: the driver may be half imported by the thread opening a handle ahead)
    cls = getattr(sys.modules.get("adbc_driver_manager"), "Error", None)
    return cls is not None and isinstance(exc, cls)


# -------------------------------------------------------------------------------------- discovery
#: every column of the tables, views, materialized views, foreign and partitioned tables of one
#: schema (SQLAlchemy's ``ObjectKind.ANY``), in column order, with its position in the primary key
_COLUMNS = """
SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull,
       array_position(pk.conkey, a.attnum)
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
  LEFT JOIN pg_catalog.pg_constraint pk ON pk.conrelid = c.oid AND pk.contype = 'p'
 WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
"""
_NAMES = " AND c.relname IN (SELECT json_array_elements_text($2::json))"
_ORDER = " ORDER BY c.relname, a.attnum"

_JSON_ANY: JSONSchema = {"type": ["object", "array", "string", "number", "boolean", "null"], "x-json": True}
#: format_type() names (without arguments) → the property SQLAlchemy's reflection ends up with
_SCALARS: dict[str, JSONSchema] = {
    "boolean": {"type": "boolean"},
    "smallint": {"type": "integer"},
    "integer": {"type": "integer"},
    "bigint": {"type": "integer"},
    "real": {"type": "number"},
    "double precision": {"type": "number"},
    "text": {"type": "string"},
    "date": {"type": "string", "format": "date"},
    "timestamp with time zone": {"type": "string", "format": "date-time"},
    "timestamp without time zone": {"type": "string", "format": "date-time", "x-timezone": False},
    "time without time zone": {"type": "string", "format": "time"},
    "time with time zone": {"type": "string"},  # kept as its text form
    "interval": {"type": "string"},
    "bytea": {"type": "string", "contentEncoding": "base64"},
    "uuid": {"type": "string", "format": "uuid"},
    "inet": {"type": "string", "format": "inet"},
    "json": _JSON_ANY,
    "jsonb": _JSON_ANY,
}
_ARGS = re.compile(r"\(([^()]*)\)")
_ARRAY = re.compile(r"((?:\[\])*)$")


def format_type_property(format_type: str | None, nullable: bool) -> JSONSchema | None:
    """The property of a column whose ``format_type()`` is ``format_type``: the one SQLAlchemy's
    PostgreSQL reflection and :func:`~dc_api_x.adapters.sql.typemap.column_property` give it, or
    ``None`` for a type this mapping does not cover (discovery then goes through SQLAlchemy)."""
    if not format_type:
        return None
    dims = len(_ARRAY.search(format_type).group(1)) // 2  # type: ignore[union-attr]
    base = _ARRAY.sub("", format_type)
    if dims:
        item = _scalar(base, True)
        if item is None:
            return None
        if item.get("x-json"):
            return {"type": ["array", "null"] if nullable else "array", "items": item}
        return _with_null({"items": item}, "array", nullable)
    return _scalar(base, nullable)


def _scalar(text: str, nullable: bool) -> JSONSchema | None:
    m = _ARGS.search(text)
    args = [a.strip() for a in m.group(1).split(",")] if m else []
    name = _ARGS.sub("", text)
    if name.startswith("interval "):  # interval day to second …: SQLAlchemy's INTERVAL(fields=…)
        name = "interval"
    if name in (
        "timestamp with time zone",
        "timestamp without time zone",
        "time without time zone",
        "time with time zone",
        "interval",
    ):
        pass  # a fractional-seconds precision does not change the property
    elif name == "numeric":
        prop: JSONSchema = {"format": "decimal"}
        if len(args) == 2:
            prop["x-precision"], prop["x-scale"] = int(args[0]), int(args[1])
        return _with_null(prop, "string", nullable)
    elif name in ("character varying", "character"):
        if name == "character" and not args:
            return None  # bpchar without a length: left to SQLAlchemy
        prop = {}
        if args:
            prop["maxLength"] = int(args[0])
        return _with_null(prop, "string", nullable)
    elif args:
        return None
    found = _SCALARS.get(name)
    if found is None:
        return None
    if found.get("x-json"):
        return dict(found)
    prop = {k: v for k, v in found.items() if k != "type"}
    return _with_null(prop, found["type"], nullable)


def _with_null(prop: JSONSchema, base: str, nullable: bool) -> JSONSchema:
    prop["type"] = [base, "null"] if nullable else base
    return prop


class UnmappedType(Exception):
    """A column whose type :func:`format_type_property` does not cover (discovery falls back)."""


def catalog_rows(conn: DirectConnection, schema: str, names: list[str] | None) -> list[tuple[Any, ...]]:
    """The rows of the catalog query (:data:`_COLUMNS`) of ``schema`` (``names``: only those tables)
    on ``conn``: what :func:`reflect_catalog` maps (the thread that begins a read ahead runs the same
    query, :mod:`.pg_ahead`)."""
    sql, params = _COLUMNS, [schema]
    if names is not None:
        sql += _NAMES
        params.append(json.dumps(names))
    return conn.rows(sql + _ORDER, tuple(params))


def reflected_of(rows: list[tuple[Any, ...]]) -> dict[str, Reflected]:
    """The tables of :func:`catalog_rows`'s rows; raises :class:`UnmappedType` for a column of a
    type :func:`format_type_property` does not map."""
    out: dict[str, Reflected] = {}
    pkpos: dict[str, list[tuple[int, str]]] = {}
    for table, column, ftype, nullable, pk in rows:
        prop = format_type_property(ftype, bool(nullable))
        if prop is None:
            raise UnmappedType(f"{table}.{column}: {ftype}")
        cols, _ = out.setdefault(table, ([], []))
        cols.append((column, prop))
        if pk is not None:
            pkpos.setdefault(table, []).append((int(pk), column))
    for table, pos in pkpos.items():
        out[table][1].extend(c for _, c in sorted(pos))
    return out


def reflect_catalog(conn: DirectConnection, schema: str, names: list[str] | None) -> dict[str, Reflected]:
    """:meth:`SQLBackend.reflect` in one catalog query; raises :class:`UnmappedType` for a column of
    a type it does not map."""
    return reflected_of(catalog_rows(conn, schema, names))


def current_schema(conn: DirectConnection) -> str:
    """The connection's default schema (``current_schema()``; ``public`` when it has none)."""
    rows = conn.rows("SELECT current_schema()")
    return str(rows[0][0] if rows and rows[0][0] else "public")


# ------------------------------------------------------------------------------------- statements
def quote(name: str) -> str:
    """A PostgreSQL identifier in double quotes (embedded quotes doubled)."""
    return '"' + name.replace('"', '""') + '"'


def qualified(table: str, schema: str | None) -> str:
    """``"schema"."table"`` (``"table"`` without a schema)."""
    return f"{quote(schema)}.{quote(table)}" if schema else quote(table)


def rk_cast_type(prop: JSONSchema) -> str | None:
    """The SQL type a replication key's bookmark value is cast to (what the backend's
    ``column_type`` compiles to for it), or ``None`` for one left to SQLAlchemy."""
    if decimal_property(prop) is not None:
        return None
    types, _ = json_types(prop)
    fmt = prop.get("format")
    if types == {"integer"}:
        return "BIGINT"
    if types != {"string"}:
        return None
    if fmt == "date-time":
        aware = prop.get("x-timezone") is not False
        return "TIMESTAMP WITH TIME ZONE" if aware else "TIMESTAMP WITHOUT TIME ZONE"
    if fmt == "date":
        return "DATE"
    if fmt == "decimal":
        p, s = prop.get("x-precision"), prop.get("x-scale")
        if p is not None and s is not None and 0 < int(p) <= 1000:
            return f"NUMERIC({int(p)}, {int(s)})"
        return "NUMERIC"
    return None


def table_select(read: SQLRead, cast: Callable[[str], str | None], rk_type: str | None, guc: str) -> str:
    """The read of a table: the columns (``cast(name)``: ``"TEXT"``/``"TEXT[]"`` to read one as
    text, ``None`` as it is), ``rk >= CAST(current_setting(guc) AS rk_type)`` when resuming,
    ordered by (replication key, primary key), and the limit — :meth:`SQLRead.select`'s statement."""
    cols = []
    for name in read.props:
        c = quote(name)
        to = cast(name)
        cols.append(f"CAST({c} AS {to}) AS {c}" if to else c)
    src = read.source
    sql = f"SELECT {', '.join(cols)} FROM {qualified(src.table or '', src.schema)}"
    boundary = read.boundary
    if boundary is not None:
        if boundary.value is not None:
            assert rk_type is not None
            sql += f" WHERE {quote(boundary.rk)} >= CAST(current_setting('{guc}') AS {rk_type})"
        keys = [boundary.rk, *boundary.pks]
        sql += " ORDER BY " + ", ".join(f"{quote(k)} ASC" for k in keys)
    if read.limit is not None:
        sql += f" LIMIT {int(read.limit + read.extra_rows())}"
    return sql


def range_where(sql: str, start: int | None, stop: int | None) -> str:
    """``sql`` (a ``SELECT`` without ``WHERE``) restricted to the heap pages ``start <= page < stop``."""
    conds = []
    if start is not None:
        conds.append(f"ctid >= '({int(start)},0)'::tid")
    if stop is not None:
        conds.append(f"ctid < '({int(stop)},0)'::tid")
    return f"{sql} WHERE {' AND '.join(conds)}" if conds else sql


def needs_text(prop: JSONSchema) -> bool:
    """Columns the ADBC path reads as text: plain strings of non-text types (uuid, interval …)."""
    types, _ = json_types(prop)
    if prop.get("x-json"):
        return True
    native = prop.get("format") in ("decimal", "date-time", "date", "time") or prop.get("contentEncoding")
    return types == {"string"} and not native


def text_cast(prop: JSONSchema) -> str | None:
    """How a read casts a column: ``"TEXT"`` (types without an exact Arrow counterpart),
    ``"TEXT[]"`` (arrays of them, and of decimals), or ``None`` (read as it is; JSON arrives as
    text already)."""
    if needs_text(prop) and not prop.get("x-json"):
        return "TEXT"
    items = prop.get("items") or {}
    if json_types(prop)[0] == {"array"} and (needs_text(items) or items.get("format") == "decimal"):
        return "TEXT[]"
    return None


def server_message(exc: BaseException) -> str:
    """The server's part of a driver error (ADBC repeats the whole statement first)."""
    text = " ".join(str(getattr(exc, "orig", None) or exc).split())
    i = text.find("ERROR:")
    if i >= 0:
        text = text[i + 6 :].strip()
    return text[:400]
