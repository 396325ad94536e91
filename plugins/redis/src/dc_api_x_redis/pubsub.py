"""Pub/sub as a bounded source: ``SUBSCRIBE``/``PSUBSCRIBE`` until ``max_messages`` or ``max_seconds``.

Redis pub/sub keeps nothing: a message published while nobody listens is gone, and a stream of
messages has no position to resume from, so a pub/sub stream is read without bookmark. The read
starts listening when it starts and stops after ``max_messages`` messages (or the run's ``limit``)
or ``max_seconds`` seconds, whichever comes first; at least one of them is required. With
``message_format: json`` each message is a JSON object (one record; with no ``schema`` the whole
message is the ``data`` field); with ``text`` the message text is the ``data`` field. The channel
is added as ``_channel`` (option ``channel_field``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from dc_api_x.exceptions import ConfigError, SchemaError
from dc_api_x.types import Batch, StreamSpec

from .forms import text

if TYPE_CHECKING:  # pragma: no cover
    from .adapter import RedisAdapter

__all__ = ["read_pubsub"]


def read_pubsub(
    adapter: RedisAdapter, stream: StreamSpec, opts: Mapping[str, Any], limit: int | None
) -> Iterator[Batch]:
    """Messages of the stream's channels until ``max_messages`` / ``max_seconds`` / ``limit``."""
    import orjson

    from dc_api_x.arrow import ConversionError, records_to_arrow

    name = stream.name
    sc = adapter._stream_config(name)
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
    lead = adapter.config.channel_field
    wrap = bool(opts.get("wrap"))
    props = set(stream.schema.get("properties") or {})
    size = adapter.config.batch_size
    with adapter.conn.errors(name):
        ps = adapter.conn.client.pubsub(ignore_subscribe_messages=True)
    try:
        with adapter.conn.errors(name):
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
            with adapter.conn.errors(name):
                msg = ps.get_message(ignore_subscribe_messages=True, timeout=min(wait, 1.0))
            if msg is None or msg.get("type") not in ("message", "pmessage"):
                continue
            data = msg["data"]
            channel = text(msg["channel"], name)
            if fmt == "text":
                rec: dict[str, Any] = {"data": text(data, name)}
            else:
                try:
                    doc = orjson.loads(data)
                except orjson.JSONDecodeError as exc:
                    raise SchemaError(
                        f"adapter 'redis', stream {name!r}: a message on {channel!r} is not JSON ({exc})",
                        adapter=adapter.name,
                        stream=name,
                    ) from None
                if wrap:
                    rec = {"data": doc}
                elif not isinstance(doc, dict):
                    raise SchemaError(
                        f"adapter 'redis', stream {name!r}: a message on {channel!r} is a "
                        f"{type(doc).__name__}, not a JSON object",
                        adapter=adapter.name,
                        stream=name,
                    )
                else:
                    rec = doc
                    if adapter.config.extra_fields == "error" and not props.issuperset(doc):
                        extra = next(x for x in doc if x not in props)
                        raise SchemaError(
                            f"adapter 'redis', stream {name!r}: a message on {channel!r} has field "
                            f"{extra!r}, which the stream's schema does not list",
                            adapter=adapter.name,
                            stream=name,
                        )
            if lead:
                rec[lead] = channel
            buf.append(rec)
            count += 1
            if len(buf) >= size:
                yield _records_batch(adapter, buf, stream, records_to_arrow, ConversionError)
                buf = []
        if buf:
            yield _records_batch(adapter, buf, stream, records_to_arrow, ConversionError)
    finally:
        try:
            ps.close()
        except Exception:  # pragma: no cover - closing a broken connection
            pass


def _records_batch(
    adapter: RedisAdapter, records: list[dict[str, Any]], stream: StreamSpec, to_arrow: Any, err: Any
) -> Batch:
    from dc_api_x.arrow import jsonschema_to_arrow

    try:
        table = to_arrow(records, arrow_schema=jsonschema_to_arrow(stream.schema))
    except err as exc:
        raise SchemaError(
            f"adapter 'redis', stream {stream.name!r}: {exc}", adapter=adapter.name, stream=stream.name
        ) from None
    return Batch.from_arrow(table, schema=stream.schema)
