"""The ``redis`` adapter: keys, Redis streams and pub/sub as dc-api-x streams (source and sink).

Stream types (the ``type`` of a stream, see :class:`~dc_api_x_redis.config.RedisStreamConfig`):

* ``hash`` — one record per hash, keys found by ``SCAN MATCH <pattern> TYPE hash`` and read with
  pipelined ``HGETALL``; written with pipelined ``HSET`` under a key template (``user:{id}``);
* ``json`` — one record per string key holding a JSON object (``MGET`` / ``SET``);
* ``string`` — one record per string key: ``{_key, value}``;
* ``stream`` — one record per entry of a Redis stream (``XRANGE`` / ``XADD``), incremental by entry
  id with the toolkit's bookmark (``{"replication_key": "_id", "replication_key_value": "<id>"}``):
  the bookmark of a batch names its last entry, a resumed read starts after it (``XRANGE (<id>``),
  so there is no gap and no duplicate;
* ``pubsub`` — a bounded source (``SUBSCRIBE``/``PSUBSCRIBE`` until ``max_messages`` or
  ``max_seconds``) and a sink (``PUBLISH``).

Values are stored as text forms typed by the stream's JSON Schema (:mod:`dc_api_x_redis.codec`).
A writer records each stream's schema, key template and keys in the catalog hash (option
``catalog_key``, default ``dcapix:streams``); a reader discovers those streams and reads their
values back with their types. Hash, json and string streams may name a ``replication_key``: every
read scans all keys and delivers only rows after the bookmark (SCAN has no order, so the new
bookmark is carried by the last batch only).

``redis`` and ``pyarrow`` are imported when the adapter first connects, reads or writes.
"""

from __future__ import annotations

import collections
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from dc_api_x.exceptions import AdapterError, ConfigError, SchemaError
from dc_api_x.ext.adapters import ProtocolAdapter, Response
from dc_api_x.logs import register_secret
from dc_api_x.schemas import apply_schema_override
from dc_api_x.types import Batch, JSONSchema, StreamSpec, WriteResult

from .config import RedisConfig, RedisStreamConfig
from .forms import glob_escape, show, text

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

    from .connection import RedisConnection
    from .writer import StreamWriter

__all__ = ["RedisAdapter"]

_KEY_TYPES = ("hash", "json", "string")
_STRING = {"type": "string"}
_REDIS_TYPE = {"hash": "hash", "json": "string", "string": "string"}


