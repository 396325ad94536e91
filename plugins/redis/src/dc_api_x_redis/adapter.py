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

import time
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from dc_api_x.bookmarks import BoundaryBookmark
from dc_api_x.exceptions import AdapterError, ConfigError, SchemaError
from dc_api_x.ext.adapters import ProtocolAdapter
from dc_api_x.logs import register_secret
from dc_api_x.schemas import apply_schema_override
from dc_api_x.types import Batch, JSONSchema, StreamSpec, WriteResult

from .config import RedisConfig, RedisStreamConfig

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

    from .connection import RedisConnection

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
        self._writers: dict[str, _Writer] = {}

    # -- connection ------------------------------------------------------------------------------
    @property
    def conn(self) -> RedisConnection:
        """The connection (opened on first use; imports redis-py)."""
        if self._conn is None:
            from .connection import RedisConnection

            self._conn = RedisConnection(self.config, self.name)
        return self._conn

    def close(self) -> None:
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
                pattern = (entry or {}).get("pattern") or _glob_escape(sc.name) + ":*"
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
                    names[_text(f, stream)] = None
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
                names[_text(f, stream)] = None
        return {"type": "object", "properties": {n: {"type": ["string", "null"]} for n in names}}

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
            batches = self._read_pubsub(stream, opts, limit)
        for batch in batches:
            if columns is not None:
                keep = [c for c in batch.column_names if c in set(columns)]
                batch = Batch.from_arrow(batch.to_arrow().select(keep), schema=_select(stream.schema, keep),
                                         bookmark=batch.bookmark)
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

    def _fetch_hashes(self, keys: list[bytes], stream: str) -> list[tuple[bytes, dict[bytes, bytes]]]:
        """``(key, fields)`` of the keys that still exist (pipelined HGETALL)."""
        payload = b"".join([b"*2\r\n$7\r\nHGETALL\r\n$%d\r\n%s\r\n" % (len(k), k) for k in keys])
        with self.conn.errors(stream):
            replies = self.conn.call(payload, len(keys), stream)
        out = []
        for k, r in zip(keys, replies, strict=True):
            if r:
                out.append((k, r if isinstance(r, dict) else _pairs(r)))
        return out

    def _mget(self, keys: list[bytes], stream: str) -> list[tuple[bytes, bytes]]:
        from .connection import pack

        with self.conn.errors(stream):
            (values,) = self.conn.call(pack(b"MGET", *keys), 1, stream)
        return [(k, v) for k, v in zip(keys, values, strict=True) if v is not None]

    def _fetch_json(self, keys: list[bytes], stream: str) -> list[tuple[bytes, dict[str, Any]]]:
        import orjson

        out = []
        for k, v in self._mget(keys, stream):
            try:
                doc = orjson.loads(v)
            except orjson.JSONDecodeError as exc:
                raise SchemaError(
                    f"adapter 'redis', stream {stream!r}: key {_show(k)}: the value is not JSON ({exc})",
                    adapter=self.name,
                    stream=stream,
                ) from None
            if not isinstance(doc, dict):
                raise SchemaError(
                    f"adapter 'redis', stream {stream!r}: key {_show(k)}: the JSON value is a "
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

        typ = opts["type"]
        name = stream.name
        schema = stream.schema
        arrow_schema = jsonschema_to_arrow(schema)
        inc = _Incremental(stream, state, arrow_schema) if stream.replication_key else None
        remaining = limit
        held: pa.Table | None = None
        for keys in self._key_batches(opts["pattern"], _REDIS_TYPE[typ], name):
            if typ == "hash":
                table = self._hash_table(self._fetch_hashes(keys, name), arrow_schema, name)
            elif typ == "json":
                table = self._json_table(self._fetch_json(keys, name), schema, arrow_schema, name)
            else:
                table = self._string_table(self._mget(keys, name), arrow_schema, name)
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
                    where = f"key {_show(k)}: "
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
        lead: str | None | bool = False,
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
                        f"adapter 'redis', stream {stream!r}: key {_show(k)} has field "
                        f"{_text(extra[0], stream)!r}, which the stream's schema does not list (add it to "
                        f"'schema', or set extra_fields: ignore)",
                        adapter=self.name,
                        stream=stream,
                    )
        return pa.Table.from_arrays(arrays, schema=arrow_schema)

    def _string_table(self, rows: list[tuple[bytes, bytes]], arrow_schema: pa.Schema, stream: str) -> pa.Table:
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
                    f"adapter 'redis', stream {stream!r}: key {_show(k)} has field {extra!r}, which the "
                    f"stream's schema does not list (add it to 'schema', or set extra_fields: ignore)",
                    adapter=self.name,
                    stream=stream,
                )
            if lead:
                doc = {**doc, lead: _text(k, stream)}
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

        with self.conn.errors(stream):
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
        lead = self.config.id_field
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
                lid = _text(last_id, name)
                bookmark = {"replication_key": rk, "replication_key_value": lid, "keys_at_value": [[lid]]}
            yield Batch.from_arrow(table, schema=stream.schema, bookmark=bookmark)
            if remaining is not None:
                remaining -= len(entries)
                if remaining <= 0:
                    return
            if len(entries) < count:
                return
            start = b"(" + last_id

    # pub/sub -------------------------------------------------------------------------------------
    def _read_pubsub(self, stream: StreamSpec, opts: Mapping[str, Any], limit: int | None) -> Iterator[Batch]:
        import orjson

        from dc_api_x.arrow import ConversionError, records_to_arrow

        name = stream.name
        sc = self._stream_config(name)
        max_messages = sc.max_messages if sc else None
        max_seconds = sc.max_seconds if sc else None
        fmt = sc.message_format if sc else "json"
        if max_messages is None and max_seconds is None and limit is None:
            raise ConfigError(
                f"adapter 'redis': pubsub stream {name!r} must end: set 'max_messages' or 'max_seconds'",
                field="max_messages",
            )
        if limit is not None:
            max_messages = limit if max_messages is None else min(max_messages, limit)
        lead = self.config.channel_field
        wrap = bool(opts.get("wrap"))
        props = set(stream.schema.get("properties") or {})
        size = self.config.batch_size
        with self.conn.errors(name):
            ps = self.conn.client.pubsub(ignore_subscribe_messages=True)
        try:
            with self.conn.errors(name):
                if opts.get("channels"):
                    ps.subscribe(*opts["channels"])
                if opts.get("patterns"):
                    ps.psubscribe(*opts["patterns"])
            deadline = None if max_seconds is None else time.monotonic() + max_seconds
            count = 0
            buf: list[dict[str, Any]] = []
            while max_messages is None or count < max_messages:
                wait = 1.0
                if deadline is not None:
                    wait = deadline - time.monotonic()
                    if wait <= 0:
                        break
                with self.conn.errors(name):
                    msg = ps.get_message(ignore_subscribe_messages=True, timeout=min(wait, 1.0))
                if msg is None or msg.get("type") not in ("message", "pmessage"):
                    continue
                data = msg["data"]
                channel = _text(msg["channel"], name)
                if fmt == "text":
                    rec: dict[str, Any] = {"data": _text(data, name)}
                else:
                    try:
                        doc = orjson.loads(data)
                    except orjson.JSONDecodeError as exc:
                        raise SchemaError(
                            f"adapter 'redis', stream {name!r}: a message on {channel!r} is not JSON ({exc})",
                            adapter=self.name,
                            stream=name,
                        ) from None
                    if wrap:
                        rec = {"data": doc}
                    elif not isinstance(doc, dict):
                        raise SchemaError(
                            f"adapter 'redis', stream {name!r}: a message on {channel!r} is a "
                            f"{type(doc).__name__}, not a JSON object",
                            adapter=self.name,
                            stream=name,
                        )
                    else:
                        rec = doc
                        if self.config.extra_fields == "error" and not props.issuperset(doc):
                            extra = next(x for x in doc if x not in props)
                            raise SchemaError(
                                f"adapter 'redis', stream {name!r}: a message on {channel!r} has field "
                                f"{extra!r}, which the stream's schema does not list",
                                adapter=self.name,
                                stream=name,
                            )
                if lead:
                    rec[lead] = channel
                buf.append(rec)
                count += 1
                if len(buf) >= size:
                    yield self._records_batch(buf, stream, records_to_arrow, ConversionError)
                    buf = []
            if buf:
                yield self._records_batch(buf, stream, records_to_arrow, ConversionError)
        finally:
            try:
                ps.close()
            except Exception:  # pragma: no cover - closing a broken connection
                pass

    def _records_batch(self, records: list[dict[str, Any]], stream: StreamSpec, to_arrow: Any, err: Any) -> Batch:
        from dc_api_x.arrow import jsonschema_to_arrow

        try:
            table = to_arrow(records, arrow_schema=jsonschema_to_arrow(stream.schema))
        except err as exc:
            raise SchemaError(
                f"adapter 'redis', stream {stream.name!r}: {exc}", adapter=self.name, stream=stream.name
            ) from None
        return Batch.from_arrow(table, schema=stream.schema)

    # -- writing ---------------------------------------------------------------------------------
    def start_write(self, stream: StreamSpec, *, load_method: str | None = None) -> None:
        """Prepare ``stream`` for writing and record it in the catalog (hash/json/string/stream)."""
        super().start_write(stream, load_method=load_method)
        old = self._writers.pop(stream.name, None)
        if old is not None:
            old.flush()
        self._writers[stream.name] = _Writer(self, stream, load_method or "append")

    def _writer(self, stream: StreamSpec) -> _Writer:
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
            w.flush()


