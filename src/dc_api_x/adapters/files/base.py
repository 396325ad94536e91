"""The file adapters' shared base: options, stream discovery (a file, a directory or a glob per
stream), incremental reads after a bookmark, and the write protocol on top of :mod:`.writers`.
Each format (:mod:`.parquet`, :mod:`.csv`, :mod:`.jsonl`) subclasses :class:`FileAdapter`.

Over 700 lines because :class:`FileAdapter` is one contract shared by three formats: discovery,
incremental and partitioned reads, the exact-number fallback and the write protocol (temporary
parts, stale-part cleanup and publishing are already in :mod:`.writers` and :mod:`.stale`); the
next candidate to move out is discovery."""

from __future__ import annotations

import logging
import os
import re
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, ClassVar

import orjson
import pyarrow as pa
from pydantic import Field

from ...arrow import (
    ConversionError,
    InexactNumberError,
    _column_to_arrow,
    cast_table,
    jsonschema_to_arrow,
    number_text_schema,
)
from ...bookmarks import BoundaryBookmark
from ...config import OptionsModel, new_dict, new_list
from ...exceptions import AdapterError, ConfigError, SchemaError
from ...ext.adapters import AdapterOptions, ProtocolAdapter
from ...ext.partitions import Partition, merge_unordered_bookmarks
from ...types import Batch, JSONSchema, StreamSpec, WriteResult
from ...values import json_form
from .fs import FS, GLOB_CHARS, SIDECAR, URL_RE, safe_name
from .stale import WriterLock, remove_stale, writer_alive
from .writers import Part, StreamWriter

__all__ = ["FileAdapter", "FileStreamOptions", "FilesOptions", "read_batches"]

log = logging.getLogger("dc_api_x.adapters.files")


class FileStreamOptions(OptionsModel):
    """One entry of ``streams``: an explicitly named stream and where its files are."""

    #: the stream name.
    name: str
    #: a file, a directory or a glob (relative paths are relative to the adapter ``path`` if set).
    path: str
    #: schema override: an inline JSON Schema / ``{field: schema}`` dict, or a JSON/YAML file path.
    schema_: dict[str, Any] | str | None = Field(default=None, alias="schema")
    #: primary-key fields.
    primary_keys: list[str] = Field(default_factory=new_list)
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
    primary_keys: list[str] = Field(default_factory=new_list)
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
    storage_options: dict[str, Any] = Field(default_factory=new_dict)


# ---------------------------------------------------------------------------------- helpers


