"""A tap's output as :class:`~dc_api_x.types.Batch` es of one stream.

:class:`StreamReader` turns message lines into batches: RECORDs are collected until a STATE
(the batch that ends there carries that state as its ``bookmark``: the runner stores it only after
the destination committed the batch) or until ``batch_size`` records (a batch without bookmark);
a changed SCHEMA closes the current batch; BATCH messages are read from their manifest files
(``jsonl``, optionally gzip, or ``parquet``); ACTIVATE_VERSION is logged (the bridge deletes
nothing: a destination's ``overwrite`` load method replaces a stream instead).

The bookmark is ``{"singer_state": <the tap's STATE value>, "replays": …}``. ``replays`` serves the
exclusive resume that dc-api-x promises: singer-sdk taps (and most others) resume *at* their
bookmark value (``>=``), so the rows at that value arrive again. :class:`Replays` remembers the
keys of the rows delivered at the values the tap's state names, and drops exactly those rows when
they come back — a row is dropped only when its replication value *and* its key (its content hash
for a stream without key) match one already delivered, so no new row is ever dropped.
"""

from __future__ import annotations

import contextlib
import gzip
import logging
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import msgspec

from dc_api_x.bookmarks import row_hash
from dc_api_x.exceptions import AdapterError
from dc_api_x.logs import redact
from dc_api_x.types import Batch, StreamSpec

from .messages import decode_line

__all__ = ["Replays", "StreamReader", "state_values"]

log = logging.getLogger("dc_api_x.singer")

#: keys remembered for replay detection at most (beyond: rows may be delivered again, never lost)
MAX_TRACKED = 1_000_000
_SCALARS = (str, int, float, bool)


# ------------------------------------------------------------------------------------- replays
def state_values(state: Any, streams: Iterable[str], replication_key: str) -> list[Any]:
    """The replication values a tap's state holds for a stream: every ``replication_key_value``
    (singer-sdk, partitions included) and ``<replication_key>: value`` (singer-python taps)."""
    bookmarks = state.get("bookmarks") if isinstance(state, Mapping) else None
    if not isinstance(bookmarks, Mapping):
        return []
    found: list[Any] = []

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            if "replication_key_value" in node and node.get("replication_key", replication_key) == (
                replication_key
            ):
                found.append(node["replication_key_value"])
            if replication_key != "replication_key_value" and replication_key in node:
                found.append(node[replication_key])
            for key, child in node.items():
                if key != "replication_key_value" and isinstance(child, (Mapping, list)):
                    walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    for sid in streams:
        if sid in bookmarks:
            walk(bookmarks[sid])
    out: list[Any] = []
    for v in found:
        if isinstance(v, _SCALARS) and v not in out:
            out.append(v)
    return out


