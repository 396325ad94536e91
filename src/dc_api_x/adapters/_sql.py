"""The SQL adapter (SQLAlchemy 2 Core): discovery by bulk reflection, streaming reads with boundary-safe
incremental bookmarks, and loads (append / upsert / overwrite) with per-batch transactions.

Fast paths (chosen automatically, ``arrow: false`` turns them off):

* **PostgreSQL read** — ADBC (``adbc_driver_postgresql``) streams Arrow record batches over binary
  ``COPY``; the bookmark value is passed as a bound parameter through a session setting
  (``set_config('dcapix.rk_value', $1)``) so the query itself stays a parameter-free ``COPY``.
* **SQLite read** — the stdlib ``sqlite3`` cursor, ``fetchmany`` and column-wise ``pyarrow`` arrays.
* **PostgreSQL write** — ADBC bulk ingest (binary ``COPY``) into a temporary stage table, then
  ``INSERT … SELECT`` (``ON CONFLICT … DO UPDATE`` for upserts) in the same transaction. Large
  append/overwrite batches whose columns need no server-side cast are COPYed straight into the
  table over several connections in parallel (one transaction each, committed strictly in batch
  order, see :meth:`SQLAdapter.flush`).
* **SQLite write** — ``executemany`` of pre-converted values in one explicit transaction.

Every other dialect (and PostgreSQL without ADBC) uses plain SQLAlchemy: server-side cursors
(``stream_results``/``yield_per``) for reads and ``executemany`` for writes.

Identifiers (schemas, tables, columns) are always rendered by SQLAlchemy (``Table``/``Column``
objects, the dialect's identifier preparer), never formatted into SQL by hand.
"""

from __future__ import annotations

import datetime as _dt
import fnmatch
import hashlib
import logging
import queue
import re
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa
from pydantic import AliasChoices, Field, field_validator
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.engine.interfaces import ReflectedColumn

from ..arrow import ConversionError, cast_table, json_types, jsonschema_to_arrow, rebatch
from ..bookmarks import BoundaryBookmark, row_hash
from ..config import OptionsModel
from ..exceptions import AdapterError, ConfigError, SchemaError
from ..ext.adapters import AdapterOptions, ProtocolAdapter
from ..ext.schemas import SchemaProvider
from ..logs import redact, redact_url
from ..types import Batch, JSONSchema, StreamSpec, WriteResult
from ..values import fit_decimal, json_default, json_form, parse_datetime, parse_time
from ._sql_types import column_property, jsonschema_to_sqltype, sqlite_declared_property

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

__all__ = [
    "SQLAdapter",
    "SQLOptions",
    "SQLReflectionSchemaProvider",
    "SQLStreamOptions",
    "normalize_url",
]

log = logging.getLogger(__name__)

ARROW_BATCH_SIZE = 50_000
DICT_BATCH_SIZE = 10_000
# PostgreSQL appends: batches of at least this many rows that COPY straight into the table are written
# by _PG_PARALLEL connections at once (the server runs one backend per connection)
_PG_PARALLEL = 2
_PG_PARALLEL_MIN_ROWS = 10_000
# a parallel COPY waiting this long for a row lock (e.g. a duplicate key of a batch still in flight on
# another connection) gives up; the batch is then replayed sequentially (see SQLAdapter._pg_drain)
_PG_LOCK_TIMEOUT_MS = 2000
_GUC = "dcapix.rk_value"


