"""The tap's stream: one singer-sdk ``Stream`` per stream an adapter discovers.

Records come from ``adapter.read(spec, state=bookmark)`` in batches and are written batch-wise
with orjson through :class:`~tap_dcapix.writer.FastSingerWriter`; the SDK's per-record path
(conform, validation, one ``json.dumps`` and one flush per line) is bypassed while catalog
selection, stream maps, flattening, the dry-run record limit and metrics keep working.

State: the adapter's ``Batch.bookmark`` (``{"replication_key", "replication_key_value",
"keys_at_value"}``) *is* the stream's Singer bookmark (``bookmarks[stream]``); it is stored only
after all records of its batch have been written to the buffer, and emitted as STATE right behind
them, so a STATE line never runs ahead of the RECORD lines it covers. On ``--state`` the stored
bookmark goes back to ``read(state=…)``, which resumes with no gap and no duplicate. The SDK's own
bookmark machinery (signposts, progress markers, ``>=`` replays) is not used.
"""

from __future__ import annotations

import datetime as _dt
import typing as t
from collections.abc import Iterator, Mapping
from typing import Any

import orjson
from singer_sdk.mapper import SameRecordTransform
from singer_sdk.singerlib.catalog import REPLICATION_INCREMENTAL
from singer_sdk.streams import Stream

from dc_api_x.exceptions import AdapterError
from dc_api_x.types import Batch, StreamSpec
from dc_api_x.values import json_default, singer_json_default

from .batchfiles import ArrowBatchFiles, arrow_stream_map, map_transform, parquet_batch_config
from .fastjson import arrow_json_lines, arrow_json_records
from .writer import FastSingerWriter

if t.TYPE_CHECKING:  # pragma: no cover
    from singer_sdk.helpers import types

    from .tap import TapDcApiX

__all__ = ["AdapterStream", "SDK_STATE_KEYS"]

#: Keys the SDK keeps in a stream's bookmark for its own machinery (never passed to adapters).
SDK_STATE_KEYS = frozenset(
    {
        "progress_markers",
        "replication_key_signpost",
        "starting_replication_value",
        "partitions",
        "context",
    }
)


