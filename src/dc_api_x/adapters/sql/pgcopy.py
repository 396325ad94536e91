"""Table reads of PostgreSQL through our own binary ``COPY`` decoder (``_pgcopy.c``) instead of the
ADBC driver's.

The ``adbc-driver-postgresql`` wheel's library is compiled without optimisation: decoding the binary
``COPY`` is a third of a large read's CPU there (docs/benchmarks.md). This reads the same
``COPY (…) TO STDOUT (FORMAT binary)`` over a libpq connection (ctypes; the libpq of the
``psycopg[binary]`` wheel of the ``postgres`` extra, else the system's ``libpq.so.5``) and decodes
it in one compiled pass into Arrow record batches with **the Arrow types, field metadata and values
the ADBC driver gives** (its ``copy/reader.h``), of about its batch size (:data:`BATCH_BYTES` of
``COPY`` data), so everything after the read is unchanged.

It is used for a statement only when every column of its result has a type of :data:`TYPES`
(``describe``: the server's description of the prepared statement); any other type, no libpq to
load, the extension not built (no C compiler at install) or ``DCAPIX_PG_COPY=0`` leaves the read
to ADBC (:func:`status` says why). One difference: a ``date`` / ``timestamp`` ``'infinity'`` is an
error here (the ADBC driver wraps it into a wrong instant).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

__all__ = [
    "BATCH_BYTES",
    "ENV",
    "MIN_ROWS",
    "TYPES",
    "CopyConnection",
    "CopyError",
    "Layout",
    "enabled",
    "load",
    "status",
]

#: Environment variable that turns the decoder off (``0``): reads go through the ADBC driver.
ENV = "DCAPIX_PG_COPY"
#: a full-table read of a table estimated below this many rows stays with ADBC, whose connection is
#: open already: loading libpq and a connection of our own cost ~0.02 CPU-s, our decoding saves
#: ~0.45 CPU-s per 1M rows (docs/benchmarks.md); reads of unknown size (a query, an incremental read)
#: use the decoder
MIN_ROWS = 50_000
#: ``COPY`` bytes of rows per record batch (the ADBC driver's ``batch_size_hint_bytes`` default)
BATCH_BYTES = 16 << 20

#: PostgreSQL type OID -> (type name, decoder kind name); the Arrow type is :func:`_arrow_type`'s
TYPES: dict[int, tuple[str, str]] = {
    16: ("bool", "K_BOOL"),
    21: ("int2", "K_I16"),
    23: ("int4", "K_I32"),
    20: ("int8", "K_I64"),
    26: ("oid", "K_I32"),
    700: ("float4", "K_F32"),
    701: ("float8", "K_F64"),
    18: ("char", "K_TEXT"),
    19: ("name", "K_TEXT"),
    25: ("text", "K_TEXT"),
    1042: ("bpchar", "K_TEXT"),
    1043: ("varchar", "K_TEXT"),
    17: ("bytea", "K_TEXT"),
    114: ("json", "K_TEXT"),
    3802: ("jsonb", "K_JSONB"),
    1700: ("numeric", "K_NUMERIC"),
    2950: ("uuid", "K_UUID"),
    1082: ("date", "K_DATE"),
    1083: ("time", "K_TIME"),
    1114: ("timestamp", "K_TS"),
    1184: ("timestamptz", "K_TS"),
}


class CopyError(Exception):
    """A statement or ``COPY`` the server or libpq failed (its message)."""


def load() -> ModuleType | None:
    """The extension module, or ``None`` (not built, or turned off by ``DCAPIX_PG_COPY=0``)."""
    return None if status()[0] is False else _module()


def _module() -> ModuleType | None:
    try:
        from . import _pgcopy
    except ImportError:
        return None
    return _pgcopy


#: PQresultStatus / PQstatus values (libpq-fe.h)
_COMMAND_OK, _TUPLES_OK, _COPY_OUT, _CONNECTION_OK = 1, 2, 3, 0


class _LibPQ:
    """The libpq functions this uses, through ctypes (no psycopg import: ~0.12 s of a run)."""

    def __init__(self, lib: Any) -> None:
        import ctypes as c

        p, i, s = c.c_void_p, c.c_int, c.c_char_p

        def fn(name: str, res: Any, *args: Any) -> Any:
            f = getattr(lib, name)
            f.restype, f.argtypes = res, list(args)
            return f

        self.connectdb = fn("PQconnectdb", p, s)
        self.status = fn("PQstatus", i, p)
        self.error_message = fn("PQerrorMessage", s, p)
        self.finish = fn("PQfinish", None, p)
        self.exec = fn("PQexec", p, p, s)
        self.exec_params = fn("PQexecParams", p, p, s, i, p, c.POINTER(s), p, p, i)
        self.prepare = fn("PQprepare", p, p, s, s, i, p)
        self.describe_prepared = fn("PQdescribePrepared", p, p, s)
        self.send_query = fn("PQsendQuery", i, p, s)
        self.get_result = fn("PQgetResult", p, p)
        self.result_status = fn("PQresultStatus", i, p)
        self.result_error_message = fn("PQresultErrorMessage", s, p)
        self.clear = fn("PQclear", None, p)
        self.ntuples = fn("PQntuples", i, p)
        self.nfields = fn("PQnfields", i, p)
        self.fname = fn("PQfname", s, p, i)
        self.ftype = fn("PQftype", c.c_uint, p, i)
        self.fmod = fn("PQfmod", i, p, i)
        self.getvalue = fn("PQgetvalue", s, p, i, i)
        self.getisnull = fn("PQgetisnull", i, p, i, i)
        #: addresses the decoder calls (with the GIL released)
        self.get_copy_data = int(c.cast(lib.PQgetCopyData, p).value or 0)
        self.freemem = int(c.cast(lib.PQfreemem, p).value or 0)


_LIBPQ: _LibPQ | str | None = None  # the loaded libpq, or why not


def _libpq() -> _LibPQ | str:
    """libpq: the one the ``psycopg[binary]`` wheel ships (the ``postgres`` extra; found, not
    imported), else the system's ``libpq.so.5``; or why none loads."""
    global _LIBPQ
    if _LIBPQ is not None:
        return _LIBPQ
    import ctypes
    import importlib.util
    from pathlib import Path

    candidates: list[str] = []
    try:
        spec = importlib.util.find_spec("psycopg_binary")
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.origin:
        libs = Path(spec.origin).parent.parent / "psycopg_binary.libs"
        candidates += [str(x) for x in sorted(libs.glob("libpq*.so*"))]
    candidates.append("libpq.so.5")
    why = "no libpq found (install dc-api-x[postgres])"
    for path in candidates:
        try:
            _LIBPQ = _LibPQ(ctypes.CDLL(path))
            return _LIBPQ
        except (OSError, AttributeError) as exc:
            why = f"libpq not loaded ({exc})"
    _LIBPQ = why
    return why


