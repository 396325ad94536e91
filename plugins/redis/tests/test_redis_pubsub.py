"""Pub/sub: a bounded source (N messages or T seconds) and a sink, against the real server."""

from __future__ import annotations

import threading
import time
from decimal import Decimal
from typing import Any

import orjson
import pytest

from dc_api_x import Batch, ConfigError, StreamSpec, create_adapter


def publish_when_subscribed(
    client: Any, channel: str, messages: list[bytes], subscribers: int = 1
) -> threading.Thread:
    """Publish ``messages`` once ``subscribers`` listen on ``channel`` (pattern subscribers count via
    NUMPAT)."""

    def run() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            numsub = dict(client.pubsub_numsub(channel)).get(channel.encode(), 0)
            if numsub + client.pubsub_numpat() >= subscribers:
                break
            time.sleep(0.01)
        for m in messages:
            client.publish(channel, m)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


SCHEMA = {
    "n": {"type": "integer"},
    "price": {"type": "string", "format": "decimal", "x-precision": 10, "x-scale": 2},
    "at": {"type": "string", "format": "date-time"},
}


def test_source_stops_after_max_messages_with_typed_records(
    redis_url: str, plugins: Any, rclient: Any
) -> None:
    msgs = [orjson.dumps({"n": i, "price": f"{i}.50", "at": "2024-01-01T00:00:00Z"}) for i in range(7)]
    cfg = {
        "streams": [
            {
                "name": "ticks",
                "type": "pubsub",
                "channels": ["ticks"],
                "max_messages": 5,
                "max_seconds": 30,
                "schema": SCHEMA,
            }
        ],
        "batch_size": 2,
    }
    with create_adapter({"adapter": "redis", "url": redis_url, **cfg}, plugins=plugins) as src:
        spec = src.get_stream("ticks")
        assert spec.replication_key is None and next(iter(spec.schema["properties"])) == "_channel"
        t = publish_when_subscribed(rclient, "ticks", msgs)
        started = time.monotonic()
        batches = list(src.read(spec))
        t.join(5)
    assert time.monotonic() - started < 20
    assert [len(b) for b in batches] == [2, 2, 1] and all(b.bookmark is None for b in batches)
    rows = [r for b in batches for r in b.records]
    assert [r["n"] for r in rows] == [0, 1, 2, 3, 4]
    assert rows[1]["price"] == Decimal("1.50") and rows[0]["_channel"] == "ticks"
    assert rows[0]["at"].isoformat() == "2024-01-01T00:00:00+00:00"


def test_source_stops_after_max_seconds(redis_url: str, plugins: Any) -> None:
    cfg = {"streams": [{"name": "quiet", "type": "pubsub", "channels": ["nobody"], "max_seconds": 0.5}]}
    with create_adapter({"adapter": "redis", "url": redis_url, **cfg}, plugins=plugins) as src:
        started = time.monotonic()
        assert list(src.read(src.get_stream("quiet"))) == []
        assert 0.4 < time.monotonic() - started < 15  # bounded (generous: a loaded 2-core machine)


def test_source_patterns_text_and_schemaless_json(redis_url: str, plugins: Any, rclient: Any) -> None:
    cfg = {
        "streams": [
            {
                "name": "logs",
                "type": "pubsub",
                "patterns": ["log.*"],
                "message_format": "text",
                "max_messages": 2,
            },
            {"name": "raw", "type": "pubsub", "channels": ["raw"], "max_messages": 2},
        ]
    }
    with create_adapter({"adapter": "redis", "url": redis_url, **cfg}, plugins=plugins) as src:
        t = publish_when_subscribed(rclient, "log.app", [b"hello", "wörld".encode()])
        rows = [r for b in src.read(src.get_stream("logs")) for r in b.records]
        t.join(5)
        assert rows == [{"_channel": "log.app", "data": "hello"}, {"_channel": "log.app", "data": "wörld"}]
        t = publish_when_subscribed(rclient, "raw", [b"[1, 2]", b'{"a": {"b": null}}'])
        rows = [r for b in src.read(src.get_stream("raw")) for r in b.records]
        t.join(5)
        assert rows == [{"_channel": "raw", "data": [1, 2]}, {"_channel": "raw", "data": {"a": {"b": None}}}]


def test_an_unbounded_subscription_is_refused(redis_url: str, plugins: Any) -> None:
    cfg = {"streams": [{"name": "forever", "type": "pubsub", "channels": ["c"]}]}
    with create_adapter({"adapter": "redis", "url": redis_url, **cfg}, plugins=plugins) as src:
        spec = src.get_stream("forever")
        with pytest.raises(
            ConfigError, match=r"pubsub stream 'forever' must end: set 'max_messages' or 'max_seconds'"
        ):
            list(src.read(spec))
        # a run's --limit bounds it as well
        assert list(src.read(spec, limit=0)) == []
    with pytest.raises(ConfigError, match=r"set 'channels' or 'patterns'"):
        create_adapter(
            {"adapter": "redis", "url": redis_url, "streams": [{"name": "x", "type": "pubsub"}]},
            plugins=plugins,
        ).discover()


def test_sink_publishes_json_records_to_a_channel_template(
    redis_url: str, plugins: Any, rclient: Any
) -> None:
    schema = {
        "type": "object",
        "properties": {
            "kind": {"type": "string"},
            "n": {"type": "integer"},
            "amount": {"type": "string", "format": "decimal"},
        },
    }
    spec = StreamSpec("out", schema=schema)
    ps = rclient.pubsub(ignore_subscribe_messages=True)
    ps.psubscribe("events:*")
    ps.get_message(timeout=1)
    records = [{"kind": "a", "n": 1, "amount": Decimal("0.10")}, {"kind": "b", "n": 2, "amount": None}]
    with create_adapter(
        {
            "adapter": "redis",
            "url": redis_url,
            "streams": [{"name": "out", "type": "pubsub", "channel": "events:{kind}"}],
        },
        plugins=plugins,
    ) as dst:
        dst.start_write(spec)
        dst.write(spec, Batch.from_records(records, schema=schema))
        dst.finish_write(spec)
    got = []
    deadline = time.monotonic() + 5
    while len(got) < 2 and time.monotonic() < deadline:
        m = ps.get_message(timeout=0.5)
        if m:
            got.append((m["channel"], orjson.loads(m["data"])))
    ps.close()
    assert got == [
        (b"events:a", {"kind": "a", "n": 1, "amount": "0.10"}),
        (b"events:b", {"kind": "b", "n": 2, "amount": None}),
    ]
    assert rclient.hget("dcapix:streams", "out") is None  # nothing to read back later: not cataloged