class RedisAdapter(ProtocolAdapter):
    """Reads and writes Redis hashes, JSON documents, strings, streams and pub/sub channels."""

    name = "redis"
    Options = RedisConfig
    load_methods = ("append", "upsert")
    secret_options = ("url", "password")

    def __init__(self, options: Any = None, /, **kwargs: Any) -> None:
        super().__init__(options, **kwargs)
        #: the validated :class:`RedisConfig` (the guide's name for it; ``self.options`` is the same)
        self.config: RedisConfig = self.options
        if self.config.password is not None:
            register_secret(self.config.password.get_secret_value())
        self._conn: RedisConnection | None = None
        self._streams: list[StreamSpec] | None = None
        self._writers: dict[str, StreamWriter] = {}

    # -- connection ------------------------------------------------------------------------------
    @property
    def conn(self) -> RedisConnection:
        """The connection (opened on first use; imports redis-py)."""
        if self._conn is None:
            from .connection import RedisConnection

            self._conn = RedisConnection(self.config, self.name)
        return self._conn

    def close(self) -> None:
        self._writers.clear()  # not finished: nothing more is read; their connections are dropped
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        super().close()

    def _stream_config(self, name: str) -> RedisStreamConfig | None:
        for sc in self.config.streams:
            if sc.name == name:
                return sc
        return None

    # -- discovery -------------------------------------------------------------------------------
    def catalog(self) -> dict[str, dict[str, Any]]:
        """The streams writers recorded in the catalog hash (``{}`` when off or empty)."""
        key = self.config.catalog_key
        if not key:
            return {}
        import orjson

        with self.conn.errors():
            raw = self.conn.client.hgetall(key)
        out = {}
        for name, doc in sorted(raw.items()):
            try:
                entry = orjson.loads(doc)
            except orjson.JSONDecodeError:
                continue  # not ours
            if isinstance(entry, dict) and entry.get("type") in ("hash", "json", "string", "stream"):
                out[name.decode()] = entry
        return out

    def discover(self) -> list[StreamSpec]:
        """The configured streams, then the streams the catalog lists (configured names win)."""
        if self._streams is None:
            catalog = self.catalog()
            specs = [self._spec(sc, catalog.get(sc.name)) for sc in self.config.streams]
            names = {s.name for s in specs}
            for name, entry in catalog.items():
                if name not in names:
                    sc = RedisStreamConfig(name=name, type=entry["type"], key=entry.get("key"))
                    specs.append(self._spec(sc, entry))
            self._streams = specs
        return list(self._streams)

    def _spec(self, sc: RedisStreamConfig, entry: Mapping[str, Any] | None) -> StreamSpec:
        cfg = self.config
        typ = sc.type or (entry or {}).get("type") or cfg.type
        opts: dict[str, Any] = {"type": typ}
        base: JSONSchema | None = dict(entry["schema"]) if entry and entry.get("schema") else None
        keys: list[str] = list(sc.primary_keys or (entry or {}).get("key_properties") or [])
        rk = sc.replication_key or (entry or {}).get("replication_key")
        lead: str | None = None  # the field the adapter adds in front of every record
        if typ in _KEY_TYPES:
            template = sc.key or (entry or {}).get("key")
            pattern = sc.pattern
            if pattern is None and template:
                pattern = self._template(template, sc.name).pattern()
            if pattern is None:
                pattern = (entry or {}).get("pattern") or glob_escape(sc.name) + ":*"
            opts.update(pattern=pattern, key=template)
            lead = cfg.key_field
            if not keys and lead:
                keys = [lead]
            if base is None:
                base = self._sample_keys(sc.name, typ, pattern)
        elif typ == "stream":
            opts["key"] = sc.key or (entry or {}).get("key") or sc.name
            lead = cfg.id_field
            if lead:
                keys, rk = keys or [lead], rk or lead
            if rk and rk != lead:
                raise ConfigError(
                    f"adapter 'redis': stream {sc.name!r}: a Redis stream is read incrementally by its "
                    f"entry id ({lead!r}), not by {rk!r}",
                    field="replication_key",
                )
            if base is None:
                base = self._sample_stream(sc.name, opts["key"])
        else:  # pubsub
            if not sc.channels and not sc.patterns:
                raise ConfigError(
                    f"adapter 'redis': pubsub stream {sc.name!r}: set 'channels' or 'patterns'",
                    field="channels",
                )
            opts.update(channels=list(sc.channels), patterns=list(sc.patterns))
            lead = cfg.channel_field
            if base is None and sc.schema_ is None:
                base = {"type": "object", "properties": {"data": {"x-json": True}}}
                if sc.message_format == "text":
                    base = {"type": "object", "properties": {"data": {"type": ["string", "null"]}}}
                opts["wrap"] = True
            rk = None
        spec = StreamSpec(sc.name, schema=base or {"type": "object", "properties": {}})
        spec = apply_schema_override(spec, sc.schema_)
        props = dict(spec.schema.get("properties") or {})
        if lead:
            if lead in props and entry is None and sc.schema_ is None and typ != "pubsub":
                raise ConfigError(
                    f"adapter 'redis': stream {sc.name!r}: the stored field {lead!r} has the name the "
                    f"adapter gives the key/id; set 'key_field'/'id_field' to another name or null",
                    field="key_field",
                )
            props.pop(lead, None)
            props = {lead: dict(_STRING), **props}
        schema = {**spec.schema, "properties": props}
        for k in [*keys, *([rk] if rk else [])]:
            if k not in props:
                raise ConfigError(
                    f"adapter 'redis': stream {sc.name!r}: key or replication field {k!r} is not in the "
                    f"schema; fields: {', '.join(props) or '(none)'}",
                    field="primary_keys",
                )
        return StreamSpec(
            sc.name,
            schema=schema,
            key_properties=tuple(keys),
            replication_key=rk,
            replication_keys=(rk,) if rk else (),
            options={"redis": opts},
        )

    def _template(self, template: str, stream: str) -> Any:
        from .codec import KeyTemplate

        try:
            return KeyTemplate(template, stream)
        except ValueError as exc:
            raise ConfigError(f"adapter 'redis': stream {stream!r}: {exc}", field="key") from None

    def _sample_keys(self, stream: str, typ: str, pattern: str) -> JSONSchema:
        """A schema from up to ``sample_size`` keys: hash fields and string values as strings, JSON
        documents inferred (no format detection: a string stays a string)."""
        keys = self._sample_scan(pattern, _REDIS_TYPE[typ], stream)
        if typ == "string":
            return {"type": "object", "properties": {self.config.value_field: {"type": ["string", "null"]}}}
        if not keys:
            return {"type": "object", "properties": {}}
        if typ == "hash":
            rows = self._fetch_hashes(keys, stream)
            names: dict[str, None] = {}
            for _k, row in rows:
                for f in row:
                    names[text(f, stream)] = None
            return {"type": "object", "properties": {n: {"type": ["string", "null"]} for n in names}}
        from dc_api_x.inference import infer_schema

        docs = [doc for _k, doc in self._fetch_json(keys, stream)]
        return infer_schema(docs, detect_formats=False, all_nullable=True, nested=False)

    def _sample_scan(self, pattern: str, rtype: str, stream: str) -> list[bytes]:
        out: list[bytes] = []
        for keys in self._scan(pattern, rtype, stream):
            out.extend(keys)
            if len(out) >= self.config.sample_size:
                break
        return out[: self.config.sample_size]

    def _sample_stream(self, stream: str, key: str) -> JSONSchema:
        entries = self._xrange(key, b"-", self.config.sample_size, stream)
        names: dict[str, None] = {}
        for _id, fields in entries:
            for f in fields:
                names[text(f, stream)] = None
        return {"type": "object", "properties": {n: {"type": ["string", "null"]} for n in names}}

    # -- request side (ApiClient) ------------------------------------------------------------------
    def request(self, method: str, path: str, **kwargs: Any) -> Response:
        """GET, HEAD, PUT, POST or DELETE on the key ``path`` (see :mod:`dc_api_x_redis.request`)."""
        from .request import handle

        return handle(self, method, path, **kwargs)

    # -- reading ---------------------------------------------------------------------------------
    def _read_options(self, stream: StreamSpec) -> dict[str, Any]:
        opts = stream.options.get("redis") if isinstance(stream.options, Mapping) else None
        if isinstance(opts, Mapping):
            return dict(opts)
        return dict(self.get_stream(stream.name).options["redis"])

    def read(
        self,
        stream: StreamSpec,
        *,
        state: Mapping[str, Any] | None = None,
        columns: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> Iterator[Batch]:
        """The stream's records in batches of up to ``batch_size`` (see the module doc)."""
        opts = self._read_options(stream)
        typ = opts["type"]
        if limit is not None and limit <= 0:
            return
        if typ in _KEY_TYPES:
            batches = self._read_keys(stream, opts, state, limit)
        elif typ == "stream":
            batches = self._read_stream(stream, opts, state, limit)
        else:
            from .pubsub import read_pubsub

            batches = read_pubsub(self, stream, opts, limit)
        for batch in batches:
            if columns is not None:
                keep = [c for c in batch.column_names if c in set(columns)]
                batch = Batch.from_arrow(
                    batch.to_arrow().select(keep),
                    schema=_select(stream.schema, keep),
                    bookmark=batch.bookmark,
                )
            yield batch

    # keys ------------------------------------------------------------------------------------------
    def _scan(self, pattern: str, rtype: str, stream: str) -> Iterator[list[bytes]]:
        """New keys as SCAN returns them (SCAN may return a key twice: each is yielded once)."""
        client = self.conn.client
        seen: set[bytes] = set()
        cursor: Any = 0
        count = self.config.scan_count
        while True:
            with self.conn.errors(stream):
                cursor, keys = client.scan(cursor, match=pattern, count=count, _type=rtype)
            new = [k for k in keys if k not in seen]
            if new:
                seen.update(new)
                yield new
            if int(cursor) == 0:
                return

    def _key_batches(self, pattern: str, rtype: str, stream: str) -> Iterator[list[bytes]]:
        size = self.config.batch_size
        buf: list[bytes] = []
        for keys in self._scan(pattern, rtype, stream):
            buf.extend(keys)
            while len(buf) >= size:
                yield buf[:size]
                buf = buf[size:]
        if buf:
            yield buf

    @staticmethod
    def _hgetall(keys: list[bytes]) -> tuple[bytes, int]:
        return b"".join([b"*2\r\n$7\r\nHGETALL\r\n$%d\r\n%s\r\n" % (len(k), k) for k in keys]), len(keys)

    @staticmethod
    def _mget_command(keys: list[bytes]) -> tuple[bytes, int]:
        from .connection import pack

        return pack(b"MGET", *keys), 1

    def _pipelined(
        self, batches: Iterator[list[bytes]], command: Any, stream: str
    ) -> Iterator[tuple[list[bytes], list[Any]]]:
        """``(keys, replies)`` per key batch, with the next batch's commands sent before this one's
        replies are read (the server works while the client converts)."""
        pipe = self.conn.reader
        queued: collections.deque[list[bytes]] = collections.deque()
        with self.conn.errors(stream, pipe):
            try:
                for keys in batches:
                    payload, n = command(keys)
                    pipe.send(payload, n)
                    queued.append(keys)
                    if len(queued) > 1:
                        yield queued.popleft(), pipe.replies(stream)
                while queued:
                    yield queued.popleft(), pipe.replies(stream)
            finally:
                if pipe.inflight:  # the consumer stopped early (limit, error): drop what is unread
                    pipe.reset()

    @staticmethod
    def _hashes(keys: list[bytes], replies: list[Any]) -> list[tuple[bytes, dict[bytes, bytes]]]:
        """``(key, fields)`` of the keys that still exist."""
        return [(k, r if isinstance(r, dict) else _pairs(r)) for k, r in zip(keys, replies, strict=True) if r]

    def _fetch_hashes(self, keys: list[bytes], stream: str) -> list[tuple[bytes, dict[bytes, bytes]]]:
        payload, n = self._hgetall(keys)
        return self._hashes(keys, self.conn.call(payload, n, stream))

    @staticmethod
    def _values(keys: list[bytes], replies: list[Any]) -> list[tuple[bytes, bytes]]:
        (values,) = replies
        return [(k, v) for k, v in zip(keys, values, strict=True) if v is not None]

    def _mget(self, keys: list[bytes], stream: str) -> list[tuple[bytes, bytes]]:
        payload, n = self._mget_command(keys)
        return self._values(keys, self.conn.call(payload, n, stream))

    def _fetch_json(self, keys: list[bytes], stream: str) -> list[tuple[bytes, dict[str, Any]]]:
        return self._documents(self._mget(keys, stream), stream)

    def _documents(self, rows: list[tuple[bytes, bytes]], stream: str) -> list[tuple[bytes, dict[str, Any]]]:
        import orjson

        out = []
        for k, v in rows:
            try:
                doc = orjson.loads(v)
            except orjson.JSONDecodeError as exc:
                raise SchemaError(
                    f"adapter 'redis', stream {stream!r}: key {show(k)}: the value is not JSON ({exc})",
                    adapter=self.name,
                    stream=stream,
                ) from None
            if not isinstance(doc, dict):
                raise SchemaError(
                    f"adapter 'redis', stream {stream!r}: key {show(k)}: the JSON value is a "
                    f"{type(doc).__name__}, not an object",
                    adapter=self.name,
                    stream=stream,
                )
            out.append((k, doc))
        return out

    def _read_keys(
        self, stream: StreamSpec, opts: Mapping[str, Any], state: Mapping[str, Any] | None, limit: int | None
    ) -> Iterator[Batch]:
        from dc_api_x.arrow import jsonschema_to_arrow

        from .incremental import Incremental

        typ = opts["type"]
        name = stream.name
        schema = stream.schema
        arrow_schema = jsonschema_to_arrow(schema)
        inc = Incremental(stream, state, arrow_schema) if stream.replication_key else None
        remaining = limit
        held: pa.Table | None = None
        batches = self._key_batches(opts["pattern"], _REDIS_TYPE[typ], name)
        command = self._hgetall if typ == "hash" else self._mget_command
        for keys, replies in self._pipelined(batches, command, name):
            if typ == "hash":
                table = self._hash_table(self._hashes(keys, replies), arrow_schema, name)
            elif typ == "json":
                table = self._json_table(
                    self._documents(self._values(keys, replies), name), schema, arrow_schema, name
                )
            else:
                table = self._string_table(self._values(keys, replies), arrow_schema, name)
            if inc is not None:
                table = inc.filter(table)
            if remaining is not None:
                table = table.slice(0, remaining)
                remaining -= table.num_rows
            if table.num_rows == 0:
                if remaining == 0:
                    break
                continue
            if inc is not None:
                inc.observe(table)
                if held is not None:  # unordered: only the last batch carries the new bookmark
                    yield Batch.from_arrow(held, schema=schema)
                held = table
            else:
                yield Batch.from_arrow(table, schema=schema)
            if remaining == 0:
                break
        if held is not None and inc is not None:
            yield Batch.from_arrow(held, schema=schema, bookmark=inc.state())

    def _lead_column(self, keys: list[bytes], f: pa.Field, stream: str) -> pa.Array:
        from .codec import decode_column

        return self._decode(decode_column, keys, f, keys, stream)

    def _decode(self, fn: Any, values: list[Any], f: pa.Field, keys: list[bytes], stream: str) -> pa.Array:
        from dc_api_x.arrow import ConversionError

        try:
            return fn(values, f)  # type: ignore[no-any-return]
        except ConversionError as exc:
            where = ""
            for k, v in zip(keys, values, strict=True):
                try:
                    fn([v], f)
                except ConversionError:
                    where = f"key {show(k)}: "
                    break
            raise SchemaError(
                f"adapter 'redis', stream {stream!r}, field {f.name!r}: {where}{exc}",
                adapter=self.name,
                stream=stream,
            ) from None

    def _hash_table(
        self,
        rows: list[tuple[bytes, dict[bytes, bytes]]],
        arrow_schema: pa.Schema,
        stream: str,
        *,
        lead: str | bool | None = False,
    ) -> pa.Table:
        """A table from hashes (or stream entries): ``lead`` is the field holding the key (the entry
        id); by default ``key_field``."""
        import pyarrow as pa

        from .codec import decode_column

        keys = [k for k, _ in rows]
        dicts = [d for _, d in rows]
        if lead is False:
            lead = self.config.key_field
        arrays = []
        stored = 0
        for f in arrow_schema:
            if f.name == lead:
                arrays.append(self._lead_column(keys, f, stream))
                continue
            raw = f.name.encode()
            values = [d.get(raw) for d in dicts]
            arr = self._decode(decode_column, values, f, keys, stream)
            stored += len(arr) - arr.null_count
            arrays.append(arr)
        if self.config.extra_fields == "error" and sum(map(len, dicts)) != stored:
            known = {f.name.encode() for f in arrow_schema if f.name != lead}
            for k, d in rows:
                extra = [x for x in d if x not in known]
                if extra:
                    raise SchemaError(
                        f"adapter 'redis', stream {stream!r}: key {show(k)} has field "
                        f"{text(extra[0], stream)!r}, which the stream's schema does not list (add it to "
                        f"'schema', or set extra_fields: ignore)",
                        adapter=self.name,
                        stream=stream,
                    )
        return pa.Table.from_arrays(arrays, schema=arrow_schema)

    def _string_table(
        self, rows: list[tuple[bytes, bytes]], arrow_schema: pa.Schema, stream: str
    ) -> pa.Table:
        import pyarrow as pa

        from .codec import decode_column

        keys = [k for k, _ in rows]
        lead, value = self.config.key_field, self.config.value_field
        arrays = []
        for f in arrow_schema:
            if f.name == lead:
                arrays.append(self._lead_column(keys, f, stream))
            elif f.name == value:
                arrays.append(self._decode(decode_column, [v for _, v in rows], f, keys, stream))
            else:
                arrays.append(pa.nulls(len(rows), type=f.type))
        return pa.Table.from_arrays(arrays, schema=arrow_schema)

    def _json_table(
        self,
        rows: list[tuple[bytes, dict[str, Any]]],
        schema: JSONSchema,
        arrow_schema: pa.Schema,
        stream: str,
    ) -> pa.Table:
        from dc_api_x.arrow import ConversionError, records_to_arrow

        lead = self.config.key_field
        props = set(schema.get("properties") or {})
        records = []
        for k, doc in rows:
            if self.config.extra_fields == "error" and not props.issuperset(doc):
                extra = next(x for x in doc if x not in props)
                raise SchemaError(
                    f"adapter 'redis', stream {stream!r}: key {show(k)} has field {extra!r}, which the "
                    f"stream's schema does not list (add it to 'schema', or set extra_fields: ignore)",
                    adapter=self.name,
                    stream=stream,
                )
            if lead:
                doc = {**doc, lead: text(k, stream)}
            records.append(doc)
        try:
            return records_to_arrow(records, arrow_schema=arrow_schema)
        except ConversionError as exc:
            raise SchemaError(
                f"adapter 'redis', stream {stream!r}: {exc}", adapter=self.name, stream=stream
            ) from None

    # streams -------------------------------------------------------------------------------------
    def _xrange(self, key: str, start: bytes, count: int, stream: str) -> list[tuple[bytes, Any]]:
        from .connection import pack

        (entries,) = self.conn.call(pack(b"XRANGE", key, start, b"+", b"COUNT", count), 1, stream)
        out = []
        for entry in entries or ():
            eid, fields = entry[0], entry[1]
            out.append((eid, fields if isinstance(fields, dict) else _pairs(fields or [])))
        return out

    def _read_stream(
        self, stream: StreamSpec, opts: Mapping[str, Any], state: Mapping[str, Any] | None, limit: int | None
    ) -> Iterator[Batch]:
        from dc_api_x.arrow import jsonschema_to_arrow

        name, key = stream.name, opts["key"]
        rk = stream.replication_key
        start = b"-"
        st = dict(state or {})
        if isinstance(st.get("bookmarks"), Mapping):
            st = dict(st["bookmarks"].get(name) or {})
        if rk and st.get("replication_key") == rk and st.get("replication_key_value"):
            last = str(st["replication_key_value"])
            if not _is_stream_id(last):
                raise AdapterError(
                    f"adapter 'redis', stream {name!r}: the bookmark {last!r} is not a stream entry id",
                    adapter=self.name,
                    stream=name,
                )
            start = b"(" + last.encode()
        arrow_schema = jsonschema_to_arrow(stream.schema)
        remaining = limit
        size = self.config.batch_size
        while True:
            count = size if remaining is None else min(size, remaining)
            entries = self._xrange(key, start, count, name)
            if not entries:
                return
            table = self._hash_table(entries, arrow_schema, name, lead=self.config.id_field)
            last_id = entries[-1][0]
            bookmark = None
            if rk:
                lid = text(last_id, name)
                bookmark = {"replication_key": rk, "replication_key_value": lid, "keys_at_value": [[lid]]}
            yield Batch.from_arrow(table, schema=stream.schema, bookmark=bookmark)
            if remaining is not None:
                remaining -= len(entries)
                if remaining <= 0:
                    return
            if len(entries) < count:
                return
            start = b"(" + last_id

    # -- writing ---------------------------------------------------------------------------------
    def start_write(self, stream: StreamSpec, *, load_method: str | None = None) -> None:
        """Prepare ``stream`` for writing and record it in the catalog (hash/json/string/stream)."""
        super().start_write(stream, load_method=load_method)
        old = self._writers.pop(stream.name, None)
        if old is not None:
            try:
                old.flush()
            finally:
                old.close()
        from .writer import StreamWriter

        self._writers[stream.name] = StreamWriter(self, stream, load_method or "append")

    def _writer(self, stream: StreamSpec) -> StreamWriter:
        w = self._writers.get(stream.name)
        if w is None:
            self.start_write(stream)
            w = self._writers[stream.name]
        return w

    def write(self, stream: StreamSpec, batch: Batch) -> WriteResult:
        """Send the batch's commands (pipelined); they are confirmed by the next write or :meth:`flush`."""
        return self._writer(stream).write(batch)

    def flush(self, stream: StreamSpec | None = None) -> None:
        """Wait for every reply: all rows written so far are then applied by the server."""
        writers = [self._writers[stream.name]] if stream and stream.name in self._writers else []
        if stream is None:
            writers = list(self._writers.values())
        for w in writers:
            w.flush()

    def finish_write(self, stream: StreamSpec) -> None:
        w = self._writers.pop(stream.name, None)
        if w is not None:
            try:
                w.flush()
                w.finish()
            finally:
                w.close()


# ------------------------------------------------------------------------------------ helpers
def _pairs(flat: Sequence[Any]) -> dict[bytes, bytes]:
    it = iter(flat)
    return dict(zip(it, it, strict=False))


def _is_stream_id(text: str) -> bool:
    ms, _, seq = text.partition("-")
    return ms.isdigit() and (seq == "" or seq.isdigit())


def _select(schema: JSONSchema, keep: Sequence[str]) -> JSONSchema:
    props = schema.get("properties") or {}
    return {**schema, "properties": {k: props[k] for k in keep if k in props}}
