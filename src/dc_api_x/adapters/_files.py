"""File adapters ``parquet``, ``csv`` and ``jsonl``: the implementation (imports pyarrow).

Reached through the registry only (``create_adapter({"adapter": "parquet", "path": …})``); the light
plugin module :mod:`dc_api_x.adapters.files` registers these classes by lazy string.

Layout written by a destination (``path`` is a directory)::

    <path>/<stream>/part-00000-<runid>.parquet      # one file per flushed part
    <path>/<stream>/_schema.jsonschema                    # csv/jsonl only: the stream's JSON Schema
    <path>/.<stream>.tmp-<runid>/                   # overwrite: the new files, swapped in at finish

A part is written under a temporary dot-name and renamed to its final name only when it is
complete (``flush``/``finish_write``): readers never see a partial file, and a failed write leaves
no file behind. Readers ignore names starting with ``.`` or ``_``.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, ClassVar

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pyarrow.types as pt
from pydantic import Field

from ..arrow import (
    ConversionError,
    _column_to_arrow,
    arrow_to_jsonschema,
    arrow_to_records,
    cast_table,
    jsonschema_to_arrow,
    rebatch,
)
from ..bookmarks import BoundaryBookmark
from ..config import OptionsModel
from ..exceptions import AdapterError, ConfigError, SchemaError
from ..ext.adapters import AdapterOptions, ProtocolAdapter
from ..inference import infer_schema
from ..schemas import apply_schema_override
from ..types import Batch, JSONSchema, StreamSpec, WriteResult
from ..values import json_default, json_form

__all__ = ["CSVAdapter", "FileAdapter", "FileStreamOptions", "FilesOptions", "JSONLAdapter", "ParquetAdapter"]

STREAM_META = b"dcapix.stream"
SIDECAR = "_schema.jsonschema"
_GLOB_CHARS = re.compile(r"[*?\[]")
_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


# ------------------------------------------------------------------------------------ options
class FileStreamOptions(OptionsModel):
    """One entry of ``streams``: an explicitly named stream and where its files are."""

    #: the stream name.
    name: str
    #: a file, a directory or a glob (relative paths are relative to the adapter ``path`` if set).
    path: str
    #: schema override: an inline JSON Schema / ``{field: schema}`` dict, or a JSON/YAML file path.
    schema_: dict[str, Any] | str | None = Field(default=None, alias="schema")
    #: primary-key fields.
    primary_keys: list[str] = Field(default_factory=list)
    #: the field incremental reads follow.
    replication_key: str | None = None


class FilesOptions(AdapterOptions):
    """Options shared by the ``parquet``, ``csv`` and ``jsonl`` adapters."""

    #: source: a file, a directory or a glob; destination: a directory (streams go to ``<path>/<stream>/``).
    #: Local paths or fsspec URLs (``s3://…``, ``memory://…``).
    path: str | None = None
    #: explicit source streams (default: one stream named after the file stem / directory name, or one
    #: per sub-directory when ``path`` is a directory of stream directories).
    streams: list[FileStreamOptions] | None = None
    #: schema override for the default stream(s) (see ``streams[].schema``).
    schema_: dict[str, Any] | str | None = Field(default=None, alias="schema")
    #: primary keys of the default stream(s).
    primary_keys: list[str] = Field(default_factory=list)
    #: replication key of the default stream(s).
    replication_key: str | None = None
    #: parquet: ``snappy`` (default), ``zstd``, ``gzip``, ``lz4``, ``brotli``, ``none``;
    #: csv/jsonl: ``gzip`` or ``none`` (reading also detects a ``.gz`` suffix).
    compression: str | None = None
    #: rows per batch when reading.
    batch_size: int = Field(default=65_536, ge=1)
    #: rows per Parquet row group when writing (also the write buffer bound).
    row_group_size: int = Field(default=131_072, ge=1)
    #: start a new part file after this many rows.
    rows_per_file: int | None = Field(default=None, ge=1)
    #: write every batch to its own part file (committed at once).
    file_per_batch: bool = False
    #: the files are sorted by the replication key (in file-name order): incremental bookmarks then
    #: advance with every batch instead of only at the end of the stream.
    ordered: bool = False
    #: rows sampled to discover a CSV/JSONL schema (when no ``_schema.jsonschema`` nor ``schema`` is given).
    sample_size: int = Field(default=1000, ge=1)
    #: CSV field delimiter.
    delimiter: str = ","
    #: fsspec storage options for URLs (credentials, endpoint, …).
    storage_options: dict[str, Any] = Field(default_factory=dict)


# -------------------------------------------------------------------------------- file system
class _FS:
    """The few file-system operations the adapters need, local (os) or fsspec (URLs)."""

    def __init__(self, root: str, storage_options: Mapping[str, Any]) -> None:
        self.local = not _URL_RE.match(root) or root.startswith("file://")
        self.fs: Any = None
        if not self.local:
            import fsspec

            self.fs, _ = fsspec.core.url_to_fs(root, **dict(storage_options))
            self.protocol = root.split("://", 1)[0]

    def norm(self, path: str) -> str:
        if self.local:
            if path.startswith("file://"):
                path = path[len("file://") :]
            return str(Path(path).expanduser())
        return path.rstrip("/")

    def join(self, *parts: str) -> str:
        if self.local:
            return os.path.join(*parts)
        return "/".join(p.strip("/") if i else p.rstrip("/") for i, p in enumerate(parts))

    def display(self, path: str) -> str:
        if self.local or "://" in path:
            return path
        return f"{self.protocol}://{path}"

    def basename(self, path: str) -> str:
        if self.local:
            return os.path.basename(path.rstrip(os.sep))
        return path.rstrip("/").rsplit("/", 1)[-1]

    def dirname(self, path: str) -> str:
        return os.path.dirname(path) if self.local else path.rstrip("/").rsplit("/", 1)[0]

    def exists(self, path: str) -> bool:
        return os.path.exists(path) if self.local else bool(self.fs.exists(path))

    def isdir(self, path: str) -> bool:
        return os.path.isdir(path) if self.local else bool(self.fs.isdir(path))

    def glob(self, pattern: str) -> list[str]:
        if self.local:
            import glob as _glob

            return sorted(p for p in _glob.glob(pattern, recursive=True) if os.path.isfile(p))
        return sorted(p for p in self.fs.glob(pattern) if self.fs.isfile(p))

    def listdir(self, path: str) -> list[tuple[str, bool]]:
        """``(full path, is_dir)`` of the entries of a directory, sorted by name."""
        if self.local:
            with os.scandir(path) as it:
                return sorted((e.path, e.is_dir()) for e in it)
        out = []
        for info in self.fs.ls(path, detail=True):
            out.append((info["name"].rstrip("/"), info.get("type") == "directory"))
        return sorted(out)

    def walk_files(self, path: str) -> list[str]:
        """Every file under ``path`` (recursively), skipping ``.``/``_`` names, sorted."""
        out: list[str] = []
        for full, is_dir in self.listdir(path):
            name = self.basename(full)
            if name.startswith((".", "_")):
                continue
            if is_dir:
                out.extend(self.walk_files(full))
            else:
                out.append(full)
        return out

    def makedirs(self, path: str) -> None:
        if self.local:
            os.makedirs(path, exist_ok=True)
        else:
            self.fs.makedirs(path, exist_ok=True)

    def open_read(self, path: str) -> IO[bytes]:
        if self.local:
            return open(path, "rb")
        return self.fs.open(path, "rb")  # type: ignore[no-any-return]

    def open_write(self, path: str) -> IO[bytes]:
        if self.local:
            return open(path, "wb")
        return self.fs.open(path, "wb")  # type: ignore[no-any-return]

    def sync_file(self, path: str) -> None:
        """fsync a closed local file (no-op for remote stores, durable on close)."""
        if self.local:
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def sync_dir(self, path: str) -> None:
        if self.local:
            with contextlib.suppress(OSError):
                fd = os.open(path, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)

    def rename(self, src: str, dst: str) -> None:
        if self.local:
            os.replace(src, dst)
        else:
            self.fs.mv(src, dst, recursive=True)

    def remove(self, path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            if self.local:
                os.remove(path)
            elif self.fs.exists(path):
                self.fs.rm(path)

    def rmtree(self, path: str) -> None:
        if self.local:
            shutil.rmtree(path, ignore_errors=True)
        elif self.fs.exists(path):
            self.fs.rm(path, recursive=True)

    def write_atomic(self, path: str, data: bytes) -> None:
        tmp = self.join(self.dirname(path), f".{self.basename(path)}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            with self.open_write(tmp) as fh:
                fh.write(data)
                if self.local:
                    fh.flush()
                    os.fsync(fh.fileno())
            self.rename(tmp, path)
        except BaseException:
            self.remove(tmp)
            raise


# ---------------------------------------------------------------------------------- helpers
def _safe_name(stream: str) -> str:
    name = stream.replace("/", "_").replace("\\", "_")
    return "_" if name in ("", ".", "..") else name


def _is_gzip_name(path: str) -> bool:
    return path.lower().endswith(".gz")


class _Incremental:
    """Filters rows after a bookmark and computes the bookmark after each batch.

    Bookmark: ``{"replication_key", "replication_key_value", "keys_at_value"}``; rows with a larger
    value are new, rows *at* the value are new unless their primary key is in ``keys_at_value``
    (without primary keys: unless their row hash is listed, see
    :func:`dc_api_x.bookmarks.row_hash`; a keyless state without row hashes reads every row at the
    value again: at-least-once, never a gap).

    Files are not sorted in general, so by default every batch but the last carries the bookmark the
    read started from (a resumed read repeats rows, never skips one) and the last batch carries the
    new bookmark (the largest value read). With ``ordered`` (the files are sorted by the replication
    key) the bookmark advances with every batch; a row out of order is then an error.
    """

    def __init__(
        self, stream: StreamSpec, state: Mapping[str, Any] | None, field: pa.Field, *, ordered: bool = False
    ) -> None:
        self.ordered = ordered
        self.rk = stream.replication_key or ""
        self.pks = list(stream.key_properties)
        self.field = field
        self.start: pa.Scalar | None = None
        self.safe: dict[str, Any] | None = None
        st = dict(state or {})

        def to_scalar(value: Any) -> Any:
            self.start = _column_to_arrow([value], field)[0]
            return self.start.as_py()

        self.core = BoundaryBookmark.from_state(st, self.rk, self.pks, ties="keep", convert=to_scalar)
        if self.core.has_start:
            self.safe = dict(state or {})
        else:
            self.start = None
        self.monotonic = True

    @property
    def max(self) -> Any:
        """The largest replication value read (or the start value)."""
        return self.core.value

    def filter(self, table: pa.Table) -> pa.Table:
        if self.start is None or table.num_rows == 0:
            return table
        return self.core.filter_arrow(table, self.start)

    def observe(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        col = table.column(self.rk)
        if self.ordered:
            lo = pc.min_max(col)["min"].as_py()
            if (self.max is not None and lo is not None and lo < self.max) or not _non_decreasing(col):
                self.monotonic = False
                raise ValueError(
                    f"rows are not in {self.rk!r} order although option 'ordered' is set "
                    f"(found {json_form(lo)!r} after {json_form(self.max)!r})"
                )
        _lo, hi = self.core.advance_arrow(table)
        if hi is not None and self.ordered:
            self.safe = self.current()

    def current(self) -> dict[str, Any] | None:
        if self.max is None:
            return self.safe
        return self.core.to_state(sort_keys=True)


def _non_decreasing(col: pa.ChunkedArray) -> bool:
    arr = col.drop_null().combine_chunks() if isinstance(col, pa.ChunkedArray) else col.drop_null()
    if len(arr) < 2:
        return True
    return bool(pc.all(pc.greater_equal(arr.slice(1), arr.slice(0, len(arr) - 1))).as_py())


# ---------------------------------------------------------------------------------- writers
class _Part:
    """One part file being written under a temporary name."""

    def __init__(self, tmp: str, final: str) -> None:
        self.tmp = tmp
        self.final = final
        self.rows = 0
        self.handle: Any = None  # ParquetWriter / CSVWriter / binary file
        self.raw: IO[bytes] | None = None


class _StreamWriter:
    """Write state of one stream."""

    def __init__(self, adapter: FileAdapter, stream: StreamSpec, load_method: str) -> None:
        self.adapter = adapter
        self.stream = stream
        self.load_method = load_method
        fs = adapter._fs
        self.fs = fs
        root = adapter._root
        self.final_dir = fs.join(root, _safe_name(stream.name))
        if load_method == "overwrite":
            self.work_dir = fs.join(root, f".{_safe_name(stream.name)}.tmp-{adapter.run_id}")
        else:
            self.work_dir = self.final_dir
        fs.makedirs(self.work_dir)
        self.json_schema = dict(stream.schema)
        self.arrow_schema = jsonschema_to_arrow(self.json_schema)
        meta = orjson.dumps(
            {
                "stream": stream.name,
                "schema": self.json_schema,
                "key_properties": list(stream.key_properties),
                "replication_key": stream.replication_key,
            }
        )
        self.file_schema = self.arrow_schema.with_metadata({STREAM_META: meta})
        self.sidecar = meta
        self.sidecar_written = False
        self.part: _Part | None = None
        self.buffer: list[pa.Table] = []
        self.buffered = 0
        self.parts: list[str] = []
        self.rows = 0

    # -- parts --------------------------------------------------------------------------------
    def _open_part(self) -> _Part:
        a = self.adapter
        seq = a._next_seq()
        ext = a.extension(self.adapter._compression())
        name = f"part-{seq:05d}-{a.run_id}.{ext}"
        part = _Part(self.fs.join(self.work_dir, f".{name}.tmp"), self.fs.join(self.work_dir, name))
        a._open_writer(self, part)
        self.part = part
        return part

    def _close_part(self) -> None:
        part = self.part
        if part is None:
            return
        self.part = None
        try:
            self.adapter._close_writer(part)
            self.fs.sync_file(part.tmp)
            self._write_sidecar()  # before the first part becomes visible
            self.fs.rename(part.tmp, part.final)
            self.fs.sync_dir(self.work_dir)
        except BaseException:
            self.fs.remove(part.tmp)
            raise
        self.parts.append(part.final)

    def _write_sidecar(self) -> None:
        """``_schema.jsonschema`` (csv/jsonl): the stream's schema; appending keeps the properties of the
        schema already there (columns of earlier runs stay readable)."""
        if not self.adapter.needs_sidecar or self.sidecar_written:
            return
        path = self.fs.join(self.work_dir, SIDECAR)
        doc = orjson.loads(self.sidecar)
        if self.load_method != "overwrite" and self.fs.exists(path):
            with contextlib.suppress(Exception), self.fs.open_read(path) as fh:
                old = orjson.loads(fh.read())
                props = {**(old.get("schema") or {}).get("properties", {}), **doc["schema"]["properties"]}
                doc["schema"] = {**doc["schema"], "properties": props}
        self.fs.write_atomic(path, orjson.dumps(doc))
        self.sidecar_written = True

    def abort_part(self) -> None:
        self.buffer, self.buffered = [], 0
        part, self.part = self.part, None
        if part is not None:
            with contextlib.suppress(Exception):
                self.adapter._close_writer(part)
            self.fs.remove(part.tmp)

    # -- data ---------------------------------------------------------------------------------
    def write_table(self, table: pa.Table) -> None:
        opts = self.adapter.options
        if opts.file_per_batch:
            self._write_rows(table)
            self._close_part()
            return
        self.buffer.append(table)
        self.buffered += table.num_rows
        if self.buffered >= opts.row_group_size:
            self._drain()

    def _drain(self) -> None:
        if not self.buffer:
            return
        table = self.buffer[0] if len(self.buffer) == 1 else pa.concat_tables(self.buffer)
        self.buffer, self.buffered = [], 0
        self._write_rows(table)

    def _write_rows(self, table: pa.Table) -> None:
        limit = self.adapter.options.rows_per_file
        offset, n = 0, table.num_rows
        while offset < n:
            part = self.part or self._open_part()
            take = n - offset if limit is None else min(n - offset, limit - part.rows)
            chunk = table.slice(offset, take) if (offset or take != n) else table
            self.adapter._write_chunk(self, part, chunk)
            part.rows += take
            offset += take
            if limit is not None and part.rows >= limit:
                self._close_part()

    def flush(self) -> None:
        self._drain()
        self._close_part()

    def finish(self) -> None:
        self.flush()
        if not self.parts and (self.load_method == "overwrite" or not self._has_data()):
            # no rows: still leave one (empty) part so the stream and its schema exist
            self._open_part()
            self._close_part()
        self._write_sidecar()
        if self.load_method == "overwrite":
            fs = self.fs
            old = None
            if fs.exists(self.final_dir):
                old = fs.join(
                    self.adapter._root, f".{_safe_name(self.stream.name)}.old-{self.adapter.run_id}"
                )
                fs.rename(self.final_dir, old)
            try:
                fs.rename(self.work_dir, self.final_dir)
            except BaseException:
                if old is not None:
                    fs.rename(old, self.final_dir)
                raise
            fs.sync_dir(self.adapter._root)
            if old is not None:
                fs.rmtree(old)

    def _has_data(self) -> bool:
        return (
            any(self.adapter._data_file(f) for f in self.fs.walk_files(self.final_dir))
            if self.fs.isdir(self.final_dir)
            else False
        )

    def abort(self) -> None:
        self.abort_part()
        if self.load_method == "overwrite":
            self.fs.rmtree(self.work_dir)


# ---------------------------------------------------------------------------------- adapters
class FileAdapter(ProtocolAdapter):
    """Common part of the file adapters: discovery, incremental reads, part-file writing."""

    Options = FilesOptions
    load_methods: ClassVar[Sequence[str]] = ("append", "overwrite")
    #: file-name suffixes this format reads.
    suffixes: ClassVar[tuple[str, ...]] = ()
    #: whether the destination writes ``_schema.jsonschema`` next to the parts (formats without types).
    needs_sidecar: ClassVar[bool] = False

    def __init__(self, options: Any = None, /, **kwargs: Any) -> None:
        super().__init__(options, **kwargs)
        opts = self.options
        if not opts.path and not opts.streams:
            raise ConfigError(
                f"adapter {self.name!r}: option 'path' is required",
                plugin=f"adapter {self.name!r}",
                field="path",
            )
        self._check_compression()
        root = opts.path or (opts.streams[0].path if opts.streams else "")
        self._fs = _FS(root, opts.storage_options)
        self._root = self._fs.norm(opts.path) if opts.path else ""
        self.run_id = f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:8]}"
        self._seq = 0
        self._writers: dict[str, _StreamWriter] = {}
        self._streams: list[StreamSpec] | None = None

    # -- hooks for formats ----------------------------------------------------------------------
    def _check_compression(self) -> None:
        c = self.options.compression
        if c is not None and c.lower() not in ("gzip", "none"):
            raise ConfigError(
                f"adapter {self.name!r}: option 'compression': {c!r} is not supported (valid: gzip, none)",
                plugin=f"adapter {self.name!r}",
                field="compression",
            )

    def _compression(self) -> str | None:
        c = (self.options.compression or "").lower()
        return None if c in ("", "none") else c

    def extension(self, compression: str | None) -> str:
        raise NotImplementedError

    def _is_gzip(self, path: str) -> bool:
        return _is_gzip_name(path) or self._compression() == "gzip"

    def _file_schema(self, stream: str, path: str) -> tuple[JSONSchema, dict[str, Any]]:
        """``(JSON Schema, stored stream metadata)`` discovered from one file."""
        raise NotImplementedError

    def _iter_tables(self, stream: StreamSpec, path: str, arrow_schema: pa.Schema) -> Iterator[pa.Table]:
        raise NotImplementedError

    def _discover_schema(self, stream: str, files: list[str]) -> tuple[JSONSchema, dict[str, Any]]:
        """The stream's schema from its files (by default: the first file)."""
        return self._file_schema(stream, files[0])

    def _open_writer(self, sw: _StreamWriter, part: _Part) -> None:
        raise NotImplementedError

    def _write_chunk(self, sw: _StreamWriter, part: _Part, table: pa.Table) -> None:
        raise NotImplementedError

    def _close_writer(self, part: _Part) -> None:
        raise NotImplementedError

    @staticmethod
    def _release(part: _Part) -> None:
        """Drop the part's writer and close its raw file (``_StreamWriter._close_part`` fsyncs it)."""
        part.handle = None
        if part.raw is not None:
            raw, part.raw = part.raw, None
            raw.close()

    def _next_seq(self) -> int:
        seq = self._seq
        self._seq += 1
        return seq

    # -- discovery -------------------------------------------------------------------------------
    def _data_file(self, path: str) -> bool:
        low = path.lower()
        if low.endswith(".gz"):
            low = low[:-3]
        return low.endswith(self.suffixes)

    def _stem(self, path: str) -> str:
        name = self._fs.basename(path)
        if name.lower().endswith(".gz"):
            name = name[:-3]
        for suf in self.suffixes:
            if name.lower().endswith(suf):
                return name[: -len(suf)]
        return name.rsplit(".", 1)[0] if "." in name else name

    def _resolve(self, path: str) -> str:
        fs = self._fs
        relative = not _URL_RE.match(path) and not os.path.isabs(os.path.expanduser(path))
        if self._root and relative and fs.local:
            base = self._root if fs.isdir(self._root) else os.path.dirname(self._root)
            return os.path.join(base, path)
        return fs.norm(path)

    def files_of(self, stream: str, path: str) -> list[str]:
        """The data files of a stream path (a file, a directory or a glob), sorted."""
        fs = self._fs
        if _GLOB_CHARS.search(path):
            files = [f for f in fs.glob(path) if not fs.basename(f).startswith((".", "_"))]
        elif fs.isdir(path):
            files = [f for f in fs.walk_files(path) if self._data_file(f)]
        elif fs.exists(path):
            files = [path]
        else:
            raise self.error(f"path {fs.display(path)!r} does not exist", stream=stream)
        return files

    def _default_streams(self) -> list[tuple[str, str]]:
        fs = self._fs
        root = self._root
        if _GLOB_CHARS.search(root):
            pattern = fs.basename(root)
            stem = self._stem(pattern)
            name = re.sub(r"[*?\[\]]", "", stem).strip("_-. ") or fs.basename(fs.dirname(root))
            return [(name, root)]
        if fs.isdir(root):
            entries = [(p, d) for p, d in fs.listdir(root) if not fs.basename(p).startswith((".", "_"))]
            direct = [p for p, d in entries if not d and self._data_file(p)]
            subdirs = [p for p, d in entries if d]
            if not direct and subdirs:
                return [
                    (fs.basename(p), p) for p in subdirs if any(self._data_file(f) for f in fs.walk_files(p))
                ]
            return [(fs.basename(root), root)]
        return [(self._stem(root), root)]

    def discover(self) -> list[StreamSpec]:
        """The streams: configured ones, or one per file / directory (see :class:`FilesOptions`)."""
        if self._streams is not None:
            return list(self._streams)
        opts = self.options
        entries: list[tuple[str, str, Any, list[str], str | None]] = []
        if opts.streams:
            for s in opts.streams:
                entries.append(
                    (s.name, self._resolve(s.path), s.schema_, list(s.primary_keys), s.replication_key)
                )
        else:
            for name, path in self._default_streams():
                entries.append((name, path, opts.schema_, list(opts.primary_keys), opts.replication_key))
        specs = []
        for name, path, override, pks, rk in entries:
            files = self.files_of(name, path)
            stored: dict[str, Any] = {}
            schema: JSONSchema | None = None
            side = self._sidecar(path)
            if side is not None:
                stored = side
                schema = side.get("schema")
            if schema is None:
                if not files:
                    if override is None:
                        raise self.error(
                            f"no {'/'.join(self.suffixes)} file under {self._fs.display(path)!r}", stream=name
                        )
                    schema = {"type": "object", "properties": {}}
                else:
                    schema, stored = self._discover_schema(name, files)
            spec = StreamSpec(
                name=name,
                schema=schema,
                key_properties=tuple(pks or stored.get("key_properties") or ()),
                replication_key=rk or stored.get("replication_key") or None,
                options={"path": path},
            )
            spec = apply_schema_override(spec, override)
            if spec.replication_key:
                spec = spec.with_(replication_keys=(spec.replication_key,))
            for key in (*spec.key_properties, *((spec.replication_key,) if spec.replication_key else ())):
                if key not in spec.properties:
                    raise self.error(f"key field {key!r} is not in the schema", stream=name, field=key)
            specs.append(spec)
        self._streams = specs
        return list(specs)

    def _sidecar(self, path: str) -> dict[str, Any] | None:
        fs = self._fs
        if _GLOB_CHARS.search(path) or not fs.isdir(path):
            return None
        side = fs.join(path, SIDECAR)
        if not fs.exists(side):
            return None
        try:
            with fs.open_read(side) as fh:
                doc = orjson.loads(fh.read())
        except Exception as exc:
            raise self.error(f"{fs.display(side)!r} is not valid JSON: {exc}") from None
        return doc if isinstance(doc, dict) else None

    # -- reading ---------------------------------------------------------------------------------
    def read(
        self,
        stream: StreamSpec,
        *,
        state: Mapping[str, Any] | None = None,
        columns: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> Iterator[Batch]:
        """Yield the stream's rows in Arrow batches of at most ``batch_size`` rows.

        With a replication key, rows up to the bookmark in ``state`` are skipped (see
        :class:`_Incremental`) and each batch carries the bookmark after it.
        """
        path = (stream.options or {}).get("path")
        if path is None:
            known = self.get_stream(stream.name)
            path = known.options["path"]
            if not stream.properties:
                stream = stream.with_(schema=known.schema)
        files = self.files_of(stream.name, path)
        arrow_schema = jsonschema_to_arrow(stream.schema)
        out_schema = stream.schema
        if columns is not None:
            unknown = [c for c in columns if c not in stream.properties]
            if unknown:
                raise self.error(f"unknown column(s) {', '.join(map(repr, unknown))}", stream=stream.name)
            out_schema = {**stream.schema, "properties": {c: stream.properties[c] for c in columns}}
        inc = None
        if stream.replication_key:
            if stream.replication_key not in arrow_schema.names:
                raise self.error(
                    f"replication key {stream.replication_key!r} is not in the schema",
                    stream=stream.name,
                    field=stream.replication_key,
                )
            try:
                inc = _Incremental(
                    stream, state, arrow_schema.field(stream.replication_key), ordered=self.options.ordered
                )
            except (ValueError, TypeError) as exc:
                value = (state or {}).get("replication_key_value")
                raise self.error(
                    f"state: replication_key_value {value!r} does not fit the replication key: {exc}",
                    stream=stream.name,
                    field=stream.replication_key,
                ) from None
        return self._read(stream, files, arrow_schema, out_schema, columns, limit, inc)

    def _read(
        self,
        stream: StreamSpec,
        files: list[str],
        arrow_schema: pa.Schema,
        out_schema: JSONSchema,
        columns: Sequence[str] | None,
        limit: int | None,
        inc: _Incremental | None,
    ) -> Iterator[Batch]:
        remaining = limit
        pending: pa.Table | None = None
        pending_bm: dict[str, Any] | None = None
        stopped = False
        for path in files:
            for table in self._iter_tables(stream, path, arrow_schema):
                if inc is not None:
                    table = inc.filter(table)
                if remaining is not None and table.num_rows > remaining:
                    table = table.slice(0, remaining)
                if table.num_rows == 0:
                    continue
                if inc is not None:
                    try:
                        inc.observe(table)
                    except ValueError as exc:
                        raise self.error(f"{self._fs.display(path)!r}: {exc}", stream=stream.name) from None
                out = table.select(list(columns)) if columns is not None else table
                if pending is not None:
                    yield Batch.from_arrow(pending, schema=out_schema, bookmark=pending_bm)
                pending, pending_bm = out, (inc.safe if inc is not None else None)
                if remaining is not None:
                    remaining -= table.num_rows
                    if remaining <= 0:
                        stopped = True
                        break
            if stopped:
                break
        if pending is not None:
            bm = None
            if inc is not None:
                bm = inc.current() if (not stopped or inc.ordered) else inc.safe
            yield Batch.from_arrow(pending, schema=out_schema, bookmark=bm)

    def _conform(self, stream: StreamSpec, path: str, table: pa.Table, arrow_schema: pa.Schema) -> pa.Table:
        try:
            return cast_table(table, arrow_schema)
        except ConversionError as exc:
            raise SchemaError(
                f"adapter {self.name!r}, stream {stream.name!r}, field {exc.field!r}: "
                f"{self._fs.display(path)!r}: {str(exc).split(': ', 1)[-1]}",
                adapter=self.name,
                stream=stream.name,
            ) from None

    def _file_error(self, stream: str, path: str, what: str, exc: BaseException) -> AdapterError:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return self.error(f"{self._fs.display(path)!r} {what}: {msg}", stream=stream)

    # -- writing ---------------------------------------------------------------------------------
    def _require_root(self, stream: StreamSpec) -> None:
        if not self._root:
            raise self.error(
                "option 'path' (the destination directory) is required to write", stream=stream.name
            )
        if _GLOB_CHARS.search(self._root):
            raise self.error(
                f"destination path {self._root!r} must be a directory, not a glob", stream=stream.name
            )
        if self._fs.exists(self._root) and not self._fs.isdir(self._root):
            raise self.error(
                f"destination path {self._fs.display(self._root)!r} is a file; "
                "it must be a directory (streams are written to <path>/<stream>/)",
                stream=stream.name,
            )

    def start_write(self, stream: StreamSpec, *, load_method: str | None = None) -> None:
        """Prepare ``stream``: ``append`` (default) adds part files; ``overwrite`` writes a new
        directory that replaces the stream's directory at :meth:`finish_write`."""
        super().start_write(stream, load_method=load_method)
        self._require_root(stream)
        old = self._writers.pop(stream.name, None)
        if old is not None:
            # start_write again (a schema change): what was written stays; an overwrite in progress
            # keeps its staging directory (same run id) unless the new session is not an overwrite
            if old.load_method == "overwrite" and (load_method or "append") != "overwrite":
                old.abort()
            else:
                try:
                    old.flush()
                except Exception:
                    old.abort_part()
                    raise
        self._fs.makedirs(self._root)
        self._recover(stream)
        self._writers[stream.name] = _StreamWriter(self, stream, load_method or "append")

    def _recover(self, stream: StreamSpec) -> None:
        """Undo a crash between the two renames of an overwrite swap: the stream directory is missing
        and the previous one waits as ``.<stream>.old-<runid>``: put it back."""
        fs, safe = self._fs, _safe_name(stream.name)
        final = fs.join(self._root, safe)
        if fs.exists(final):
            return
        olds = sorted(
            p for p, is_dir in fs.listdir(self._root) if is_dir and fs.basename(p).startswith(f".{safe}.old-")
        )
        if olds:
            fs.rename(olds[-1], final)
            fs.sync_dir(self._root)

    def _writer(self, stream: StreamSpec) -> _StreamWriter:
        sw = self._writers.get(stream.name)
        if sw is None:
            raise self.error("write() before start_write()", stream=stream.name)
        return sw

    def write(self, stream: StreamSpec, batch: Batch) -> WriteResult:
        """Convert ``batch`` to the stream's Arrow schema and append it to the current part.

        A value that does not fit raises :class:`SchemaError` naming the stream and the field; the
        part being written is then discarded (no partial file is left).
        """
        sw = self._writer(stream)
        try:
            table = batch.to_arrow(sw.arrow_schema)
            if not table.schema.equals(sw.arrow_schema):
                table = cast_table(table, sw.arrow_schema)
            # same types; carry the stream's field metadata (JSON columns) on every buffered table
            table = pa.Table.from_arrays(table.columns, schema=sw.arrow_schema)
        except ConversionError as exc:
            sw.abort_part()
            raise SchemaError(
                f"adapter {self.name!r}, stream {stream.name!r}, field {exc.field!r}: "
                f"{str(exc).split(': ', 1)[-1]}",
                adapter=self.name,
                stream=stream.name,
            ) from None
        except Exception:
            sw.abort_part()
            raise
        try:
            sw.write_table(table)
        except Exception as exc:
            sw.abort_part()
            if isinstance(exc, AdapterError):
                raise
            raise self.error(
                f"writing to {self._fs.display(sw.work_dir)!r} failed: {exc}", stream=stream.name
            ) from exc
        sw.rows += table.num_rows
        committed = self.options.file_per_batch
        return WriteResult(rows=table.num_rows, committed=committed, details={"parts": len(sw.parts)})

    def flush(self, stream: StreamSpec | None = None) -> None:
        """Close the current part of ``stream`` (or of every stream): fsync, rename to its final name.
        Everything written so far is then durable; the next write opens a new part."""
        # a stream with no write session has nothing to flush
        writers = (
            [w for w in (self._writers.get(stream.name),) if w is not None]
            if stream is not None
            else list(self._writers.values())
        )
        for sw in writers:
            try:
                sw.flush()
            except Exception as exc:
                sw.abort_part()
                if isinstance(exc, AdapterError):
                    raise
                raise self.error(
                    f"flushing to {self._fs.display(sw.work_dir)!r} failed: {exc}", stream=sw.stream.name
                ) from exc

    def finish_write(self, stream: StreamSpec) -> None:
        """Flush, write the schema side file (csv/jsonl) and, for ``overwrite``, swap the new
        directory in place of the old one."""
        sw = self._writer(stream)
        try:
            sw.finish()
        except Exception as exc:
            sw.abort()
            self._writers.pop(stream.name, None)
            if isinstance(exc, AdapterError):
                raise
            raise self.error(
                f"finishing {self._fs.display(sw.final_dir)!r} failed: {exc}", stream=stream.name
            ) from exc
        self._writers.pop(stream.name, None)

    def written_files(self, stream: StreamSpec) -> list[str]:
        """The part files committed so far for ``stream`` in this run (while it is being written)."""
        sw = self._writers.get(stream.name)
        return list(sw.parts) if sw is not None else []

    def close(self) -> None:
        """Discard whatever was not flushed/finished (temporary parts and overwrite directories)."""
        for sw in list(self._writers.values()):
            sw.abort()
        self._writers.clear()
        super().close()


# ---------------------------------------------------------------------------------- parquet
_PARQUET_CODECS = ("snappy", "zstd", "gzip", "lz4", "brotli", "none")


class ParquetAdapter(FileAdapter):
    """``parquet``: Parquet files through :mod:`pyarrow.parquet` (real types: timestamps with zone,
    decimals, nested structs and lists)."""

    name = "parquet"
    suffixes = (".parquet", ".parq", ".pq")

    def _check_compression(self) -> None:
        c = self.options.compression
        if c is not None and c.lower() not in _PARQUET_CODECS:
            raise ConfigError(
                f"adapter 'parquet': option 'compression': {c!r} is not supported "
                f"(valid: {', '.join(_PARQUET_CODECS)})",
                plugin="adapter 'parquet'",
                field="compression",
            )

    def _compression(self) -> str | None:
        c = (self.options.compression or "snappy").lower()
        return None if c == "none" else c

    def extension(self, compression: str | None) -> str:
        return "parquet"

    def _data_file(self, path: str) -> bool:
        return path.lower().endswith(self.suffixes)

    def _open_parquet(self, stream: str, path: str) -> pq.ParquetFile:
        try:
            source: Any = path if self._fs.local else self._fs.open_read(path)
            return pq.ParquetFile(source)
        except Exception as exc:
            raise self._file_error(stream, path, "is not a readable Parquet file", exc) from None

    def _file_schema(self, stream: str, path: str) -> tuple[JSONSchema, dict[str, Any]]:
        pf = self._open_parquet(stream, path)
        try:
            arrow_schema = pf.schema_arrow
        finally:
            pf.close()
        stored: dict[str, Any] = {}
        raw = (arrow_schema.metadata or {}).get(STREAM_META)
        if raw:
            with contextlib.suppress(Exception):
                stored = orjson.loads(raw)
        schema = stored.get("schema")
        if not (isinstance(schema, dict) and _same_types(jsonschema_to_arrow(schema), arrow_schema)):
            schema = arrow_to_jsonschema(arrow_schema)
        return schema, stored

    def _discover_schema(self, stream: str, files: list[str]) -> tuple[JSONSchema, dict[str, Any]]:
        """The union of the schemas of every file (footers only), oldest first: a column added by a
        later run (schema evolution) is part of the stream, and a later file's type of a column wins."""
        if len(files) == 1:
            return self._file_schema(stream, files[0])
        ordered = files
        if self._fs.local:
            ordered = sorted(files, key=lambda f: (os.path.getmtime(f), f))
        props: dict[str, Any] = {}
        stored: dict[str, Any] = {}
        base: JSONSchema = {}
        for f in ordered:
            schema, meta = self._file_schema(stream, f)
            base = schema
            props.update(schema.get("properties") or {})
            if meta:
                stored = meta
        return {**base, "properties": props}, stored

    def _iter_tables(self, stream: StreamSpec, path: str, arrow_schema: pa.Schema) -> Iterator[pa.Table]:
        pf = self._open_parquet(stream.name, path)
        try:
            present = set(pf.schema_arrow.names)
            cols = [f.name for f in arrow_schema if f.name in present]
            it = pf.iter_batches(batch_size=self.options.batch_size, columns=cols)
            while True:
                try:
                    rb = next(it)
                except StopIteration:
                    break
                except Exception as exc:
                    raise self._file_error(stream.name, path, "could not be read", exc) from None
                yield self._conform(stream, path, pa.Table.from_batches([rb]), arrow_schema)
        finally:
            pf.close()

    def _open_writer(self, sw: _StreamWriter, part: _Part) -> None:
        comp = self._compression() or "none"
        sink: Any = part.tmp
        if not self._fs.local:
            part.raw = self._fs.open_write(part.tmp)
            sink = part.raw
        part.handle = _ParquetPart(sink, sw.file_schema, comp)

    def _write_chunk(self, sw: _StreamWriter, part: _Part, table: pa.Table) -> None:
        part.handle.write_table(table, row_group_size=self.options.row_group_size)

    def _close_writer(self, part: _Part) -> None:
        try:
            if part.handle is not None:
                part.handle.close()
        finally:
            self._release(part)


#: rows of a part's first chunk looked at to choose the dictionary-encoded columns; a column is
#: dictionary-encoded when at most half of them are distinct (fewer sampled rows: every column).
_DICT_SAMPLE = 16_384
_DICT_MIN_ROWS = 1_000


def _dictionary_columns(table: pa.Table) -> bool | list[str]:
    """The ``use_dictionary`` setting for a Parquet file whose first chunk is ``table``.

    Dictionary encoding pays for repeated values; for mostly distinct ones (ids, timestamps, free
    text) the writer builds a dictionary, finds it too big and falls back to plain encoding, which
    costs time and space (1M rows of the W2 benchmark: 0.66 s / 70.5 MB with every column
    dictionary-encoded, 0.29 s / 59.1 MB with only the low-cardinality ones). Only the encoding
    changes: the file's types and values are the same. Nested columns keep the default (all)."""
    n = min(table.num_rows, _DICT_SAMPLE)
    if n < _DICT_MIN_ROWS or any(pt.is_nested(f.type) for f in table.schema):
        return True
    sample = table.slice(0, n)
    chosen = []
    for name in table.column_names:
        try:
            distinct = pc.count_distinct(sample.column(name), mode="all").as_py()
        except (pa.ArrowNotImplementedError, pa.ArrowInvalid, pa.ArrowTypeError):
            chosen.append(name)
            continue
        if distinct * 2 <= n:
            chosen.append(name)
    return chosen


class _ParquetPart:
    """A ``pq.ParquetWriter`` opened at the first chunk, whose data choose the dictionary-encoded
    columns (:func:`_dictionary_columns`); a part closed without data is still a valid, empty file."""

    def __init__(self, sink: Any, schema: pa.Schema, compression: str) -> None:
        self.sink, self.schema, self.compression = sink, schema, compression
        self.writer: pq.ParquetWriter | None = None

    def _open(self, use_dictionary: bool | list[str]) -> pq.ParquetWriter:
        self.writer = pq.ParquetWriter(
            self.sink, self.schema, compression=self.compression, use_dictionary=use_dictionary
        )
        return self.writer

    def write_table(self, table: pa.Table, row_group_size: int) -> None:
        writer = self.writer or self._open(_dictionary_columns(table))
        writer.write_table(table, row_group_size=row_group_size)

    def close(self) -> None:
        (self.writer or self._open(True)).close()


def _same_types(a: pa.Schema, b: pa.Schema) -> bool:
    if a.names != b.names:
        return False
    return all(fa.type == fb.type for fa, fb in zip(a, b, strict=True))


# ------------------------------------------------------------------------------------ JSONL
class JSONLAdapter(FileAdapter):
    """``jsonl``: one JSON object per line (orjson), gzip optional. Values in their JSON forms:
    ISO date-times, decimals as strings, bytes as base64."""

    name = "jsonl"
    suffixes = (".jsonl", ".ndjson", ".json")
    needs_sidecar = True
    #: bytes per block of Arrow's JSON reader
    _json_block_size: ClassVar[int] = 1 << 22

    def extension(self, compression: str | None) -> str:
        return "jsonl.gz" if compression == "gzip" else "jsonl"

    def _open_text(self, stream: str, path: str) -> IO[bytes]:
        try:
            raw = self._fs.open_read(path)
        except OSError as exc:
            raise self._file_error(stream, path, "could not be opened", exc) from None
        if self._is_gzip(path):
            return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
        return raw

    def _lines(self, stream: str, path: str) -> Iterator[tuple[int, bytes]]:
        fh = self._open_text(stream, path)
        try:
            lineno = 0
            while True:
                try:
                    line = fh.readline()
                except (OSError, EOFError) as exc:
                    raise self._file_error(stream, path, "could not be read", exc) from None
                if not line:
                    break
                lineno += 1
                if line.strip():
                    yield lineno, line
        finally:
            fh.close()

    def _parse(self, stream: str, path: str, lineno: int, line: bytes) -> dict[str, Any]:
        try:
            rec = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise self.error(
                f"{self._fs.display(path)!r} line {lineno}: invalid JSON: {exc}", stream=stream
            ) from None
        if not isinstance(rec, dict):
            raise self.error(
                f"{self._fs.display(path)!r} line {lineno}: expected a JSON object, got {type(rec).__name__}",
                stream=stream,
            )
        return rec

    def _file_schema(self, stream: str, path: str) -> tuple[JSONSchema, dict[str, Any]]:
        sample = []
        for lineno, line in self._lines(stream, path):
            sample.append(self._parse(stream, path, lineno, line))
            if len(sample) >= self.options.sample_size:
                break
        return infer_schema(sample), {}

    def _iter_tables(self, stream: StreamSpec, path: str, arrow_schema: pa.Schema) -> Iterator[pa.Table]:
        """Arrow's JSON reader (block-wise, no per-value Python) for flat schemas; on anything it does
        not parse the way the JSON-form rules do, the file continues through orjson per line."""
        done = 0
        if _arrow_json_schema(arrow_schema) is not None:
            try:
                for table in self._arrow_tables(stream, path, arrow_schema):
                    done += table.num_rows
                    yield table
                return
            except _FallBack:
                pass
        yield from self._orjson_tables(stream, path, arrow_schema, skip=done)

    def _arrow_tables(self, stream: StreamSpec, path: str, arrow_schema: pa.Schema) -> Iterator[pa.Table]:
        import pyarrow.json as pajson

        read_schema = _arrow_json_schema(arrow_schema)
        fh = self._open_text(stream.name, path)
        try:
            try:
                reader = pajson.open_json(
                    fh,
                    read_options=pajson.ReadOptions(block_size=self._json_block_size),
                    parse_options=pajson.ParseOptions(
                        explicit_schema=read_schema, unexpected_field_behavior="ignore"
                    ),
                )
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
                raise _FallBack() from None

            def fall_back(exc: Exception) -> Exception:
                if isinstance(exc, (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError)):
                    return _FallBack()
                return exc

            for table in rebatch(_batches(reader, fall_back), self.options.batch_size, read_schema):
                yield self._json_conform(stream, path, table, arrow_schema)
        finally:
            fh.close()

    def _json_conform(
        self, stream: StreamSpec, path: str, table: pa.Table, arrow_schema: pa.Schema
    ) -> pa.Table:
        try:
            return cast_table(table, arrow_schema)
        except ConversionError:
            raise _FallBack() from None  # the per-line path decides (and names the line)

    def _orjson_tables(
        self, stream: StreamSpec, path: str, arrow_schema: pa.Schema, skip: int = 0
    ) -> Iterator[pa.Table]:
        size = self.options.batch_size
        records: list[dict[str, Any]] = []
        first = 0
        for lineno, line in self._lines(stream.name, path):
            if skip:
                skip -= 1
                continue
            if not records:
                first = lineno
            records.append(self._parse(stream.name, path, lineno, line))
            if len(records) >= size:
                yield self._to_table(stream, path, records, arrow_schema, first)
                records = []
        if records:
            yield self._to_table(stream, path, records, arrow_schema, first)

    def _to_table(
        self,
        stream: StreamSpec,
        path: str,
        records: list[dict[str, Any]],
        arrow_schema: pa.Schema,
        first: int,
    ) -> pa.Table:
        from ..arrow import records_to_arrow

        try:
            return records_to_arrow(records, arrow_schema=arrow_schema)
        except ConversionError as exc:
            raise SchemaError(
                f"adapter {self.name!r}, stream {stream.name!r}, field {exc.field!r}: "
                f"{self._fs.display(path)!r} (lines {first}-{first + len(records) - 1}): "
                f"{str(exc).split(': ', 1)[-1]}",
                adapter=self.name,
                stream=stream.name,
            ) from None

    def _open_writer(self, sw: _StreamWriter, part: _Part) -> None:
        part.raw = self._fs.open_write(part.tmp)
        if self._compression() == "gzip":
            part.handle = gzip.GzipFile(fileobj=part.raw, mode="wb", compresslevel=6, mtime=0)
        else:
            part.handle = part.raw

    def _write_chunk(self, sw: _StreamWriter, part: _Part, table: pa.Table) -> None:
        for f, col in zip(table.schema, table.columns, strict=True):
            # JSON has no NaN/Infinity: orjson would write null, silently changing the value
            if (
                pt.is_floating(f.type)
                and col.null_count < len(col)
                and (pc.any(pc.invert(pc.is_finite(col))).as_py())
            ):
                raise SchemaError(
                    f"adapter {self.name!r}, stream {sw.stream.name!r}, field {f.name!r}: "
                    "NaN/Infinity cannot be written as JSON",
                    adapter=self.name,
                    stream=sw.stream.name,
                )
        dumps = orjson.dumps
        opt = orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS
        records = arrow_to_records(_json_form_table(table), sw.json_schema)
        part.handle.write(b"".join([dumps(r, default=json_default, option=opt) for r in records]))

    def _close_writer(self, part: _Part) -> None:
        try:
            if part.handle is not None and part.handle is not part.raw:
                part.handle.close()
        finally:
            self._release(part)


def _batches(reader: Any, error: Callable[[Exception], Exception]) -> Iterator[pa.RecordBatch]:
    """The record batches of a pyarrow stream reader; a read error is raised as ``error(exc)``."""
    while True:
        try:
            rb = reader.read_next_batch()
        except StopIteration:
            return
        except Exception as exc:
            raise error(exc) from None
        yield rb


class _FallBack(Exception):
    """Arrow's JSON reader met something the orjson path must handle."""


def _arrow_json_schema(arrow_schema: pa.Schema) -> pa.Schema | None:
    """The schema Arrow's JSON reader should parse with (JSON-form text for date-times, dates and
    decimals), or ``None`` when the stream has types only the orjson path handles."""
    fields = []
    for f in arrow_schema:
        t = f.type
        if f.metadata:
            return None  # JSON blobs, unsized decimals
        if pt.is_boolean(t) or pt.is_string(t) or t == pa.int64():
            fields.append(pa.field(f.name, t))  # Arrow refuses 2.0, "3", true … → orjson path decides
        elif pt.is_timestamp(t) or pt.is_date(t) or pt.is_decimal(t):
            fields.append(pa.field(f.name, pa.string()))
        else:
            # floats: Arrow rounds 2**53 + 1 silently where the orjson path refuses; nested/binary/
            # time: per value
            return None
    return pa.schema(fields)


def _json_form_table(table: pa.Table) -> pa.Table:
    """Top-level timestamps, dates and times turned into their JSON text forms by Arrow
    (column-wise), so that writing JSON does not build a Python object per value."""
    cols = []
    fields = []
    changed = False
    for f, col in zip(table.schema, table.columns, strict=True):
        t = f.type
        if pt.is_timestamp(t) and t.unit in ("s", "ms", "us") and (t.tz is None or t.tz in _UTC):
            # datetime.isoformat(): 6 fractional digits, none when the microseconds are 0
            text = pc.strftime(col.cast(pa.timestamp("us")), format="%Y-%m-%dT%H:%M:%S")
            text = pc.replace_substring_regex(text, pattern=r"\.000000$", replacement="")
            if t.tz is not None:
                text = pc.binary_join_element_wise(text, "+00:00", "")
            col, f, changed = text, pa.field(f.name, pa.string()), True
        elif pt.is_date(t) or pt.is_time(t):  # not decimals: Arrow writes 1E-10 where JSON wants 0.0000000001
            col, f, changed = col.cast(pa.string()), pa.field(f.name, pa.string()), True
        cols.append(col)
        fields.append(f)
    return pa.Table.from_arrays(cols, schema=pa.schema(fields)) if changed else table


_UTC = ("UTC", "utc", "+00:00", "Z", "Etc/UTC", "GMT")


# -------------------------------------------------------------------------------------- CSV
def _csv_text_type(t: pa.DataType) -> bool:
    """Types stored as text in CSV and converted by dc-api-x (not by the CSV parser)."""
    return (
        pt.is_binary(t)
        or pt.is_large_binary(t)
        or pt.is_struct(t)
        or pt.is_list(t)
        or pt.is_large_list(t)
        or pt.is_time(t)
    )


class CSVAdapter(FileAdapter):
    """``csv``: CSV files through :mod:`pyarrow.csv` (header row; gzip optional). Binary values are
    written as base64, nested values as JSON text."""

    name = "csv"
    suffixes = (".csv", ".tsv")
    needs_sidecar = True

    def extension(self, compression: str | None) -> str:
        return "csv.gz" if compression == "gzip" else "csv"

    def _open_stream(self, stream: str, path: str) -> Any:
        try:
            raw = self._fs.open_read(path)
        except OSError as exc:
            raise self._file_error(stream, path, "could not be opened", exc) from None
        if self._is_gzip(path):
            return gzip.GzipFile(fileobj=raw, mode="rb")
        return raw

    def _reader(
        self,
        stream: str,
        path: str,
        column_types: Mapping[str, pa.DataType] | None,
        block_size: int | None = None,
    ) -> Any:
        fh = self._open_stream(stream, path)
        read_opts = pacsv.ReadOptions(block_size=block_size or (1 << 22))
        parse = pacsv.ParseOptions(delimiter=self.options.delimiter, newlines_in_values=True)
        conv = pacsv.ConvertOptions(
            column_types=dict(column_types or {}), strings_can_be_null=True, quoted_strings_can_be_null=False
        )
        try:
            return fh, pacsv.open_csv(fh, read_options=read_opts, parse_options=parse, convert_options=conv)
        except Exception as exc:
            fh.close()
            raise self._file_error(stream, path, "is not a readable CSV file", exc) from None

    def _file_schema(self, stream: str, path: str) -> tuple[JSONSchema, dict[str, Any]]:
        fh, reader = self._reader(stream, path, None, block_size=1 << 20)
        try:
            schema = reader.schema
        finally:
            fh.close()
        fields = []
        for f in schema:
            t = f.type
            if pt.is_null(t):
                t = pa.string()
            elif pt.is_timestamp(t):
                t = pa.timestamp("us", tz=t.tz)
            fields.append(pa.field(f.name, t))
        return arrow_to_jsonschema(pa.schema(fields)), {}

    def _iter_tables(self, stream: StreamSpec, path: str, arrow_schema: pa.Schema) -> Iterator[pa.Table]:
        # every column is read as text and converted by cast_table: the JSON-form rules apply
        # (zone-less date-times are UTC, base64, JSON text) and a bad value names its field
        types = {f.name: pa.string() for f in arrow_schema}
        fh, reader = self._reader(stream.name, path, types)
        try:

            def unreadable(exc: Exception) -> Exception:
                return self._file_error(stream.name, path, "could not be read", exc)

            for table in rebatch(_batches(reader, unreadable), self.options.batch_size, reader.schema):
                yield self._conform(stream, path, table, arrow_schema)
        finally:
            fh.close()

    def _conform(self, stream: StreamSpec, path: str, table: pa.Table, arrow_schema: pa.Schema) -> pa.Table:
        # base64 text → bytes (an Arrow cast string → binary would keep the text itself)
        for f in arrow_schema:
            if (pt.is_binary(f.type) or pt.is_large_binary(f.type)) and f.name in table.column_names:
                i = table.column_names.index(f.name)
                try:
                    arr = _column_to_arrow(table.column(i).to_pylist(), f)
                except (ValueError, TypeError) as exc:
                    raise SchemaError(
                        f"adapter {self.name!r}, stream {stream.name!r}, field {f.name!r}: "
                        f"{self._fs.display(path)!r}: not base64 text: {exc}",
                        adapter=self.name,
                        stream=stream.name,
                    ) from None
                table = table.set_column(i, pa.field(f.name, f.type), arr)
        return super()._conform(stream, path, table, arrow_schema)

    def _open_writer(self, sw: _StreamWriter, part: _Part) -> None:
        part.raw = self._fs.open_write(part.tmp)
        out: Any = part.raw
        if self._compression() == "gzip":
            out = gzip.GzipFile(fileobj=part.raw, mode="wb", compresslevel=6, mtime=0)
        part.handle = (out, None)

    def _csv_table(self, table: pa.Table) -> pa.Table:
        cols = []
        fields = []
        for f, col in zip(table.schema, table.columns, strict=True):
            if (
                pt.is_binary(f.type)
                or pt.is_large_binary(f.type)
                or pt.is_decimal(f.type)
                or pt.is_time(f.type)
            ):
                # base64, plain-notation decimals (Arrow's cast would write 1E-10), ISO times
                col = pa.array(
                    [None if v is None else json_form(v) for v in col.to_pylist()], type=pa.string()
                )
                f = pa.field(f.name, pa.string())
            elif _csv_text_type(f.type):
                col = pa.array(
                    [
                        None if v is None else orjson.dumps(v, default=json_default).decode()
                        for v in arrow_to_records(pa.table([col], schema=pa.schema([f])))
                        for v in [v[f.name]]
                    ],
                    type=pa.string(),
                )
                f = pa.field(f.name, pa.string())
            cols.append(col)
            fields.append(pa.field(f.name, f.type))
        return pa.Table.from_arrays(cols, schema=pa.schema(fields))

    def _write_chunk(self, sw: _StreamWriter, part: _Part, table: pa.Table) -> None:
        out, writer = part.handle
        table = self._csv_table(table)
        if writer is None:
            writer = pacsv.CSVWriter(
                out, table.schema, write_options=pacsv.WriteOptions(delimiter=self.options.delimiter)
            )
            part.handle = (out, writer)
        writer.write_table(table)

    def _close_writer(self, part: _Part) -> None:
        try:
            if part.handle is not None:
                out, writer = part.handle
                if writer is not None:
                    writer.close()
                if out is not part.raw:
                    out.close()
        finally:
            self._release(part)