# ------------------------------------------------------------------------------------ helpers
def _pairs(flat: Sequence[Any]) -> dict[bytes, bytes]:
    it = iter(flat)
    return dict(zip(it, it, strict=False))


def _text(value: bytes | str, stream: str) -> str:
    if isinstance(value, str):
        return value
    try:
        return value.decode()
    except UnicodeDecodeError:
        raise SchemaError(
            f"adapter 'redis', stream {stream!r}: {value[:60]!r} is not UTF-8 text", stream=stream
        ) from None


def _show(key: bytes) -> str:
    return repr(key.decode(errors="backslashreplace"))


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def _is_stream_id(text: str) -> bool:
    ms, _, seq = text.partition("-")
    return ms.isdigit() and (seq == "" or seq.isdigit())


def _select(schema: JSONSchema, keep: Sequence[str]) -> JSONSchema:
    props = schema.get("properties") or {}
    return {**schema, "properties": {k: props[k] for k in keep if k in props}}


class _Incremental:
    """Boundary bookmark of a key stream read by a full scan (the shared format of
    :mod:`dc_api_x.bookmarks`): rows at or below the bookmark that were delivered are skipped."""

    def __init__(self, stream: StreamSpec, state: Mapping[str, Any] | None, arrow_schema: pa.Schema) -> None:
        from dc_api_x.arrow import records_to_arrow

        rk = stream.replication_key or ""
        field = arrow_schema.field(rk)
        self.start: Any = None

        def convert(value: Any) -> Any:
            table = records_to_arrow([{rk: value}], arrow_schema=_schema_of(field))
            self.start = table.column(0)[0]
            return self.start.as_py()

        try:
            self.core = BoundaryBookmark.from_state(
                state, rk, stream.key_properties, stream=stream.name, ties="keep", convert=convert
            )
        except ValueError as exc:
            raise AdapterError(
                f"adapter 'redis', stream {stream.name!r}: bookmark value does not fit {rk!r}: {exc}",
                adapter="redis",
                stream=stream.name,
            ) from None

    def filter(self, table: pa.Table) -> pa.Table:
        if self.start is None:
            return table
        return self.core.filter_arrow(table, self.start)

    def observe(self, table: pa.Table) -> None:
        self.core.advance_arrow(table)

    def state(self) -> dict[str, Any] | None:
        return self.core.to_state(sort_keys=True)


