"""``target-dcapix``: a singer-sdk Target whose sinks write through a dc-api-x adapter.

Config: ``{"adapter": NAME, …that adapter's options…, "load_method": …, "batch_size_rows": …}``, e.g.
``{"adapter": "sql", "url": "postgresql://…", "schema": "raw", "load_method": "upsert"}`` or
``{"adapter": "parquet", "path": "/out/dir"}``. The adapter is created with
:func:`dc_api_x.create_adapter` (any adapter a plugin registers works).

What it guarantees:

* stdout carries only STATE values (one JSON object per line), each printed only after every record
  received before it has been written *and flushed* by the adapter (with ``load_method: overwrite``
  only after ``finish_write`` swapped the data in); logs go to stderr;
* bad input (malformed line, RECORD before SCHEMA, a record violating its schema, unknown message type)
  stops the run with one line on stderr naming the line, stream and field, exit code 1, and no STATE
  for uncommitted records;
* speed: stdin read in bulk and decoded with orjson, no per-record type conformance (the adapter
  converts whole batches to Arrow), validation compiled once per schema (``validate_records``), big
  batches (``batch_size_rows``, default 100,000).

Over 700 lines because it is the one Target class: message dispatch, the STATE ordering that the
guarantees above rest on, and the RECORD fast paths that feed it. What would move out next: the
column-path block dispatch (``_columnar_block`` / ``_columnar_run``) into :mod:`.columnar`, once its
use of the reader's line bookkeeping is an interface of the reader.
"""

from __future__ import annotations

import copy
import gc
import sys
import threading
import time
from collections import Counter
from collections.abc import Mapping
from operator import attrgetter
from pathlib import Path
from typing import IO, Any, ClassVar

import orjson
from singer_sdk.mapper import SameRecordTransform
from singer_sdk.target_base import Target

from dc_api_x.crashpoints import crash_point
from dc_api_x.exceptions import ConfigError, DcApiXError, SchemaError
from dc_api_x.meltano import TARGET_CAPABILITIES, sdk_capabilities
from dc_api_x.singer_settings import SettingsSchema

from .reader import FastSingerReader, RecordBeforeSchemaError, SingerInputError
from .settings import (
    DEFAULT_BATCH_SIZE_BYTES,
    DEFAULT_BATCH_WAIT_LIMIT_SECONDS,
    TARGET_KEYS,
    TARGET_PROPERTIES,
    target_settings_jsonschema,
)
from .sinks import DcApiXSink, StreamWriter

__all__ = ["TargetDcApiX", "TerminatedError"]

#: At most this many records with long numbers are remembered per stream (for their line numbers).
_INEXACT_KEPT = 10_000
_LOAD_METHODS = {"append": "append", "append-only": "append", "upsert": "upsert", "overwrite": "overwrite"}


def _run_settings() -> dict[str, Any]:
    """The target's own settings (the chosen adapter validates its own options)."""
    return {"type": "object", "properties": copy.deepcopy(TARGET_PROPERTIES), "required": ["adapter"]}


_SETTINGS = SettingsSchema(_run_settings, target_settings_jsonschema)


def full_settings(enabled: bool = True) -> None:
    """Make ``TargetDcApiX.config_jsonschema`` the complete schema (``--about``, ``--config ENV``)."""
    _SETTINGS.complete = enabled