class AdapterStream(Stream):
    """A stream served by a dc-api-x adapter (see the module docstring)."""

    #: Not used: a STATE follows every adapter batch (the bookmark is exact, not a running max).
    STATE_MSG_FREQUENCY = 1 << 62

    def __init__(self, tap: TapDcApiX, spec: StreamSpec, chain: Any = None) -> None:
        """:param chain: the stream's transform chain (``build_transforms``), or ``None``."""
        self.spec = spec
        self._chain = chain
        schema = dict(chain.schema) if chain is not None else dict(spec.schema)
        super().__init__(tap, schema=schema, name=spec.name)
        if chain is not None:
            self.primary_keys = list(chain.output_fields(spec.key_properties))
            self.replication_key = chain.output_field(spec.replication_key) if spec.replication_key else None
        else:
            self.primary_keys = list(spec.key_properties)
            self.replication_key = spec.replication_key
        self._dcapix_tap = tap

    def _input_field(self, name: str | None) -> str | None:
        """The adapter-side field behind output field ``name`` (transforms may rename)."""
        if name is None or self._chain is None:
            return name
        for field in self.spec.properties:
            if self._chain.output_field(field) == name:
                return field
        return name

    # ---------------------------------------------------------------- SDK overrides
    @property
    def is_sorted(self) -> bool:
        """Bookmarks are exact positions from the adapter, so an interrupted sync is resumable."""
        return True

    def get_replication_key_signpost(self, context: types.Context | None = None) -> Any:
        """No signpost: the bookmark is whatever the adapter reports for committed batches."""
        return None

    def get_records(self, context: types.Context | None) -> t.Iterable[dict[str, Any]]:
        """The stream's records (the SDK interface; the sync itself goes batch-wise)."""
        for batch in self._batches():
            yield from batch.records

    # ---------------------------------------------------------------- helpers
    @property
    def _writer(self) -> FastSingerWriter | None:
        w = self._dcapix_tap.message_writer
        return w if isinstance(w, FastSingerWriter) else None

    def effective_spec(self) -> StreamSpec:
        """The adapter's spec with the catalog's choices applied (keys, replication key)."""
        rk = self.replication_key if self.replication_method == REPLICATION_INCREMENTAL else None
        keys = [self._input_field(k) or k for k in self.primary_keys or ()]
        return self.spec.with_(replication_key=self._input_field(rk), key_properties=keys)

    def selected_columns(self) -> list[str] | None:
        """Top-level properties selected in the catalog, or ``None`` when all are."""
        props = list(self.effective_schema.get("properties") or {})
        mask = self.mask
        chosen = [p for p in props if mask.get(("properties", p), True)]
        if len(chosen) == len(props):
            return None
        for must in [*(self.primary_keys or ()), *([self.replication_key] if self.replication_key else [])]:
            if must and must not in chosen:
                chosen.append(must)
        return chosen

    def start_bookmark(self) -> dict[str, Any] | None:
        """The adapter bookmark to resume from (``None``: read from the beginning)."""
        if self.replication_method != REPLICATION_INCREMENTAL or not self.replication_key:
            return None
        state = self.stream_state
        bm = {k: v for k, v in state.items() if k not in SDK_STATE_KEYS}
        if not bm or bm.get("replication_key_value") is None:
            return None
        accepted = (None, self.replication_key, self._input_field(self.replication_key))
        if bm.get("replication_key") not in accepted:
            self.logger.warning(
                "stream %r: the stored bookmark is for replication key %r, the stream now uses %r; "
                "reading from the beginning",
                self.name,
                bm.get("replication_key"),
                self.replication_key,
            )
            return None
        return bm

    def _batches(self, limit: int | None = None) -> Iterator[Batch]:
        adapter = self._dcapix_tap.adapter
        spec = self.effective_spec()
        kwargs: dict[str, Any] = {"state": self.start_bookmark()}
        cols = self.selected_columns()
        if cols is not None and self._chain is None:  # with transforms: project after them
            kwargs["columns"] = cols
        if limit is not None:
            kwargs["limit"] = limit
        chain = self._chain
        batches = self._partitioned(adapter, spec, kwargs) if limit is None else None
        for batch in batches if batches is not None else adapter.read(spec, **kwargs):
            if chain is not None and len(chain):
                out = chain.apply(batch)
                batch = (
                    out
                    if out.bookmark is not None or batch.bookmark is None
                    else Batch(records=out.records, schema=out.schema, bookmark=batch.bookmark)
                )
            yield batch

    def _partitioned(self, adapter: Any, spec: StreamSpec, kwargs: dict[str, Any]) -> Iterator[Batch] | None:
        """The batches of the stream's partitions read concurrently (settings ``concurrency`` /
        ``partitions``), or ``None`` to read it serially (partitioned.py)."""
        config = self._dcapix_tap.config
        workers = int(config.get("concurrency") or 1)
        parts = int(config.get("partitions") or workers)
        if parts < 2:
            return None
        from dc_api_x.plugins import create_adapter

        from .partitioned import partitioned_batches
        from .tap import adapter_config

        tap = self._dcapix_tap
        return partitioned_batches(
            adapter,
            lambda: create_adapter(adapter_config(type(tap), tap.config)),
            spec,
            kwargs.get("state"),
            workers,
            parts,
            kwargs.get("columns"),
        )

    def _store_bookmark(self, bookmark: Mapping[str, Any] | None) -> bool:
        """Make ``bookmark`` the stream's state; True when it changed."""
        if bookmark is None or self.replication_method != REPLICATION_INCREMENTAL:
            return False
        try:  # the stored form (dc_api_x.values.json_default), as the runner's state store keeps it
            new = orjson.loads(
                orjson.dumps(dict(bookmark), default=json_default, option=orjson.OPT_NON_STR_KEYS)
            )
        except TypeError as exc:
            raise AdapterError(
                f"stream {self.name!r}: the adapter's bookmark is not JSON-serialisable: {exc}",
                stream=self.name,
            ) from None
        state = self.stream_state
        current = {k: v for k, v in state.items() if k not in SDK_STATE_KEYS}
        if current == new:
            return False
        for k in list(current):
            state.pop(k, None)
        state.update(new)
        self.state_manager.is_flushed = False
        return True

    # ---------------------------------------------------------------- the sync
    def _sync_records(  # type: ignore[override]
        self,
        context: types.Context | None = None,
        *,
        write_messages: bool = True,
    ) -> t.Generator[dict, t.Any, t.Any]:
        """Read the adapter batch-wise, write RECORD lines in bulk, a STATE after each batch."""
        record_counter = self.get_record_counter()
        timer = self.get_sync_timer()
        limit = self.ABORT_AT_RECORD_COUNT
        selected = self.selected
        maps = self.stream_maps
        fast = len(maps) == 1 and type(maps[0]) is SameRecordTransform and not maps[0].flattening_enabled
        writer = self._writer
        emitted = 0
        hit_limit = False
        with record_counter, timer:
            if not selected:
                return
            batches = self._batches(limit=None if limit is None else limit + 1)
            try:
                for batch in batches:
                    n = len(batch)
                    keep = n
                    truncated = False
                    if limit is not None and emitted + n > limit:
                        keep = max(0, limit - emitted)
                        truncated = hit_limit = True
                    lines_fast = fast and write_messages and writer is not None
                    done = (
                        self._emit_arrow_lines(batch, keep, maps[0].stream_alias, writer)
                        if lines_fast and batch.has_arrow and not batch.has_records
                        else None
                    )
                    if done is None:
                        records = self._rows(batch, keep, lines_fast)
                        if write_messages:
                            self._emit(records, maps, fast, writer)
                        else:
                            yield from records
                        done = len(records)
                    emitted += done
                    record_counter.increment(done)
                    if truncated:
                        break
                    # every record of this batch is written: its bookmark may follow
                    if self._store_bookmark(batch.bookmark) and write_messages:
                        self._write_state_message()
                    if writer is not None and write_messages:
                        writer.flush()
            finally:
                close = getattr(batches, "close", None)
                if close is not None:
                    close()
        self._finalize_state(self.stream_state)
        if write_messages:
            self._write_state_message()
            if writer is not None:
                writer.flush()
        if hit_limit:
            if writer is not None:
                writer.flush()
            self._check_max_record_limit(current_record_index=emitted)

    def _sync_batches(  # type: ignore[override]
        self,
        batch_config: Any,
        context: types.Context | None = None,
    ) -> None:
        """``batch_config`` with Parquet or Arrow IPC (``arrow``) encoding: every adapter batch's
        Arrow table (after the transforms and the stream maps) goes to such files and one BATCH
        message per stream alias; the batch's bookmark follows as STATE only after that BATCH message
        (:mod:`tap_dcapix.batchfiles`). A stream map that cannot be applied on Arrow sends the
        stream as RECORD messages instead (with a warning); another encoding goes through
        singer-sdk's own batcher."""
        tap_name = self._dcapix_tap.name
        cfg = parquet_batch_config(self.config.get("batch_config"), tap_name)
        if cfg is None:
            super()._sync_batches(batch_config, context=context)
            return
        maps = list(self.stream_maps)
        raw_maps = self.config.get("stream_maps")
        fns = [arrow_stream_map(m, map_transform(raw_maps, self.name, m.stream_alias)) for m in maps]
        if any(f is None for f in fns):
            bad = next(m for m, f in zip(maps, fns, strict=True) if f is None)
            self.logger.warning(
                "stream %r: stream map for %r cannot be applied on Arrow data (expressions, "
                "__filter__ or flattening); this stream is sent as RECORD messages, not BATCH files",
                self.name,
                bad.stream_alias,
            )
            for _ in self._sync_records(context=context):
                pass
            return
        self._sync_arrow_batches(cfg, maps, fns)

    def _sync_arrow_batches(self, cfg: dict[str, Any], maps: list[Any], fns: list[Any]) -> None:
        tap = self._dcapix_tap
        writer = self._writer
        if writer is None:  # pragma: no cover - TapDcApiX always writes with FastSingerWriter
            raise AdapterError(f"stream {self.name!r}: BATCH messages need the FastSingerWriter")
        files = [ArrowBatchFiles(cfg, tap.name, m.stream_alias) for m in maps]
        encoding = cfg["encoding"]
        record_counter = self.get_record_counter()
        batch_counter = self.get_batch_counter()
        timer = self.get_sync_timer()
        limit = self.ABORT_AT_RECORD_COUNT
        emitted = 0
        hit_limit = False
        with record_counter, batch_counter, timer:
            if not self.selected:
                return
            from dc_api_x.prefetch import Prefetcher

            # the next adapter batch is read (the driver releases the GIL) while this one's files
            # are written, as dcapix run's reader does
            batches = Prefetcher(
                lambda: self._batches(limit=None if limit is None else limit + 1),
                depth=1,
                name=f"tap-dcapix-{self.name}",
            )
            try:
                for batch in batches:
                    n = len(batch)
                    keep = n
                    truncated = False
                    if limit is not None and emitted + n > limit:
                        keep = max(0, limit - emitted)
                        truncated = hit_limit = True
                    table = self._arrow_rows(batch, keep) if keep else None
                    if table is not None and table.num_rows:
                        for fn, out, m in zip(fns, files, maps, strict=True):
                            mapped = fn(table)
                            if mapped is None:
                                continue
                            urls = out.write(mapped)
                            if urls:
                                writer.write_batch(
                                    m.stream_alias, encoding, urls, version=self._stream_version
                                )
                                batch_counter.increment()
                        self.state_manager.is_flushed = False
                    emitted += keep
                    record_counter.increment(keep)
                    if truncated:
                        break
                    # the batch's files are announced: its bookmark may follow
                    if self._store_bookmark(batch.bookmark):
                        self._write_state_message()
                    writer.flush()
            finally:
                close = getattr(batches, "close", None)
                if close is not None:
                    close()
        self._finalize_state(self.stream_state)
        self._write_state_message()
        writer.flush()
        if hit_limit:
            self._check_max_record_limit(current_record_index=emitted)

    def _deselected(self, names: list[str]) -> list[str]:
        props = self.effective_schema.get("properties") or {}
        mask = self.mask
        return [c for c in names if c in props and not mask.get(("properties", c), True)]

    def _arrow_rows(self, batch: Batch, keep: int) -> Any:
        """The first ``keep`` rows of an Arrow batch without the deselected columns."""
        table = batch.to_arrow()
        if keep < table.num_rows:
            table = table.slice(0, keep)
        drop = self._deselected(list(table.column_names))
        return table.drop_columns(drop) if drop else table

    def _rows(self, batch: Batch, keep: int, fast: bool) -> list[dict[str, Any]]:
        """The first ``keep`` rows of ``batch`` without deselected columns. On the fast path an
        Arrow batch is converted column-wise straight to JSON-ready rows."""
        if fast and batch.has_arrow and not batch.has_records:
            return arrow_json_records(self._arrow_rows(batch, keep), self.effective_schema)
        records = batch.records
        if keep < len(records):
            records = records[:keep]
        if not records:
            return records
        drop = self._deselected(batch.column_names)
        if not drop:
            return records
        dropset = set(drop)
        return [{k: v for k, v in rec.items() if k not in dropset} for rec in records]

    def _emit_arrow_lines(self, batch: Batch, keep: int, stream: str, writer: Any) -> int | None:
        """Write the batch's RECORD lines built entirely by Arrow kernels; ``None`` when a column
        type needs the per-record path."""
        import pyarrow as pa

        table = self._arrow_rows(batch, keep)
        head, tail = writer.record_affixes(
            stream, time_extracted=_dt.datetime.now(_dt.timezone.utc), version=self._stream_version
        )
        try:
            data = arrow_json_lines(table, self.effective_schema, head, tail)
        except (TypeError, ValueError, pa.ArrowException) as exc:
            self.logger.debug("stream %r: Arrow line path not usable (%s); per-record path", self.name, exc)
            return None
        writer.write_raw(data)
        if table.num_rows:
            self.state_manager.is_flushed = False
        return int(table.num_rows)

    def _emit(
        self,
        records: list[dict[str, Any]],
        maps: list[Any],
        fast: bool,
        writer: FastSingerWriter | None,
    ) -> None:
        if not records:
            return
        now = _dt.datetime.now(_dt.timezone.utc)
        if fast and writer is not None:
            writer.write_records(
                maps[0].stream_alias, records, time_extracted=now, version=self._stream_version
            )
        else:
            # stream maps / flattening: the SDK's map objects, on JSON-typed values (as the SDK
            # would see them after its conform step)
            from singer_sdk.singerlib import RecordMessage

            plain = orjson.loads(orjson.dumps(records, default=singer_json_default))
            for rec in plain:
                for stream_map in maps:
                    mapped = stream_map.transform(rec)
                    if mapped is None:
                        continue
                    msg = RecordMessage(
                        stream=stream_map.stream_alias,
                        record=mapped,
                        version=self._stream_version,
                        time_extracted=now,
                    )
                    self._dcapix_tap.write_message(msg)
        self.state_manager.is_flushed = False