def enabled() -> tuple[bool, str]:
    """:func:`status` without loading libpq (~0.015 CPU-s): the extension is built and not turned off."""
    if os.environ.get(ENV, "1") == "0":
        return False, f"turned off by {ENV}=0"
    if _module() is None:
        return False, (
            "the binary COPY decoder (dc_api_x.adapters.sql._pgcopy) is not built; reinstall dc-api-x "
            "where a C compiler and the Python headers are present"
        )
    return True, "built"


def status() -> tuple[bool, str]:
    """``(available, reason)``: whether table reads use the decoder, and why not (loads libpq)."""
    ok = enabled()
    if not ok[0]:
        return ok
    lib = _libpq()
    if isinstance(lib, str):
        return False, lib
    return True, "built"


@dataclass(frozen=True)
class Layout:
    """The result columns of a statement the decoder reads: names, decoder kinds, Arrow schema."""

    kinds: bytes
    schema: pa.Schema


def _arrow_type(pa: Any, typname: str) -> Any:
    if typname in ("int2",):
        return pa.int16()
    if typname in ("int4", "oid"):
        return pa.int32()
    if typname == "int8":
        return pa.int64()
    if typname == "float4":
        return pa.float32()
    if typname == "float8":
        return pa.float64()
    if typname == "bool":
        return pa.bool_()
    if typname == "bytea":
        return pa.binary()
    if typname in ("json", "jsonb"):
        return pa.json_(pa.string())
    if typname == "numeric":
        return pa.opaque(pa.string(), "numeric", "PostgreSQL")
    if typname == "uuid":
        return pa.uuid()
    if typname == "date":
        return pa.date32()
    if typname == "time":
        return pa.time64("us")
    if typname == "timestamp":
        return pa.timestamp("us")
    if typname == "timestamptz":
        return pa.timestamp("us", tz="UTC")
    return pa.string()


