"""The SQL backend interface: what the ``sql`` adapter asks of one kind of database.

The built-in ``sql`` adapter (:mod:`dc_api_x.adapters.sql`) does what is the same on every
database — options, stream configuration, discovery, incremental bookmarks, table creation and
widening, the write protocol — and hands what differs to a **backend**, chosen once per adapter
from the URL's dialect::

    SQLAdapter.backends = {"postgresql": "dc_api_x.adapters.sql.postgresql:PostgreSQLBackend",
                           "sqlite": "dc_api_x.adapters.sql.sqlite:SQLiteBackend"}
    SQLAdapter.default_backend = "dc_api_x.adapters.sql.generic:SQLAlchemyBackend"

A backend is a subclass of :class:`SQLBackend`. The generic one,
:class:`dc_api_x.adapters.sql.SQLAlchemyBackend`, implements every method with SQLAlchemy Core
(server-side cursors, ``executemany``, standard DDL) and is the usual base: a new database is one
module that subclasses it and overrides what its SQL does differently (a type, a DDL statement, a
merge, a native bulk path). It is selected by an adapter subclass, registered under its own name::

    # dc_api_x_oracle_db/backend.py
    from dc_api_x.adapters.sql import SQLAdapter, SQLAlchemyBackend

    class OracleBackend(SQLAlchemyBackend):
        dialects = ("oracle",)

        def add_column(self, conn, table, column): ...   # Oracle: ALTER TABLE t ADD (c type)

    class OracleAdapter(SQLAdapter):
        name = "oracle_db"
        backends = {"oracle": OracleBackend}

    # dc_api_x_oracle_db/__init__.py (the plugin module)
    def register_adapters(registry):
        registry.register("oracle_db", "dc_api_x_oracle_db.backend:OracleAdapter")

``docs/sql.md`` describes each method's contract. This module imports nothing heavy (SQLAlchemy and
pyarrow are imported inside the methods that use them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from ..bookmarks import SortedBoundary, row_hash
from ..exceptions import AdapterError, SchemaError
from ..types import Batch, JSONSchema, StreamSpec

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa
    import sqlalchemy as sa
    from sqlalchemy.engine import Connection, Dialect, Engine
    from sqlalchemy.types import TypeEngine

__all__ = [
    "BATCH_BYTES",
    "FETCH_STEP",
    "Reflected",
    "SQLAdapterLike",
    "SQLBackend",
    "SQLExtension",
    "SQLRead",
    "SQLSource",
    "SQLWrite",
    "user_sql",
    "value_bytes",
]

#: Rows per fetch at most while a read measures its batches in bytes (:meth:`SQLRead.fetch`).
FETCH_STEP = 1024

#: The ``batch_bytes`` default of the ``sql`` adapter: a source batch ends once its text and
#: binary values hold 16 MiB (ordinary rows reach ``batch_size`` long before).
BATCH_BYTES = 16 << 20


def value_bytes(rows: Sequence[Sequence[Any]], var: Sequence[int]) -> int:
    """The length of the text and binary values of ``rows`` in the columns ``var`` (characters for
    text, bytes for binary; other values count 0)."""
    cols = list(zip(*rows, strict=True))
    total = 0
    for i in var:
        col = cols[i]
        try:
            total += sum(map(len, filter(None, col)))  # C speed when the column holds text only
        except TypeError:  # a number or another value in a text column
            total += sum(len(v) for v in col if isinstance(v, (str, bytes, bytearray, memoryview)))
    return total


#: What :meth:`SQLBackend.reflect` returns per table: ``([(column, JSON Schema property)…], primary key)``.
Reflected = tuple[list[tuple[str, JSONSchema]], list[str]]


class SQLAdapterLike(Protocol):
    """What a backend may use of the adapter that owns it."""

    name: ClassVar[str]
    options: Any  # the validated options (``batch_size``, ``arrow``, ``engine_options`` …)

    @property
    def url(self) -> sa.URL: ...  # the parsed URL, password included (render it hidden)

    @property
    def engine(self) -> Engine: ...  # created on first use, disposed by ``close()``

    @property
    def safe_url(self) -> str: ...  # the URL without its password, for messages

    def redact(self, message: str) -> str: ...  # masks the password and other secrets

    def error(self, message: str, *, stream: str | None = None, field: str | None = None) -> AdapterError: ...


def user_sql(query: str) -> Any:
    """A user's SQL as a ``text()`` clause: every colon escaped, so ``'{"a":1}'`` or ``'10:30'`` are
    never taken for bind parameters (the query is the user's own SQL, run as written)."""
    import sqlalchemy as sa

    return sa.text(query.replace(":", "\\:"))


@dataclass
class SQLSource:
    """Where a stream's rows come from: a table (``schema.table``) or a custom ``query``."""

    name: str
    table: str | None = None
    schema: str | None = None
    query: str | None = None
    columns: list[str] | None = None
    primary_keys: list[str] | None = None
    replication_key: str | None = None

    @property
    def label(self) -> str:
        """How messages name the source."""
        if self.query is not None:
            return "(query)"
        return f"{self.schema}.{self.table}" if self.schema else str(self.table)

    def clause(self, names: Sequence[str]) -> Any:
        """The ``FROM`` clause with the columns ``names`` (the table, or the query as subquery ``q``)."""
        import sqlalchemy as sa

        if self.query is not None:
            return user_sql(self.query).columns(*[sa.column(n) for n in names]).subquery("q")
        return sa.table(self.table or "", *[sa.column(n) for n in names], schema=self.schema)


class SQLRead:
    """One read, as the adapter hands it to :meth:`SQLBackend.read`: the stream, its source, the
    columns to read (``props``: name → JSON Schema property, in order), the incremental
    ``boundary`` (``None`` for a full read), the row ``limit`` and the ``batch_size`` option.

    A backend runs :meth:`select` (or its own statement with the same order and filter) and hands
    each chunk of rows to :meth:`emit`, which drops the rows delivered before, applies the limit,
    advances the bookmark and returns the :class:`~dc_api_x.types.Batch` to yield (``None`` when
    nothing is left of the chunk). Stop when :attr:`done`.
    """

    def __init__(
        self,
        spec: StreamSpec,
        source: SQLSource,
        props: dict[str, JSONSchema],
        boundary: SortedBoundary | None,
        limit: int | None,
        batch_size: int | None,
        batch_bytes: int | None = None,
    ) -> None:
        self.spec = spec
        self.source = source
        self.props = props
        self.boundary = boundary
        self.limit = limit
        #: the ``batch_size`` option (``None``: the backend's default)
        self.batch_size = batch_size
        #: the ``batch_bytes`` option: a batch also ends once its text and binary values hold this
        #: many bytes (``None``: rows only); see :meth:`fetch`
        self.batch_bytes = batch_bytes
        #: rows still to deliver (``None``: no limit)
        self.remaining = limit
        #: the JSON Schema of every batch
        self.schema: JSONSchema = {"type": "object", "properties": props}

    @property
    def done(self) -> bool:
        """Whether the limit has been reached."""
        return self.remaining is not None and self.remaining <= 0

    def fetch(self, cursor: Any, size: int, var: Sequence[int]) -> Iterator[list[Any]]:
        """Chunks of at most ``size`` rows from a DB-API ``cursor``, each also ended once the values
        of its variable-width columns (indexes ``var``: text and binary) hold :attr:`batch_bytes`
        bytes (characters for text), so ten 10 MB values are not one batch held with its copies.

        Without a byte limit (or such columns) this is ``fetchmany(size)``. With one, the first
        fetch of the read is one row (to learn the row size), then each fetch takes what the room
        left in the chunk holds at the mean row size of the last fetch, at most :data:`FETCH_STEP`
        rows (the check's granularity when the row size jumps); a chunk holds at least one row."""
        limit = self.batch_bytes
        if not limit or not var:
            while rows := cursor.fetchmany(size):
                yield rows
            return
        per_row = 0.0  # the mean bytes of a row of the last fetch (0: nothing fetched yet)
        while True:
            chunk: list[Any] = []
            used = 0
            end = False
            while len(chunk) < size:
                if per_row:
                    if chunk and used + per_row > limit:
                        break  # the next row would pass the limit
                    n = max(1, min(size - len(chunk), FETCH_STEP, int((limit - used) / per_row)))
                else:
                    n = 1
                rows = cursor.fetchmany(n)
                if not rows:
                    end = True
                    break
                got = value_bytes(rows, var)
                per_row = max(got / len(rows), 1.0)
                used += got
                chunk += rows
                if used >= limit:
                    break
            if chunk:
                yield chunk
            if end:
                return

    def arrow_schema(self) -> pa.Schema:
        """The Arrow schema of the batches (:func:`dc_api_x.arrow.jsonschema_to_arrow`)."""
        from ..arrow import jsonschema_to_arrow

        return jsonschema_to_arrow(self.schema)

    def select(self, rk_param: Any = None, col_expr: Callable[[Any, str], Any] | None = None) -> Any:
        """The ``SELECT`` of the read: the columns (``col_expr(column, name)`` may wrap each one),
        ``replication key >= rk_param`` when resuming, ordered by ``(replication key, primary key)``,
        and a limit (with room for the rows :meth:`emit` will drop as delivered before)."""
        import sqlalchemy as sa

        frm = self.source.clause(list(self.props))
        cols = [col_expr(frm.c[n], n) if col_expr else frm.c[n] for n in self.props]
        stmt = sa.select(*cols).select_from(frm)
        boundary = self.boundary
        if boundary is not None:
            rkc = frm.c[boundary.rk]
            if boundary.value is not None:
                stmt = stmt.where(rkc >= rk_param)
            stmt = stmt.order_by(rkc.asc(), *[frm.c[k].asc() for k in boundary.pks])
        if self.limit is not None:
            stmt = stmt.limit(self.limit + self.extra_rows())
        return stmt

    def extra_rows(self) -> int:
        """How many rows at the start of the read may be dropped as delivered before."""
        return len(self.boundary.keys) if self.boundary is not None else 0

    def emit(
        self,
        rows: pa.Table | list[dict[str, Any]],
        rk: Callable[[int], Any] | None = None,
        pk: Callable[[int], tuple[Any, ...]] | None = None,
    ) -> Batch | None:
        """The batch to yield for the next chunk of sorted ``rows`` (an Arrow table or dict records).

        ``rk(i)`` / ``pk(i)`` give row ``i``'s replication value and primary key in JSON form
        (:func:`dc_api_x.values.json_form`); they are needed only when :attr:`boundary` is set. Rows
        of a stream without primary key are keyed by their :func:`~dc_api_x.bookmarks.row_hash`.
        """
        arrow = not isinstance(rows, list)
        n = rows.num_rows if arrow else len(rows)  # type: ignore[union-attr]
        keep: list[int] | None = None
        boundary = self.boundary
        if boundary is not None:
            assert rk is not None
            if not boundary.pks:  # keyless: the boundary key is the hash of the whole row
                pk = _arrow_row_hashes(rows) if arrow else lambda i: (row_hash(rows[i]),)  # type: ignore[index]
            assert pk is not None
            keep = boundary.process(n, rk, pk, self.remaining)
        elif self.remaining is not None and n > self.remaining:
            keep = list(range(self.remaining))
        if keep is not None:
            if arrow:
                import pyarrow as pa

                rows = rows.take(pa.array(keep, pa.int64()))  # type: ignore[union-attr]
            else:
                rows = [rows[i] for i in keep]  # type: ignore[index]
        kept = rows.num_rows if arrow else len(rows)  # type: ignore[union-attr]
        if self.remaining is not None:
            self.remaining -= kept
        if not kept:
            return None
        bookmark = boundary.state() if boundary is not None else None
        if arrow:
            return Batch.from_arrow(rows, schema=self.schema, bookmark=bookmark)  # type: ignore[arg-type]
        return Batch.from_records(rows, schema=self.schema, bookmark=bookmark)  # type: ignore[arg-type]


def _arrow_row_hashes(table: pa.Table) -> Callable[[int], tuple[Any, ...]]:
    """``(row_hash(row i),)`` of an Arrow table, materialising rows in blocks of 1024 (a long run of
    equal replication values stays cheap)."""
    blocks: dict[int, list[dict[str, Any]]] = {}

    def key(i: int) -> tuple[Any, ...]:
        b = i >> 10
        rows = blocks.get(b)
        if rows is None:
            rows = blocks[b] = table.slice(b << 10, 1 << 10).to_pylist()
        return (row_hash(rows[i & 1023]),)

    return key


@dataclass
class SQLWrite:
    """One stream's write session, as the adapter hands it to :meth:`SQLBackend.write`."""

    #: the stream (its name is what messages quote)
    stream: StreamSpec
    #: the table rows go to (for ``overwrite``: the stage table)
    table: sa.Table
    #: the final table
    target: sa.Table
    load_method: str
    #: column name → JSON Schema property of every column of :attr:`table`
    props: dict[str, JSONSchema]
    #: the key columns (``upsert`` merges on them)
    keys: list[str]
    stage_name: str = ""
    rows: int = 0
    #: the backend's own per-stream memo (compiled statements …); cleared when columns are added
    cache: dict[Any, Any] = field(default_factory=dict)


class SQLBackend:
    """How the ``sql`` adapter talks to one kind of database (see the module docstring).

    One instance per adapter (``self.adapter``), created when the adapter is. Methods receive
    SQLAlchemy connections the adapter opened (``conn``) or open their own from ``self.engine``.
    Errors are raised with :meth:`db_error` / :meth:`schema_error`: one line naming the adapter,
    stream and field, the password masked.
    """

    #: The dialect names (``URL.get_backend_name()``) this backend is meant for.
    dialects: ClassVar[tuple[str, ...]] = ()

    def __init__(self, adapter: SQLAdapterLike) -> None:
        self.adapter = adapter

    # -- plumbing --------------------------------------------------------------------------------
    @property
    def engine(self) -> Engine:
        return self.adapter.engine

    @property
    def dialect(self) -> Dialect:
        return self.adapter.engine.dialect

    def db_error(self, exc: BaseException, what: str, stream: str | None = None) -> AdapterError:
        """``"<what> failed on <url>: <the driver's message>"`` as an :class:`AdapterError`."""
        msg = " ".join(str(getattr(exc, "orig", None) or exc).split())
        return self.adapter.error(f"{what} failed on {self.adapter.safe_url}: {msg[:500]}", stream=stream)

    def schema_error(self, message: str, *, stream: str, field: str | None = None) -> SchemaError:
        """A :class:`SchemaError` naming the adapter, the stream and the field (a value that does not
        fit its column, a batch the database refused)."""
        name = self.adapter.name
        where = f"adapter {name!r}, stream {stream!r}" + (f", field {field!r}" if field else "")
        return SchemaError(f"{where}: {self.adapter.redact(message)}", adapter=name, stream=stream)

    # -- discovery -------------------------------------------------------------------------------
    def discovery_connection(self) -> AbstractContextManager[Any]:
        """The connection ``discover()`` hands to :meth:`default_schema`, :meth:`reflect` and
        :meth:`describe_query`, as a context manager: an SQLAlchemy connection of the engine. A
        backend may give its driver's own connection instead when it reflects without SQLAlchemy
        (the SQLite backend: a ``sqlite3`` connection, so discovery does not import SQLAlchemy)."""
        return self.engine.connect()

    def is_driver_error(self, exc: BaseException) -> bool:
        """Whether ``exc`` is a database error of the backend's own driver connections (reported
        with :meth:`db_error`, as SQLAlchemy's errors are)."""
        return False

    def default_schema(self, conn: Connection | None = None) -> str:
        """The schema tables without one live in (streams of it are named without a prefix)."""
        raise NotImplementedError

    def reflect(self, conn: Connection, schema: str | None, names: list[str] | None) -> dict[str, Reflected]:
        """``{table: ([(column, property)…], primary key)}`` of the tables and views of ``schema``
        (only ``names`` when given), in a constant number of queries. Properties follow the JSON
        Schema conventions of :mod:`dc_api_x.arrow`."""
        raise NotImplementedError

    def describe_query(self, conn: Connection, query: Any, stream: str) -> list[tuple[str, JSONSchema]]:
        """``[(column, property)…]`` of a custom query (``query``: the query as a subquery)."""
        raise NotImplementedError

    # -- DDL -------------------------------------------------------------------------------------
    def column_type(self, prop: JSONSchema) -> TypeEngine[Any]:
        """The column type to create for a JSON Schema property."""
        raise NotImplementedError

    def create_schema(self, conn: Connection, schema: str) -> None:
        """Create ``schema`` if it does not exist (before the first table of a write)."""
        raise NotImplementedError

    def add_column(self, conn: Connection, table: sa.Table, column: sa.Column[Any]) -> None:
        """Add the nullable ``column`` to an existing table (schema evolution)."""
        raise NotImplementedError

    def drop_table(self, conn: Connection, table: sa.Table) -> None:
        """Drop ``table`` if it exists (before an ``overwrite`` creates its stage table)."""
        import sqlalchemy as sa

        conn.execute(sa.schema.DropTable(table, if_exists=True))

    def replace_table(self, stage: sa.Table, target: sa.Table) -> None:
        """``overwrite``: replace ``target`` by ``stage`` (renamed to the target's name) in one
        transaction where the database allows it."""
        raise NotImplementedError

    # -- reading ---------------------------------------------------------------------------------
    def start_value(self, value: Any, prop: JSONSchema) -> Any:
        """A stored bookmark value as this backend compares it (may raise ``ValueError``)."""
        return value

    def read(self, read: SQLRead) -> Iterator[Batch]:
        """Run the read and yield its batches through :meth:`SQLRead.emit`."""
        raise NotImplementedError

    # -- writing ---------------------------------------------------------------------------------
    def write(self, write: SQLWrite, table: pa.Table) -> int | None:
        """Write one batch (its columns are columns of ``write.table``) in one transaction.

        Returns the number of rows the database reports changed (``-1`` when unknown) once the
        batch is committed, or ``None`` when it was handed to a background writer: :meth:`flush`
        then waits for it and raises its error. Batches of a stream commit in order.
        """
        raise NotImplementedError

    def flush(self, stream: str | None = None) -> None:
        """Wait for the batches of ``stream`` (all streams: ``None``) still being written."""

    def close(self) -> None:
        """Roll back what is in flight and close the backend's own connections (the adapter
        disposes of the engine)."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} adapter={self.adapter.name!r}>"


class SQLExtension:
    """An extension of the ``sql`` adapter (and of every adapter built on it, such as
    ``oracle_db``), registered by a plugin's ``register_sql_extensions`` hook.

    One instance is made per adapter. Everything is optional; what an extension can do:

    * :attr:`engine_plugins` — SQLAlchemy ``CreateEnginePlugin`` names (entry points of the group
      ``sqlalchemy.plugins``) loaded into every engine the adapter creates
      (``create_engine(..., plugins=[...])``);
    * :meth:`column_property` — the JSON Schema property of a reflected column type (discovery);
    * :meth:`column_type` — the column type created for a JSON Schema property (writes);
    * :meth:`figures` — counters of an engine, shown in the run's metrics (``dcapix run --json``
      ``adapters.source`` / ``adapters.destination``).

    Extensions are asked in registration order before the built-in type mapping; the first answer
    that is not ``None`` wins. See ``docs/sql.md`` ("Extensions").
    """

    #: The registry name.
    name: ClassVar[str] = ""
    #: The dialect names (``URL.get_backend_name()``) it applies to; empty: all.
    dialects: ClassVar[tuple[str, ...]] = ()
    #: SQLAlchemy engine plugins (``sqlalchemy.plugins`` entry-point names) to load into every engine.
    engine_plugins: ClassVar[tuple[str, ...]] = ()

    def column_property(self, type_name: str, dialect: str, nullable: bool) -> JSONSchema | None:
        """The property of a reflected column whose type is ``type_name`` as the database names it
        (``INET``, ``NUMERIC(12, 2)``, a SQLite declared type …), or ``None`` to leave it to others."""
        return None

    def column_type(self, prop: JSONSchema, dialect: Dialect) -> TypeEngine[Any] | None:
        """The SQLAlchemy column type to create for ``prop`` on ``dialect``, or ``None``."""
        return None

    def figures(self, engine: Engine) -> dict[str, Any] | None:
        """Figures of ``engine`` for the run's metrics (numbers are summed across adapters)."""
        return None