class Replays:
    """Rows delivered at the values a tap resumes from, and the filter that drops them again.

    :param streams: the stream's names in the tap's state (``tap_stream_id`` and ``stream``).
    :param stored: the ``replays`` part of the bookmark the read resumes from.
    """

    def __init__(
        self,
        streams: Sequence[str],
        replication_key: str,
        key_properties: Sequence[str],
        stored: Mapping[str, Any] | None = None,
    ) -> None:
        self.streams = tuple(streams)
        self.rk = replication_key
        self.keys = tuple(key_properties)
        self.dropped = 0
        # value -> keys delivered at it (tuples; keyless: row-hash 1-tuples, or the rows themselves
        # until a STATE needs their hashes)
        self._seen: dict[Any, list[Any]] = {}
        self._tracked = 0
        self._drop: dict[Any, set[tuple[Any, ...]] | Counter[tuple[Any, ...]]] = {}
        if stored and stored.get("replication_key") == replication_key:
            for item in stored.get("keys_at_values") or ():
                try:
                    value, keys = item
                    tuples = [tuple(k) for k in keys]
                    hash(value)
                except (TypeError, ValueError):
                    continue
                self._drop[value] = Counter(tuples) if not self.keys else set(tuples)
                self._seen[value] = list(tuples)
                self._tracked += len(tuples)

    def _key(self, rec: Mapping[str, Any]) -> Any:
        if not self.keys:
            return rec
        return tuple(rec.get(k) for k in self.keys)

    def filter(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``records`` without the replays of rows delivered before; remembers what is kept."""
        rk, drop, seen = self.rk, self._drop, self._seen
        out: list[dict[str, Any]] = []
        for rec in records:
            v = rec.get(rk)
            try:
                listed = drop.get(v) if drop else None
            except TypeError:  # an unhashable value: cannot be placed, delivered
                out.append(rec)
                continue
            if listed is not None:
                k = self._key(rec) if self.keys else (row_hash(rec),)
                try:
                    if isinstance(listed, Counter):
                        if listed[k] > 0:
                            listed[k] -= 1
                            self.dropped += 1
                            continue
                    elif k in listed:
                        self.dropped += 1
                        continue
                except TypeError:
                    pass
            out.append(rec)
            if v is not None and self._tracked < MAX_TRACKED and isinstance(v, _SCALARS):
                k = self._key(rec)
                lst = seen.get(v)
                if lst is None:
                    seen[v] = [k]
                else:
                    lst.append(k)
                self._tracked += 1
        return out

    def track_values(self, values: Sequence[Any], keys: Sequence[tuple[Any, ...]]) -> None:
        """Remember delivered rows given column-wise (Arrow batches): values and keys."""
        for v, k in zip(values, keys, strict=True):
            if v is not None and self._tracked < MAX_TRACKED and isinstance(v, _SCALARS):
                self._seen.setdefault(v, []).append(k)
                self._tracked += 1

    def at_state(self, state: Any) -> dict[str, Any] | None:
        """The ``replays`` part of the bookmark at ``state``: the keys delivered at each value the
        state names. What the state does not name is forgotten."""
        values = state_values(state, self.streams, self.rk)
        kept: dict[Any, list[Any]] = {}
        out = []
        for v in values:
            items = self._seen.get(v)
            if not items:
                continue
            keys = [(row_hash(k),) if isinstance(k, Mapping) else k for k in items]
            kept[v] = keys
            try:
                out.append([v, [list(k) for k in keys]])
            except TypeError:  # pragma: no cover - defensive
                continue
        self._seen = kept
        self._tracked = sum(len(x) for x in kept.values())
        if not out:
            return None
        return {"replication_key": self.rk, "keys_at_values": out}


# --------------------------------------------------------------------------------- batch files
def _local_path(url: str) -> str | None:
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme in ("", "file"):
        return urllib.parse.unquote(parsed.path) if parsed.scheme else url
    return None


def _open_manifest_file(url: str, mode: str = "rb") -> Any:
    path = _local_path(url)
    if path is not None:
        return open(path, mode)
    try:
        import fsspec  # type: ignore[import-untyped]
    except ImportError:
        raise ValueError(f"cannot read {redact(url)}: only local files without fsspec") from None
    return fsspec.open(url, mode).open()


def read_batch_file(url: str, encoding: Mapping[str, Any], size: int) -> Iterator[list[Any] | Any]:
    """The rows of one BATCH manifest file: lists of dict records (jsonl) or Arrow tables (parquet)."""
    fmt = str(encoding.get("format") or "jsonl").lower()
    compression = str(encoding.get("compression") or "none").lower()
    if fmt == "parquet":
        import pyarrow.parquet as pq

        with _open_manifest_file(url) as fh:
            pf = pq.ParquetFile(fh)
            for rb in pf.iter_batches(batch_size=size):
                import pyarrow as pa

                yield pa.Table.from_batches([rb])
        return
    if fmt != "jsonl":
        raise ValueError(f"unsupported BATCH encoding format {fmt!r} (jsonl, parquet)")
    with _open_manifest_file(url) as raw:
        gz = compression == "gzip" or url.endswith(".gz")
        with gzip.open(raw) if gz else contextlib.nullcontext(raw) as fh:
            chunk: list[Any] = []
            for line in fh:
                if line.strip():
                    chunk.append(decode_line(line))
                    if len(chunk) >= size:
                        yield chunk
                        chunk = []
            if chunk:
                yield chunk


# ---------------------------------------------------------------------------------- the reader
class StreamReader:
    """Batches of one stream from a tap's message lines (see the module documentation).

    :param spec: the stream (its name is the ``tap_stream_id``; ``spec.options["stream"]`` is the
        other name a tap may use in its messages).
    :param error: makes the one-line error of a malformed message (given its text).
    """

    def __init__(
        self,
        spec: StreamSpec,
        *,
        batch_size: int,
        replays: Replays | None,
        error: Callable[..., AdapterError],
        limit: int | None = None,
        tap: str = "tap",
        on_end: Callable[[], None] | None = None,
        schema_override: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> None:
        self.spec = spec
        self.names = {spec.name, str(spec.options.get("stream") or spec.name)}
        self.batch_size = batch_size
        self.replays = replays
        self.error = error
        self.limit = limit
        self.tap = tap
        self.on_end = on_end
        self.schema_override = schema_override
        self.schema: dict[str, Any] | None = None
        self.delivered = 0
        self.line_no = 0
        self.states = 0
        self.limited = False
        self.other_records: Counter[str] = Counter()
        self._notes: set[str] = set()

    # -- helpers -----------------------------------------------------------------------------------
    def _fail(self, message: str) -> AdapterError:
        return self.error(message, subject=f"tap {self.tap}")

    def _note(self, key: str, message: str, *args: Any) -> None:
        if key not in self._notes:
            self._notes.add(key)
            log.info(message, *args)

    def _bookmark(self, state: Any) -> dict[str, Any]:
        bm: dict[str, Any] = {"singer_state": state}
        if self.replays is not None:
            rp = self.replays.at_state(state)
            if rp is not None:
                bm["replays"] = rp
        return bm

    def _records_batch(self, records: list[dict[str, Any]], state: Any = None) -> Batch | None:
        if self.replays is not None and records:
            records = self.replays.filter(records)
        if self.limit is not None and self.delivered + len(records) >= self.limit:
            records = records[: self.limit - self.delivered]
            self.limited = True
            state = None  # the rows after the cut are not delivered: the state does not cover them
        self.delivered += len(records)
        if not records and state is None:
            return None
        return Batch.from_records(
            records, schema=self.schema, bookmark=None if state is None else self._bookmark(state)
        )

    def _arrow_batch(self, table: Any) -> Batch | None:
        if self.replays is not None and table.num_rows:
            rk = self.replays.rk
            if self.replays._drop or not self.replays.keys:
                # resuming (rows may be replays) or keyless (hashes of whole rows): the dict path
                return self._records_batch(table.to_pylist())
            if rk in table.column_names and all(k in table.column_names for k in self.replays.keys):
                values = table.column(rk).to_pylist()
                cols = [table.column(k).to_pylist() for k in self.replays.keys]
                self.replays.track_values(values, list(zip(*cols, strict=True)))
        if self.limit is not None and self.delivered + table.num_rows >= self.limit:
            table = table.slice(0, self.limit - self.delivered)
            self.limited = True
        self.delivered += table.num_rows
        return Batch.from_arrow(table, schema=self.schema) if table.num_rows else None

    # -- the loop ------------------------------------------------------------------------------------
    def batches(self, lines: Iterable[bytes]) -> Iterator[Batch]:
        """Read ``lines`` until they end or the limit is reached (then :attr:`limited` is set)."""
        names, size = self.names, self.batch_size
        records: list[dict[str, Any]] = []
        held_state: Any = None  # a STATE that arrived with no record pending
        decode = decode_line
        for line in lines:
            self.line_no += 1
            try:
                msg = decode(line)
                kind = msg["type"]
            except (msgspec.DecodeError, KeyError, TypeError):
                if not line.strip():
                    continue
                text = line[:200].decode("utf-8", errors="replace").strip()
                raise self._fail(
                    f"wrote line {self.line_no}, which is not a Singer message: {text!r}"
                ) from None
            if kind == "RECORD":
                if msg.get("stream") not in names:
                    self.other_records[str(msg.get("stream"))] += 1
                    continue
                if self.schema is None:
                    raise self._fail(f"sent a RECORD before the SCHEMA (line {self.line_no})")
                if held_state is not None:
                    batch = self._records_batch([], held_state)
                    held_state = None
                    if batch is not None:
                        yield batch
                rec = msg.get("record")
                if not isinstance(rec, dict):
                    raise self._fail(f"sent a RECORD without a record object (line {self.line_no})")
                records.append(rec)
                if len(records) >= size:
                    batch = self._records_batch(records)
                    records = []
                    if batch is not None:
                        yield batch
                    if self.limited:
                        return
            elif kind == "STATE":
                value = msg.get("value")
                if not isinstance(value, dict):
                    raise self._fail(f"sent a STATE without a value object (line {self.line_no})")
                self.states += 1
                if records:
                    batch = self._records_batch(records, value)
                    records = []
                    if batch is not None:
                        yield batch
                    if self.limited:
                        return
                else:
                    held_state = value
            elif kind == "SCHEMA":
                if msg.get("stream") not in names:
                    continue
                schema = msg.get("schema")
                if not isinstance(schema, dict):
                    raise self._fail(f"sent a SCHEMA without a schema object (line {self.line_no})")
                if self.schema_override is not None:
                    schema = self.schema_override(schema)
                if records and schema != self.schema:
                    batch = self._records_batch(records)
                    records = []
                    if batch is not None:
                        yield batch
                    if self.limited:
                        return
                self.schema = schema
            elif kind == "BATCH":
                if msg.get("stream") not in names:
                    continue
                if records:
                    batch = self._records_batch(records)
                    records = []
                    if batch is not None:
                        yield batch
                yield from self._batch_message(msg)
                if self.limited:
                    return
            elif kind == "ACTIVATE_VERSION":
                if msg.get("stream") in names:
                    self._note(
                        "activate",
                        "%s: ACTIVATE_VERSION for stream %s (version %s): the bridge deletes no rows of "
                        "older versions; use the destination's overwrite load method to replace a stream",
                        self.tap,
                        self.spec.name,
                        msg.get("version"),
                    )
            else:
                self._note(f"type:{kind}", "%s: ignoring Singer message type %r", self.tap, kind)
        if self.on_end is not None:
            self.on_end()  # e.g. the tap's exit code: records after its last STATE only if it succeeded
        if records or held_state is not None:
            batch = self._records_batch(records, held_state)
            if batch is not None:
                yield batch

    def _batch_message(self, msg: Mapping[str, Any]) -> Iterator[Batch]:
        if self.schema is None:
            raise self._fail(f"sent a BATCH before the SCHEMA (line {self.line_no})")
        encoding = msg.get("encoding") or {}
        manifest = msg.get("manifest") or []
        if not isinstance(encoding, Mapping) or not isinstance(manifest, list):
            raise self._fail(f"sent a malformed BATCH message (line {self.line_no})")
        for url in manifest:
            try:
                for part in read_batch_file(str(url), encoding, self.batch_size):
                    batch = self._records_batch(part) if isinstance(part, list) else self._arrow_batch(part)
                    if batch is not None:
                        yield batch
                    if self.limited:
                        return
            except (OSError, ValueError, msgspec.DecodeError) as exc:
                raise self._fail(f"sent BATCH file {url}: {exc}") from None