def _schema_of(field: pa.Field) -> pa.Schema:
    import pyarrow as pa

    return pa.schema([field])


class _Writer:
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
        self.inflight: Any = None  # the keys of the pipeline in flight (for error messages)
        self.per_row = 1
        self.rows = 0

        def fail(message: str, field: str | None = None) -> ConfigError:
            return ConfigError(f"adapter 'redis': stream {self.name!r}: {message}", field=field)

        if self.upsert and self.type not in _KEY_TYPES:
            raise fail(f"load_method 'upsert' needs keys (hash, json or string), not a {self.type}", "load_method")
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
                template = "{_stream}:" + ":".join("{%s}" % k for k in spec.key_properties)
            if template:
                self.template = adapter._template(template, spec.name)
                missing = [f for f in self.template.fields if f not in fields]
                if missing:
                    raise fail(f"key template {template!r} names {missing[0]!r}, which records do not have", "key")
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
        self.stored = [
            f for f in self.arrow_schema if f.name not in (self.key_field, self.channel_field)
        ]
        if self.text and len(self.stored) != 1:
            raise fail("message_format 'text' publishes one field; records have " + str(len(self.stored)))
        self._record_catalog(template)

    def _record_catalog(self, template: str | None) -> None:
        cfg = self.adapter.config
        if not cfg.catalog_key or self.type == "pubsub":
            return
        from .codec import dumps

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
        else:
            entry["key"] = template if self.template is not None else None
            entry["pattern"] = self.template.pattern() if self.template is not None else None
        conn = self.adapter.conn
        with conn.errors(self.name):
            conn.client.hset(cfg.catalog_key, self.name, dumps(entry))

    # -- writing -----------------------------------------------------------------------------------
    def write(self, batch: Batch) -> WriteResult:
        from dc_api_x.arrow import ConversionError

        n = len(batch)
        if n == 0:
            return WriteResult(rows=0, committed=self.adapter.conn.pending == 0)
        try:
            table = batch.to_arrow(self.arrow_schema)
        except ConversionError as exc:
            raise SchemaError(
                f"adapter 'redis', stream {self.name!r}: {exc}", adapter="redis", stream=self.name
            ) from None
        for start in range(0, n, self.batch_size):
            chunk = table.slice(start, self.batch_size)
            payload, keys = self._encode(chunk)
            self.flush()  # the previous pipeline's replies: the server worked on it meanwhile
            conn = self.adapter.conn
            with conn.errors(self.name):
                conn.send(payload, chunk.num_rows * self.per_row)
            self.inflight = keys
        self.rows += n
        return WriteResult(rows=n, committed=False)

    def flush(self) -> None:
        from .connection import ReplyError

        conn = self.adapter.conn
        if not conn.pending:
            return
        keys, self.inflight = self.inflight, None
        try:
            with conn.errors(self.name):
                conn.replies(self.name)
        except ReplyError as exc:
            row = exc.index // max(self.per_row, 1)
            where = f" (row {row} of the pipeline)"
            if keys is not None and row < len(keys):
                where = f" (key {_show(keys[row].as_py())})"
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
        if self.upsert:
            cb.add(b"DEL", keys)
        if self.type == "hash":
            pairs = Pairs([(f.name, texts[f.name]) for f in self.stored], n)
            self._no_empty(pairs, chunk, keys)
            cb.add(b"HSET", keys, pairs)
        else:
            if self.type == "json":
                values = self._json_payloads(chunk.select([f.name for f in self.stored]))
            else:
                values = texts[self.adapter.config.value_field]
                if values.null_count:
                    row = pc.indices_nonzero(pc.is_null(values))[0].as_py()
                    raise SchemaError(
                        f"adapter 'redis', stream {self.name!r}, field {self.adapter.config.value_field!r}: "
                        f"null value (key {_show(keys[row].as_py())}): a string key cannot hold null",
                        adapter="redis",
                        stream=self.name,
                    )
            if self.ttl:
                cb.add(b"SET", keys, values, b"EX", str(self.ttl).encode())
            else:
                cb.add(b"SET", keys, values)
        if self.ttl and self.type == "hash":
            cb.add(b"EXPIRE", keys, str(self.ttl).encode())
        self.per_row = cb.per_row
        return cb.payload(), keys

    def _json_payloads(self, table: pa.Table) -> pa.Array:
        """One JSON object per row (decimals, bytes and date-times in their JSON forms)."""
        import pyarrow as pa

        from dc_api_x.arrow import ConversionError, arrow_to_records

        from .codec import check_json_numbers, dumps

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
            where = f"key {_show(keys[row].as_py())}" if keys is not None else f"row {row} of the batch"
            raise SchemaError(
                f"adapter 'redis', stream {self.name!r}: {where}: every field is null, and Redis has no "
                f"empty {'hash' if self.type == 'hash' else 'stream entry'}",
                adapter="redis",
                stream=self.name,
            )