#: ``StreamSpec.options`` key of a partition's files (read by ``FileAdapter.read``).
_FILES_OPTION = "x-dcapix-files"


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
            import pyarrow.compute as pc  # (on use: it costs ~60 ms to import, writers never need it)

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
    import pyarrow.compute as pc

    return bool(pc.all(pc.greater_equal(arr.slice(1), arr.slice(0, len(arr) - 1))).as_py())


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
        self._fs = FS(root, opts.storage_options)
        self._root = self._fs.norm(opts.path) if opts.path else ""
        self.run_id = f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:8]}"
        self._seq = 0
        self._writers: dict[str, StreamWriter] = {}
        self._lock: WriterLock | None = None  # held while this adapter writes (see .stale)
        self._notes: dict[str, list[str]] = {}
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

    def _open_writer(self, sw: StreamWriter, part: Part) -> None:
        raise NotImplementedError

    def _write_chunk(self, sw: StreamWriter, part: Part, table: pa.Table) -> None:
        raise NotImplementedError

    def _close_writer(self, part: Part) -> None:
        raise NotImplementedError

    @staticmethod
    def _release(part: Part) -> None:
        """Drop the part's writer and close its raw file (``StreamWriter._close_part`` fsyncs it)."""
        part.handle = None
        if part.raw is not None:
            raw, part.raw = part.raw, None
            raw.close()

    def name_parts(self, token: str) -> None:
        """Name the part files written from now on ``part-NNNNN-<token>.<ext>`` (``NNNNN`` from 0).

        A writer that writes the same rows again after a crash (a partition resumed from its last
        recorded checkpoint, a retried dask task) then *replaces* the files the crashed writer
        published but could not record, instead of adding a second copy. The partitioned runner
        passes one token per partition and checkpoint (docs/scale.md)."""
        self.run_id = token
        self._seq = 0

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
        relative = not URL_RE.match(path) and not os.path.isabs(os.path.expanduser(path))
        if self._root and relative and fs.local:
            base = self._root if fs.isdir(self._root) else os.path.dirname(self._root)
            return os.path.join(base, path)
        return fs.norm(path)

    def files_of(self, stream: str, path: str) -> list[str]:
        """The data files of a stream path (a file, a directory or a glob), sorted."""
        fs = self._fs
        if GLOB_CHARS.search(path):
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
        if GLOB_CHARS.search(root):
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
            if override is not None:  # (dc_api_x.schemas, its pydantic models and inference: only then)
                from ...schemas import apply_schema_override

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
        if GLOB_CHARS.search(path) or not fs.isdir(path):
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
        files = list((stream.options or {}).get(_FILES_OPTION) or ()) or self.files_of(stream.name, path)
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

    # -- partitions (dc_api_x.ext.partitions) ------------------------------------------------------
    def partitions(
        self, stream: StreamSpec, *, state: Mapping[str, Any] | None = None, max_partitions: int = 4
    ) -> list[Partition] | None:
        """The stream's files in at most ``max_partitions`` groups of consecutive files (one file
        per partition when there are fewer files); ``None`` for a single file."""
        path = (stream.options or {}).get("path")
        if path is None:
            path = self.get_stream(stream.name).options["path"]
        files = self.files_of(stream.name, path)
        if len(files) < 2 or max_partitions < 2:
            return None
        n = min(max_partitions, len(files))
        groups = [files[i * len(files) // n : (i + 1) * len(files) // n] for i in range(n)]
        start = dict(state) if state else None
        return [
            Partition(
                i,
                n,
                {"files": g},
                start,
                label=self._fs.basename(g[0]) + (f" (+{len(g) - 1} files)" if len(g) > 1 else ""),
            )
            for i, g in enumerate(groups)
        ]

    def read_partition(
        self,
        stream: StreamSpec,
        partition: Partition,
        *,
        state: Mapping[str, Any] | None = None,
        columns: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> Iterator[Batch]:
        """The rows of the partition's files, read (and filtered by ``state``) like :meth:`read`."""
        spec = stream
        if (stream.options or {}).get("path") is None or not stream.properties:
            known = self.get_stream(stream.name)
            spec = stream.with_(options={**dict(known.options), **dict(stream.options or {})})
            if not stream.properties:
                spec = spec.with_(schema=known.schema)
        spec = spec.with_(options={**dict(spec.options), _FILES_OPTION: list(partition.options["files"])})
        return self.read(spec, state=state, columns=columns, limit=limit)

    def merge_partition_bookmarks(
        self,
        stream: StreamSpec,
        base: Mapping[str, Any] | None,
        bookmarks: Sequence[Mapping[str, Any] | None],
        done: Sequence[bool],
    ) -> dict[str, Any] | None:
        """Files are not ordered against each other: the base until every partition finished, then
        the largest value read, with the keys read at it in every partition."""
        return merge_unordered_bookmarks(base, bookmarks, done)

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
        schema = arrow_schema
        while True:
            try:
                return cast_table(table, schema)
            except ConversionError as exc:
                # a number an int64/float64 column would change: this batch carries the column as
                # JSON number text (every digit; the destination keeps it or refuses)
                wider = _number_text_schema(schema, exc)
                if wider is None:
                    error = exc
                    break
                schema = wider
        raise SchemaError(
            f"adapter {self.name!r}, stream {stream.name!r}, field {error.field!r}: "
            f"{self._fs.display(path)!r}: {str(error).split(': ', 1)[-1]}",
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
        if GLOB_CHARS.search(self._root):
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
        try:
            self._fs.makedirs(self._root)
            if self._fs.local:
                if self._lock is None:
                    self._lock = WriterLock(self._root, self.run_id)
                self._lock.acquire()
            self._recover(stream)
            if self._fs.local:
                self._remove_stale(stream)
            self._writers[stream.name] = StreamWriter(self, stream, load_method or "append")
        except OSError as exc:
            # a read-only directory, a path under a regular file, a full disk …: one line
            where = exc.filename if isinstance(exc.filename, str) else self._root
            raise self.error(
                f"cannot write to {self._fs.display(where)!r}: {exc.strerror or exc}", stream=stream.name
            ) from None

    def _remove_stale(self, stream: StreamSpec) -> None:
        """Remove the temporary files of ``stream`` left by writers that died (:mod:`.stale`); say so
        in the log and in :meth:`take_notes`."""
        removed = remove_stale(self._root, safe_name(stream.name), self.run_id)
        if not removed:
            return
        names = ", ".join(os.path.relpath(p, self._root) for p in removed[:3])
        more = f" and {len(removed) - 3} more" if len(removed) > 3 else ""
        note = (
            f"removed {len(removed)} stale temporary file{'s' if len(removed) != 1 else ''} "
            f"of an interrupted write: {names}{more}"
        )
        log.warning("adapter %r, stream %r: %s", self.name, stream.name, note)
        self._notes.setdefault(stream.name, []).append(note)

    def take_notes(self, stream: StreamSpec) -> list[str]:
        """What the write of ``stream`` did besides writing, for the run summary (e.g. stale temporary
        files removed); each note is returned once."""
        return self._notes.pop(stream.name, [])

    def _recover(self, stream: StreamSpec) -> None:
        """Undo a crash between the two renames of an overwrite swap: the stream directory is missing
        and the previous one waits as ``.<stream>.old-<runid>``: put it back."""
        fs, safe = self._fs, safe_name(stream.name)
        final = fs.join(self._root, safe)
        if fs.exists(final):
            return
        prefix = f".{safe}.old-"
        olds = sorted(
            p
            for p, is_dir in fs.listdir(self._root)
            if is_dir
            and fs.basename(p).startswith(prefix)
            # a live writer's old directory is its own business (between its two renames)
            and not (fs.local and writer_alive(self._root, fs.basename(p)[len(prefix) :], self.run_id))
        )
        if olds:
            fs.rename(olds[-1], final)
            fs.sync_dir(self._root)

    def _writer(self, stream: StreamSpec) -> StreamWriter:
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
        schema = sw.arrow_schema
        try:
            while True:
                try:
                    table = batch.to_arrow(schema)
                    if not table.schema.equals(schema):
                        table = cast_table(table, schema)
                    break
                except ConversionError as exc:
                    wider = self._exact_number_schema(schema, exc)
                    if wider is None:
                        raise
                    schema = wider
            # same types; carry the stream's field metadata (JSON columns) on every buffered table
            table = pa.Table.from_arrays(table.columns, schema=schema)
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

    #: Whether the format writes numbers as text: a top-level ``number`` column whose batch holds a
    #: value a float64 would round is then written as JSON number text, every digit kept (jsonl).
    exact_number_text: ClassVar[bool] = False

    def _exact_number_schema(self, schema: pa.Schema, exc: ConversionError) -> pa.Schema | None:
        """``schema`` with the number column ``exc`` names turned into JSON number text (for this
        batch), when the format can write it and a number float64 / int64 would change is the reason."""
        return _number_text_schema(schema, exc) if self.exact_number_text else None

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
        if self._lock is not None:
            self._lock.release()
        super().close()


def _number_text_schema(schema: pa.Schema, exc: ConversionError) -> pa.Schema | None:
    """``schema`` with the number column ``exc`` names as JSON number text, when a number that
    column would change (:class:`InexactNumberError`) is the reason, else ``None``."""
    if not isinstance(exc.__cause__, InexactNumberError):
        return None
    return number_text_schema(schema, exc.field)


def read_batches(reader: Any, error: Callable[[Exception], Exception]) -> Iterator[pa.RecordBatch]:
    """The record batches of a pyarrow stream reader; a read error is raised as ``error(exc)``."""
    while True:
        try:
            rb = reader.read_next_batch()
        except StopIteration:
            return
        except Exception as exc:
            raise error(exc) from None
        yield rb