def layout_of(columns: list[tuple[str, int, int]]) -> Layout | None:
    """The :class:`Layout` of result columns ``(name, type OID, typmod)``, or ``None`` when one has a
    type the decoder does not read (then ADBC reads the statement)."""
    import pyarrow as pa

    mod = _module()
    if mod is None or not columns:
        return None
    kinds = bytearray()
    fields = []
    for name, oid, typmod in columns:
        known = TYPES.get(oid)
        if known is None:
            return None
        typname, kind = known
        kinds.append(getattr(mod, kind))
        if typname == "numeric":  # (the ADBC driver's keys, in its order)
            meta = {
                "ADBC:postgresql:typname": "numeric",
                "POSTGRESQL:type": "numeric",
                "POSTGRESQL:typmod": str(typmod),
            }
        else:
            meta = {"POSTGRESQL:type": typname}
        fields.append(pa.field(name, _arrow_type(pa, typname), metadata=meta))
    return Layout(bytes(kinds), pa.schema(fields))


def batch_of(layout: Layout, rows: int, columns: list[tuple[int, Any, Any, Any]]) -> pa.RecordBatch:
    """The record batch of the decoder's column buffers (``Decoder.take()``), without a copy."""
    import pyarrow as pa

    arrays = []
    for field, (nulls, valid, data, offsets) in zip(layout.schema, columns, strict=True):
        typ = field.type
        storage = typ.storage_type if isinstance(typ, pa.ExtensionType) else typ
        bufs = [None if valid is None else pa.py_buffer(valid)]
        if offsets is not None:
            bufs.append(pa.py_buffer(offsets))
        bufs.append(pa.py_buffer(data))
        arr = pa.Array.from_buffers(storage, rows, bufs, null_count=nulls)
        if storage is not typ:
            arr = pa.ExtensionArray.from_storage(typ, arr)
        arrays.append(arr)
    return pa.RecordBatch.from_arrays(arrays, schema=layout.schema)


