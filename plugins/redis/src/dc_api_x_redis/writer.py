"""The write side of one stream: Redis commands built column-wise, pipelines in flight.

``write`` converts a batch to Arrow against the stream's schema, cuts it into pipelines of
``batch_size`` rows, builds each pipeline's commands with :mod:`dc_api_x_redis.codec` and sends it;
with two pipelines in flight it reads the oldest one's replies (the server works on the next one
meanwhile). ``flush`` reads every reply: after it every row written so far has been applied by the
server (its durability then is the server's persistence setting: ``appendonly``/``appendfsync``). A
reply that is an error (``WRONGTYPE`` …) fails the stream with one line naming the key.

Commands per row: hash ``HSET key f v … [EXPIRE key ttl]`` (upsert: ``MULTI DEL key HSET …
[EXPIRE …] EXEC``); json/string ``SET key value [EX ttl]``; stream ``XADD key [MAXLEN [~] n] id|*
f v …``; pubsub ``PUBLISH channel payload``. A null value is left out of HSET/XADD (a hash has no
null); a row with no value at all cannot be stored and is an error.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from dc_api_x.exceptions import AdapterError, ConfigError, SchemaError
from dc_api_x.types import Batch, StreamSpec, WriteResult

from .forms import show

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

    from .adapter import RedisAdapter

__all__ = ["StreamWriter"]

_KEY_TYPES = ("hash", "json", "string")


class StreamWriter:
    """The write side of one stream: commands built column-wise, one pipeline in flight."""

    def __init__(self, adapter: RedisAdapter, spec: StreamSpec, load_method: str) -> None:
        from dc_api_x.arrow import jsonschema_to_arrow

        cfg = adapter.config
        sc = adapter._stream_config(spec.name)
        self.adapter = adapter
        self.name = spec.name
        self.spec = spec
        self.type = (sc.type if sc else None) or cfg.type
        self.upsert = load_method == "upsert"
        self.ttl = (sc.ttl if sc else None) or cfg.ttl
        self.batch_size = cfg.batch_size
        self.arrow_schema = jsonschema_to_arrow(spec.schema)
        fields = set(self.arrow_schema.names)
        self.template: Any = None
        self.key_field: str | None = None
        self.stream_key = ""
        self.maxlen: int | None = None
        self.approximate = True
        self.channel_field: str | None = None
        self.text = False
        self.pipe = adapter.conn.pipe()
        #: (keys, commands per row) of the pipelines in flight, oldest first (for error messages)
        self.inflight: collections.deque[tuple[Any, int]] = collections.deque()
        self.per_row = 1
        self.rows = 0

        def fail(message: str, field: str | None = None) -> ConfigError:
            return ConfigError(f"adapter 'redis': stream {self.name!r}: {message}", field=field)

        if self.upsert and self.type not in _KEY_TYPES:
            raise fail(
                f"load_method 'upsert' needs keys (hash, json or string), not a {self.type}", "load_method"
            )
        if self.ttl and self.type not in _KEY_TYPES:
            raise fail(f"'ttl' applies to hash, json and string streams, not to a {self.type}", "ttl")
        template = (sc.key if sc else None) or cfg.key
        if self.type in _KEY_TYPES:
            kf = cfg.key_field if cfg.key_field in fields else None
            if template and kf:
                raise fail(
                    f"records carry the key field {kf!r} and a key template {template!r} is set; set "
                    f"key_field: null to store {kf!r} as an ordinary field",
                    "key",
                )
            if not template and not kf:
                if not spec.key_properties:
                    raise fail(
                        f"records have no {cfg.key_field!r} field and no key properties: set 'key', a key "
                        f"template such as '{spec.name}:{{id}}'",
                        "key",
                    )
                template = "{_stream}:" + ":".join(f"{{{k}}}" for k in spec.key_properties)
            if template:
                self.template = adapter._template(template, spec.name)
                missing = [f for f in self.template.fields if f not in fields]
                if missing:
                    raise fail(
                        f"key template {template!r} names {missing[0]!r}, which records do not have", "key"
                    )
            self.key_field = kf
            if self.type == "string" and cfg.value_field not in fields:
                raise fail(f"string streams write the field {cfg.value_field!r}, which records do not have")
        elif self.type == "stream":
            self.stream_key = (sc.key if sc else None) or spec.name
            self.key_field = cfg.id_field if cfg.id_field in fields else None
            self.maxlen = sc.maxlen if sc else None
            self.approximate = sc.approximate if sc else True
        else:  # pubsub
            self.channel_field = cfg.channel_field if cfg.channel_field in fields else None
            channel = sc.channel if sc else None
            if channel:
                self.template = adapter._template(channel, spec.name)
            elif not self.channel_field:
                raise fail(f"set 'channel' (records have no {cfg.channel_field!r} field)", "channel")
            self.text = bool(sc and sc.message_format == "text")
        self.stored = [f for f in self.arrow_schema if f.name not in (self.key_field, self.channel_field)]
        #: the smallest and largest key written by ``_key`` (for the catalog's SCAN pattern)
        self.key_min: bytes | None = None
        self.key_max: bytes | None = None
        if self.text and len(self.stored) != 1:
            raise fail("message_format 'text' publishes one field; records have " + str(len(self.stored)))
        self.prev_prefix = self._recorded_prefix() if self.template is None else None
        self._record_catalog(template, self.prev_prefix)

    def _recorded_prefix(self) -> str | None:
        """The key prefix an earlier run recorded for this stream (written by ``_key``)."""
        key = self.adapter.config.catalog_key
        if not key or self.type not in _KEY_TYPES:
            return None
        import orjson

        conn = self.adapter.conn
        with conn.errors(self.name):
            old = conn.client.hget(key, self.name)
        try:
            before = orjson.loads(old).get("key_prefix") if old else None
        except (orjson.JSONDecodeError, AttributeError):
            return None
        return before if isinstance(before, str) else None

    def _record_catalog(self, template: str | None, key_prefix: str | None = None) -> None:
        cfg = self.adapter.config
        if not cfg.catalog_key or self.type == "pubsub":
            return
        from .forms import dumps, glob_escape

        props = dict(self.spec.schema.get("properties") or {})
        if self.key_field:
            props.pop(self.key_field, None)
        entry: dict[str, Any] = {
            "type": self.type,
            "schema": {**self.spec.schema, "properties": props},
            "key_properties": [k for k in self.spec.key_properties if k != self.key_field],
            "replication_key": self.spec.replication_key if self.spec.replication_key in props else None,
        }
        if self.type == "stream":
            entry["key"] = self.stream_key
            entry["key_properties"] = []
            entry["replication_key"] = None
        elif self.template is not None:
            entry["key"] = template
            entry["pattern"] = self.template.pattern()
        else:  # keys taken from the records' key field: the pattern covers the keys written
            entry["key"] = None
            entry["key_prefix"] = key_prefix
            entry["pattern"] = None if key_prefix is None else glob_escape(key_prefix) + "*"
        conn = self.adapter.conn
        with conn.errors(self.name):
            conn.client.hset(cfg.catalog_key, self.name, dumps(entry))

    def finish(self) -> None:
        """After the last flush: the catalog entry of a stream written by ``_key`` learns the common
        prefix of the keys written (merged with the one recorded by earlier runs), its SCAN pattern."""
        if self.type not in _KEY_TYPES or self.template is not None or self.key_min is None:
            return
        if not self.adapter.config.catalog_key:
            return
        prefix = _common_prefix(self.key_min, self.key_max or self.key_min)
        if self.prev_prefix is not None:
            prefix = _common_prefix(self.prev_prefix.encode(), prefix)
        self._record_catalog(None, prefix.decode(errors="ignore"))

    def _observe_keys(self, keys: pa.Array) -> None:
        import pyarrow.compute as pc

        mm = pc.min_max(keys)
        lo, hi = mm["min"].as_py(), mm["max"].as_py()
        if lo is not None and (self.key_min is None or lo < self.key_min):
            self.key_min = lo
        if hi is not None and (self.key_max is None or hi > self.key_max):
            self.key_max = hi

    # -- writing -----------------------------------------------------------------------------------
    def write(self, batch: Batch) -> WriteResult:
        from dc_api_x.arrow import ConversionError

        n = len(batch)
        if n == 0:
            return WriteResult(rows=0, committed=not self.inflight)
        try:
            table = batch.to_arrow(self.arrow_schema)
        except ConversionError as exc:
            raise SchemaError(
                f"adapter 'redis', stream {self.name!r}: {exc}", adapter="redis", stream=self.name
            ) from None
        conn, pipe = self.adapter.conn, self.pipe
        for start in range(0, n, self.batch_size):
            chunk = table.slice(start, self.batch_size)
            payload, keys = self._encode(chunk)
            with conn.errors(self.name, pipe):
                pipe.send(payload, chunk.num_rows * self.per_row)
            self.inflight.append((keys, self.per_row))
            if len(self.inflight) > 2:  # the server works on the next pipelines meanwhile
                self._replies()
        self.rows += n
        return WriteResult(rows=n, committed=False)

    def flush(self) -> None:
        """Read the replies of every pipeline in flight."""
        while self.inflight:
            self._replies()

    def close(self) -> None:
        """Give the pipe's connection back (after :meth:`flush`, or dropped)."""
        self.inflight.clear()
        self.pipe.close()

    def _replies(self) -> None:
        from .connection import ReplyError

        conn, pipe = self.adapter.conn, self.pipe
        keys, per_row = self.inflight.popleft()
        try:
            with conn.errors(self.name, pipe):
                pipe.replies(self.name)
        except ReplyError as exc:
            self.inflight.clear()
            pipe.reset()  # the pipelines after it are not read: drop the connection
            row = exc.index // max(per_row, 1)
            where = f" (row {row} of the pipeline)"
            if keys is not None and row < len(keys):
                where = f" (key {show(keys[row].as_py())})"
            raise AdapterError(f"{exc}{where}", adapter="redis", stream=self.name) from None

    def _texts(self, chunk: pa.Table, names: Sequence[str]) -> dict[str, pa.Array]:
        from dc_api_x.arrow import ConversionError

        from .codec import text_column

        out = {}
        for name in names:
            try:
                out[name] = text_column(chunk.column(name), chunk.schema.field(name))
            except ConversionError as exc:
                raise SchemaError(
                    f"adapter 'redis', stream {self.name!r}: {exc}", adapter="redis", stream=self.name
                ) from None
        return out

    def _keys(self, chunk: pa.Table, texts: dict[str, pa.Array]) -> pa.Array:
        import pyarrow.compute as pc

        n = chunk.num_rows
        if self.template is not None:
            for f in self.template.fields:
                if f not in texts:
                    texts.update(self._texts(chunk, [f]))
                if texts[f].null_count:
                    row = pc.indices_nonzero(pc.is_null(texts[f]))[0].as_py()
                    raise SchemaError(
                        f"adapter 'redis', stream {self.name!r}, field {f!r}: null in row {row} of the "
                        f"batch, but the key template {self.template.template!r} needs it",
                        adapter="redis",
                        stream=self.name,
                    )
            return self.template.render(texts, n)  # type: ignore[no-any-return]
        assert self.key_field is not None
        keys = self._texts(chunk, [self.key_field])[self.key_field]
        if keys.null_count:
            row = pc.indices_nonzero(pc.is_null(keys))[0].as_py()
            raise SchemaError(
                f"adapter 'redis', stream {self.name!r}, field {self.key_field!r}: null key in row {row} "
                f"of the batch",
                adapter="redis",
                stream=self.name,
            )
        return keys

    def _encode(self, chunk: pa.Table) -> tuple[memoryview, pa.Array | None]:
        import pyarrow as pa
        import pyarrow.compute as pc

        from .codec import CommandBuilder, Pairs

        n = chunk.num_rows
        cb = CommandBuilder(n)
        if self.type == "pubsub":
            channels = self._channels(chunk)
            if self.text:
                payload = self._texts(chunk, [self.stored[0].name])[self.stored[0].name]
                payload = pc.fill_null(payload, pa.scalar(b"", type=payload.type))
            else:
                names = [f.name for f in self.stored]
                payload = self._json_payloads(chunk.select(names))
            cb.add(b"PUBLISH", channels, payload)
            self.per_row = cb.per_row
            return cb.payload(), None
        texts = self._texts(chunk, [f.name for f in self.stored])
        if self.type == "stream":
            key = self.stream_key.encode()
            trim: list[bytes] = []
            if self.maxlen:
                trim = [b"MAXLEN", *([b"~"] if self.approximate else []), str(self.maxlen).encode()]
            if self.key_field:
                ids = self._texts(chunk, [self.key_field])[self.key_field]
                ids = pc.fill_null(ids, pa.scalar(b"*", type=ids.type))
            else:
                ids = None
            pairs = Pairs([(f.name, texts[f.name]) for f in self.stored], n)
            self._no_empty(pairs, chunk)
            cb.add(b"XADD", key, *trim, ids if ids is not None else b"*", pairs)
            self.per_row = cb.per_row
            return cb.payload(), None
        keys = self._keys(chunk, dict(texts))
        if self.template is None:
            self._observe_keys(keys)
        atomic = self.upsert and self.type == "hash"
        if atomic:  # the hash is replaced as a whole: a reader never sees it missing or half written
            cb.add(b"MULTI")
            cb.add(b"DEL", keys)
        if self.type == "hash":
            pairs = Pairs([(f.name, texts[f.name]) for f in self.stored], n)
            self._no_empty(pairs, chunk, keys)
            cb.add(b"HSET", keys, pairs)
        else:  # SET replaces a value (and its TTL) atomically
            if self.type == "json":
                values = self._json_payloads(chunk.select([f.name for f in self.stored]))
            else:
                values = texts[self.adapter.config.value_field]
                if values.null_count:
                    row = pc.indices_nonzero(pc.is_null(values))[0].as_py()
                    raise SchemaError(
                        f"adapter 'redis', stream {self.name!r}, field {self.adapter.config.value_field!r}: "
                        f"null value (key {show(keys[row].as_py())}): a string key cannot hold null",
                        adapter="redis",
                        stream=self.name,
                    )
            if self.ttl:
                cb.add(b"SET", keys, values, b"EX", str(self.ttl).encode())
            else:
                cb.add(b"SET", keys, values)
        if self.ttl and self.type == "hash":
            cb.add(b"EXPIRE", keys, str(self.ttl).encode())
        if atomic:
            cb.add(b"EXEC")
        self.per_row = cb.per_row
        return cb.payload(), keys

    def _json_payloads(self, table: pa.Table) -> pa.Array:
        """One JSON object per row (decimals, bytes and date-times in their JSON forms)."""
        import pyarrow as pa

        from dc_api_x.arrow import ConversionError, arrow_to_records

        from .codec import check_json_numbers
        from .forms import dumps

        try:
            for name in table.column_names:
                check_json_numbers(table.column(name), name)
        except ConversionError as exc:
            raise SchemaError(
                f"adapter 'redis', stream {self.name!r}: {exc}", adapter="redis", stream=self.name
            ) from None
        records = arrow_to_records(table, self.spec.schema)
        return pa.array([dumps(r) for r in records], type=pa.large_binary())

    def _channels(self, chunk: pa.Table) -> pa.Array:
        import pyarrow.compute as pc

        if self.template is not None:
            texts = self._texts(chunk, [f for f in self.template.fields])
            for f, arr in texts.items():
                if arr.null_count:
                    raise SchemaError(
                        f"adapter 'redis', stream {self.name!r}, field {f!r}: null, but the channel "
                        f"template needs it",
                        adapter="redis",
                        stream=self.name,
                    )
            return self.template.render(texts, chunk.num_rows)  # type: ignore[no-any-return]
        assert self.channel_field is not None
        arr = self._texts(chunk, [self.channel_field])[self.channel_field]
        if arr.null_count:
            row = pc.indices_nonzero(pc.is_null(arr))[0].as_py()
            raise SchemaError(
                f"adapter 'redis', stream {self.name!r}, field {self.channel_field!r}: null channel in "
                f"row {row} of the batch",
                adapter="redis",
                stream=self.name,
            )
        return arr

    def _no_empty(self, pairs: Any, chunk: pa.Table, keys: pa.Array | None = None) -> None:
        empty = pairs.empty_rows()
        if len(empty):
            row = empty[0].as_py()
            where = f"key {show(keys[row].as_py())}" if keys is not None else f"row {row} of the batch"
            raise SchemaError(
                f"adapter 'redis', stream {self.name!r}: {where}: every field is null, and Redis has no "
                f"empty {'hash' if self.type == 'hash' else 'stream entry'}",
                adapter="redis",
                stream=self.name,
            )


def _common_prefix(a: bytes, b: bytes) -> bytes:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return a[:n]
