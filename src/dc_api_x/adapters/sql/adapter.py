"""The ``sql`` adapter (SQLAlchemy 2 Core): options, streams, discovery, incremental bookmarks, tables
and the write protocol, the same on every database.

What differs between databases — reflection details, types, native bulk paths, DDL — is done by a
backend (:class:`dc_api_x.ext.sql.SQLBackend`) chosen once per adapter from the URL's dialect
(:attr:`SQLAdapter.backends`): PostgreSQL (ADBC binary COPY), SQLite (sqlite3 / ADBC) or the
generic SQLAlchemy backend for every other dialect. See ``docs/sql.md``.

Reads are ordered by ``(replication key, primary key)`` and resume with an inclusive ``>=`` on the
bookmark value, dropping the rows already delivered at it (:class:`~dc_api_x.bookmarks.SortedBoundary`).
Writes run one transaction per batch; ``overwrite`` fills a stage table and swaps it in at
:meth:`SQLAdapter.finish_write`. Identifiers (schemas, tables, columns) are always rendered by
SQLAlchemy (``Table``/``Column`` objects, the dialect's identifier preparer), never formatted into
SQL by hand — except on the SQLite backend's own read of a plain file (:mod:`.sqlite`) and the
PostgreSQL backend's own discovery and read of a plain URL's tables (:mod:`.pg_direct`), which quote
them in double quotes (embedded ones doubled) so that a small sync does not import SQLAlchemy.

Over 700 lines because it is one class, the adapter contract every backend shares (discovery,
bookmarks, partitions, extensions, the write protocol); what differs per database is already in the
backend modules, and the next candidate to move out is discovery.
"""

from __future__ import annotations

import fnmatch
import hashlib
import importlib
import logging
import re
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import AliasChoices, Field, field_validator

from ...arrow import json_types, jsonschema_to_arrow
from ...bookmarks import SortedBoundary
from ...config import OptionsModel, new_dict
from ...exceptions import AdapterError, ConfigError
from ...ext.adapters import AdapterOptions, ProtocolAdapter
from ...ext.partitions import Partition
from ...ext.sql import BATCH_BYTES, Reflected, SQLBackend, SQLExtension, SQLRead, SQLSource, SQLWrite
from ...logs import redact, redact_url
from ...types import Batch, JSONSchema, StreamSpec, WriteResult
from .lazy import is_sqlalchemy_error, lazy_module
from .pg_direct import PlainURL, plain_url
from .pg_write import MAX_IDENTIFIER_LENGTH, DirectTable
from .pg_write import write_property as direct_write_property
from .typemap import extension_type, load_extensions

if TYPE_CHECKING:  # pragma: no cover
    import sqlalchemy as sa
    from sqlalchemy.engine import Connection, Dialect, Engine
else:  # imported on first use: a plain SQLite file is discovered and read without it (.lazy)
    sa = lazy_module("sqlalchemy")

__all__ = ["SQLAdapter", "SQLOptions", "SQLStreamOptions", "normalize_url", "sqlite_file"]

log = logging.getLogger("dc_api_x.adapters.sql")


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
    batch_bytes: int | None = Field(
        default=BATCH_BYTES,
        ge=0,
        description="a read batch also ends once its text and binary values hold this many bytes "
        "(0: rows only; SQLite reads, docs/sql.md)",
    )
    load_method: Literal["append", "upsert", "overwrite"] = "append"
    stream_name_separator: str = "-"
    arrow: bool = Field(default=True, description="use the native Arrow fast paths when available")
    read_connections: int = Field(
        default=2,
        ge=1,
        description="PostgreSQL (ADBC): connections that read one large table's page ranges at once, "
        "in one snapshot (1: a single COPY)",
    )
    engine_options: dict[str, Any] = Field(default_factory=new_dict)