# ----------------------------------------------------------------------------------------- options
class SQLStreamOptions(OptionsModel):
    """One configured stream: a table (``table``/``schema``) or a custom ``query``."""

    name: str | None = None
    table: str | None = None
    schema_: str | None = Field(default=None, alias="schema")
    query: str | None = None
    columns: list[str] | None = None
    primary_keys: list[str] | None = Field(
        default=None, validation_alias=AliasChoices("primary_keys", "primary_key")
    )
    replication_key: str | None = None

    @field_validator("primary_keys", mode="before")
    @classmethod
    def _one_key(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v


class SQLOptions(AdapterOptions):
    """Options of the ``sql`` adapter."""

    url: str = Field(
        description="SQLAlchemy URL; plain postgresql:// uses psycopg 3", json_schema_extra={"secret": True}
    )
    schema_: str | None = Field(
        default=None, alias="schema", description="database schema to discover / to write into"
    )
    streams: list[str | SQLStreamOptions] | None = None
    include: list[str] | None = Field(default=None, description="glob patterns of tables to discover")
    exclude: list[str] | None = Field(default=None, description="glob patterns of tables to skip")
    batch_size: int | None = Field(default=None, gt=0)
    load_method: Literal["append", "upsert", "overwrite"] = "append"
    stream_name_separator: str = "-"
    arrow: bool = Field(default=True, description="use the native Arrow fast paths when available")
    engine_options: dict[str, Any] = Field(default_factory=dict)


def normalize_url(url: str) -> sa.URL:
    """Parse ``url``; plain ``postgresql://``/``postgres://`` URLs get the psycopg 3 driver."""
    try:
        u = sa.make_url(url)
    except Exception as exc:
        raise ConfigError(
            f"adapter 'sql': option 'url': invalid URL {redact_url(url)!r}: {exc}",
            plugin="adapter 'sql'",
            field="url",
        ) from None
    if u.drivername in ("postgresql", "postgres"):
        u = u.set(drivername="postgresql+psycopg")
    return u


# ------------------------------------------------------------------------------------------ values
def _typed_value(value: Any, prop: Mapping[str, Any]) -> Any:
    """A JSON-form value as the Python value of its column type (for bound parameters)."""
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
        try:  # never rounded: a value with more places than the column has is an error
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


# ------------------------------------------------------------------------------------ stream model
@dataclass
class _Source:
    """A resolved stream: where its rows come from."""

    name: str
    table: str | None = None
    schema: str | None = None
    query: str | None = None
    columns: list[str] | None = None
    primary_keys: list[str] | None = None
    replication_key: str | None = None

    @property
    def label(self) -> str:
        if self.query is not None:
            return "(query)"
        return f"{self.schema}.{self.table}" if self.schema else str(self.table)


@dataclass
class _WriteState:
    table: sa.Table  # the table rows go to (the stage table for overwrite)
    target: sa.Table  # the final table
    load_method: str
    props: dict[str, JSONSchema]
    keys: list[str]
    rows: int = 0
    stage_name: str = ""
    insert_cache: dict[tuple[str, ...], str] = field(default_factory=dict)
    jobs: list[_PgJob] = field(default_factory=list)  # parallel COPYs not yet known to be committed


@dataclass
class _PgJob:
    """One batch COPYed by a worker connection in its own transaction; it commits only after the
    previous batch of the same stream committed (so the committed batches are always a prefix)."""

    stream: StreamSpec
    table: pa.Table | None  # the converted batch (replayed sequentially if not committed)
    direct: pa.Table | None  # the COPY input (released when done)
    prev: _PgJob | None
    done: threading.Event = field(default_factory=threading.Event)
    committed: bool = False
    error: BaseException | None = None


class _Boundary:
    """Incremental-read bookkeeping of a read sorted by ``(replication key, primary key)`` on the
    shared :class:`~dc_api_x.bookmarks.BoundaryBookmark`: the query already applies ``>=`` the
    bookmark value, so only the leading rows *at* that value are checked against
    ``keys_at_value``; after each batch the bookmark is the last delivered value and the keys
    delivered at it (``replication_key_value`` + ``keys_at_value``). Without primary key the key
    of a row is ``(row_hash(row),)``, computed only for the rows at the start value and at the
    last delivered value (the order among rows of equal value does not matter then)."""

    def __init__(self, rk: str, pks: Sequence[str], value: Any, keys: Sequence[Sequence[Any]]) -> None:
        self.rk = rk
        self.pks = list(pks)
        self.core = BoundaryBookmark(rk, pks, value, [list(k) for k in keys], ties="keep")
        self.at_start = value is not None

    @property
    def value(self) -> Any:
        """The bookmark value (before the first batch: the value the read resumes from)."""
        return self.core.value

    @property
    def keys(self) -> list[tuple[Any, ...]]:
        """The primary keys delivered at :attr:`value`."""
        return self.core.keys

    def state(self) -> dict[str, Any] | None:
        return self.core.to_state()

    def process(
        self, n: int, rk: Callable[[int], Any], pk: Callable[[int], tuple[Any, ...]], limit: int | None
    ) -> list[int] | None:
        """Indices of the rows to deliver (``None``: all ``n``); updates the bookmark."""
        drop: set[int] = set()
        if self.at_start:
            start, is_new = self.core.start_value, self.core.is_new
            i = 0
            while i < n and rk(i) == start:
                if not is_new(start, pk(i)):
                    drop.add(i)
                i += 1
            if i < n:
                self.at_start = False
        keep: list[int] | None = None
        if drop or (limit is not None and n - len(drop) > limit):
            keep = [i for i in range(n) if i not in drop]
            if limit is not None:
                keep = keep[:limit]
        last_idx = (keep[-1] if keep else -1) if keep is not None else n - 1
        if last_idx < 0:
            return keep
        # walk back from the last delivered row to its first row with the same value
        j = last_idx
        while j >= 0 and rk(j) is None:
            j -= 1
        if j < 0:
            return keep
        last = rk(j)
        fresh: list[tuple[Any, ...]] = []
        while j >= 0 and rk(j) == last:
            if j not in drop:
                fresh.append(pk(j))
            j -= 1
        fresh.reverse()
        self.core.advance_to(last, fresh)
        return keep


# ------------------------------------------------------------------------------------------ adapter
class SQLAdapter(ProtocolAdapter):
    """Read and write SQL databases through SQLAlchemy 2 (PostgreSQL via psycopg 3 / ADBC, SQLite, …)."""

    name = "sql"
    Options = SQLOptions
    load_methods = ("append", "upsert", "overwrite")
    secret_options = ("url",)

    def __init__(self, options: Any = None, /, **kwargs: Any) -> None:
        super().__init__(options, **kwargs)
        self.url = normalize_url(self.options.url)
        # the password is masked in this adapter's messages (as a whole token: a password such as
        # "postgres" must not garble "postgresql"); URLs are rendered without it anyway.
        pw = str(self.url.password or "")
        self._pw_re = re.compile(r"(?<![A-Za-z0-9])" + re.escape(pw) + r"(?![A-Za-z0-9])") if pw else None
        self._engine: Engine | None = None
        self._writes: dict[str, _WriteState] = {}
        self._adbc_write: Any = None
        self._sqlite_adbc_write: Any = None
        self._sqlite_write: Any = None
        self._pg_pool: Any = None  # ThreadPoolExecutor of the parallel COPYs
        self._pg_conns: queue.SimpleQueue[Any] = queue.SimpleQueue()  # idle worker connections
        self._pg_all: list[Any] = []  # every worker connection (closed by close())
        self._pg_abort = False  # close(): roll back whatever is still in flight
        self._discovered: list[StreamSpec] | None = None

    # -- plumbing ---------------------------------------------------------------------------------
    @property
    def engine(self) -> Engine:
        if self._engine is None:
            try:
                self._engine = sa.create_engine(self.url, **self.options.engine_options)
            except Exception as exc:
                raise self.error(f"cannot create engine for {self._safe_url}: {redact(exc)}") from None
        return self._engine

    @property
    def dialect(self) -> Dialect:
        return self.engine.dialect

    @property
    def _safe_url(self) -> str:
        return self.url.render_as_string(hide_password=True)

    @property
    def _is_pg(self) -> bool:
        return self.url.get_backend_name() == "postgresql"

    @property
    def _is_sqlite(self) -> bool:
        return self.url.get_backend_name() == "sqlite"

    def _redact(self, message: str) -> str:
        message = redact(message)
        return self._pw_re.sub("***", message) if self._pw_re is not None else message

    def error(self, message: str, *, stream: str | None = None, field: str | None = None) -> AdapterError:
        return super().error(self._redact(message), stream=stream, field=field)

    def _schema_error(self, message: str, *, stream: str, field: str | None) -> SchemaError:
        where = f"adapter {self.name!r}, stream {stream!r}" + (f", field {field!r}" if field else "")
        return SchemaError(f"{where}: {self._redact(message)}", adapter=self.name, stream=stream)

    def _field_error(self, stream: str, field: str) -> Callable[[str], Exception]:
        def make(message: str) -> Exception:
            return self._schema_error(message, stream=stream, field=field)

        return make

    def _db_error(self, exc: BaseException, what: str, stream: str | None = None) -> AdapterError:
        msg = " ".join(str(getattr(exc, "orig", None) or exc).split())
        return self.error(f"{what} failed on {self._safe_url}: {msg[:500]}", stream=stream)

    def _default_schema(self, conn: Connection | None = None) -> str:
        if self._is_sqlite:
            return "main"
        if conn is not None:
            return str(sa.inspect(conn).default_schema_name or "public")
        with self.engine.connect() as c:
            return str(sa.inspect(c).default_schema_name or "public")

    def _adbc_available(self) -> bool:
        if not (self.options.arrow and self._is_pg):
            return False
        try:
            import adbc_driver_postgresql.dbapi  # noqa: F401
        except ImportError:
            return False
        return True

    def _adbc_connect(self, autocommit: bool = False) -> Any:
        import adbc_driver_postgresql.dbapi as adbc

        uri = self.url.set(drivername="postgresql").render_as_string(hide_password=False)
        try:
            return adbc.connect(uri, autocommit=autocommit)
        except Exception as exc:
            raise self._db_error(exc, "connect (ADBC)") from None

    def _pg_compile(self, stmt: Any) -> str:
        """SQL text of ``stmt`` for ADBC (no bound parameters; literals are our own constants)."""
        from sqlalchemy.dialects.postgresql.base import PGDialect

        dialect = PGDialect(paramstyle="numeric_dollar")
        return str(stmt.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))

    def close(self) -> None:
        """Roll back batches still in flight (not flushed), then close every connection."""
        if self._pg_pool is not None:
            self._pg_abort = True
            self._pg_pool.shutdown(wait=True)
            self._pg_pool = None
            self._pg_abort = False
        for st in self._writes.values():
            st.jobs.clear()
        for conn in self._pg_all:
            try:
                conn.close()
            except Exception:  # pragma: no cover - closing a broken connection
                pass
        self._pg_all.clear()
        self._pg_conns = queue.SimpleQueue()
        for conn in (self._adbc_write, self._sqlite_write, self._sqlite_adbc_write):
            if conn is not None:
                try:
                    conn.close()
                except Exception:  # pragma: no cover - closing a broken connection
                    pass
        self._adbc_write = self._sqlite_write = self._sqlite_adbc_write = None
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
        super().close()

    # -- configuration of streams ------------------------------------------------------------------
    def _stream_name(self, table: str, schema: str | None, default: str) -> str:
        """The table name for tables of the adapter's ``schema`` (or of the database's default schema
        when none is set); ``schema-table`` for the others."""
        if schema is None or schema == (self.options.schema_ or default):
            return table
        return f"{schema}{self.options.stream_name_separator}{table}"

    def _configured(self, default: str) -> list[_Source]:
        out: list[_Source] = []
        for item in self.options.streams or []:
            if isinstance(item, str):
                schema, _, table = item.rpartition(".")
                schema = schema or self.options.schema_
                out.append(
                    _Source(self._stream_name(table, schema, default), table=table, schema=schema or None)
                )
                continue
            if item.query is None and item.table is None and item.name is None:
                raise ConfigError(
                    "adapter 'sql': option 'streams': each stream needs 'table', 'name' or 'query'",
                    plugin="adapter 'sql'",
                    field="streams",
                )
            if item.query is not None:
                if not item.name:
                    raise ConfigError(
                        "adapter 'sql': option 'streams': a 'query' stream needs a 'name'",
                        plugin="adapter 'sql'",
                        field="streams",
                    )
                out.append(
                    _Source(
                        item.name,
                        query=item.query,
                        columns=item.columns,
                        primary_keys=item.primary_keys,
                        replication_key=item.replication_key,
                    )
                )
                continue
            table = item.table or item.name
            assert table is not None
            schema = item.schema_ or self.options.schema_
            out.append(
                _Source(
                    item.name or self._stream_name(table, schema, default),
                    table=table,
                    schema=schema,
                    columns=item.columns,
                    primary_keys=item.primary_keys,
                    replication_key=item.replication_key,
                )
            )
        return out

    # -- discovery ----------------------------------------------------------------------------------
    def discover(self) -> list[StreamSpec]:
        """Every configured stream (or every table and view of ``schema``), by bulk reflection."""
        try:
            with self.engine.connect() as conn:
                default = self._default_schema(conn)
                specs = self._discover(conn, default)
        except AdapterError:
            raise
        except sa.exc.SQLAlchemyError as exc:
            raise self._db_error(exc, "discover") from None
        self._discovered = specs
        return specs

    def _discover(self, conn: Connection, default: str) -> list[StreamSpec]:
        sources = self._configured(default)
        if not self.options.streams:
            schema = self.options.schema_
            tables = self._reflect(conn, schema, None)
            inc, exc = self.options.include, self.options.exclude
            for tname in sorted(tables):
                if inc and not any(fnmatch.fnmatchcase(tname, p) for p in inc):
                    continue
                if exc and any(fnmatch.fnmatchcase(tname, p) for p in exc):
                    continue
                sources.append(_Source(self._stream_name(tname, schema, default), table=tname, schema=schema))
            return [self._spec(s, tables[s.table or ""]) for s in sources]
        by_schema: dict[str | None, list[str]] = {}
        for s in sources:
            if s.table is not None:
                by_schema.setdefault(s.schema, []).append(s.table)
        reflected: dict[tuple[str | None, str], tuple[list[tuple[str, JSONSchema]], list[str]]] = {}
        for schema, names in by_schema.items():
            for tname, info in self._reflect(conn, schema, names).items():
                reflected[(schema, tname)] = info
        specs = []
        for s in sources:
            if s.query is not None:
                specs.append(self._spec(s, self._describe_query(conn, s)))
                continue
            found = reflected.get((s.schema, s.table or ""))
            if found is None:
                raise self.error(f"table {s.label!r} not found on {self._safe_url}", stream=s.name)
            specs.append(self._spec(s, found))
        return specs

    def _spec(self, s: _Source, info: tuple[list[tuple[str, JSONSchema]], list[str]]) -> StreamSpec:
        cols, pk = info
        props = dict(cols)
        if s.columns:
            for c in s.columns:
                if c not in props:
                    raise self.error(
                        f"unknown column {c!r} in 'columns' of {s.label!r}", stream=s.name, field=c
                    )
            props = {c: props[c] for c in s.columns}
        keys = list(s.primary_keys or pk)
        for k in keys:
            if k not in props:
                raise self.error(f"primary key {k!r} is not a column of {s.label!r}", stream=s.name, field=k)
        candidates = tuple(n for n, p in props.items() if _is_rk_candidate(p))
        if s.replication_key and s.replication_key not in props:
            raise self.error(
                f"replication_key {s.replication_key!r} is not a column of {s.label!r}",
                stream=s.name,
                field=s.replication_key,
            )
        for k in keys:  # key columns are never null
            props[k] = _not_null(props[k])
        opts: dict[str, Any] = {"table": s.table, "schema": s.schema}
        if s.query is not None:
            opts = {"query": s.query}
        return StreamSpec(
            name=s.name,
            schema={"type": "object", "properties": props},
            key_properties=tuple(keys),
            replication_key=s.replication_key,
            replication_keys=candidates,
            options=opts,
        )

    def _reflect(
        self, conn: Connection, schema: str | None, names: list[str] | None
    ) -> dict[str, tuple[list[tuple[str, JSONSchema]], list[str]]]:
        """``{table: ([(column, property)…], primary_key)}`` in a constant number of queries."""
        if conn.dialect.name == "sqlite":
            return self._reflect_sqlite(conn, schema, names)
        from sqlalchemy.engine.reflection import ObjectKind

        insp = sa.inspect(conn)
        kw: dict[str, Any] = {"schema": schema, "kind": ObjectKind.ANY}
        if names is not None:
            kw["filter_names"] = names
        try:
            columns: Mapping[tuple[str | None, str], list[ReflectedColumn]] = insp.get_multi_columns(**kw)
            pks = insp.get_multi_pk_constraint(**kw)
        except sa.exc.NoSuchTableError:
            return {}
        out = {}
        for (_sch, tname), cols in columns.items():
            pkc: Any = pks.get((_sch, tname)) or {}
            pk = list(pkc.get("constrained_columns") or [])
            out[tname] = (
                [(c["name"], column_property(c["type"], bool(c.get("nullable", True)))) for c in cols],
                pk,
            )
        return out

    def _reflect_sqlite(
        self, conn: Connection, schema: str | None, names: list[str] | None
    ) -> dict[str, tuple[list[tuple[str, JSONSchema]], list[str]]]:
        sch = schema or "main"
        master = sa.table("sqlite_master", sa.column("name"), sa.column("type"), schema=sch)
        info = (
            sa.func.pragma_table_info(master.c.name, sch)
            .table_valued("cid", "name", "type", "notnull", "pk")
            .alias("p")
        )
        stmt = (
            sa.select(master.c.name.label("tbl"), info.c.name, info.c.type, info.c.notnull, info.c.pk)
            .select_from(master.join(info, sa.true()))
            .where(master.c.type.in_(["table", "view"]), ~master.c.name.like("sqlite\\_%", escape="\\"))
            .order_by(master.c.name, info.c.cid)
        )
        if names is not None:
            stmt = stmt.where(master.c.name.in_(names))
        out: dict[str, tuple[list[tuple[str, JSONSchema]], list[str]]] = {}
        pkpos: dict[str, list[tuple[int, str]]] = {}
        for tbl, col, decl, notnull, pk in conn.execute(stmt):
            cols, _ = out.setdefault(tbl, ([], []))
            cols.append((col, sqlite_declared_property(decl or "", not (notnull or pk))))
            if pk:
                pkpos.setdefault(tbl, []).append((int(pk), col))
        for tbl, pos in pkpos.items():
            out[tbl][1].extend(c for _, c in sorted(pos))
        return out

    def _describe_query(self, conn: Connection, s: _Source) -> tuple[list[tuple[str, JSONSchema]], list[str]]:
        """Columns of a custom query (PostgreSQL: from result type OIDs; others: sampled values)."""
        assert s.query is not None
        sub = _text(s.query).columns().subquery("q")
        try:
            if conn.dialect.name == "postgresql":
                res: Any = conn.execute(sa.select(sa.literal_column("*")).select_from(sub).limit(0))
                desc: Any = res.cursor.description if res.cursor is not None else []
                cols = [(d.name, _pg_oid_property(d)) for d in desc]
                res.close()
            else:
                res = conn.execute(sa.select(sa.literal_column("*")).select_from(sub).limit(100))
                keys = list(res.keys())
                rows = res.fetchall()
                cols = [(k, _sample_property([r[i] for r in rows])) for i, k in enumerate(keys)]
        except sa.exc.SQLAlchemyError as exc:
            raise self._db_error(exc, "describing the query", stream=s.name) from None
        return cols, list(s.primary_keys or [])

    # -- reading -------------------------------------------------------------------------------------
    def _source_of(self, stream: StreamSpec) -> _Source:
        opts = dict(stream.options or {})
        if opts.get("query"):
            return _Source(stream.name, query=opts["query"])
        if opts.get("table"):
            return _Source(stream.name, table=opts["table"], schema=opts.get("schema"))
        for s in self._configured(self._default_schema()):
            if s.name == stream.name:
                return s
        return _Source(stream.name, table=stream.name, schema=self.options.schema_)

    def _resolve_read(self, stream: StreamSpec) -> StreamSpec:
        if (stream.schema.get("properties") and (stream.options or {}).get("table")) or (
            stream.options or {}
        ).get("query"):
            return stream
        spec = self.get_stream(stream.name)
        return spec.with_(
            replication_key=stream.replication_key or spec.replication_key,
            key_properties=stream.key_properties or spec.key_properties,
        )

    def read(
        self,
        stream: StreamSpec,
        *,
        state: Mapping[str, Any] | None = None,
        columns: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> Iterator[Batch]:
        """Yield the stream's rows in batches (Arrow on the fast paths). Incremental streams resume at
        ``state`` with an inclusive ``>=`` and drop rows already delivered at the bookmark value."""
        spec = self._resolve_read(stream)
        src = self._source_of(spec)
        props = spec.properties
        wanted = list(columns) if columns else list(props)
        for c in wanted:
            if c not in props:
                raise self.error(
                    f"unknown column {c!r} (known: {', '.join(props)})", stream=spec.name, field=c
                )
        rk = spec.replication_key
        pks = list(spec.key_properties)
        if rk and rk not in props:
            raise self.error(f"replication key {rk!r} is not a column", stream=spec.name, field=rk)
        for extra in ([rk] if rk else []) + pks:
            if extra not in wanted:
                wanted.append(extra)
        sub_props = {c: props[c] for c in wanted}
        if limit is not None and limit <= 0:
            return
        boundary = None
        if rk:
            value, keys = self._start_bookmark(spec, rk, state)
            boundary = _Boundary(rk, pks, value, keys)
        if self._is_sqlite:  # SQLite has no server-side types: always the sqlite path (ADBC or sqlite3)
            yield from self._read_sqlite(spec, src, sub_props, boundary, limit)
        elif self._adbc_available():
            yield from self._read_adbc(spec, src, sub_props, boundary, limit)
        else:
            yield from self._read_generic(spec, src, sub_props, boundary, limit)

    def _start_bookmark(
        self, spec: StreamSpec, rk: str, state: Mapping[str, Any] | None
    ) -> tuple[Any, list[Any]]:
        if not state:
            return None, []
        st = dict(state)
        if "bookmarks" in st and isinstance(st["bookmarks"], Mapping):  # a whole Singer state
            st = dict(st["bookmarks"].get(spec.name) or {})
        if st.get("replication_key") not in (None, rk):
            log.warning(
                "stream %r: the bookmark is for replication key %r, not %r; reading everything",
                spec.name,
                st.get("replication_key"),
                rk,
            )
            return None, []
        value = st.get("replication_key_value")
        if value is None:
            return None, []
        keys = [list(k) for k in st.get("keys_at_value") or []]
        if not self._is_sqlite:  # SQLite compares the stored text: its bookmark keeps that text
            # normalise to the form this adapter produces (UTC ISO strings, decimal scale)
            try:
                value = json_form(_typed_value(value, spec.properties[rk]))
            except (ValueError, ArithmeticError) as exc:
                raise self.error(f"bad bookmark value {value!r}: {exc}", stream=spec.name, field=rk) from None
        return value, keys

    def _from_clause(self, src: _Source, names: Sequence[str]) -> Any:
        if src.query is not None:
            return _text(src.query).columns(*[sa.column(n) for n in names]).subquery("q")
        return sa.table(src.table or "", *[sa.column(n) for n in names], schema=src.schema)

    def _select(
        self,
        src: _Source,
        props: Mapping[str, JSONSchema],
        boundary: _Boundary | None,
        limit: int | None,
        rk_param: Any,
        col_expr: Callable[[Any, str], Any] | None = None,
    ) -> Any:
        frm = self._from_clause(src, list(props))
        cols = [col_expr(frm.c[n], n) if col_expr else frm.c[n] for n in props]
        stmt = sa.select(*cols).select_from(frm)
        if boundary is not None:
            rkc = frm.c[boundary.rk]
            if boundary.value is not None:
                stmt = stmt.where(rkc >= rk_param)
            stmt = stmt.order_by(rkc.asc(), *[frm.c[k].asc() for k in boundary.pks])
        if limit is not None:
            # a boundary may drop rows already delivered: ask for that many more
            extra = len(boundary.keys) if boundary is not None else 0
            stmt = stmt.limit(limit + extra)
        return stmt

    def _select_sentinel(
        self,
        src: _Source,
        props: Mapping[str, JSONSchema],
        boundary: _Boundary | None,
        limit: int | None,
        rk_param: Any,
        target: pa.Schema,
    ) -> Any:
        """The SQLite query for adbc-driver-sqlite, which infers each column's type from the values of
        its first batch (all-NULL → int64, then fails on a string): a first row of typed sentinel
        values (marked ``_o = 0``, dropped on reading) fixes every type. Text-like columns are read
        ``CAST(… AS TEXT)`` so a number stored in them cannot break the inferred type either."""
        import pyarrow.types as pt

        names = list(props)
        frm = self._from_clause(src, names)
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
        if boundary is not None:
            if boundary.value is not None:
                body = body.where(frm.c[boundary.rk] >= rk_param)
            order = [f"s{names.index(boundary.rk)}", *[f"s{names.index(k)}" for k in boundary.pks]]
        stmt: Any = sa.union_all(head, body)
        if order:
            stmt = stmt.order_by(stmt.selected_columns["_o"], *[stmt.selected_columns[o] for o in order])
        if limit is not None:
            extra = len(boundary.keys) if boundary is not None else 0
            stmt = stmt.limit(limit + extra + 1)
        return stmt

    def _emit(
        self,
        spec: StreamSpec,
        boundary: _Boundary | None,
        table: pa.Table,
        limit: int | None,
        rk: Callable[[int], Any] | None,
        pk: Callable[[int], tuple[Any, ...]] | None,
        schema: JSONSchema,
    ) -> tuple[Batch | None, int]:
        n = table.num_rows
        keep: list[int] | None = None
        if boundary is not None:
            assert rk is not None and pk is not None
            if not boundary.pks:  # keyless: the boundary key is the hash of the whole row
                blocks: dict[int, list[dict[str, Any]]] = {}

                def row_key(i: int, _t: pa.Table = table) -> tuple[Any, ...]:
                    # rows are materialised in blocks: a long run of equal values stays cheap
                    b = i >> 10
                    rows = blocks.get(b)
                    if rows is None:
                        rows = blocks[b] = _t.slice(b << 10, 1 << 10).to_pylist()
                    return (row_hash(rows[i & 1023]),)

                pk = row_key
            keep = boundary.process(n, rk, pk, limit)
        elif limit is not None and n > limit:
            keep = list(range(limit))
        if keep is not None:
            import pyarrow as pa

            table = table.take(pa.array(keep, pa.int64()))
        if table.num_rows == 0:
            return None, 0
        return Batch.from_arrow(
            table, schema=schema, bookmark=boundary.state() if boundary is not None else None
        ), table.num_rows

    # PostgreSQL through ADBC ------------------------------------------------------------------------
    def _read_adbc(
        self,
        spec: StreamSpec,
        src: _Source,
        props: dict[str, JSONSchema],
        boundary: _Boundary | None,
        limit: int | None,
    ) -> Iterator[Batch]:
        import pyarrow as pa

        target = jsonschema_to_arrow({"properties": props})
        rk_type = jsonschema_to_sqltype(props[boundary.rk], self.dialect) if boundary else None
        param = sa.cast(sa.func.current_setting(_GUC), rk_type) if rk_type is not None else None

        def col_expr(c: Any, name: str) -> Any:
            p = props[name]
            if _needs_text(p) and not p.get("x-json"):  # JSON arrives as text already
                return sa.cast(c, sa.Text).label(name)
            if json_types(p)[0] == {"array"} and _needs_text(p.get("items") or {}) | (
                (p.get("items") or {}).get("format") == "decimal"
            ):
                return sa.cast(c, sa.ARRAY(sa.Text)).label(name)
            return c

        stmt = self._select(src, props, boundary, limit, param, col_expr)
        sql = self._pg_compile(stmt)
        size = self.options.batch_size or ARROW_BATCH_SIZE
        conn = self._adbc_connect(autocommit=True)
        schema = {"type": "object", "properties": props}
        remaining = limit
        try:
            cur = conn.cursor()
            try:
                if boundary is not None and boundary.value is not None:
                    cur.execute("SELECT set_config($1, $2, false)", parameters=(_GUC, str(boundary.value)))
                    cur.fetchall()
                cur.execute(sql)
                reader = cur.fetch_record_batch()
            except Exception as exc:
                raise self._read_error(exc, spec, src) from None
            for rb in reader:
                for off in range(0, rb.num_rows, size):
                    part = rb.slice(off, size)
                    table = self._conform(pa.Table.from_batches([part]), target, spec)
                    rkf = pkf = None
                    if boundary is not None:
                        rk_col = table.column(boundary.rk)
                        pk_cols = [table.column(k) for k in boundary.pks]

                        def rkf(i: int, _c: Any = rk_col) -> Any:
                            return json_form(_c[i].as_py())

                        def pkf(i: int, _cs: Any = pk_cols) -> tuple[Any, ...]:
                            return tuple(json_form(c[i].as_py()) for c in _cs)

                    batch, n = self._emit(spec, boundary, table, remaining, rkf, pkf, schema)
                    if batch is not None:
                        yield batch
                    if remaining is not None:
                        remaining -= n
                        if remaining <= 0:
                            return
        finally:
            conn.close()

    def _read_error(self, exc: BaseException, spec: StreamSpec, src: _Source) -> AdapterError:
        msg = str(exc)
        if "does not exist" in msg and src.table is not None and "relation" in msg:
            return self.error(f"table {src.label!r} not found on {self._safe_url}", stream=spec.name)
        return self._db_error(exc, f"reading {src.label}", stream=spec.name)

    def _conform(self, table: pa.Table, target: pa.Schema, spec: StreamSpec) -> pa.Table:
        """Cast a driver's Arrow table to the stream's Arrow schema (exact casts only)."""
        try:
            return cast_table(table, target)
        except ConversionError as exc:
            raise self._schema_error(str(exc).split(": ", 1)[-1], stream=spec.name, field=exc.field) from None

    # SQLite through sqlite3 -------------------------------------------------------------------------
    def _read_sqlite(
        self,
        spec: StreamSpec,
        src: _Source,
        props: dict[str, JSONSchema],
        boundary: _Boundary | None,
        limit: int | None,
    ) -> Iterator[Batch]:
        target = jsonschema_to_arrow({"properties": props})
        rk_param: Any = sa.bindparam("rk_value", boundary.value if boundary else None)
        use_adbc = self._sqlite_adbc_path()
        if use_adbc:
            stmt = self._select_sentinel(src, props, boundary, limit, rk_param, target)
        else:
            stmt = self._select(src, props, boundary, limit, rk_param)
        compiled = stmt.compile(dialect=self.dialect)
        params = [compiled.params[name] for name in (compiled.positiontup or [])]
        size = self.options.batch_size or ARROW_BATCH_SIZE
        schema = {"type": "object", "properties": props}
        names = list(props)
        rk_i = names.index(boundary.rk) if boundary else -1
        pk_i = [names.index(k) for k in boundary.pks] if boundary else []
        remaining = limit
        chunks: Any = (self._sqlite_chunks_adbc if use_adbc else self._sqlite_chunks)(
            str(compiled), params, target, size, spec, src
        )
        try:
            for table, raw in chunks:
                rkf = pkf = None
                if boundary is not None:

                    def rkf(i: int, _raw: Any = raw) -> Any:
                        return json_form(_raw(rk_i, i))

                    def pkf(i: int, _raw: Any = raw) -> tuple[Any, ...]:
                        return tuple(json_form(_raw(c, i)) for c in pk_i)

                batch, n = self._emit(spec, boundary, table, remaining, rkf, pkf, schema)
                if batch is not None:
                    yield batch
                if remaining is not None:
                    remaining -= n
                    if remaining <= 0:
                        break
        finally:
            chunks.close()

    def _sqlite_adbc_path(self) -> bool:
        db = self.url.database
        if not db or db == ":memory:" or db.startswith("file:") or self.url.query:
            return False
        try:
            import adbc_driver_sqlite.dbapi  # noqa: F401
        except ImportError:
            return False
        return True

    def _sqlite_chunks(
        self, sql: str, params: list[Any], target: pa.Schema, size: int, spec: StreamSpec, src: _Source
    ) -> Iterator[tuple[pa.Table, _Getter]]:
        """sqlite3 ``fetchmany`` + column-wise Arrow arrays (the fallback without adbc-driver-sqlite)."""
        import pyarrow as pa

        raw = self.engine.raw_connection()
        try:
            cur = raw.driver_connection.cursor()  # type: ignore[union-attr]
            try:
                cur.execute(sql, params)
            except Exception as exc:
                raise self._read_error(exc, spec, src) from None
            while True:
                rows = cur.fetchmany(size)
                if not rows:
                    break
                cols = list(zip(*rows, strict=True))
                arrays = [
                    _sqlite_array(cols[i], f, self._field_error(spec.name, f.name))
                    for i, f in enumerate(target)
                ]
                yield pa.Table.from_arrays(arrays, schema=target), _tuple_getter(cols)
            cur.close()
        finally:
            raw.close()

    def _adbc_batches(self, reader: Any, spec: StreamSpec, src: _Source) -> Iterator[pa.RecordBatch]:
        """The driver's batches without the sentinel row and the marker column."""
        import pyarrow as pa

        def next_batch() -> pa.RecordBatch | None:
            try:
                return reader.read_next_batch()
            except StopIteration:
                return None
            except Exception as exc:
                raise self._db_error(exc, f"reading {src.label}", stream=spec.name) from None

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

    def _sqlite_chunks_adbc(
        self, sql: str, params: list[Any], target: pa.Schema, size: int, spec: StreamSpec, src: _Source
    ) -> Iterator[tuple[pa.Table, _Getter]]:
        """adbc-driver-sqlite: the whole result decoded in C into Arrow, then exact casts."""
        import adbc_driver_sqlite.dbapi as adbc
        import pyarrow as pa

        try:
            conn = adbc.connect(str(self.url.database), autocommit=True)  # no read transaction held
        except Exception as exc:
            raise self._db_error(exc, "connect (ADBC SQLite)", stream=spec.name) from None
        try:
            cur = conn.cursor()
            cur.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": str(size)})
            try:
                if params:
                    cur.execute(sql, parameters=tuple(params))
                else:
                    cur.execute(sql)
                reader = cur.fetch_record_batch()
            except Exception as exc:
                raise self._read_error(exc, spec, src) from None
            for rb in rebatch(self._adbc_batches(reader, spec, src), size):
                arrays = [
                    _sqlite_coerce(rb.column(i), f, self._field_error(spec.name, f.name))
                    for i, f in enumerate(target)
                ]
                yield pa.Table.from_arrays(arrays, schema=target), _arrow_getter(rb)
            cur.close()
        finally:
            conn.close()

    # any dialect through SQLAlchemy -------------------------------------------------------------------
    def _read_generic(
        self,
        spec: StreamSpec,
        src: _Source,
        props: dict[str, JSONSchema],
        boundary: _Boundary | None,
        limit: int | None,
    ) -> Iterator[Batch]:
        value = _typed_value(boundary.value, props[boundary.rk]) if boundary else None
        stmt = self._select(src, props, boundary, limit, sa.bindparam("rk_value", value))
        size = self.options.batch_size or DICT_BATCH_SIZE
        schema = {"type": "object", "properties": props}
        names = list(props)
        remaining = limit
        with self.engine.connect() as conn:
            try:
                result = conn.execution_options(stream_results=True, yield_per=size).execute(stmt)
            except sa.exc.SQLAlchemyError as exc:
                raise self._read_error(exc, spec, src) from None
            for part in result.partitions(size):
                records = [{n: _py(v) for n, v in zip(names, row, strict=True)} for row in part]
                keep: list[int] | None = None
                if boundary is not None:

                    def rkf(i: int, _r: list[dict[str, Any]] = records, _k: str = boundary.rk) -> Any:
                        return json_form(_r[i][_k])

                    def pkf(
                        i: int, _r: list[dict[str, Any]] = records, _ks: Sequence[str] = boundary.pks
                    ) -> tuple[Any, ...]:
                        return tuple(json_form(_r[i][k]) for k in _ks)

                    if not boundary.pks:  # keyless: the boundary key is the hash of the whole row

                        def pkf(
                            i: int, _r: list[dict[str, Any]] = records, _ks: Sequence[str] = ()
                        ) -> tuple[Any, ...]:
                            return (row_hash(_r[i]),)

                    keep = boundary.process(len(records), rkf, pkf, remaining)
                elif remaining is not None and len(records) > remaining:
                    keep = list(range(remaining))
                if keep is not None:
                    records = [records[i] for i in keep]
                if records:
                    yield Batch.from_records(
                        records, schema=schema, bookmark=boundary.state() if boundary else None
                    )
                if remaining is not None:
                    remaining -= len(records)
                    if remaining <= 0:
                        break
            result.close()

    # -- writing --------------------------------------------------------------------------------------
    def _target_of(self, stream: StreamSpec) -> tuple[str | None, str]:
        for item in self.options.streams or []:
            if isinstance(item, SQLStreamOptions) and item.name == stream.name and item.table:
                return item.schema_ or self.options.schema_, item.table
        return self.options.schema_, stream.name

    def start_write(self, stream: StreamSpec, *, load_method: str | None = None) -> None:
        """Create (or widen) the stream's table; for ``overwrite`` create a fresh stage table."""
        super().start_write(stream, load_method=load_method)
        method = load_method or self.options.load_method
        props = stream.properties
        keys = list(stream.key_properties)
        if method == "upsert" and not keys:
            raise self.error("load_method 'upsert' needs key_properties (primary keys)", stream=stream.name)
        if not props:
            raise self.error("the stream has no schema properties to create a table from", stream=stream.name)
        current = self._writes.get(stream.name)
        if current is not None:
            self._pg_drain(stream.name)
        if current is not None and current.load_method == method:
            # started again (a new SCHEMA message): keep what was written, widen the table
            self._widen(stream, current, {n: p for n, p in props.items() if n not in current.table.c})
            return
        schema, name = self._target_of(stream)
        try:
            with self.engine.begin() as conn:
                if schema and not self._is_sqlite:
                    conn.execute(sa.schema.CreateSchema(schema, if_not_exists=True))
                target = self._ensure_table(conn, schema, name, props, keys, stream.name)
                if method == "upsert":
                    self._check_unique(conn, target, keys, stream.name)
                table, stage_name = target, ""
                if method == "overwrite":
                    stage_name = _short(name, "__dcapix_stage")
                    stage = self._table_obj(schema, stage_name, props, keys)
                    conn.execute(sa.schema.DropTable(stage, if_exists=True))
                    stage.create(conn)
                    table = stage
        except AdapterError:
            raise
        except sa.exc.SQLAlchemyError as exc:
            raise self._db_error(exc, f"preparing table {name!r}", stream=stream.name) from None
        self._writes[stream.name] = _WriteState(
            table=table,
            target=target,
            load_method=method,
            props=dict((c.name, props.get(c.name) or {}) for c in table.columns),
            keys=keys,
            stage_name=stage_name,
        )

    def _table_obj(
        self, schema: str | None, name: str, props: Mapping[str, JSONSchema], keys: Sequence[str]
    ) -> sa.Table:
        cols = [
            sa.Column(n, jsonschema_to_sqltype(p, self.dialect), nullable=n not in keys)
            for n, p in props.items()
        ]
        args: list[Any] = list(cols)
        if keys:
            args.append(sa.PrimaryKeyConstraint(*keys, name=f"pk_{uuid.uuid4().hex[:16]}"))
        return sa.Table(name, sa.MetaData(), *args, schema=schema)

    def _ensure_table(
        self,
        conn: Connection,
        schema: str | None,
        name: str,
        props: Mapping[str, JSONSchema],
        keys: Sequence[str],
        stream: str,
    ) -> sa.Table:
        for k in keys:
            if k not in props:
                raise self.error(f"key property {k!r} is not in the schema", stream=stream, field=k)
        insp = sa.inspect(conn)
        if not insp.has_table(name, schema=schema):
            table = self._table_obj(schema, name, props, keys)
            table.create(conn)
            return table
        table = sa.Table(name, sa.MetaData(), schema=schema, autoload_with=conn)
        self._add_columns(conn, table, {n: p for n, p in props.items() if n not in table.c})
        return table

    def _add_columns(self, conn: Connection, table: sa.Table, new: Mapping[str, JSONSchema]) -> None:
        prep = self.dialect.identifier_preparer
        for n, p in new.items():
            col = sa.Column(n, jsonschema_to_sqltype(p, self.dialect), nullable=True)
            ddl = (
                f"ALTER TABLE {prep.format_table(table)} ADD COLUMN "
                f"{sa.schema.CreateColumn(col).compile(dialect=self.dialect)}"
            )
            conn.exec_driver_sql(ddl)
            table.append_column(col, replace_existing=True)

    def _check_unique(self, conn: Connection, table: sa.Table, keys: list[str], stream: str) -> None:
        insp = sa.inspect(conn)
        pk = insp.get_pk_constraint(table.name, schema=table.schema).get("constrained_columns") or []
        if sorted(pk) == sorted(keys):
            return
        for uc in insp.get_unique_constraints(table.name, schema=table.schema):
            if sorted(uc.get("column_names") or []) == sorted(keys):
                return
        for ix in insp.get_indexes(table.name, schema=table.schema):
            if ix.get("unique") and sorted(c for c in ix.get("column_names") or [] if c) == sorted(keys):
                return
        raise self.error(
            f"upsert needs a primary key or unique constraint on {keys} in table "
            f"{table.name!r} (it has primary key {pk})",
            stream=stream,
        )

    def write(self, stream: StreamSpec, batch: Batch) -> WriteResult:
        """Write one batch in one transaction; ``committed=True`` once it is durable."""
        st = self._writes.get(stream.name)
        if st is None:
            self.start_write(stream)
            st = self._writes[stream.name]
        if len(batch) == 0:
            return WriteResult(rows=0, committed=True)
        self._evolve(stream, batch, st)
        names = [n for n in batch.column_names if n in st.table.c]
        props = {n: st.props.get(n) or {} for n in names}
        arrow_schema = jsonschema_to_arrow({"properties": props})
        try:
            table = batch.to_arrow(arrow_schema)
        except (ValueError, TypeError) as exc:
            fld = getattr(exc, "field", None) or _field_from(str(exc))
            raise self._schema_error(str(exc), stream=stream.name, field=fld) from None
        except Exception as exc:  # pyarrow cast errors
            raise self._schema_error(str(exc), stream=stream.name, field=None) from None
        if table.column_names != names:
            table = table.select(names)
        missing = [k for k in st.keys if k not in names]
        if missing:
            raise self._schema_error(
                "key property missing from the batch", stream=stream.name, field=missing[0]
            )
        if self._is_pg and self._adbc_available():
            if self._pg_submit(stream, st, table):
                st.rows += table.num_rows
                # in flight: committed (in batch order) by a worker; flush() waits for it
                return WriteResult(
                    rows=table.num_rows,
                    committed=False,
                    details={"load_method": st.load_method, "affected": table.num_rows},
                )
            self._pg_drain(stream.name)  # the batches before this one commit first
            affected = self._write_pg(stream, st, table)
        elif self._is_sqlite:
            affected = self._write_sqlite(stream, st, table)
        else:
            affected = self._write_generic(stream, st, table)
        st.rows += table.num_rows
        # rows = the batch's rows, all committed; "affected" = what the database reported changing
        # (an upsert of unchanged rows affects none)
        return WriteResult(
            rows=table.num_rows, committed=True, details={"load_method": st.load_method, "affected": affected}
        )

    def _evolve(self, stream: StreamSpec, batch: Batch, st: _WriteState) -> None:
        new = [n for n in batch.column_names if n not in st.table.c]
        if not new:
            return
        props = dict(stream.properties)
        props.update((batch.schema or {}).get("properties") or {})
        if batch.has_arrow:
            from ..arrow import arrow_to_jsonschema

            aprops = arrow_to_jsonschema(batch.to_arrow().schema)["properties"]
            for n in new:
                props.setdefault(n, aprops[n])
        self._widen(stream, st, {n: props.get(n) or {"type": ["string", "null"]} for n in new})

    def _widen(self, stream: StreamSpec, st: _WriteState, add: dict[str, JSONSchema]) -> None:
        """Add the columns ``add`` to the table being written (for overwrite: the stage table)."""
        if not add:
            return
        self._pg_drain(stream.name)
        new = list(add)
        try:
            with self.engine.begin() as conn:
                for t in [st.table]:  # (for overwrite: the stage table; the old one is replaced)
                    cols = {c["name"] for c in sa.inspect(conn).get_columns(t.name, schema=t.schema)}
                    self._add_columns(conn, t, {n: p for n, p in add.items() if n not in cols})
        except sa.exc.SQLAlchemyError as exc:
            raise self._db_error(exc, f"adding columns {new}", stream=stream.name) from None
        st.props.update(add)
        st.insert_cache.clear()

    # PostgreSQL (ADBC ingest + INSERT … SELECT) -----------------------------------------------------------
    def _write_pg(self, stream: StreamSpec, st: _WriteState, table: pa.Table) -> int:
        import pyarrow as pa

        if self._adbc_write is None:
            self._adbc_write = self._adbc_connect(autocommit=False)
        conn = self._adbc_write
        stage = "_dcapix_stage"
        names = table.column_names
        upsert = st.load_method == "upsert"
        direct = None if upsert else _pg_direct(table, st.table)
        # otherwise a stage table with our own column names (c0, c1 …); JSON and arrays go in as
        # text and are cast by the INSERT … SELECT; everything else is binary COPY.
        arrays = {n for n in names if isinstance(st.table.c[n].type, sa.ARRAY)}
        data = _plain_strings(table, arrays).rename_columns([f"c{i}" for i in range(len(names))])
        if upsert:
            data = data.append_column("c_ord", pa.array(range(data.num_rows), pa.int64()))
        sql = ""
        if direct is None:
            key = (stage, *names, str(upsert))
            sql = st.insert_cache.get(key) or ""
            if not sql:
                sql = st.insert_cache[key] = self._pg_insert_sql(st, stage, names, upsert)
        cur = conn.cursor()
        rows: int | None = None
        try:
            if direct is not None:
                # binary COPY straight into the table (the driver quotes the identifiers)
                cur.adbc_ingest(st.table.name, direct, mode="append", db_schema_name=st.table.schema)
            else:
                cur.adbc_ingest(stage, data, mode="replace", temporary=True)
                cur.execute(sql)
                rows = cur.rowcount
            conn.commit()
        except Exception as exc:
            try:
                conn.rollback()
            except Exception:  # pragma: no cover
                self._adbc_write = None
            fld = self._pg_diagnose(stage, data, st, names)
            raise self._schema_error(
                f"batch not written (rolled back): {_pg_msg(exc)}", stream=stream.name, field=fld
            ) from None
        finally:
            cur.close()
        if rows is not None and rows >= 0:
            return int(rows)
        return table.num_rows if direct is not None else -1

    # parallel COPY (append / overwrite) ----------------------------------------------------------------
    def _pg_submit(self, stream: StreamSpec, st: _WriteState, table: pa.Table) -> bool:
        """Hand a large append batch that COPYs straight into the table to a worker connection;
        ``False``: write it sequentially (upserts, small batches, columns cast by the server)."""
        if st.load_method == "upsert" or table.num_rows < _PG_PARALLEL_MIN_ROWS:
            return False
        direct = _pg_direct(table, st.table)
        if direct is None:
            return False
        if any(j.done.is_set() and not j.committed for j in st.jobs):
            self._pg_drain(stream.name)  # a batch failed: replay (raises the batch's error)
        # at most _PG_PARALLEL batches in flight per stream (bounded memory, no queue behind the workers)
        while sum(not j.done.is_set() for j in st.jobs) >= _PG_PARALLEL:
            next(j for j in st.jobs if not j.done.is_set()).done.wait()
        while st.jobs and st.jobs[0].committed and len(st.jobs) > 1:
            st.jobs.pop(0)  # keep the newest job as the predecessor of the next one
        if self._pg_pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pg_pool = ThreadPoolExecutor(max_workers=_PG_PARALLEL, thread_name_prefix="dcapix-pg-copy")
        job = _PgJob(stream=stream, table=table, direct=direct, prev=st.jobs[-1] if st.jobs else None)
        st.jobs.append(job)
        self._pg_pool.submit(self._pg_copy, job, st.table.name, st.table.schema)
        return True

    def _pg_worker_conn(self) -> Any:
        try:
            return self._pg_conns.get_nowait()
        except queue.Empty:
            pass
        conn = self._adbc_connect(autocommit=False)
        self._pg_all.append(conn)
        cur = conn.cursor()
        try:
            cur.execute(f"SET lock_timeout = {int(_PG_LOCK_TIMEOUT_MS)}")
        finally:
            cur.close()
        conn.commit()
        return conn

    def _pg_copy(self, job: _PgJob, name: str, schema: str | None) -> None:
        """Worker: COPY the batch, then commit once the previous batch committed (else roll back)."""
        conn = None
        try:
            conn = self._pg_worker_conn()
            cur = conn.cursor()
            try:
                cur.adbc_ingest(name, job.direct, mode="append", db_schema_name=schema)
            finally:
                cur.close()
            prev, job.prev = job.prev, None  # (no chain of finished jobs kept alive)
            if prev is not None:
                prev.done.wait()
            if (prev is None or prev.committed) and not self._pg_abort:
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
        finally:
            if conn is not None:
                self._pg_conns.put(conn)
            job.direct = None
            job.done.set()

    def _pg_drain(self, stream: str | None = None) -> None:
        """Wait for the parallel COPYs of ``stream`` (all streams: ``None``). The committed ones are
        a prefix of the batches; the others (a failed one and every later one, all rolled back) are
        written again sequentially, so the first bad batch raises exactly the error a sequential
        write raises and nothing after it is committed."""
        names = list(self._writes) if stream is None else [stream]
        for name in names:
            st = self._writes.get(name)
            if st is None or not st.jobs:
                continue
            jobs, st.jobs = st.jobs, []
            for j in jobs:
                j.done.wait()
            for j in jobs:
                if not j.committed and j.table is not None:
                    if j.error is not None:
                        log.info(
                            "sql: stream %s: a parallel COPY failed (%s); writing the batch again "
                            "sequentially",
                            name,
                            _pg_msg(j.error),
                        )
                    self._write_pg(j.stream, st, j.table)

    def _pg_insert_sql(self, st: _WriteState, stage: str, names: list[str], upsert: bool) -> str:
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        src = sa.table(stage, *[sa.column(f"c{i}") for i in range(len(names))], sa.column("c_ord"))
        sc = {n: src.c[f"c{i}"] for i, n in enumerate(names)}
        target = st.table
        sel = sa.select(*[_pg_cast(sc[n], target.c[n].type) for n in names])
        if upsert:
            from sqlalchemy.dialects.postgresql import distinct_on

            sel = sel.ext(distinct_on(*[sc[k] for k in st.keys])).order_by(
                *[sc[k] for k in st.keys], src.c["c_ord"].desc()
            )
        stmt = pg_insert(target).from_select(names, sel)
        if upsert:
            others = [n for n in names if n not in st.keys]
            if others:
                stmt = stmt.on_conflict_do_update(
                    index_elements=st.keys,
                    set_={n: stmt.excluded[n] for n in others},
                    where=sa.or_(*[target.c[n].is_distinct_from(stmt.excluded[n]) for n in others]),
                )
            else:
                stmt = stmt.on_conflict_do_nothing(index_elements=st.keys)
        return self._pg_compile(stmt)

    def _pg_diagnose(self, stage: str, data: pa.Table, st: _WriteState, names: list[str]) -> str | None:
        """After a failed batch: the first column whose values the table's type rejects."""
        conn = self._adbc_write
        if conn is None:
            return None
        src = sa.table(stage, *[sa.column(f"c{i}") for i in range(len(names))])
        cur = conn.cursor()
        try:
            cur.adbc_ingest(stage, data, mode="replace", temporary=True)
            for i, n in enumerate(names):
                col, typ = src.c[f"c{i}"], st.table.c[n].type
                if isinstance(typ, sa.String) and getattr(typ, "length", None):
                    probe = (
                        sa.select(sa.func.count())
                        .select_from(src)
                        .where(sa.func.char_length(col) > typ.length)
                    )
                else:
                    probe = sa.select(sa.func.count(sa.cast(col, typ)))
                cur.execute("SAVEPOINT dcapix_diag")
                try:
                    cur.execute(self._pg_compile(probe))
                    got = cur.fetchall()
                    bad = got[0][0] if isinstance(typ, sa.String) and getattr(typ, "length", None) else 0
                    cur.execute("RELEASE SAVEPOINT dcapix_diag")
                except Exception:
                    cur.execute("ROLLBACK TO SAVEPOINT dcapix_diag")
                    return n
                if bad:
                    return n
            for i, n in enumerate(names):
                if not st.table.c[n].nullable and data.column(f"c{i}").null_count:
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

    # SQLite (executemany in one transaction) -----------------------------------------------------------
    def _write_sqlite(self, stream: StreamSpec, st: _WriteState, table: pa.Table) -> int:
        if st.load_method != "upsert" and self._sqlite_adbc_path():
            return self._write_sqlite_adbc(stream, st, table)
        if self._sqlite_write is None:
            raw = self.engine.raw_connection()
            raw.driver_connection.isolation_level = None  # type: ignore[union-attr]  # explicit BEGIN
            self._sqlite_write = raw
        raw = self._sqlite_write
        con = raw.driver_connection
        names = table.column_names
        key = tuple(names)
        sql = st.insert_cache.get(key)
        if sql is None:
            sql = self._sqlite_insert_sql(st, names)
            st.insert_cache[key] = sql
        columns = [_sqlite_values(table.column(n)) for n in names]
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
            fld = _sqlite_field(str(exc), names)
            raise self._schema_error(
                f"batch not written (rolled back): {exc}", stream=stream.name, field=fld
            ) from None
        return int(affected)

    def _write_sqlite_adbc(self, stream: StreamSpec, st: _WriteState, table: pa.Table) -> int:
        """Append through adbc-driver-sqlite's bulk ingest (the values in this adapter's storage forms)."""
        import adbc_driver_sqlite.dbapi as adbc
        import pyarrow as pa

        if self._sqlite_adbc_write is None:
            try:
                self._sqlite_adbc_write = adbc.connect(str(self.url.database))
                cur = self._sqlite_adbc_write.cursor()
                cur.execute("PRAGMA busy_timeout = 60000")  # wait for readers rather than fail
                cur.fetchall()
                cur.close()
            except Exception as exc:
                raise self._db_error(exc, "connect (ADBC SQLite)", stream=stream.name) from None
        conn = self._sqlite_adbc_write
        names = table.column_names
        data = pa.Table.from_arrays([_sqlite_storage(table.column(n)) for n in names], names=names)
        schema = st.table.schema if st.table.schema not in (None, "main") else None
        cur = conn.cursor()
        try:
            cur.adbc_ingest(st.table.name, data, mode="append", db_schema_name=schema)
            conn.commit()
        except Exception as exc:
            try:
                conn.rollback()
            except Exception:  # pragma: no cover
                self._sqlite_adbc_write = None
            msg = " ".join(str(exc).split()).split(" query was:")[0].replace("INTERNAL: ", "")[:400]
            raise self._schema_error(
                f"batch not written (rolled back): {msg}", stream=stream.name, field=_sqlite_field(msg, names)
            ) from None
        finally:
            cur.close()
        return table.num_rows

    def _sqlite_insert_sql(self, st: _WriteState, names: list[str]) -> str:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        values: dict[Any, Any] = {st.table.c[n]: sa.bindparam(f"p{i}") for i, n in enumerate(names)}
        stmt = sqlite_insert(st.table).values(values)
        if st.load_method == "upsert":
            others = [n for n in names if n not in st.keys]
            if others:
                stmt = stmt.on_conflict_do_update(
                    index_elements=st.keys,
                    set_={n: stmt.excluded[n] for n in others},
                    where=sa.or_(*[st.table.c[n].is_distinct_from(stmt.excluded[n]) for n in others]),
                )
            else:
                stmt = stmt.on_conflict_do_nothing(index_elements=st.keys)
        compiled = stmt.compile(dialect=self.dialect)
        order = list(compiled.positiontup or [])
        if order != [f"p{i}" for i in range(len(names))]:  # pragma: no cover - defensive
            raise self.error(f"unexpected parameter order {order}")
        return str(compiled)

    # any dialect (SQLAlchemy executemany) ---------------------------------------------------------------
    def _write_generic(self, stream: StreamSpec, st: _WriteState, table: pa.Table) -> int:
        from ..arrow import arrow_to_records

        props = {n: st.props.get(n) or {} for n in table.column_names}
        records = arrow_to_records(table, {"properties": props})
        try:
            with self.engine.begin() as conn:
                if st.load_method == "upsert":
                    if self._is_pg:
                        from sqlalchemy.dialects.postgresql import insert as pg_insert

                        ins = pg_insert(st.table)
                        others = [n for n in table.column_names if n not in st.keys]
                        stmt = (
                            ins.on_conflict_do_update(
                                index_elements=st.keys,
                                set_={n: ins.excluded[n] for n in others},
                                where=sa.or_(
                                    *[st.table.c[n].is_distinct_from(ins.excluded[n]) for n in others]
                                ),
                            )
                            if others
                            else ins.on_conflict_do_nothing(index_elements=st.keys)
                        )
                        res = conn.execute(stmt, _dedupe(records, st.keys))
                        return int(res.rowcount if res.rowcount is not None else -1)
                    # staged merge: delete the keys, then insert (same transaction)
                    cond = sa.and_(*[st.table.c[k] == sa.bindparam(f"k_{i}") for i, k in enumerate(st.keys)])
                    conn.execute(
                        st.table.delete().where(cond),
                        [{f"k_{i}": r[k] for i, k in enumerate(st.keys)} for r in records],
                    )
                    records = _dedupe(records, st.keys)
                res = conn.execute(st.table.insert(), records)
                affected = res.rowcount if res.rowcount is not None and res.rowcount >= 0 else len(records)
        except sa.exc.SQLAlchemyError as exc:
            raise self._schema_error(
                f"batch not written (rolled back): {_short_msg(exc)}",
                stream=stream.name,
                field=_sqlite_field(str(exc), table.column_names),
            ) from None
        return int(affected)

    def flush(self, stream: StreamSpec | None = None) -> None:
        """Wait for the batches still being COPYed in parallel (every other :meth:`write` commits its
        batch before it returns); raises the error of the first batch that could not be written, and
        then none of the batches after it is committed."""
        self._pg_drain(stream.name if stream is not None else None)

    def finish_write(self, stream: StreamSpec) -> None:
        """Flush; for ``overwrite``: replace the table by the stage table in one transaction."""
        try:
            self._pg_drain(stream.name)
        except BaseException:
            self._writes.pop(stream.name, None)
            raise
        st = self._writes.pop(stream.name, None)
        if st is None or st.load_method != "overwrite":
            return
        prep = self.dialect.identifier_preparer
        drop = str(sa.schema.DropTable(st.target, if_exists=True).compile(dialect=self.dialect))
        rename = f"ALTER TABLE {prep.format_table(st.table)} RENAME TO {prep.quote(st.target.name)}"
        try:
            if self._is_sqlite:
                raw = self.engine.raw_connection()
                try:
                    con = raw.driver_connection
                    con.isolation_level = None  # type: ignore[union-attr]
                    con.execute("BEGIN IMMEDIATE")  # type: ignore[union-attr]
                    try:
                        con.execute(drop)  # type: ignore[union-attr]
                        con.execute(rename)  # type: ignore[union-attr]
                        con.execute("COMMIT")  # type: ignore[union-attr]
                    except BaseException:
                        con.execute("ROLLBACK")  # type: ignore[union-attr]
                        raise
                finally:
                    raw.close()
            else:
                with self.engine.begin() as conn:
                    conn.exec_driver_sql(drop)
                    conn.exec_driver_sql(rename)
        except Exception as exc:
            raise self._db_error(
                exc, f"swapping in the new table {st.target.name!r}", stream=stream.name
            ) from None


# ------------------------------------------------------------------------------------------ helpers
_Getter = Callable[[int, int], Any]


def _text(query: str) -> Any:
    """A user's SQL as a ``text()`` clause: every colon escaped, so ``'{"a":1}'`` or ``'10:30'`` are
    never taken for bind parameters (the query is the user's own SQL, run as written)."""
    return sa.text(query.replace(":", "\\:"))


def _tuple_getter(cols: list[tuple[Any, ...]]) -> Callable[[int, int], Any]:
    def get(c: int, i: int) -> Any:
        return cols[c][i]

    return get


def _arrow_getter(rb: Any) -> Callable[[int, int], Any]:
    def get(c: int, i: int) -> Any:
        return rb.column(c)[i].as_py()

    return get


def _not_null(prop: JSONSchema) -> JSONSchema:
    p = dict(prop)
    t = p.get("type")
    if isinstance(t, list) and "null" in t and len(t) == 2 and not p.get("x-json"):
        p["type"] = next(x for x in t if x != "null")
    return p


def _is_rk_candidate(prop: Mapping[str, Any]) -> bool:
    types, _ = json_types(prop)
    return types == {"integer"} or (
        types == {"string"} and prop.get("format") in ("date-time", "date", "decimal")
    )


def _needs_text(prop: Mapping[str, Any]) -> bool:
    """Columns the ADBC path reads as text: plain strings of non-text types (uuid, interval …)."""
    types, _ = json_types(prop)
    if prop.get("x-json"):
        return True
    native = prop.get("format") in ("decimal", "date-time", "date", "time") or prop.get("contentEncoding")
    return types == {"string"} and not native


def _short(name: str, suffix: str, limit: int = 63) -> str:
    """``name + suffix`` within PostgreSQL's identifier limit (a hash keeps it unique)."""
    full = name + suffix
    if len(full.encode()) <= limit:
        return full
    h = hashlib.sha1(name.encode()).hexdigest()[:8]
    head = name.encode()[: limit - len(suffix) - 9].decode(errors="ignore")
    return f"{head}_{h}{suffix}"


def _py(v: Any) -> Any:
    if isinstance(v, uuid.UUID):
        return str(v)
    if isinstance(v, memoryview):
        return bytes(v)
    return v


def _dedupe(records: list[dict[str, Any]], keys: Sequence[str]) -> list[dict[str, Any]]:
    """The last record of each key (an upsert batch may repeat a key)."""
    seen: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in records:
        seen[tuple(r.get(k) for k in keys)] = r
    return list(seen.values())


def _field_from(msg: str) -> str | None:
    if msg.startswith("field '"):
        end = msg.find("'", 7)
        if end > 7:
            return msg[7:end]
    return None


def _short_msg(exc: BaseException) -> str:
    return " ".join(str(getattr(exc, "orig", None) or exc).split())[:400]


def _sqlite_field(msg: str, names: Sequence[str]) -> str | None:
    """The column a SQLite error names (``NOT NULL constraint failed: t.col`` …), if any."""
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


def _pg_msg(exc: BaseException) -> str:
    """The server's part of a driver error (ADBC repeats the whole statement first)."""
    text = " ".join(str(getattr(exc, "orig", None) or exc).split())
    i = text.find("ERROR:")
    if i >= 0:
        text = text[i + 6 :].strip()
    return text[:400]


def _pg_direct(table: pa.Table, target: sa.Table) -> pa.Table | None:
    """``table`` ready for a binary COPY straight into ``target``, or ``None`` when a column needs a
    cast on the server (uuid, arrays, enums, int4 columns …)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.types as pt
    from sqlalchemy.dialects.postgresql import JSONB

    cols = []
    for f in table.schema:
        at, tt = f.type, target.c[f.name].type
        col = table.column(f.name)
        if isinstance(tt, JSONB):
            if not pt.is_string(at):
                return None
            # jsonb's binary input format: a version byte (1) then the JSON text
            col = pc.binary_join_element_wise(
                pa.scalar(b"\x01", pa.binary()), col.cast(pa.binary()), pa.scalar(b"", pa.binary())
            )
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


def _pg_cast(col: Any, typ: Any) -> Any:
    """Stage column → target type (JSON and arrays arrive as text). Character columns are not cast:
    an explicit cast to ``varchar(n)`` would truncate, the assignment cast of the INSERT refuses."""
    if isinstance(typ, sa.String) and not isinstance(typ, sa.Enum):
        return col
    return sa.cast(col, typ)


def _plain_strings(table: pa.Table, pg_arrays: set[str]) -> pa.Table:
    """Arrow columns ADBC cannot ingest as such: structs and lists become text (a PostgreSQL array
    literal for ``pg_arrays`` columns, JSON otherwise)."""
    import orjson
    import pyarrow as pa
    import pyarrow.types as pt

    from ..arrow import arrow_to_records

    fields, cols = [], []
    changed = False
    for f in table.schema:
        col = table.column(f.name)
        if pt.is_struct(f.type) or pt.is_list(f.type) or pt.is_large_list(f.type):
            vals = [r[f.name] for r in arrow_to_records(table.select([f.name]))]
            if f.name in pg_arrays:
                texts = [None if v is None else _pg_array_literal(v) for v in vals]
            else:
                texts = [None if v is None else orjson.dumps(v, default=json_default).decode() for v in vals]
            col = pa.chunked_array([pa.array(texts, pa.string())])
            f = pa.field(f.name, pa.string())
            changed = True
        fields.append(f)
        cols.append(col)
    if not changed:
        return table
    return pa.Table.from_arrays(cols, schema=pa.schema(fields))


def _pg_array_literal(values: list[Any]) -> str:
    """A PostgreSQL array literal (``{"a","b"}``) for a list of scalars (nested lists allowed)."""
    parts = []
    for v in values:
        if v is None:
            parts.append("NULL")
        elif isinstance(v, list):
            parts.append(_pg_array_literal(v))
        elif isinstance(v, bool):
            parts.append("true" if v else "false")
        elif isinstance(v, bytes):
            parts.append('"\\\\x' + v.hex() + '"')
        else:
            s = json_form(v) if not isinstance(v, str) else v
            s = str(s).replace("\\", "\\\\").replace('"', '\\"')
            parts.append(f'"{s}"')
    return "{" + ",".join(parts) + "}"


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
    114: {"type": ["object", "array", "string", "number", "boolean", "null"], "x-json": True},
    3802: {"type": ["object", "array", "string", "number", "boolean", "null"], "x-json": True},
    17: {"type": ["string", "null"], "contentEncoding": "base64"},
    2950: {"type": ["string", "null"], "format": "uuid"},
}


def _pg_oid_property(desc: Any) -> JSONSchema:
    oid = int(desc.type_code)
    if oid == 1700:
        prec, scale = getattr(desc, "precision", None), getattr(desc, "scale", None)
        prop: JSONSchema = {"type": ["string", "null"], "format": "decimal"}
        if prec:
            prop["x-precision"], prop["x-scale"] = int(prec), int(scale or 0)
        return prop
    return dict(_PG_OIDS.get(oid, {"type": ["string", "null"]}))


def _sample_property(values: list[Any]) -> JSONSchema:
    kinds = {type(v) for v in values if v is not None}
    if kinds and kinds <= {int}:
        return {"type": ["integer", "null"]}
    if kinds and kinds <= {int, float}:
        return {"type": ["number", "null"]}
    if kinds and kinds <= {bytes}:
        return {"type": ["string", "null"], "contentEncoding": "base64"}
    return {"type": ["string", "null"]}


# SQLite value conversion ----------------------------------------------------------------------------
def _sqlite_array(values: Sequence[Any], f: pa.Field, err: Callable[[str], Exception]) -> pa.Array:
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
            return pa.array([_sqlite_value(v, t) for v in values], t)
        if pt.is_boolean(t):
            try:
                return pa.array(values, pa.int64()).cast(t)
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                return pa.array([_sqlite_value(v, t) for v in values], t)
        if pt.is_integer(t) or pt.is_floating(t):
            return pa.array(values, t)
        if pt.is_binary(t):
            return pa.array([v.encode() if isinstance(v, str) else v for v in values], t)
        if pt.is_string(t):
            try:
                return pa.array(values, t)
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                return pa.array([None if v is None else _sqlite_text(v) for v in values], t)
        return pa.array(values, t)
    except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError, TypeError, OverflowError, ArithmeticError) as exc:
        raise err(f"cannot read a value as {t}: {exc}") from None


def _sqlite_coerce(arr: pa.Array, f: pa.Field, err: Callable[[str], Exception]) -> pa.Array:
    """An Arrow column read by adbc-driver-sqlite cast to ``f.type`` (exact casts; Python fallback)."""
    import pyarrow as pa
    import pyarrow.types as pt

    t = f.type
    if arr.type == t:
        return arr
    if pt.is_string(arr.type) and (pt.is_timestamp(t) or pt.is_date(t) or pt.is_time(t) or pt.is_decimal(t)):
        return _sqlite_array(arr.to_pylist(), f, err) if pt.is_time(t) else _string_cast(arr, t, err)
    try:
        if pt.is_decimal(t) and pt.is_floating(arr.type):
            return arr.cast(pa.string()).cast(t)
        if pt.is_string(t) and not pt.is_string(arr.type):
            return _sqlite_array(arr.to_pylist(), f, err)
        return arr.cast(t, safe=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return _sqlite_array(arr.to_pylist(), f, err)


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
        return pa.array([_sqlite_value(v, t) for v in arr.to_pylist()], t)
    except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError, TypeError, OverflowError, ArithmeticError) as exc:
        raise err(f"cannot read a value as {t}: {exc}") from None


def _sqlite_text(v: Any) -> str:
    if isinstance(v, bytes):
        return v.decode("utf-8")
    if isinstance(v, float) and v.is_integer():
        return repr(v)
    return str(v)


def _sqlite_value(v: Any, t: pa.DataType) -> Any:
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


def _sqlite_storage(col: pa.ChunkedArray) -> pa.ChunkedArray:
    """An Arrow column in this adapter's SQLite storage forms (text timestamps, plain decimals, 0/1 …)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.types as pt

    t = col.type
    if pt.is_timestamp(t):
        if t.tz is not None:
            return pc.strftime(col.cast(pa.timestamp("us", "UTC")), format="%Y-%m-%dT%H:%M:%S+00:00")
        return pc.strftime(col.cast(pa.timestamp("us")), format="%Y-%m-%d %H:%M:%S")
    if pt.is_date(t) or pt.is_time(t):
        return col.cast(pa.string())
    if pt.is_boolean(t):
        return col.cast(pa.int64())
    if pt.is_decimal(t) or pt.is_struct(t) or pt.is_list(t) or pt.is_large_list(t):
        return pa.chunked_array([pa.array(_sqlite_values(col), pa.string())])
    if pt.is_large_string(t):
        return col.cast(pa.string())
    return col


def _sqlite_values(col: pa.ChunkedArray) -> list[Any]:
    """Python values of an Arrow column in the storage form this adapter uses on SQLite."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.types as pt

    t = col.type
    if pt.is_timestamp(t):
        if t.tz is not None:
            col = col.cast(pa.timestamp("us", "UTC"))
            return pc.strftime(col, format="%Y-%m-%dT%H:%M:%S+00:00").to_pylist()
        return pc.strftime(col.cast(pa.timestamp("us")), format="%Y-%m-%d %H:%M:%S").to_pylist()
    if pt.is_decimal(t):  # plain notation (Arrow's cast may give "1E-10")
        return [None if v is None else format(v, "f") for v in col.to_pylist()]
    if pt.is_date(t) or pt.is_time(t):
        return col.cast(pa.string()).to_pylist()
    if pt.is_boolean(t):
        return col.cast(pa.int64()).to_pylist()
    if pt.is_struct(t) or pt.is_list(t) or pt.is_large_list(t):
        import orjson

        from ..arrow import arrow_to_records

        name = "v"
        vals = arrow_to_records(pa.table({name: col}))
        return [
            None if r[name] is None else orjson.dumps(r[name], default=json_default).decode() for r in vals
        ]
    return col.to_pylist()


# ------------------------------------------------------------------------------------ schema provider
class SQLReflectionOptions(OptionsModel):
    """Options of the ``sql_reflection`` schema provider."""

    url: str | None = Field(default=None, json_schema_extra={"secret": True})
    schema_: str | None = Field(default=None, alias="schema")
    engine_options: dict[str, Any] = Field(default_factory=dict)


class SQLReflectionSchemaProvider(SchemaProvider):
    """The JSON Schema of a table (or a custom query) from SQL reflection.

    Context: ``table`` (or ``stream``) and optionally ``schema``, or ``query``; the database is the
    ``url`` option, or an ``engine``/``connection``/``url`` passed in the context.
    """

    name = "sql_reflection"
    Options = SQLReflectionOptions

    def schema(self, **context: Any) -> JSONSchema:
        url = context.get("url") or self.options.url
        engine = context.get("engine")
        connection = context.get("connection")
        if engine is not None or connection is not None:
            bind: Any = connection if connection is not None else engine
            url = str(bind.engine.url.render_as_string(hide_password=False))
        if not url:
            raise ConfigError(
                "schema provider 'sql_reflection': needs the 'url' option (or an engine)",
                plugin="schema provider 'sql_reflection'",
                field="url",
            )
        table = context.get("table") or context.get("stream")
        query = context.get("query")
        if not table and not query:
            raise ConfigError(
                "schema provider 'sql_reflection': needs 'table' (or 'query') in the context",
                plugin="schema provider 'sql_reflection'",
                field="table",
            )
        schema = context.get("schema") or self.options.schema_
        stream: dict[str, Any] = (
            {"name": str(context.get("stream") or "query"), "query": query}
            if query
            else {"name": str(context.get("stream") or table), "table": table, "schema": schema}
        )
        opts = {"url": url, "streams": [stream], "engine_options": self.options.engine_options}
        with SQLAdapter(opts) as ad:
            spec = ad.discover()[0]
        return dict(spec.schema)
