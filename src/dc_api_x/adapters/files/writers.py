"""The write session of one stream of a file adapter: parts written under a temporary dot-name and
renamed to their final name only when complete (``flush``/``finish_write``), so readers never see a
partial file and a failed write leaves none behind; ``overwrite`` swaps a whole new directory in."""

from __future__ import annotations

import contextlib
from typing import IO, TYPE_CHECKING, Any

import orjson
import pyarrow as pa

from ...arrow import (
    jsonschema_to_arrow,
)
from ...crashpoints import crash_point
from ...types import StreamSpec
from .fs import SIDECAR, STREAM_META, WriteBehind, safe_name

if TYPE_CHECKING:  # pragma: no cover
    from .base import FileAdapter

__all__ = ["MAX_BUFFER_BYTES", "Part", "StreamWriter"]

#: a stream's buffered rows are written once they hold this many bytes (Arrow), even below
#: ``row_group_size`` rows
MAX_BUFFER_BYTES = 32 << 20


class Part:
    """One part file being written under a temporary name."""

    def __init__(self, tmp: str, final: str) -> None:
        self.tmp = tmp
        self.final = final
        self.rows = 0
        self.handle: Any = None  # ParquetWriter / CSVWriter / binary file
        self.raw: IO[bytes] | Any | None = None  # the file written (a Python file, a pyarrow OSFile)
        #: the write-behind of a local part (``None`` for a remote store)
        self.behind: WriteBehind | None = None


class StreamWriter:
    """Write state of one stream."""

    def __init__(self, adapter: FileAdapter, stream: StreamSpec, load_method: str) -> None:
        self.adapter = adapter
        self.stream = stream
        self.load_method = load_method
        fs = adapter._fs
        self.fs = fs
        root = adapter._root
        self.final_dir = fs.join(root, safe_name(stream.name))
        if load_method == "overwrite":
            self.work_dir = fs.join(root, f".{safe_name(stream.name)}.tmp-{adapter.run_id}")
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
        self.part: Part | None = None
        self.buffer: list[pa.Table] = []
        self.buffered = 0
        self.buffered_bytes = 0
        self.parts: list[str] = []
        self.rows = 0

    # -- parts --------------------------------------------------------------------------------
    def _open_part(self) -> Part:
        a = self.adapter
        seq = a._next_seq()
        ext = a.extension(self.adapter._compression())
        name = f"part-{seq:05d}-{a.run_id}.{ext}"
        part = Part(self.fs.join(self.work_dir, f".{name}.tmp"), self.fs.join(self.work_dir, name))
        a._open_writer(self, part)
        if self.fs.local and part.raw is not None:
            part.behind = WriteBehind(part.raw.fileno(), part.tmp)
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
            crash_point("files.before_rename")
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
        self.fs.write_atomic(path, orjson.dumps(doc), tag=self.adapter.run_id)
        self.sidecar_written = True

    def abort_part(self) -> None:
        self.buffer, self.buffered, self.buffered_bytes = [], 0, 0
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
        if self.buffer and not table.schema.equals(self.buffer[0].schema):
            self._drain()  # a batch with JSON number text columns (jsonl): written on its own
        self.buffer.append(table)
        self.buffered += table.num_rows
        self.buffered_bytes += table.nbytes
        # rows, or bytes for wide rows: 131,072 rows of 1 KB held 1.3 GB while a JSONL part was
        # written (reliability case H1)
        if self.buffered >= opts.row_group_size or self.buffered_bytes >= MAX_BUFFER_BYTES:
            self._drain()

    def _drain(self) -> None:
        if not self.buffer:
            return
        table = self.buffer[0] if len(self.buffer) == 1 else pa.concat_tables(self.buffer)
        self.buffer, self.buffered, self.buffered_bytes = [], 0, 0
        self._write_rows(table)

    def _write_rows(self, table: pa.Table) -> None:
        limit = self.adapter.options.rows_per_file
        offset, n = 0, table.num_rows
        while offset < n:
            part = self.part or self._open_part()
            take = n - offset if limit is None else min(n - offset, limit - part.rows)
            chunk = table.slice(offset, take) if (offset or take != n) else table
            self.adapter._write_chunk(self, part, chunk)
            if part.behind is not None:
                part.behind.advance()
            crash_point("files.chunk_written")
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
                old = fs.join(self.adapter._root, f".{safe_name(self.stream.name)}.old-{self.adapter.run_id}")
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
