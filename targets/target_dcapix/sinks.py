"""The sink of target-dcapix: one per stream (and per schema version), writing through an adapter.

A :class:`DcApiXSink` buffers the stream's records (plain dicts, exactly as decoded from the input:
no per-record type conformance) and, when it drains, hands them to the stream's
:class:`StreamWriter` as one :class:`~dc_api_x.types.Batch`; the adapter converts the batch
column-wise (Arrow) and :meth:`~dc_api_x.ext.adapters.ProtocolAdapter.flush` makes it durable before
the target may emit the STATE that follows those records.

The adapter write session (``start_write`` … ``finish_write``) belongs to the stream, not to the
sink: when the schema changes mid-stream the old sink is drained first, the new sink reuses the
writer, and the writer calls ``start_write`` again with the new :class:`~dc_api_x.types.StreamSpec`
so the adapter can add the new columns.

Reading the files of BATCH messages (JSONL, Parquet, Arrow IPC) is in :mod:`target_dcapix.batchfiles`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from singer_sdk.exceptions import MissingKeyPropertiesError
from singer_sdk.sinks import BatchSink

from dc_api_x.exceptions import AdapterError, DcApiXError, SchemaError
from dc_api_x.types import Batch, StreamSpec

from .batchfiles import BatchFileReading, one_line
from .columnar import ColumnarPlan
from .settings import DEFAULT_BATCH_SIZE_ROWS
from .validation import RecordValidator, compile_record_validator

if TYPE_CHECKING:  # pragma: no cover
    from .target import TargetDcApiX

__all__ = ["DcApiXSink", "MissingKeyPropertyError", "StreamWriter"]

log = logging.getLogger(__name__)

#: ``validate_records: "sample"`` checks the first SAMPLE_HEAD records of a stream, then 1 in SAMPLE_EVERY.
SAMPLE_HEAD = 1000
SAMPLE_EVERY = 100
#: At most this many record shapes are remembered per sink.
MAX_SHAPES = 4096
#: Records the fast path buffers as dicts before handing them to the adapter (unflushed).
CHUNK_ROWS = 10_000
#: Chunks of a stream the column path may fail to convert before it is turned off for the stream.
COLUMNAR_REFUSALS = 3


def _joined(tables: list[Any], schema: Any) -> Any:
    """The scanner's tables of one chunk as one table; a ``ValueError`` (the dict path then decides)
    when one was made for another writer schema than ``schema`` (the writer's now)."""
    import pyarrow as pa

    for t in tables:
        if not t.schema.equals(schema, check_metadata=True):
            raise ValueError("the writer's schema changed since the scanner read the records")
    return tables[0] if len(tables) == 1 else pa.concat_tables(tables)


class MissingKeyPropertyError(SchemaError, MissingKeyPropertiesError):
    """A record lacks one of its stream's key properties."""

    def __init__(self, message: str, *, stream: str | None = None) -> None:
        SchemaError.__init__(self, message, stream=stream)


class StreamWriter:
    """The adapter write session of one stream: ``start_write`` once (again on a schema change),
    ``write`` + ``flush`` per drained batch, ``finish_write`` at the end of the input.

    ``start_write`` is deferred to the first write (or the end of the input for an empty stream), so
    an ``ACTIVATE_VERSION`` that arrives before the stream's records can still choose overwrite.
    """

    def __init__(self, adapter: Any, spec: StreamSpec, load_method: str) -> None:
        self.adapter = adapter
        self.spec = spec
        self.load_method = load_method
        self.started = False
        self.finished = False
        self.rows_written = 0
        self.batches_written = 0
        #: BATCH files loaded into a write that is not committed yet (removed by :meth:`finish`).
        self.pending_files: list[Path] = []
        #: BATCH files loaded by writes not flushed yet (committed by the next flush).
        self.unflushed_files: list[Path] = []

    @property
    def adapter_name(self) -> str:
        return str(getattr(self.adapter, "name", "") or type(self.adapter).__name__)

    def _wrap(self, exc: Exception, what: str) -> DcApiXError:
        if isinstance(exc, DcApiXError):
            return exc
        where = f"adapter {self.adapter_name!r}, stream {self.spec.name!r}"
        msg = one_line(str(exc)) or type(exc).__name__
        if isinstance(exc, (ValueError, TypeError)):
            return SchemaError(f"{where}: {msg}", adapter=self.adapter_name, stream=self.spec.name)
        return AdapterError(
            f"{where}: {what} failed: {type(exc).__name__}: {msg}",
            adapter=self.adapter_name,
            stream=self.spec.name,
        )

    def ensure_started(self) -> None:
        if not self.started:
            try:
                self.adapter.start_write(self.spec, load_method=self.load_method)
            except Exception as exc:
                raise self._wrap(exc, "start_write") from exc
            self.started = True

    def update_spec(self, spec: StreamSpec) -> None:
        """A new SCHEMA for the stream: later batches use ``spec``.

        Before the first write the spec is simply replaced. After it, a schema that only drops
        columns or changes annotations keeps the current (wider) spec; new or retyped columns call
        ``start_write`` again so the adapter adds them. An ``overwrite`` in progress cannot be
        widened that way (the adapters restart their staging area), so that case stops with an
        error instead of losing the rows already staged.
        """
        if spec == self.spec:
            return
        if not self.started:
            self.spec = spec
            return
        old_props, new_props = self.spec.properties, spec.properties
        changed = [n for n, p in new_props.items() if n not in old_props or old_props[n] != p]
        if not changed and tuple(spec.key_properties) == tuple(self.spec.key_properties):
            return  # the current spec still describes every record of the new version
        if self.load_method == "overwrite":
            raise SchemaError(
                f"adapter {self.adapter_name!r}, stream {spec.name!r}: the schema changed "
                f"(columns {', '.join(map(repr, changed)) or '(keys)'}) after rows were staged with "
                f"load_method 'overwrite'; the staged rows cannot be widened (re-run with append/upsert, "
                f"or send the final schema first)",
                adapter=self.adapter_name,
                stream=spec.name,
            )
        merged = dict(old_props)
        merged.update(new_props)
        schema = {**spec.schema, "properties": merged}
        self.spec = spec.with_(schema=schema)
        try:
            self.adapter.start_write(self.spec, load_method=self.load_method)
        except Exception as exc:
            raise self._wrap(exc, "start_write (schema change)") from exc

    def write(self, batch: Batch, *, flush: bool = True) -> None:
        """Write one batch and flush it: when this returns, the rows are durable. With
        ``flush=False`` the adapter may still hold them (:meth:`flush` makes them durable)."""
        if not len(batch):
            if flush:
                self.flush()
            return
        self.ensure_started()
        try:
            self.adapter.write(self.spec, batch)
            if flush:
                self.adapter.flush(self.spec)
        except Exception as exc:
            raise self._wrap(exc, "write") from exc
        self.rows_written += len(batch)
        self.batches_written += 1
        if flush:
            self._flushed()

    def flush(self) -> None:
        """Make every row written so far durable (``adapter.flush``)."""
        if not self.started:
            return
        try:
            self.adapter.flush(self.spec)
        except Exception as exc:
            raise self._wrap(exc, "flush") from exc
        self._flushed()

    def loaded(self, file: Path) -> None:
        """Every row of BATCH file ``file`` is written (maybe not flushed yet): :meth:`committed`
        at the next flush."""
        self.unflushed_files.append(file)

    def _flushed(self) -> None:
        if self.unflushed_files:
            files, self.unflushed_files = self.unflushed_files, []
            self.committed(files)

    def finish(self) -> None:
        """Finalize the stream (``finish_write``: swap an overwrite, close files)."""
        if self.finished:
            return
        self.ensure_started()
        try:
            self.adapter.finish_write(self.spec)
        except Exception as exc:
            raise self._wrap(exc, "finish_write") from exc
        self.finished = True
        self.remove_files()

    def committed(self, files: Sequence[Path]) -> None:
        """``files`` (BATCH files) are loaded: removed now when what was written is committed (every
        write flushed), at :meth:`finish` for an overwrite (committed only when it is swapped in)."""
        self.pending_files.extend(files)
        if self.load_method != "overwrite":
            self.remove_files()

    def remove_files(self) -> None:
        """Remove the loaded BATCH files (a file already gone is no error)."""
        files, self.pending_files = self.pending_files, []
        for path in files:
            try:
                path.unlink(missing_ok=True)
            except OSError as exc:
                log.warning("stream %r: cannot remove loaded BATCH file %s: %s", self.spec.name, path, exc)


class DcApiXSink(BatchFileReading, BatchSink):
    """Buffers a stream's records and writes them through the stream's :class:`StreamWriter`."""

    MAX_SIZE_DEFAULT = DEFAULT_BATCH_SIZE_ROWS

    @property
    def batch_size_rows(self) -> int | None:
        value = super().batch_size_rows  # (a string from an env var, e.g. Meltano's)
        return int(value) if value else None

    def __init__(
        self,
        target: TargetDcApiX,
        stream_name: str,
        schema: dict[str, Any],
        key_properties: Sequence[str] | None,
    ) -> None:
        #: Records waiting for the next drain (dicts as decoded, no conversion).
        self.buffer: list[dict[str, Any]] = []
        #: The input line of each record the fast path buffered (checked in bulk: check_buffered).
        self.lines: list[int] = []
        #: True when the target feeds this sink directly (no stream map / metadata in the way).
        self.fast = False
        #: The column path of the stream (:mod:`target_dcapix.columnar`), when it has one.
        self.columnar: ColumnarPlan | None = None
        #: Records the column path buffered (msgspec structs), their input lines and line numbers.
        #: Only one of ``buffer`` and ``col_records`` holds records at a time (input order).
        self.col_records: list[Any] = []
        self.col_lines: list[bytes] = []
        self.col_linenos: list[int] = []
        #: Tables of records the compiled scanner read (``ColumnarPlan.native_table``), and their
        #: rows: ``col_records`` or ``col_tables`` holds the column path's records, not both.
        self.col_tables: list[Any] = []
        self.col_rows = 0
        #: Their input lines (``LineSpans``, cut out of the input only when read again) and the
        #: number of the first.
        self.col_spans: list[tuple[Any, int]] = []
        #: Chunks the column path failed to convert (they went the dict path).
        self.col_refused = 0
        #: Bytes of input (RECORD lines) of the records buffered or written unflushed: the sink is
        #: drained at ``batch_size_bytes`` as at ``batch_size_rows`` (a few huge values must not
        #: wait for 100,000 records in memory).
        self.nbytes = 0
        #: Bytes of input of the records buffered (not yet handed to the adapter).
        self.buf_bytes = 0
        self._n_validated = 0
        super().__init__(target, stream_name, schema, key_properties)
        self._target: TargetDcApiX = target
        self.keys: tuple[str, ...] = tuple(self.key_properties or ())
        self._prop_names: frozenset[str] = frozenset(self.schema.get("properties") or {})
        mode = target.validate_mode
        self.validate_mode: str = mode
        self.validator: RecordValidator | None = (
            compile_record_validator(self.schema) if mode != "off" else None
        )
        #: Shapes (field names, value types) of records found valid, when types are all the schema checks.
        self._shapes: set[tuple[tuple[str, ...], tuple[type, ...]]] | None = (
            set() if self.validator is not None and getattr(self.validator, "type_only", False) else None
        )
        self._int_only: tuple[str, ...] = tuple(getattr(self.validator, "int_only", ()))
        self.writer: StreamWriter = target.writer_for(self)
        #: ``max_size`` (``batch_size_rows``) as a plain attribute for the per-record path.
        self.limit: int = int(self.max_size)
        #: Records handed to the adapter (``write`` without ``flush``) since the last drain.
        self.unflushed = 0
        #: The fast path hands the buffer to the adapter every ``chunk`` records (``write`` without
        #: ``flush``): the adapter converts them to Arrow, so a batch of ``batch_size_rows`` never
        #: sits in memory as Python dicts (a dict record takes ~10x its Arrow size). The batch is
        #: flushed, and its STATE may follow, at ``batch_size_rows`` as before.
        self.chunk: int = min(self.limit, CHUNK_ROWS)
        #: ``batch_size_bytes``; the buffer goes to the adapter (unflushed) at half of it.
        self.byte_limit: int = target.batch_size_bytes
        self.chunk_bytes: int = max(1, self.byte_limit // 2)

    # -- singer-sdk hooks --------------------------------------------------------------------
    def get_validator(self) -> None:  # type: ignore[override]
        """No jsonschema validator per record: :mod:`target_dcapix.validation` compiles one."""
        return None

    @property
    def current_size(self) -> int:
        """Records received and not yet flushed (buffered, or written without ``flush``)."""
        return len(self.buffer) + self.col_count + self.unflushed

    @property
    def col_count(self) -> int:
        """Records the column path buffered (structs or rows of the scanner's tables)."""
        return len(self.col_records) + self.col_rows

    @property
    def full(self) -> bool:
        """``batch_size_rows`` records or ``batch_size_bytes`` bytes of input wait for a flush."""
        return self.current_size >= self.limit or self.nbytes >= self.byte_limit

    @property
    def is_full(self) -> bool:
        """singer-sdk's test (records of streams with stream maps): :attr:`full`."""
        return self.full

    def check_buffered(self, records: list[Any], lines: list[int]) -> None:
        """:meth:`check` for records the fast path buffered without a check, in input order, each
        error naming its record's line (``lines``). A record whose shape (field names, value types)
        is that of a record found valid is valid (see :meth:`check`): the shapes of the whole chunk
        are computed at C speed, and only a record of a shape not seen yet is checked in Python."""
        target = self._target
        shapes = self._shapes if self._shapes is not None else set()
        if self._shapes is not None and set(map(type, records)) <= {dict}:
            from itertools import repeat

            found = set(
                zip(
                    map(tuple, records),
                    map(tuple, map(map, repeat(type), map(dict.values, records))),
                    strict=True,
                )
            )
            if found <= shapes:
                return
            todo = found - shapes
        else:
            todo = None
        try:
            for record, line in zip(records, lines, strict=True):
                if todo is not None:
                    shape = (tuple(record), tuple(map(type, record.values())))
                    if shape in shapes:
                        continue  # valid (cached by the check of an earlier record)
                target._line_override = line
                self.check(record)
                if todo is not None:
                    if shape in shapes:
                        todo.discard(shape)
                    if not todo:
                        return
        finally:
            target._line_override = None

    def write_chunk(self) -> None:
        """Hand the buffered records to the adapter without flushing them (the fast path, every
        ``chunk`` records): they count in :attr:`current_size` until the drain flushes them."""
        if self.col_count:
            self.write_columnar()
        records, self.buffer = self.buffer, []
        lines, self.lines = self.lines, []
        self.buf_bytes = 0
        if not records:
            return
        self.check_buffered(records, lines)
        self.tally_record_read(len(records))
        self.record_counter_metric.increment(len(records))
        self._write(records, flush=False)
        self.unflushed += len(records)

    @property
    def spec(self) -> StreamSpec:
        """The stream description the adapter gets (from the SCHEMA message)."""
        bookmark = self._target.bookmark_properties.get(self.stream_name) or ()
        return StreamSpec(
            name=self.stream_name,
            schema=self.schema,
            key_properties=tuple(self.key_properties or ()),
            replication_key=bookmark[0] if bookmark else None,
            replication_keys=tuple(bookmark),
        )

    def check(self, record: Any) -> None:
        """Validate one record (as configured); raises :class:`SchemaError` naming stream and field.

        When the schema constrains nothing but types, a record whose field names and value types are
        those of a record already found valid is valid too: that "shape" is looked up in a small
        set before anything else is done (a few hundred nanoseconds for an 11-field record).
        """
        shapes = self._shapes
        if shapes is not None and type(record) is dict:
            shape = (tuple(record), tuple(map(type, record.values())))
            if shape in shapes:
                return
        else:
            shape = None
        if type(record) is not dict:
            raise SchemaError(
                f"stream {self.stream_name!r}, {self._target.where()}: 'record' must be a JSON object, "
                f"got {type(record).__name__}",
                stream=self.stream_name,
            )
        for key in self.keys:
            if key not in record:
                raise MissingKeyPropertyError(
                    f"stream {self.stream_name!r}, {self._target.where()}, field {key!r}: "
                    f"key property is missing from the record",
                    stream=self.stream_name,
                )
        validator = self.validator
        if validator is None:
            return
        n = self._n_validated
        self._n_validated = n + 1
        if self.validate_mode == "sample" and n >= SAMPLE_HEAD and n % SAMPLE_EVERY:
            return
        if not self._prop_names.issuperset(record):
            self._warn_extra(record)
        err = validator(record)
        if err is not None:
            field, message = err
            raise SchemaError(
                f"stream {self.stream_name!r}, {self._target.where()}, field {field or '(record)'!r}: "
                f"{one_line(message)}",
                stream=self.stream_name,
            )
        if (
            shape is not None
            and shapes is not None
            and len(shapes) < MAX_SHAPES
            and not any(type(record.get(name)) is float for name in self._int_only)
        ):  # a float passes an integer field only by its value (2.0): never cache that shape
            shapes.add(shape)

    def _warn_extra(self, record: dict[str, Any]) -> None:
        """Fields the schema does not declare are not loaded (the destination has no column for
        them): say so once per field rather than drop them silently."""
        for name in record:
            if name not in self._prop_names and name not in self._warned_missing_fields:
                self._warned_missing_fields.add(name)
                self.logger.warning(
                    "stream %r: field %r is not in the stream's schema; it is not loaded (first seen at %s)",
                    self.stream_name,
                    name,
                    self._target.where(),
                )

    def _validate_and_parse(self, record: dict[Any, Any]) -> dict[Any, Any]:
        """The SDK's record path (stream maps / metadata): validate, no per-record type conformance."""
        self.check(record)
        return record

    def _singer_validate_message(self, record: dict[Any, Any]) -> None:
        """Key properties are checked in :meth:`check` already."""

    def process_record(self, record: dict[Any, Any], context: dict[Any, Any]) -> None:
        self.buffer.append(record)
        self.nbytes += self._target._reader.line_size

    def mark_drained(self) -> None:
        super().mark_drained()
        self.unflushed = 0
        self.nbytes = 0

    def add_columnar(self, records: list[Any], lines: list[bytes], first_line: int) -> None:
        """Buffer records of the column path (structs decoded from ``lines``, numbered from
        ``first_line``); records the dict path buffered before them go to the adapter first."""
        if self.buffer or self.col_tables:
            self.write_chunk()
        self.col_records.extend(records)
        self.col_lines.extend(lines)
        self.col_linenos.extend(range(first_line, first_line + len(lines)))

    def add_table(self, table: Any, lines: Any, first_line: int) -> None:
        """Buffer an Arrow table of records the compiled scanner read from ``lines`` (a
        :class:`~target_dcapix.columnar.LineSpans`, numbered from ``first_line``); records buffered
        otherwise before them go to the adapter first."""
        if self.buffer or self.col_records:
            self.write_chunk()
        self.col_tables.append(table)
        self.col_rows += table.num_rows
        self.col_spans.append((lines, first_line))

    def write_columnar(self) -> None:
        """Hand the column path's buffered records to the adapter as one Arrow table, unflushed.
        When the conversion fails, their lines are decoded again into dicts and written by the
        dict path (:meth:`write_chunk`), which checks them and names the line of a bad one."""
        records, self.col_records = self.col_records, []
        tables, self.col_tables = self.col_tables, []
        spans, self.col_spans = self.col_spans, []
        self.col_rows = 0
        lines, self.col_lines = self.col_lines, []
        linenos, self.col_linenos = self.col_linenos, []
        self.buf_bytes = 0
        if not records and not tables:
            return
        plan = self.columnar
        assert plan is not None
        try:
            if tables:
                table = _joined(tables, plan.arrow_schema(self.writer.spec.schema))
            else:
                table = plan.to_arrow(records, self.writer.spec.schema)
        except Exception as exc:  # the dict path decides (and names the line of a bad record)
            log.debug("stream %r: the column path refused a chunk (%s): dict path", self.stream_name, exc)
            self.col_refused += 1
            if self.col_refused >= COLUMNAR_REFUSALS:  # its data does not suit it: stop paying twice
                log.info(
                    "stream %r: column path off after %d refused chunks", self.stream_name, self.col_refused
                )
                self.columnar = None
            del records
            for span, first in spans:  # the scanner's records: their lines, cut out of the input now
                lines.extend(span.lines())
                linenos.extend(range(first, first + len(span)))
            self.buffer = self._target.records_of(lines, linenos)
            self.lines = linenos
            self.write_chunk()
            return
        del records, lines
        n = table.num_rows
        self._n_validated += n
        self.tally_record_read(n)
        self.record_counter_metric.increment(n)
        try:
            self.writer.write(Batch.from_arrow(table, schema=self.writer.spec.schema), flush=False)
        except SchemaError as exc:
            raise self._with_line(exc) from None
        self.unflushed += n

    def start_drain(self) -> dict[Any, Any]:
        if self.col_count:
            self.write_columnar()
        records, self.buffer = self.buffer, []
        lines, self.lines = self.lines, []
        self.buf_bytes = 0
        self._pending_batch = None
        if self.fast:  # the SDK tallies the records it handles itself (stream maps, metadata)
            self.check_buffered(records, lines)
            self.tally_record_read(len(records))
            self.record_counter_metric.increment(len(records))
        self._context_draining = {"records": records}
        return self._context_draining

    def process_batch(self, context: dict[Any, Any]) -> None:
        records = context.get("records") or []
        if records or self.unflushed:
            self._write(records, flush=True)
            self.unflushed = 0
            self._target.note_drained()

    def _write(self, records: list[dict[str, Any]], *, flush: bool) -> None:
        if records and self.writer.load_method == "upsert" and self.keys:
            records = self._last_per_key(records)
        try:
            self.writer.write(Batch.from_records(records, schema=self.writer.spec.schema), flush=flush)
        except SchemaError as exc:
            raise self._with_line(exc) from None
        if records:
            self._target.inexact_records.pop(self.stream_name, None)

    def _with_line(self, exc: SchemaError) -> SchemaError:
        """``exc`` naming the input line of the record at fault when it holds a number a float64 does
        not keep (the adapter names stream and field but sees a whole batch)."""
        target = self._target
        if not target.inexact_records:
            return exc
        import re

        found = re.search(r"field '([^']*)'", str(exc))
        field = found.group(1) if found else None
        line = None
        for stream in dict.fromkeys((self.stream_name, *target.inexact_records)):
            line = target.inexact_line(stream, field)
            if line is not None:
                break
        if line is None:
            return exc
        out = SchemaError(f"line {line}: {exc}", stream=self.stream_name)
        out.adapter = getattr(exc, "adapter", None)
        return out

    def _last_per_key(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Upsert: a key seen twice in one batch keeps its last record (a merge statement may not touch
        the same row twice); the order of the kept records follows their last occurrence."""
        keys = self.keys
        if len(keys) == 1:
            k = keys[0]
            latest = {r[k]: r for r in records}
        else:
            latest = {tuple(r[k] for k in keys): r for r in records}
        if len(latest) == len(records):
            return records
        dupes = len(records) - len(latest)
        self.tally_duplicate_merged(dupes)
        self.logger.info(
            "%d records of %r repeat a key within the batch: the last one of each is kept",
            dupes,
            self.stream_name,
        )
        wanted = {id(r) for r in latest.values()}
        return [r for r in records if id(r) in wanted]

    def activate_version(self, new_version: int) -> None:
        self._target.activate_version(self, new_version)

    # -- BATCH messages ------------------------------------------------------------------------
    def process_batch_files(self, encoding: Any, files: Sequence[str]) -> None:
        """Load the files of a BATCH message (jsonl, parquet or arrow — Arrow IPC files, as
        tap-dcapix writes them with ``"format": "arrow"`` — gzip or not), in order.

        Records buffered before the BATCH message are written first, so the order is kept. A file
        is read in chunks of ``batch_size_rows`` records (memory stays bounded whatever its size),
        and every record goes through the same check as a RECORD message's (key properties, the
        stream's schema; Parquet rows in their JSON form); a bad one names the file and its line
        (JSONL) or row (Parquet).

        The chunks are written without a flush, as RECORD messages are: they count in
        :attr:`current_size`, so the STATE that follows waits for the flush, which comes once
        ``batch_size_rows`` rows are unflushed (or at the drains: the end of the input, a schema
        change, ``batch_wait_limit_seconds``). Small files of many BATCH messages (tap-dcapix
        writes one per adapter batch) thus make ``batch_size_rows``-row commits, not one each.
        A loaded file is removed after the flush that commits its last rows.
        """
        if self.buffer or self.col_count:
            self._target.drain_one(self)
        fmt = str(getattr(encoding.format, "value", encoding.format)).lower()
        compression = str(encoding.compression or "none").lower()
        for url in files:
            if fmt == "jsonl":
                batches = self._jsonl_batches(url, gzipped=compression == "gzip" or str(url).endswith(".gz"))
            elif fmt == "parquet":
                batches = self._parquet_batches(url)
            elif fmt == "arrow":
                batches = self._arrow_ipc_batches(url)
            else:
                raise SchemaError(
                    f"stream {self.stream_name!r}, {self._target.where()}: unsupported BATCH encoding "
                    f"{fmt!r} (supported: jsonl, parquet, arrow)",
                    stream=self.stream_name,
                )
            for batch in batches:
                if self.unflushed >= self.limit:
                    self._target.drain_one(self)  # flush: the files loaded before are committed
                self.writer.write(batch, flush=False)
                self.unflushed += len(batch)
                self.record_counter_metric.increment(len(batch))
                self._total_records_read += len(batch)
                self.tally_record_written(len(batch))
            local = self._removable(url)
            if local is not None:
                self.writer.loaded(local)
            if self.unflushed >= self.limit:
                self._target.drain_one(self)

    def _removable(self, url: str) -> Path | None:
        """The local path of BATCH file ``url`` when it lies under the target's batch root (the files
        that may be removed once loaded), else ``None``."""
        root = self._target.batch_root
        if root is None:
            return None
        from urllib.parse import unquote, urlparse

        parsed = urlparse(url)
        if parsed.scheme not in ("", "file"):
            return None
        path = Path(unquote(parsed.path) if parsed.scheme else url).resolve()
        return path if path.is_relative_to(root) and path != root else None