def normalize_url(url: str, plugin: str = "adapter 'sql'") -> sa.URL:
    """Parse ``url``; plain ``postgresql://``/``postgres://`` URLs get the psycopg 3 driver."""
    try:
        u = sa.make_url(url)
    except Exception as exc:
        raise ConfigError(
            f"{plugin}: option 'url': invalid URL {redact_url(url)!r}: {exc}", plugin=plugin, field="url"
        ) from None
    if u.drivername in ("postgresql", "postgres"):
        u = u.set(drivername="postgresql+psycopg")
    return u


#: ``sqlite:///PATH`` (or ``sqlite+pysqlite:///PATH``): a file, no query options, nothing escaped.
_SQLITE_FILE = re.compile(r"sqlite(?:\+pysqlite)?:///([^?%]+)")


def sqlite_file(url: str) -> str | None:
    """The database file of a plain SQLite URL (``sqlite:///shop.db``, ``sqlite:////abs/shop.db``) —
    what SQLAlchemy's URL parser makes of it, without importing SQLAlchemy — else ``None`` (memory
    databases, ``file:`` URIs, query options and %-escapes are left to SQLAlchemy)."""
    m = _SQLITE_FILE.fullmatch(url.strip())
    if m is None:
        return None
    path = m.group(1)
    if path == ":memory:" or path.startswith("file:"):
        return None
    return path