class CopyConnection:
    """A libpq connection reading statements through the decoder; what :mod:`.pg_ranges` needs of a
    connection (``cursor()`` for its transaction statements, ``close()``) plus
    :meth:`record_batches`. ``layout``: the columns of the statements it reads (every range of a
    read has the same), set by :meth:`describe` or given. One thread at a time."""

    def __init__(self, uri: str, layout: Layout | None = None, name: str = "") -> None:
        lib = _libpq()
        if isinstance(lib, str):  # pragma: no cover - status() said so first
            raise CopyError(lib)
        self.lib = lib
        conn = lib.connectdb(uri.encode())
        if not conn:  # pragma: no cover - out of memory
            raise CopyError("libpq could not allocate a connection")
        if lib.status(conn) != _CONNECTION_OK:
            msg = _text(lib.error_message(conn))
            lib.finish(conn)
            raise CopyError(msg or "connection failed")
        self.conn: int | None = conn
        self.layout = layout
        self.name = name

    def _result(self, res: int | None, ok: tuple[int, ...] = (_COMMAND_OK, _TUPLES_OK)) -> int:
        """``res`` if its status is one of ``ok``; else it is cleared and its error raised."""
        lib = self.lib
        if not res:
            raise CopyError(_text(lib.error_message(self.conn)) or "no result")
        if lib.result_status(res) not in ok:
            msg = _text(lib.result_error_message(res)) or _text(lib.error_message(self.conn))
            lib.clear(res)
            raise CopyError(msg or "statement failed")
        return res

    def exec(self, sql: str, params: list[str] | None = None) -> list[tuple[str | None, ...]]:
        """Run ``sql`` (text parameters ``params``); its rows as text, or CopyError."""
        import ctypes

        lib = self.lib
        if params is None:
            res = lib.exec(self.conn, sql.encode())
        else:
            values = (ctypes.c_char_p * len(params))(*[v.encode() for v in params])
            res = lib.exec_params(self.conn, sql.encode(), len(params), None, values, None, None, 0)
        res = self._result(res)
        try:
            return [
                tuple(
                    None if lib.getisnull(res, r, f) else _text(lib.getvalue(res, r, f))
                    for f in range(lib.nfields(res))
                )
                for r in range(lib.ntuples(res))
            ]
        finally:
            lib.clear(res)

    def describe(self, sql: str) -> Layout | None:
        """The :class:`Layout` of ``sql``'s result (the server's description of it prepared), or
        ``None`` when a column has a type the decoder does not read."""
        lib = self.lib
        lib.clear(self._result(lib.prepare(self.conn, b"", sql.encode(), 0, None)))
        res = self._result(lib.describe_prepared(self.conn, b""))
        try:
            n = lib.nfields(res)
            cols = [
                (_raw(lib.fname(res, i)), int(lib.ftype(res, i)), int(lib.fmod(res, i))) for i in range(n)
            ]
        finally:
            lib.clear(res)
        self.layout = layout_of(cols)
        return self.layout

    def record_batches(self, sql: str) -> Iterator[pa.RecordBatch]:
        """The record batches of ``COPY (sql) TO STDOUT (FORMAT binary)`` (its columns: ``layout``)."""
        lib, conn, layout, mod = self.lib, self.conn, self.layout, _module()
        if layout is None or mod is None:  # pragma: no cover - checked before
            raise CopyError("the binary COPY decoder is not available")
        if not lib.send_query(conn, f"COPY ({sql}) TO STDOUT (FORMAT binary)".encode()):
            raise CopyError(_text(lib.error_message(conn)) or "COPY not sent")
        try:
            self._result(lib.get_result(conn), (_COPY_OUT,))
        except CopyError:
            self._drain()
            raise
        decoder = mod.Decoder(layout.kinds, self.name or "?")
        while True:
            try:
                state = decoder.read(conn, lib.get_copy_data, lib.freemem, BATCH_BYTES)
                rows, columns = decoder.take()
            except ValueError as exc:  # malformed data (named by the decoder)
                raise CopyError(str(exc)) from None
            if state == -2:
                raise CopyError(_text(lib.error_message(conn)) or "the connection failed during COPY")
            if rows:
                yield batch_of(layout, rows, columns)
            if state == 0:
                break
        try:
            lib.clear(self._result(lib.get_result(conn), (_COMMAND_OK,)))
        finally:
            self._drain()
        try:
            decoder.finish()
        except ValueError as exc:
            raise CopyError(str(exc)) from None

    def _drain(self) -> None:
        while res := self.lib.get_result(self.conn):
            self.lib.clear(res)

    def cursor(self) -> _Cursor:
        return _Cursor(self)

    def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn:
            self.lib.finish(conn)


class _Cursor:
    """The DB-API-like part :mod:`.pg_ranges` uses: ``execute`` / ``fetchone`` (text values) / ``close``."""

    def __init__(self, conn: CopyConnection) -> None:
        self.conn = conn
        self.rows: list[tuple[str | None, ...]] = []

    def execute(self, sql: str, parameters: tuple[Any, ...] | None = None) -> None:
        self.rows = self.conn.exec(sql, None if parameters is None else [str(p) for p in parameters])

    def fetchone(self) -> tuple[str | None, ...] | None:
        return self.rows[0] if self.rows else None

    def close(self) -> None:
        self.rows = []


def _text(b: bytes | None) -> str:
    return (b or b"").decode("utf-8", "replace").strip()


def _raw(b: bytes | None) -> str:
    """A column name as the server sent it (UTF-8: the client encoding of a UTF-8 database)."""
    return (b or b"").decode("utf-8", "replace")