class TargetDcApiX(Target):
    """Singer target that loads streams through a dc-api-x adapter (SQL, Parquet, CSV, JSONL, plugins)."""

    name = "target-dcapix"
    package_name = "dc-api-x"
    default_sink_class = DcApiXSink
    message_reader_class = FastSingerReader  # type: ignore[assignment]
    capabilities: ClassVar[list[Any]] = sdk_capabilities(TARGET_CAPABILITIES)

    #: Target settings (+ every writing adapter's options for ``--about``: :class:`SettingsSchema`).
    config_jsonschema = _SETTINGS  # type: ignore[assignment]

    def __init__(
        self,
        *,
        config: dict[str, Any] | Any = None,
        parse_env_config: bool = False,
        validate_config: bool = True,
        setup_mapper: bool = True,
        message_reader: Any = None,
    ) -> None:
        self._writers: dict[str, StreamWriter] = {}
        self.bookmark_properties: dict[str, list[str]] = {}
        self._fast_sinks: dict[str, DcApiXSink] = {}
        self._last_emitted: bytes | None = None
        self._last_state: dict[str, Any] | None = None  # the latest STATE value received
        self._pending_state = False
        self._finishing = False
        self._age_due = False  # set by the age clock: the record path then checks the records' age
        self._collect_due = False
        self._adapter: Any = None
        #: The line :meth:`where` names while buffered records are checked in bulk.
        self._line_override: int | None = None
        #: Per stream: (line, record) of records holding numbers a float64 does not keep, until written.
        self.inexact_records: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        super().__init__(
            config=config,
            parse_env_config=parse_env_config,
            validate_config=validate_config,
            setup_mapper=setup_mapper,
            message_reader=message_reader,
        )
        cfg = dict(self.config)
        self.max_parallelism = max(1, int(cfg.get("max_parallelism") or 1))
        raw_mode = cfg.get("validate_records", True)
        if raw_mode is True or raw_mode in ("true", "True", "on"):
            self.validate_mode = "on"
        elif raw_mode is False or raw_mode in ("false", "False", "off"):
            self.validate_mode = "off"
        elif raw_mode == "sample":
            self.validate_mode = "sample"
        else:
            raise ConfigError(
                f"target {self.name!r}: option 'validate_records': expected true, false or "
                f"'sample', got {raw_mode!r}",
                plugin=self.name,
                field="validate_records",
            )
        lm = str(cfg.get("load_method") or "append")
        if lm not in _LOAD_METHODS:
            raise ConfigError(
                f"target {self.name!r}: option 'load_method': expected one of "
                f"{', '.join(_LOAD_METHODS)}, got {lm!r}",
                plugin=self.name,
                field="load_method",
            )
        self.load_method = _LOAD_METHODS[lm]
        self.hard_delete = bool(cfg.get("hard_delete", False))
        self.batch_wait_limit = self._wait_limit(cfg.get("batch_wait_limit_seconds"))
        self.batch_size_bytes = self._size_bytes(cfg.get("batch_size_bytes"))
        #: The column path (:mod:`target_dcapix.columnar`) of the stream the last records were of.
        self._columnar: Any = None
        #: BATCH files under this directory are removed once committed (``None``: never).
        self.batch_root = self._batch_root(cfg)
        self._adapter = self._create_adapter(cfg)
        self._age_clock_started = False
        #: The message reader (a FastSingerReader: ``line_number`` for the hot path).
        self._reader: Any = self.message_reader
        if isinstance(self.message_reader, FastSingerReader):
            self.message_reader.on_inexact = self._note_inexact
            self.message_reader.on_records = self._process_record_run
            self.message_reader.on_block = self._columnar_block

    def _batch_root(self, cfg: Mapping[str, Any]) -> Path | None:
        """The local directory whose BATCH files may be removed once loaded: ``batch_config.storage.root``
        when ``remove_batch_files`` (default true) is on and the root is a local path or file:// URL."""
        from urllib.parse import unquote, urlparse

        remove = cfg.get("remove_batch_files", True)
        if isinstance(remove, str):  # (an env var, e.g. Meltano's)
            remove = remove.strip().lower() not in ("false", "0", "no", "off", "")
        bc = cfg.get("batch_config")
        storage = bc.get("storage") if isinstance(bc, Mapping) else None
        root = storage.get("root") if isinstance(storage, Mapping) else None
        if not remove or not isinstance(root, str) or not root:
            return None
        parsed = urlparse(root)
        if parsed.scheme not in ("", "file"):
            self.logger.info("BATCH files under %s are not removed (not a local directory)", root)
            return None
        return Path(unquote(parsed.path) if parsed.scheme else root).expanduser().resolve()

    def _size_bytes(self, raw: Any) -> int:
        if raw is None or raw == "":
            return DEFAULT_BATCH_SIZE_BYTES
        try:
            value = int(raw)  # (a string from an env var, e.g. Meltano's)
        except (TypeError, ValueError):
            value = 0
        if value < 1 or isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
            raise ConfigError(
                f"target {self.name!r}: option 'batch_size_bytes': expected a number of bytes "
                f">= 1, got {raw!r}",
                plugin=self.name,
                field="batch_size_bytes",
            )
        return value

    def _wait_limit(self, raw: Any) -> float:
        if raw is None or raw == "":
            return DEFAULT_BATCH_WAIT_LIMIT_SECONDS
        try:
            value = float(raw)  # (a string from an env var, e.g. Meltano's)
        except (TypeError, ValueError):
            value = -1.0
        if not value > 0 or value == float("inf"):
            raise ConfigError(
                f"target {self.name!r}: option 'batch_wait_limit_seconds': expected a number of "
                f"seconds > 0, got {raw!r}",
                plugin=self.name,
                field="batch_wait_limit_seconds",
            )
        return value

    # -- the time bound of the buffers -------------------------------------------------------------
    def _start_age_clock(self) -> None:
        """A daemon thread that raises ``_age_due`` a few times per ``batch_wait_limit_seconds``; the
        record path only tests that flag (no clock read per record)."""
        self._age_clock_started = True
        tick = min(max(self.batch_wait_limit / 4, 0.05), 5.0)

        def clock() -> None:
            while True:
                time.sleep(tick)
                self._age_due = True

        threading.Thread(target=clock, name="target-dcapix-age", daemon=True).start()

    def _handle_max_record_age(self) -> None:
        """Write and flush every buffered record once the oldest may be ``batch_wait_limit_seconds``
        old (the time since the last full drain), then emit the STATE that was waiting for them."""
        self._age_due = False
        if time.time() - self._last_full_drain_at < self.batch_wait_limit:
            return
        if not any(s.current_size for s in self._sinks_active.values()):
            self._reset_max_record_age()
            return
        self.logger.info(
            "Records are buffered for %g s or more (batch_wait_limit_seconds): writing every stream",
            self.batch_wait_limit,
        )
        self.drain_all()
        self._collect()
        self._maybe_emit_state()

    # -- adapter -------------------------------------------------------------------------------
    def _create_adapter(self, cfg: Mapping[str, Any]) -> Any:
        from dc_api_x.plugins import create_adapter

        adapter_cfg = {k: v for k, v in cfg.items() if k not in TARGET_KEYS or k == "adapter"}
        if "adapter" not in adapter_cfg:
            raise ConfigError(
                f"target {self.name!r}: option 'adapter': required option is missing",
                plugin=self.name,
                field="adapter",
            )
        if "default_target_schema" in cfg and "schema" not in adapter_cfg:
            adapter_cfg["schema"] = cfg["default_target_schema"]
        adapter = create_adapter(adapter_cfg)
        methods = tuple(getattr(adapter, "load_methods", ()) or ())
        if not methods:
            adapter.close()
            raise ConfigError(
                f"target {self.name!r}: adapter {adapter_cfg['adapter']!r} cannot write "
                f"(it supports no load method)",
                plugin=self.name,
                field="adapter",
            )
        if self.load_method not in methods:
            adapter.close()
            raise ConfigError(
                f"target {self.name!r}: option 'load_method': adapter "
                f"{adapter_cfg['adapter']!r} supports {', '.join(methods)}, not "
                f"{self.load_method!r}",
                plugin=self.name,
                field="load_method",
            )
        return adapter

    @property
    def adapter(self) -> Any:
        """The destination adapter."""
        return self._adapter

    def close(self) -> None:
        """Release the adapter (connections, temp files). Safe to call twice."""
        if self._adapter is not None:
            adapter, self._adapter = self._adapter, None
            adapter.close()

    def writer_for(self, sink: DcApiXSink) -> StreamWriter:
        """The write session of ``sink``'s stream (created on first use, kept across schema changes)."""
        spec = sink.spec
        writer = self._writers.get(sink.stream_name)
        if writer is None:
            method = self.load_method
            if method == "upsert" and not spec.key_properties:
                # nothing to merge on: rows of a stream without key properties are appended
                self.logger.info(
                    "Stream %r has no key properties: loaded with append instead of upsert", sink.stream_name
                )
                method = "append"
            writer = StreamWriter(self._adapter, spec, method)
            self._writers[sink.stream_name] = writer
        else:
            writer.update_spec(spec)
        return writer

    def _note_inexact(self, line: int, msg: dict[Any, Any]) -> None:
        """A RECORD holds a number a float64 does not keep: remember its line, so that a destination
        that cannot hold it is refused naming the line (the adapter names stream and field)."""
        stream, record = msg.get("stream"), msg.get("record")
        if msg.get("type") == "RECORD" and isinstance(stream, str) and isinstance(record, dict):
            seen = self.inexact_records.setdefault(stream, [])
            if len(seen) < _INEXACT_KEPT:
                seen.append((line, record))

    def inexact_line(self, stream: str, field: str | None) -> int | None:
        """The first line of ``stream`` not yet written whose record holds, in ``field`` (any field
        when ``None``), a number a float64 does not keep."""
        from dc_api_x.values import has_inexact_numbers

        for line, record in self.inexact_records.get(stream, ()):
            if field is None or field not in record:
                if field is None and has_inexact_numbers(record):
                    return line
                continue
            if has_inexact_numbers(record[field]):
                return line
        return None

    def where(self) -> str:
        """``line N`` of the input being processed (for error messages)."""
        if self._line_override is not None:
            return f"line {self._line_override}"
        return f"line {getattr(self.message_reader, 'line_number', 0)}"

    # -- messages --------------------------------------------------------------------------------
    def _require(self, msg: Mapping[str, Any], *keys: str) -> None:
        missing = [k for k in keys if k not in msg]
        if missing:
            stream = msg.get("stream")
            where = self.where() + (f", stream {stream!r}" if isinstance(stream, str) else "")
            raise SingerInputError(
                f"{where}: {msg.get('type')} message is missing {', '.join(map(repr, missing))}",
                stream=stream if isinstance(stream, str) else None,
            )

    def _unknown_stream(self, stream: Any, what: str) -> SingerInputError:
        return RecordBeforeSchemaError(
            f"{self.where()}, stream {stream!r}: {what} before the stream's SCHEMA message",
            stream=stream if isinstance(stream, str) else None,
        )

    def _process_schema_message(self, message_dict: dict[Any, Any]) -> None:
        self._require(message_dict, "stream", "schema")
        stream = message_dict["stream"]
        schema = message_dict["schema"]
        if not isinstance(stream, str) or not stream:
            raise SingerInputError(
                f"{self.where()}: SCHEMA 'stream' must be a non-empty string, got {stream!r}"
            )
        if not isinstance(schema, dict):
            raise SingerInputError(f"{self.where()}, stream {stream!r}: SCHEMA 'schema' must be an object")
        if not isinstance(schema.get("properties"), dict):
            raise SingerInputError(
                f"{self.where()}, stream {stream!r}: SCHEMA 'schema' has no 'properties' "
                f"object (a stream's schema must describe its fields)",
                stream=stream,
            )
        keys = message_dict.get("key_properties")
        if keys is not None and (not isinstance(keys, list) or not all(isinstance(k, str) for k in keys)):
            raise SingerInputError(
                f"{self.where()}, stream {stream!r}: 'key_properties' must be a list of names", stream=stream
            )
        bookmarks = message_dict.get("bookmark_properties") or []
        if isinstance(bookmarks, str):
            bookmarks = [bookmarks]
        maps = self.mapper.stream_maps.get(stream)
        if maps and (maps[0].raw_schema != schema or maps[0].raw_key_properties != keys):
            # the schema changed: write what the old sinks hold before anything of the new version
            for stream_map in maps:
                old = self._active_sink(stream_map.stream_alias)
                if old is not None:
                    self.drain_one(old)
        self.bookmark_properties[stream] = list(bookmarks)
        super()._process_schema_message(message_dict)
        self._fast_sinks.pop(stream, None)
        maps = self.mapper.stream_maps.get(stream) or []
        if (
            len(maps) == 1
            and type(maps[0]) is SameRecordTransform
            and not maps[0].flattening_enabled
            and maps[0].stream_alias == stream
        ):
            sink = self._active_sink(stream)
            if isinstance(sink, DcApiXSink) and not sink.include_sdc_metadata_properties:
                sink.fast = True
                self._fast_sinks[stream] = sink
                if sink.columnar is None and self._columnar_allowed():
                    from .columnar import columnar_plan

                    sink.columnar = columnar_plan(stream, sink.schema, sink.keys)
                if sink.columnar is not None:
                    self._columnar = sink.columnar

    def _process_record_message(self, message_dict: dict[Any, Any]) -> None:
        try:
            sink = self._fast_sinks[message_dict["stream"]]
            record = message_dict["record"]
        except KeyError:
            self._slow_record(message_dict)
            return
        # checked in bulk before the records reach the adapter (DcApiXSink.check_buffered), each
        # error naming its record's line: the hot path only appends
        if sink.col_count:
            sink.write_columnar()  # (records keep the input order)
        buf = sink.buffer
        buf.append(record)
        reader = self._reader
        sink.lines.append(reader.line_number)
        size = reader.line_size
        sink.nbytes += size
        sink.buf_bytes += size
        if len(buf) >= sink.chunk or sink.buf_bytes >= sink.chunk_bytes:
            del buf  # no local reference may keep the drained records alive during the collection
            if sink.full:
                self._drain_full(sink)
            else:
                sink.write_chunk()  # to the adapter (Arrow), unflushed: no STATE yet
                self._collect()
        if self._age_due:
            self._handle_max_record_age()

    def _process_record_run(
        self, stream: str, msgs: list[dict[Any, Any]], first_line: int, nbytes: int = 0
    ) -> None:
        """RECORD messages ``msgs`` of ``stream``, from line ``first_line`` on (the reader's bulk
        path; ``nbytes`` bytes of input): what :meth:`_process_record_message` does per message,
        per run — the records join the sink's buffer up to each ``chunk`` at once, their lines
        with them."""
        from operator import itemgetter

        sink = self._fast_sinks.get(stream)
        if sink is not None and sink.columnar is not None:
            self._columnar = sink.columnar  # the next block tries the column path of this stream
        records: list[Any] | None = None
        if sink is not None:
            try:
                records = list(map(itemgetter("record"), msgs))
            except KeyError:
                records = None
        reader = self._reader
        if records is None:  # stream maps, metadata, or a message without 'record': one by one
            size = nbytes // max(len(msgs), 1)
            for i, msg in enumerate(msgs, start=first_line):
                reader.line_number = i
                reader.line_size = size
                self._process_record_message(msg)
            return
        assert sink is not None
        if sink.col_count:
            sink.write_columnar()  # (records keep the input order)
        n = len(records)
        pos = 0
        while pos < n:
            buf = sink.buffer
            take = min(n - pos, max(sink.chunk - len(buf), 1))
            buf.extend(records[pos : pos + take])
            sink.lines.extend(range(first_line + pos, first_line + pos + take))
            size = nbytes * (pos + take) // n - nbytes * pos // n
            sink.nbytes += size
            sink.buf_bytes += size
            pos += take
            reader.line_number = first_line + pos - 1
            if len(buf) >= sink.chunk or sink.buf_bytes >= sink.chunk_bytes:
                del buf  # no local reference may keep the drained records alive
                if sink.full:
                    self._drain_full(sink)
                else:
                    sink.write_chunk()
                    self._collect()
        del records
        if self._age_due:
            self._handle_max_record_age()

    # -- the column path ----------------------------------------------------------------------
    def _columnar_allowed(self) -> bool:
        """The column path needs an adapter that converts with the stream's own Arrow schema."""
        from .columnar import ARROW_ADAPTERS

        return self.load_method != "upsert" and getattr(self._adapter, "name", None) in ARROW_ADAPTERS

    def _columnar_block(
        self,
        block: list[bytes] | None,
        lineno: int,
        cbs: dict[str, Any],
        stats: Counter[str],
        data: bytes = b"",
    ) -> tuple[int, int] | None:
        """A block of lines (after line ``lineno``; ``data``: their bytes, ``block``: its lines, or
        ``None`` when the reader has not cut them out) through the column path of the stream the
        last records were of (:mod:`target_dcapix.columnar`): RECORD lines of that stream and STATE
        lines only, every record of the types its schema allows. ``None`` (nothing done) for any
        other block: the reader's dict path then reads it. Returns the number of records and of
        lines. The block is not scanned for long numbers: the column path keeps them exact (or
        refuses them), and a STATE line is decoded as the line-by-line path does."""
        sink = self._fast_sinks.get(self._columnar.stream) if self._columnar is not None else None
        plan = sink.columnar if sink is not None else None
        if sink is None or plan is None or plan is not self._columnar:
            return None
        if plan.native is not None:
            done = self._native_block(sink, plan, data, lineno, cbs, stats)
            if done is not None:
                return done
        if block is None:
            block = self._reader.lines_of(data)
        try:
            msgs = list(map(plan.decode, block))
        except plan.decode_error:
            return None
        rec_type = plan.message_type
        types = list(map(type, msgs))
        n = len(msgs)
        if types.count(rec_type) == n:
            ends = [n]
            streams = set(map(attrgetter("stream"), msgs))
        else:
            ends = [i for i, t in enumerate(types) if t is not rec_type]
            streams = {m.stream for m, t in zip(msgs, types, strict=True) if t is rec_type}
            ends.append(n)
        if streams and streams != {plan.stream}:
            return None
        reader = self._reader
        state_cb = cbs["STATE"]
        records = 0
        start = 0
        for end in ends:
            if end > start:
                self._columnar_run(sink, msgs[start:end], block[start:end], lineno + start + 1)
                records += end - start
            if end < n:
                reader.line_number = lineno + end + 1
                line = block[end]
                state_cb(reader.exact_if_long(line, reader.deserialize_json(line)))
                stats["STATE"] += 1
            start = end + 1
        reader.line_number = lineno + n
        return records, n

    def _native_block(
        self,
        sink: DcApiXSink,
        plan: Any,
        data: bytes,
        lineno: int,
        cbs: dict[str, Any],
        stats: Counter[str],
    ) -> tuple[int, int] | None:
        """The block ``data`` (its bytes) through the compiled scanner (``ColumnarPlan.native_table``):
        RECORD lines of the plan's stream become one Arrow table, any other line must be a STATE
        message (decoded as :meth:`_columnar_block` decodes it). Returns (records, lines), or
        ``None`` (nothing done) when the scanner leaves the block to the Python path. The lines
        are not cut out of the block unless a chunk must be read again (:class:`LineSpans`)."""
        from .columnar import LineSpans

        try:
            got = plan.native_table(data, sink.writer.spec.schema)
        except Exception as exc:  # a conversion Arrow refuses: the Python path decides
            self.logger.debug("stream %r: the scanner's block refused (%s)", plan.stream, exc)
            return None
        if got is None:
            return None
        kinds, table, raw_bounds = got
        bounds = memoryview(raw_bounds).cast("q")
        n = len(kinds)
        if table.num_rows == n:
            ends = [n]
        else:
            ends = [i for i, k in enumerate(kinds) if k != 82]  # not b"R"
            for i in ends:
                try:
                    msg = plan.decode(data[bounds[2 * i] : bounds[2 * i + 1]])
                except plan.decode_error:
                    return None
                if type(msg) is not plan.state_type:
                    return None
            ends.append(n)
        reader = self._reader
        state_cb = cbs["STATE"]
        start = row = 0
        for end in ends:
            if end > start:
                lines = LineSpans(data, bounds, start, end)
                self._columnar_run(sink, table.slice(row, end - start), lines, lineno + start + 1)
                row += end - start
            if end < n:
                reader.line_number = lineno + end + 1
                line = data[bounds[2 * end] : bounds[2 * end + 1]]
                state_cb(reader.exact_if_long(line, reader.deserialize_json(line)))
                stats["STATE"] += 1
            start = end + 1
        reader.line_number = lineno + n
        return row, n

    def _columnar_run(self, sink: DcApiXSink, msgs: Any, lines: Any, first_line: int) -> None:
        """RECORD messages of the column path (structs, or an Arrow table of their records from the
        compiled scanner) into ``sink``, as :meth:`_process_record_run` does with dicts."""
        table = not isinstance(msgs, list)
        records: Any = msgs if table else list(map(attrgetter("record"), msgs))
        n = records.num_rows if table else len(records)
        pos = 0
        reader = self._reader
        while pos < n:
            take = min(n - pos, max(sink.chunk - sink.col_count, 1))
            part = lines[pos : pos + take]
            if table:
                sink.add_table(records.slice(pos, take), part, first_line + pos)
            else:
                sink.add_columnar(records[pos : pos + take], part, first_line + pos)
            size = part.nbytes() if table else sum(map(len, part))
            sink.nbytes += size
            sink.buf_bytes += size
            pos += take
            reader.line_number = first_line + pos - 1
            if sink.col_count >= sink.chunk or sink.buf_bytes >= sink.chunk_bytes:
                if sink.full:
                    self._drain_full(sink)
                else:
                    sink.write_columnar()
                    self._collect()
        if self._age_due:
            self._handle_max_record_age()

    def records_of(self, lines: list[bytes], linenos: list[int]) -> list[dict[str, Any]]:
        """The records of RECORD lines decoded again as dicts (the column path refused them)."""
        reader = self._reader
        now = reader.line_number
        out = []
        for line, no in zip(lines, linenos, strict=True):
            reader.line_number = no
            out.append(reader.exact_if_long(line, reader.deserialize_json(line))["record"])
        reader.line_number = now
        return out

    def _drain_full(self, sink: DcApiXSink) -> None:
        self.logger.info("Sink for %r is full (%d records): writing", sink.stream_name, sink.current_size)
        self.drain_one(sink)
        self._collect()
        self._maybe_emit_state()

    def _slow_record(self, message_dict: dict[Any, Any]) -> None:
        """RECORD messages of streams with stream maps, flattening or record metadata (SDK path)."""
        self._require(message_dict, "stream", "record")
        stream = message_dict["stream"]
        if stream not in self.mapper.stream_maps:
            raise self._unknown_stream(stream, "RECORD")
        if not isinstance(message_dict["record"], dict):
            raise SchemaError(
                f"stream {stream!r}, {self.where()}: 'record' must be a JSON object", stream=str(stream)
            )
        super()._process_record_message(message_dict)
        self._collect()
        self._maybe_emit_state()

    def _active_sink(self, stream: str) -> Any:
        """The current sink of ``stream``, or ``None``."""
        return self.get_sink(stream) if self.sink_exists(stream) else None

    def _process_state_message(self, message_dict: dict[Any, Any]) -> None:
        self._require(message_dict, "value")
        if not isinstance(message_dict["value"], dict):
            raise SingerInputError(f"{self.where()}: STATE 'value' must be a JSON object")
        super()._process_state_message(message_dict)
        self._last_state = message_dict["value"]
        self._pending_state = True
        if not self._age_clock_started:
            self._start_age_clock()
        self._handle_max_record_age()
        self._maybe_emit_state()

    def _process_activate_version_message(self, message_dict: dict[Any, Any]) -> None:
        self._require(message_dict, "stream", "version")
        stream = message_dict["stream"]
        if stream not in self.mapper.stream_maps:
            raise self._unknown_stream(stream, "ACTIVATE_VERSION")
        version = message_dict["version"]
        if not isinstance(version, int) or isinstance(version, bool):
            raise SingerInputError(
                f"{self.where()}, stream {stream!r}: ACTIVATE_VERSION 'version' must "
                f"be an integer, got {version!r}",
                stream=stream,
            )
        super()._process_activate_version_message(message_dict)

    def activate_version(self, sink: DcApiXSink, version: int) -> None:
        """ACTIVATE_VERSION for ``sink``'s stream (see the ``hard_delete`` setting)."""
        writer = sink.writer
        if not self.hard_delete:
            self.logger.info(
                "ACTIVATE_VERSION %s for %r: hard_delete is off, older rows are kept",
                version,
                sink.stream_name,
            )
            return
        if not writer.started and not sink.buffer and not sink.col_count and writer.rows_written == 0:
            if writer.load_method != "overwrite":
                if "overwrite" not in tuple(getattr(self._adapter, "load_methods", ()) or ()):
                    self.logger.warning(
                        "ACTIVATE_VERSION %s for %r: adapter cannot overwrite; older rows are kept",
                        version,
                        sink.stream_name,
                    )
                    return
                self.logger.info(
                    "ACTIVATE_VERSION %s for %r before its records: the stream is loaded with "
                    "overwrite (older rows are replaced when the run finishes)",
                    version,
                    sink.stream_name,
                )
                writer.load_method = "overwrite"
            return
        if writer.load_method == "overwrite":
            self.logger.info(
                "ACTIVATE_VERSION %s for %r: the stream is being overwritten", version, sink.stream_name
            )
        else:
            self.logger.warning(
                "ACTIVATE_VERSION %s for %r arrived after records were written with %r; older rows are kept",
                version,
                sink.stream_name,
                writer.load_method,
            )

    def _process_batch_message(self, message_dict: dict[Any, Any]) -> None:
        self._require(message_dict, "stream", "encoding", "manifest")
        stream = message_dict["stream"]
        if stream not in self.mapper.stream_maps:
            raise self._unknown_stream(stream, "BATCH")
        enc = message_dict["encoding"]
        if not isinstance(enc, dict) or "format" not in enc:
            raise SingerInputError(
                f"{self.where()}, stream {stream!r}: BATCH 'encoding' must be an object with 'format'",
                stream=stream,
            )
        manifest = message_dict["manifest"]
        if not isinstance(manifest, list) or not all(isinstance(x, str) for x in manifest):
            raise SingerInputError(
                f"{self.where()}, stream {stream!r}: BATCH 'manifest' must be a list of file URLs",
                stream=stream,
            )
        super()._process_batch_message(message_dict)
        self._collect()
        self._maybe_emit_state()

    # -- draining and state ------------------------------------------------------------------------
    def note_drained(self) -> None:
        """A sink wrote and flushed a batch (called by the sinks)."""
        self._collect_due = True

    def _collect(self) -> None:
        """Collect young garbage after a drain, once the drained records are freed (the reader runs
        with the cyclic GC off; records are acyclic, but adapters may leave cycles behind)."""
        if self._collect_due:
            self._collect_due = False
            gc.collect(1)

    def _holding_state(self) -> bool:
        """True while a STATE may not be emitted (the end of input before finish, or an overwrite)."""
        if self._finishing:
            return True
        return any(w.load_method == "overwrite" and not w.finished for w in self._writers.values())

    def _maybe_emit_state(self) -> None:
        """Emit the latest STATE when no sink holds unwritten records."""
        if not self._pending_state or self._last_state is None:
            return
        if any(s.current_size for s in self._sinks_active.values()) or any(
            s.current_size for s in self._sinks_to_clear
        ):
            return
        self._write_state_message(self._last_state)

    def _write_state_message(self, state: dict[Any, Any]) -> None:
        """Print the state value on stdout (deduplicated; held back while the data is not final)."""
        if self._holding_state():
            return
        line = orjson.dumps(state)
        self._pending_state = False
        if line == self._last_emitted:
            return
        self._last_emitted = line
        crash_point("target.before_state")
        self.logger.debug("Emitting completed target state %s", line.decode())
        out = sys.stdout
        out.write(line.decode() + "\n")
        out.flush()

    def process_endofpipe(self) -> None:
        """Drain every sink, finish every stream's write (``finish_write``), then emit the last STATE."""
        self._finishing = True
        try:
            self.drain_all(is_endofpipe=True)
            for writer in self._writers.values():
                writer.finish()
        finally:
            self._finishing = False
        if self._last_state is not None:
            self._write_state_message(self._last_state)
        total = sum(w.rows_written for w in self._writers.values())
        self.logger.info("target-dcapix wrote %d rows in %d streams", total, len(self._writers))

    def _handle_termination(self, signum: int, frame: Any) -> None:
        """SIGTERM / SIGINT: stop where we are. singer-sdk would drain every sink from inside the signal
        handler, possibly re-entering an adapter call in progress; instead the run is aborted like any
        other error: the adapter discards what it has not committed and no further STATE is printed
        (every STATE already printed covers committed rows only, so a re-run resumes correctly)."""
        raise TerminatedError(
            f"stopped by signal {signum}; records after the last STATE printed were not committed"
        )

    # -- CLI ----------------------------------------------------------------------------------------
    @classmethod
    def cb_config(cls, ctx: Any, param: Any, value: Any) -> Any:
        """The SDK's eager ``--config`` callback: a missing or unreadable file, or one that is not
        valid JSON, is one line on stderr and exit code 1 (as for the tap), not a traceback."""
        try:
            return super().cb_config(ctx, param, value)
        except (OSError, ValueError) as exc:  # (JSON decode errors are ValueErrors)
            what = "cannot read the config file" if isinstance(exc, OSError) else "config is not valid JSON"
            _fail(f"{what}: {type(exc).__name__}: {exc}")

    @classmethod
    def invoke(  # type: ignore[override]
        cls,
        *,
        about: bool = False,
        about_format: str | None = None,
        config: Any = None,
        file_input: IO[str] | None = None,
    ) -> None:
        """Run the target; any failure is one line on stderr and exit code 1. ``config`` is what the
        SDK's ``--config`` callback returned (``.config``, ``.parse_env``)."""
        from singer_sdk.exceptions import ConfigValidationError

        parse_env = bool(getattr(config, "parse_env", False))
        if about or parse_env:
            full_settings()
        if about:
            cls.print_about(about_format)
            sys.exit(0)
        cls.print_version(print_fn=cls.logger.info)
        started = time.perf_counter()
        target = None
        try:
            target = cls(
                config=dict(getattr(config, "config", None) or {}),
                validate_config=True,
                parse_env_config=parse_env,
            )
            from .cli import startup_done

            startup_done()  # the console script's start-up without the cyclic GC ends here
            target.listen(file_input)
        except ConfigValidationError as exc:
            _fail(f"config: {'; '.join(exc.errors) or exc}")
        except DcApiXError as exc:
            _fail(str(exc))
        except Exception as exc:
            cls.logger.debug("unexpected error", exc_info=True)
            _fail(f"{type(exc).__name__}: {exc}")
        finally:
            if target is not None:
                try:
                    target.close()
                except Exception as exc:  # closing must not hide the real error
                    cls.logger.warning("closing the adapter failed: %s", exc)
        cls.logger.info("target-dcapix finished in %.2fs", time.perf_counter() - started)


class TerminatedError(DcApiXError):
    """The target received SIGTERM or SIGINT."""


def _fail(message: str) -> None:
    sys.stdout.flush()
    sys.stderr.write(f"target-dcapix: error: {' '.join(message.split())}\n")
    sys.stderr.flush()
    sys.exit(1)
