"""The ``oracle_db`` adapter: the ``sql`` adapter with :class:`~.backend.OracleBackend`, a connection
pool, sessions in UTC and PL/SQL procedure streams (:mod:`~.procedures`)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from dc_api_x.adapters.sql.adapter import SQLAdapter
from dc_api_x.ext.sql import SQLBackend, SQLRead, SQLSource
from dc_api_x.logs import redact
from dc_api_x.types import Batch, JSONSchema, StreamSpec, WriteResult

from .backend import OracleBackend, number_output_handler
from .config import OracleOptions, OracleStreamOptions
from .procedures import ProcedureCall, open_ref_cursor
from .typemap import oracle_column_type

__all__ = ["OracleAdapter", "SESSION_SETUP"]

#: Run on every new connection: instants are bound and compared in UTC.
SESSION_SETUP = "ALTER SESSION SET TIME_ZONE = '+00:00'"


class OracleAdapter(SQLAdapter):
    """Oracle Database through python-oracledb (thin mode) and SQLAlchemy's ``oracle+oracledb``."""

    name = "oracle_db"
    Options = OracleOptions
    options: OracleOptions
    backends: ClassVar[Mapping[str, str | type[SQLBackend]]] = {"oracle": OracleBackend}
    default_backend: ClassVar[str | type[SQLBackend]] = OracleBackend

    # -- plumbing ---------------------------------------------------------------------------------
    @property
    def engine(self) -> Engine:
        current: Engine | None = self.__dict__.get("_engine")
        if current is None:
            try:
                current = sa.create_engine(self.url, **self.engine_arguments())
            except Exception as exc:
                raise self.error(f"cannot create engine for {self.safe_url}: {redact(exc)}") from None
            sa.event.listen(current, "connect", _session_setup)
            self._engine = current
        return current

    def engine_arguments(self) -> dict[str, Any]:
        """The pool options, the connect timeout, ``engine_options`` and the SQL extensions'
        engine plugins."""
        return self.with_engine_plugins(self.options.engine_kwargs())

    # -- procedure streams --------------------------------------------------------------------------
    def procedures(self) -> dict[str, ProcedureCall]:
        """The configured procedure streams by name."""
        out: dict[str, ProcedureCall] = {}
        for item in self.options.streams or []:
            if isinstance(item, OracleStreamOptions) and item.procedure is not None:
                assert item.name is not None
                out[item.name] = ProcedureCall(item.procedure, item.parameters, item.cursor_parameter)
        return out

    def _configured(self, default: str) -> list[SQLSource]:
        # the table and query streams (procedure streams are this adapter's own)
        saved = self.options.streams
        others = [s for s in saved or [] if not (isinstance(s, OracleStreamOptions) and s.procedure)]
        if len(others) == len(saved or []):
            return super()._configured(default)
        self.options.streams = others
        try:
            return super()._configured(default)
        finally:
            self.options.streams = saved

    def _discover(self, conn: Connection, default: str) -> list[StreamSpec]:
        specs = super()._discover(conn, default)
        procedures = self.procedures()
        if not procedures:
            return specs
        by_name = {s.name: s for s in specs}
        for name, call in procedures.items():
            by_name[name] = self._procedure_spec(conn, name, call)
        order = [(s if isinstance(s, str) else s.name) for s in self.options.streams or []]
        return sorted(by_name.values(), key=lambda s: order.index(s.name) if s.name in order else len(order))

    def _procedure_spec(self, conn: Connection, name: str, call: ProcedureCall) -> StreamSpec:
        keys: list[str] = []
        for s in self.options.streams or []:
            if isinstance(s, OracleStreamOptions) and s.name == name:
                keys = list(s.primary_keys or [])
        opened = self._call(conn, name, call, arraysize=1)
        opened.close()
        props = dict(opened.columns)
        for k in keys:
            if k not in props:
                raise self.error(
                    f"primary key {k!r} is not a column of procedure {call.name}", stream=name, field=k
                )
        return StreamSpec(
            name=name,
            schema={"type": "object", "properties": props},
            key_properties=tuple(keys),
            options={"procedure": call.name},
        )

    def _call(self, conn: Connection, name: str, call: ProcedureCall, arraysize: int) -> Any:
        import oracledb

        dbapi = conn.connection.driver_connection
        assert dbapi is not None
        try:
            return open_ref_cursor(
                dbapi,
                call,
                arraysize=arraysize,
                normalize=self.dialect.normalize_name,
                handler=number_output_handler(dbapi.outputtypehandler),
            )
        except oracledb.Error as exc:
            raise self.backend.db_error(exc, f"calling {call.plsql()}", stream=name) from None

    def read(
        self,
        stream: StreamSpec,
        *,
        state: Mapping[str, Any] | None = None,
        columns: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> Iterator[Batch]:
        """Table and query streams as ``sql`` reads them; a procedure stream: the procedure's ref
        cursor, in full (``state`` does not apply), in batches of ``batch_size`` rows."""
        call = self.procedures().get(stream.name)
        if call is None:
            yield from super().read(stream, state=state, columns=columns, limit=limit)
            return
        if limit is not None and limit <= 0:
            return
        size = self.options.batch_size or 10_000
        with self.engine.connect() as conn:
            opened = self._call(conn, stream.name, call, arraysize=size)
            try:
                props: dict[str, JSONSchema] = dict(opened.columns)
                for c in columns or []:
                    if c not in props:
                        raise self.error(
                            f"unknown column {c!r} (known: {', '.join(props)})", stream=stream.name, field=c
                        )
                spec = stream.with_(schema={"type": "object", "properties": props})
                source = SQLSource(stream.name, query=call.plsql())
                read = SQLRead(spec, source, props, None, limit, size)
                assert isinstance(self.backend, OracleBackend)
                wanted = list(columns or [])
                sub = {"type": "object", "properties": {c: props[c] for c in wanted}}
                for batch in self.backend.batches(read, opened.ref_cursor, size):
                    if wanted:  # the procedure returns what it returns: keep the columns asked for
                        batch = batch.with_records([{c: r[c] for c in wanted} for r in batch.records], sub)
                    yield batch
            finally:
                opened.close()

    # -- writing ------------------------------------------------------------------------------------
    def _check_types(self, props: Mapping[str, JSONSchema]) -> None:
        for n, p in props.items():
            try:
                oracle_column_type(p, self.dialect)
            except ValueError as exc:
                raise _DoesNotFit(n, str(exc)) from None

    def _table_obj(
        self, schema: str | None, name: str, props: Mapping[str, JSONSchema], keys: Sequence[str]
    ) -> sa.Table:
        self._check_types(props)
        table = super()._table_obj(schema, name, props, keys)
        for k in keys:  # a key column cannot be a LOB: VARCHAR2 / RAW instead of CLOB / BLOB
            table.c[k].type = oracle_column_type(props[k], self.dialect, key=True)
        return table

    def _add_columns(self, conn: Connection, table: sa.Table, new: Mapping[str, JSONSchema]) -> None:
        self._check_types(new)
        super()._add_columns(conn, table, new)

    def start_write(self, stream: StreamSpec, *, load_method: str | None = None) -> None:
        try:
            super().start_write(stream, load_method=load_method)
        except _DoesNotFit as exc:
            raise self.error(exc.message, stream=stream.name, field=exc.field) from None

    def write(self, stream: StreamSpec, batch: Batch) -> WriteResult:
        try:
            return super().write(stream, batch)
        except _DoesNotFit as exc:  # a column added by schema evolution
            raise self.error(exc.message, stream=stream.name, field=exc.field) from None


class _DoesNotFit(ValueError):
    """A field whose JSON Schema has no exact Oracle column type."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = f"field {field!r}: {message}"


def _session_setup(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(SESSION_SETUP)
    finally:
        cursor.close()