# ------------------------------------------------------------------------------------------ adapter
class SQLAdapter(ProtocolAdapter):
    """Read and write SQL databases through SQLAlchemy 2 (PostgreSQL via psycopg 3 / ADBC, SQLite, …)."""

    name = "sql"
    Options = SQLOptions
    load_methods = ("append", "upsert", "overwrite")
    secret_options = ("url",)

    #: The backend of each dialect (``URL.get_backend_name()``): a :class:`SQLBackend` subclass or a
    #: lazy ``"module:Class"`` string. A subclass of this adapter may map other dialects.
    backends: ClassVar[Mapping[str, str | type[SQLBackend]]] = {
        "postgresql": "dc_api_x.adapters.sql.postgresql:PostgreSQLBackend",
        "sqlite": "dc_api_x.adapters.sql.sqlite:SQLiteBackend",
    }
    #: The backend of every dialect :attr:`backends` does not name.
    default_backend: ClassVar[str | type[SQLBackend]] = "dc_api_x.adapters.sql.generic:SQLAlchemyBackend"

    def __init__(self, options: Any = None, /, **kwargs: Any) -> None:
        super().__init__(options, **kwargs)
        #: the database file of a plain ``sqlite:///PATH`` URL (:func:`sqlite_file`), else ``None``;
        #: its URL is parsed by SQLAlchemy only when an engine is needed
        self.sqlite_file: str | None = sqlite_file(self.options.url)
        #: a plain ``postgresql://`` URL (:func:`.pg_direct.plain_url`), else ``None``: the backend may
        #: discover and read its tables without SQLAlchemy, which parses the URL only when needed
        self.pg_plain: PlainURL | None = None
        self._url: sa.URL | None = None
        if self.sqlite_file is None:
            self.pg_plain = plain_url(self.options.url)
            if self.pg_plain is None:
                self._url = normalize_url(self.options.url, f"adapter {self.name!r}")
        #: the URL's dialect (``URL.get_backend_name()``)
        self.dialect_name: str = "postgresql" if self.pg_plain is not None else "sqlite"
        if self._url is not None:
            self.dialect_name = self._url.get_backend_name()
        # the password is masked in this adapter's messages (as a whole token: a password such as
        # "postgres" must not garble "postgresql"); URLs are rendered without it anyway.
        pw = str(self._url.password or "") if self._url is not None else ""
        if self.pg_plain is not None:
            pw = self.pg_plain.password
        self._pw_re = re.compile(r"(?<![A-Za-z0-9])" + re.escape(pw) + r"(?![A-Za-z0-9])") if pw else None
        self._engine: Engine | None = None
        self._writes: dict[str, SQLWrite] = {}
        self._discovered: list[StreamSpec] | None = None
        #: the registered SQL extensions for this dialect (``register_sql_extensions``)
        self.extensions: list[SQLExtension] = load_extensions(self.dialect_name)
        #: the backend for this URL's dialect (chosen once)
        self.backend: SQLBackend = self.backend_class(self.dialect_name)(self)

    @property
    def url(self) -> sa.URL:
        """The parsed URL (SQLAlchemy's ``URL``), password included (render it hidden)."""
        if self._url is None:
            self._url = normalize_url(self.options.url, f"adapter {self.name!r}")
        return self._url

    @classmethod
    def backend_class(cls, dialect: str) -> type[SQLBackend]:
        """The backend class for ``dialect`` (:attr:`backends`, else :attr:`default_backend`)."""
        entry = cls.backends.get(dialect, cls.default_backend)
        if isinstance(entry, str):
            module, _, attr = entry.partition(":")
            entry = getattr(importlib.import_module(module), attr)
        assert isinstance(entry, type) and issubclass(entry, SQLBackend), entry
        return entry

    @classmethod
    def open_ahead(cls, config: Mapping[str, Any], role: str = "source") -> Any:
        """Start opening, in a thread, the ADBC database handle an adapter of ``config`` (its raw
        options) will open first (:mod:`.preopen`; ``dcapix run`` calls it while it loads the rest):
        only for a plain ``postgresql://`` URL the PostgreSQL backend reads and writes over ADBC.
        A source and a destination alike (``role``). Returns a function closing a handle nobody
        took, or ``None`` when nothing was started."""
        if cls.backends.get("postgresql") != SQLAdapter.backends["postgresql"]:
            return None
        from . import preopen

        return preopen.open_ahead(config, role)

    # -- plumbing ---------------------------------------------------------------------------------
    @property
    def engine(self) -> Engine:
        if self._engine is None:
            try:
                self._engine = sa.create_engine(self.url, **self.engine_arguments())
            except Exception as exc:
                raise self.error(f"cannot create engine for {self.safe_url}: {redact(exc)}") from None
        return self._engine

    def engine_arguments(self) -> dict[str, Any]:
        """``create_engine`` keyword arguments: ``engine_options`` plus the SQLAlchemy engine plugins
        the SQL extensions ask for (``plugins=[...]``)."""
        return self.with_engine_plugins(dict(self.options.engine_options))

    def with_engine_plugins(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """``kwargs`` with the extensions' :attr:`~dc_api_x.ext.sql.SQLExtension.engine_plugins`
        added to its ``plugins`` list."""
        names = list(kwargs.get("plugins") or [])
        for ext in self.extensions:
            names.extend(p for p in ext.engine_plugins if p not in names)
        if names:
            kwargs["plugins"] = names
        return kwargs

    def figures(self) -> dict[str, Any]:
        """The SQL extensions' figures of this adapter's engine (empty before it is created)."""
        out: dict[str, Any] = {}
        if self._engine is None:
            return out
        for ext in self.extensions:
            out.update(ext.figures(self._engine) or {})
        return out

    def column_type(self, prop: JSONSchema) -> Any:
        """The column type created for ``prop``: the SQL extensions' first, else the backend's."""
        if self.extensions:
            typ = extension_type(self.extensions, prop, self.dialect)
            if typ is not None:
                return typ
        return self.backend.column_type(prop)

    @property
    def dialect(self) -> Dialect:
        return self.engine.dialect

    @property
    def safe_url(self) -> str:
        """The URL without its password (for messages)."""
        if self.pg_plain is not None:  # rendered as SQLAlchemy renders it, without parsing it
            return self.pg_plain.safe
        if self._url is None:  # a plain SQLite file URL: no password, rendered as written
            return self.options.url.strip()  # type: ignore[no-any-return]
        return self._url.render_as_string(hide_password=True)

    def redact(self, message: str) -> str:
        """``message`` with the password and other secrets masked."""
        message = redact(message)
        return self._pw_re.sub("***", message) if self._pw_re is not None else message

    def error(self, message: str, *, stream: str | None = None, field: str | None = None) -> AdapterError:
        return super().error(self.redact(message), stream=stream, field=field)

    def close(self) -> None:
        """Roll back batches still in flight (not flushed), then close every connection."""
        self.backend.close()
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

    def _configured(self, default: str) -> list[SQLSource]:
        out: list[SQLSource] = []
        for item in self.options.streams or []:
            if isinstance(item, str):
                schema, _, table = item.rpartition(".")
                schema = schema or self.options.schema_
                out.append(
                    SQLSource(self._stream_name(table, schema, default), table=table, schema=schema or None)
                )
                continue
            if item.query is None and item.table is None and item.name is None:
                raise self._config_error("each stream needs 'table', 'name' or 'query'")
            if item.query is not None:
                if not item.name:
                    raise self._config_error("a 'query' stream needs a 'name'")
                out.append(
                    SQLSource(
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
                SQLSource(
                    item.name or self._stream_name(table, schema, default),
                    table=table,
                    schema=schema,
                    columns=item.columns,
                    primary_keys=item.primary_keys,
                    replication_key=item.replication_key,
                )
            )
        return out

    def _config_error(self, message: str) -> ConfigError:
        plugin = f"adapter {self.name!r}"
        return ConfigError(f"{plugin}: option 'streams': {message}", plugin=plugin, field="streams")

    # -- discovery ----------------------------------------------------------------------------------
    def discover(self) -> list[StreamSpec]:
        """Every configured stream (or every table and view of ``schema``), by bulk reflection."""
        try:
            with self.backend.discovery_connection() as conn:
                specs = self._discover(conn, self.backend.default_schema(conn))
        except AdapterError:
            raise
        except Exception as exc:
            if not (is_sqlalchemy_error(exc) or self.backend.is_driver_error(exc)):
                raise
            raise self.backend.db_error(exc, "discover") from None
        self._discovered = specs
        return specs

    def _discover(self, conn: Connection, default: str) -> list[StreamSpec]:
        sources = self._configured(default)
        if not self.options.streams:
            schema = self.options.schema_
            tables = self.backend.reflect(conn, schema, None)
            inc, exc = self.options.include, self.options.exclude
            for tname in sorted(tables):
                if inc and not any(fnmatch.fnmatchcase(tname, p) for p in inc):
                    continue
                if exc and any(fnmatch.fnmatchcase(tname, p) for p in exc):
                    continue
                sources.append(
                    SQLSource(self._stream_name(tname, schema, default), table=tname, schema=schema)
                )
            return [self._spec(s, tables[s.table or ""]) for s in sources]
        by_schema: dict[str | None, list[str]] = {}
        for s in sources:
            if s.table is not None:
                by_schema.setdefault(s.schema, []).append(s.table)
        reflected: dict[tuple[str | None, str], Reflected] = {}
        for schema, names in by_schema.items():
            for tname, info in self.backend.reflect(conn, schema, names).items():
                reflected[(schema, tname)] = info
        specs = []
        for s in sources:
            if s.query is not None:
                specs.append(self._spec(s, self._describe_query(conn, s)))
                continue
            found = reflected.get((s.schema, s.table or ""))
            if found is None:
                raise self.error(f"table {s.label!r} not found on {self.safe_url}", stream=s.name)
            specs.append(self._spec(s, found))
        return specs

    def _spec(self, s: SQLSource, info: Reflected) -> StreamSpec:
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

    def _describe_query(self, conn: Connection, s: SQLSource) -> Reflected:
        """Columns of a custom query (the backend types them: result type OIDs, sampled values …)."""
        assert s.query is not None
        from ...ext.sql import user_sql

        sub = user_sql(s.query).columns().subquery("q")
        try:
            cols = self.backend.describe_query(conn, sub, s.name)
        except sa.exc.SQLAlchemyError as exc:
            raise self.backend.db_error(exc, "describing the query", stream=s.name) from None
        return cols, list(s.primary_keys or [])

    # -- reading -------------------------------------------------------------------------------------
    def _source_of(self, stream: StreamSpec) -> SQLSource:
        rng = (stream.options or {}).get("x-dcapix-range")
        if rng is not None:  # one partition of the stream (adapters/sql/partitions.py)
            from .partitions import RangeSource

            base = self._source_of(
                stream.with_(options={k: v for k, v in stream.options.items() if k != "x-dcapix-range"})
            )
            return RangeSource.of(base, rng, stream.properties.get(rng["column"]) or {}, self.backend)
        opts = dict(stream.options or {})
        if opts.get("query"):
            return SQLSource(stream.name, query=opts["query"])
        if opts.get("table"):
            return SQLSource(stream.name, table=opts["table"], schema=opts.get("schema"))
        for s in self._configured(self.backend.default_schema()):
            if s.name == stream.name:
                return s
        return SQLSource(stream.name, table=stream.name, schema=self.options.schema_)

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
        if limit is not None and limit <= 0:
            return
        boundary = None
        if rk:
            value, keys = self._start_bookmark(spec, rk, state)
            boundary = SortedBoundary(rk, pks, value, keys)
        sub_props = {c: props[c] for c in wanted}
        yield from self.backend.read(
            SQLRead(
                spec,
                src,
                sub_props,
                boundary,
                limit,
                self.options.batch_size,
                self.options.batch_bytes or None,
            )
        )

    def partitions(
        self, stream: StreamSpec, *, state: Mapping[str, Any] | None = None, max_partitions: int = 4
    ) -> list[Partition] | None:
        """Ranges of the replication key (or of a numeric primary key), see
        :mod:`dc_api_x.adapters.sql.partitions`."""
        from .partitions import sql_partitions

        return sql_partitions(self, stream, state, max_partitions)

    def read_partition(
        self,
        stream: StreamSpec,
        partition: Partition,
        *,
        state: Mapping[str, Any] | None = None,
        columns: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> Iterator[Batch]:
        """One range of the stream, read (and resumed) like :meth:`read`."""
        from .partitions import partition_spec

        spec = partition_spec(self._resolve_read(stream), partition)
        return self.read(spec, state=state, columns=columns, limit=limit)

    def stage_stream_name(self, stream: StreamSpec, token: str) -> str:
        """Where a partition of ``stream`` is staged for :meth:`merge_stage` (adapters/sql/staging.py)."""
        from .staging import stage_stream_name

        return stage_stream_name(self, stream, token)

    def merge_stage(self, stream: StreamSpec, stage: str) -> int:
        """Upsert a staged partition into ``stream``'s table and drop the stage (one transaction)."""
        from .staging import merge_stage

        return merge_stage(self, stream, stage)

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
        try:
            value = self.backend.start_value(value, spec.properties[rk])
        except (ValueError, ArithmeticError) as exc:
            raise self.error(f"bad bookmark value {value!r}: {exc}", stream=spec.name, field=rk) from None
        return value, keys

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
            self.backend.flush(stream.name)
        if current is not None and current.load_method == method:
            # started again (a new SCHEMA message): keep what was written, widen the table
            current.stream = stream
            self._widen(current, {n: p for n, p in props.items() if n not in current.table.c})
            return
        schema, name = self._target_of(stream)
        self._check_identifiers(stream.name, name, props)
        for k in keys:
            if k not in props:
                raise self.error(f"key property {k!r} is not in the schema", stream=stream.name, field=k)
        direct_start = getattr(self.backend, "start_write_direct", None)
        if direct_start is not None and not self.extensions and not self.options.engine_options:
            # PostgreSQL, a plain URL: set up over ADBC without SQLAlchemy (.pg_write), else None
            stage_name = _short(name, "__dcapix_stage") if method == "overwrite" else ""
            direct = direct_start(stream, schema, name, props, keys, method, stage_name)
            if direct is not None:
                table, target = direct
                self._writes[stream.name] = SQLWrite(
                    stream=stream,
                    table=table,
                    target=target,
                    load_method=method,
                    props={c.name: direct_write_property(c, props.get(c.name) or {}) for c in table.columns},
                    keys=keys,
                    stage_name=stage_name,
                )
                return
        try:
            with self.engine.begin() as conn:
                if schema:
                    self.backend.create_schema(conn, schema)
                target = self._ensure_table(conn, schema, name, props, keys, stream.name)
                if method == "upsert":
                    self._check_unique(conn, target, keys, stream.name)
                table, stage_name = target, ""
                if method == "overwrite":
                    stage_name = _short(name, "__dcapix_stage")
                    stage = self._table_obj(schema, stage_name, props, keys)
                    self.backend.drop_table(conn, stage)
                    stage.create(conn)
                    table = stage
        except AdapterError:
            raise
        except sa.exc.SQLAlchemyError as exc:
            raise self.backend.db_error(exc, f"preparing table {name!r}", stream=stream.name) from None
        self._writes[stream.name] = SQLWrite(
            stream=stream,
            table=table,
            target=target,
            load_method=method,
            props=dict((c.name, self._write_property(c, props.get(c.name) or {})) for c in table.columns),
            keys=keys,
            stage_name=stage_name,
        )

    def _check_identifiers(self, stream: str, table: str | None, columns: Iterable[str]) -> None:
        """Refuse a table or column name longer than the database keeps: PostgreSQL cuts a name at
        63 bytes without an error, so a long name would be stored under another name (and not be
        found again on the next run) and two names sharing their first 63 bytes would be one column
        or one table. Measured in UTF-8 bytes on PostgreSQL, in characters elsewhere."""
        if self.dialect_name == "postgresql" and self._engine is None:
            limit = MAX_IDENTIFIER_LENGTH  # (the dialect's constant, without creating the engine)
        else:
            limit = self.engine.dialect.max_identifier_length or 0
        if limit <= 0:
            return
        pg = self.dialect_name == "postgresql"
        for what, name in ([("table", table)] if table else []) + [("column", c) for c in columns]:
            size = len(name.encode()) if pg else len(name)
            if size > limit:
                unit = "bytes" if pg else "characters"
                named = f"table name {name!r}" if what == "table" else "the column name"
                raise self.error(
                    f"{named} is {size} {unit}; "
                    f"{self.dialect_name} keeps {limit} and would cut it (two names sharing their first "
                    f"{limit} {unit} would become one {what}): rename it (a stream map) or choose a "
                    f"shorter name",
                    stream=stream,
                    field=name if what == "column" else None,
                )

    def _write_property(self, column: sa.Column[Any], prop: JSONSchema) -> JSONSchema:
        """How a field is converted for writing into ``column``: as the stream declares it, except that
        a ``number`` field written into an existing exact numeric column (``NUMERIC``/``DECIMAL``) is
        converted as a decimal — every digit reaches the column, none is rounded through a float64.
        Not on SQLite, whose NUMERIC affinity keeps 15 digits whatever is inserted."""
        types, _ = json_types(prop)
        typ = column.type
        if (
            "number" in types
            and types <= {"integer", "number"}
            and isinstance(typ, sa.Numeric)
            and not isinstance(typ, sa.Float)
            and self.dialect_name != "sqlite"
        ):
            from .typemap import column_property

            return column_property(typ, nullable=True)
        return prop

    def _table_obj(
        self, schema: str | None, name: str, props: Mapping[str, JSONSchema], keys: Sequence[str]
    ) -> sa.Table:
        cols = [sa.Column(n, self.column_type(p), nullable=n not in keys) for n, p in props.items()]
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
        for n, p in new.items():
            col = sa.Column(n, self.column_type(p), nullable=True)
            self.backend.add_column(conn, table, col)
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
        """Write one batch in one transaction; ``committed=True`` once it is durable (``False`` while
        the backend still writes it in the background: :meth:`flush` waits for it)."""
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
            # the message without its own "field 'x': " prefix: schema_error names the field
            detail = getattr(exc, "detail", None) or _without_field(str(exc), fld)
            if fld is not None and fld in st.table.c and "outside the range" in detail:
                typ = st.table.c[fld].type  # (a DirectTable's: format_type() text, shown as SQLAlchemy's)
                detail += f" (column {fld!r} is {typ.upper() if isinstance(typ, str) else typ})"
            raise self.backend.schema_error(detail, stream=stream.name, field=fld) from None
        except Exception as exc:  # pyarrow cast errors
            raise self.backend.schema_error(str(exc), stream=stream.name, field=None) from None
        if table.column_names != names:
            table = table.select(names)
        missing = [k for k in st.keys if k not in names]
        if missing:
            raise self.backend.schema_error(
                "key property missing from the batch", stream=stream.name, field=missing[0]
            )
        affected = self.backend.write(st, table)
        st.rows += table.num_rows
        # rows = the batch's rows; "affected" = what the database reported changing (an upsert of
        # unchanged rows affects none)
        return WriteResult(
            rows=table.num_rows,
            committed=affected is not None,
            details={
                "load_method": st.load_method,
                "affected": table.num_rows if affected is None else affected,
            },
        )

    def _evolve(self, stream: StreamSpec, batch: Batch, st: SQLWrite) -> None:
        new = [n for n in batch.column_names if n not in st.table.c]
        if not new:
            return
        props = dict(stream.properties)
        props.update((batch.schema or {}).get("properties") or {})
        if batch.has_arrow:
            from ...arrow import arrow_to_jsonschema

            aprops = arrow_to_jsonschema(batch.to_arrow().schema)["properties"]
            for n in new:
                props.setdefault(n, aprops[n])
        self._widen(st, {n: props.get(n) or {"type": ["string", "null"]} for n in new})

    def _widen(self, st: SQLWrite, add: dict[str, JSONSchema]) -> None:
        """Add the columns ``add`` to the table being written (for overwrite: the stage table; the
        old one is replaced)."""
        if not add:
            return
        stream = st.stream.name
        self._check_identifiers(stream, None, add)
        self.backend.flush(stream)
        if isinstance(st.table, DirectTable):  # set up without SQLAlchemy (.pg_write)
            self.backend.widen_direct(st, add)  # type: ignore[attr-defined]
            st.props.update(add)
            st.cache.clear()
            return
        try:
            with self.engine.begin() as conn:
                t = st.table
                cols = {c["name"] for c in sa.inspect(conn).get_columns(t.name, schema=t.schema)}
                self._add_columns(conn, t, {n: p for n, p in add.items() if n not in cols})
        except sa.exc.SQLAlchemyError as exc:
            raise self.backend.db_error(exc, f"adding columns {list(add)}", stream=stream) from None
        st.props.update(add)
        st.cache.clear()

    def flush(self, stream: StreamSpec | None = None) -> None:
        """Wait for the batches the backend still writes in the background (every other :meth:`write`
        commits its batch before it returns); raises the error of the first batch that could not be
        written, and then none of the batches after it is committed."""
        self.backend.flush(stream.name if stream is not None else None)

    def finish_write(self, stream: StreamSpec) -> None:
        """Flush; for ``overwrite``: replace the table by the stage table in one transaction."""
        try:
            self.backend.flush(stream.name)
        except BaseException:
            self._writes.pop(stream.name, None)
            raise
        st = self._writes.pop(stream.name, None)
        if st is None or st.load_method != "overwrite":
            return
        try:
            self.backend.replace_table(st.table, st.target)
        except Exception as exc:
            raise self.backend.db_error(
                exc, f"swapping in the new table {st.target.name!r}", stream=stream.name
            ) from None


# ------------------------------------------------------------------------------------------ helpers
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


def _short(name: str, suffix: str, limit: int = 63) -> str:
    """``name + suffix`` within PostgreSQL's identifier limit (a hash keeps it unique)."""
    full = name + suffix
    if len(full.encode()) <= limit:
        return full
    h = hashlib.sha1(name.encode()).hexdigest()[:8]
    head = name.encode()[: limit - len(suffix) - 9].decode(errors="ignore")
    return f"{head}_{h}{suffix}"


def _without_field(msg: str, field: str | None) -> str:
    prefix = f"field {field!r}: "
    return msg[len(prefix) :] if field and msg.startswith(prefix) else msg


def _field_from(msg: str) -> str | None:
    if msg.startswith("field '"):
        end = msg.find("'", 7)
        if end > 7:
            return msg[7:end]
    return None
