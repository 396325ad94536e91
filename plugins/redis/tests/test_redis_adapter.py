"""The ``redis`` adapter against a real redis-server: exact round trips, keys, streams, errors."""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from typing import Any

import pytest

from dc_api_x import AdapterError, Batch, ConfigError, SchemaError, StreamSpec, create_adapter

SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "name": {"type": ["string", "null"]},
        "amount": {"type": ["string", "null"], "format": "decimal", "x-precision": 38, "x-scale": 9},
        "loose": {"type": ["string", "null"], "format": "decimal"},
        "score": {"type": ["number", "null"]},
        "big": {"type": ["integer", "null"]},
        "active": {"type": ["boolean", "null"]},
        "ts": {"type": ["string", "null"], "format": "date-time"},
        "naive": {"type": ["string", "null"], "format": "date-time", "x-timezone": False},
        "day": {"type": ["string", "null"], "format": "date"},
        "t": {"type": ["string", "null"], "format": "time"},
        "blob": {"type": ["string", "null"], "contentEncoding": "base64"},
        "meta": {"type": ["object", "null"], "properties": {"a": {"type": ["integer", "null"]}}},
        "tags": {"type": ["array", "null"], "items": {"type": "string"}},
        "doc": {"x-json": True},
    },
}
UTC = dt.timezone.utc
RECORDS: list[dict[str, Any]] = [
    {
        "id": 1,
        "name": "héllo wörld ✓",
        "amount": Decimal("12345678901234567890.123456789"),
        "loose": "1e-30",
        "score": 0.1,
        "big": 2**63 - 1,
        "active": True,
        "ts": dt.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
        "naive": dt.datetime(1999, 12, 31, 23, 59, 59, 999999),
        "day": dt.date(2024, 2, 29),
        "t": dt.time(1, 2, 3, 4),
        "blob": b"\x00\xff\r\n$3\r\n",
        "meta": {"a": 5},
        "tags": ["x", "y, z", ""],
        "doc": {"k": [1, 2.5, None, "s"]},
    },
    {
        "id": 2,
        "name": "",
        "amount": Decimal("-0.000000001"),
        "loose": None,
        "score": 1e20,
        "big": -(2**63),
        "active": False,
        "ts": dt.datetime(1970, 1, 1, tzinfo=UTC),
        "naive": None,
        "day": None,
        "t": None,
        "blob": b"",
        "meta": {"a": None},
        "tags": [],
        "doc": "just a string",
    },
    {
        "id": 3,
        "name": "\r\n*3\r\n$3\r\nDEL\r\n",  # RESP-looking text is data
        "amount": None,
        "loose": "0.10",
        "score": -0.0,
        "big": 0,
        "active": None,
        "ts": dt.datetime(2024, 6, 1, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=2))),
        "naive": dt.datetime(2024, 6, 1),
        "day": dt.date(1, 1, 1),
        "t": dt.time(23, 59, 59, 999999),
        "blob": None,
        "meta": None,
        "tags": None,
        "doc": None,
    },
    {"id": 4, "name": None, "score": math.inf},
]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    return bool(a == b)


def _expected(rec: dict[str, Any]) -> dict[str, Any]:
    out = {k: rec.get(k) for k in SCHEMA["properties"]}
    if isinstance(out["ts"], dt.datetime):
        out["ts"] = out["ts"].astimezone(UTC)
    return out


def write(url: str, plugins: Any, spec: StreamSpec, records: list[dict[str, Any]], **options: Any) -> None:
    load_method = options.pop("load_method", "append")
    with create_adapter({"adapter": "redis", "url": url, **options}, plugins=plugins) as dst:
        dst.start_write(spec, load_method=load_method)
        res = dst.write(spec, Batch.from_records(records, schema=spec.schema))
        assert res.rows == len(records) and res.committed is False
        dst.finish_write(spec)


def read_all(url: str, plugins: Any, name: str, state: Any = None, **options: Any) -> tuple[list[dict], Any]:
    with create_adapter({"adapter": "redis", "url": url, **options}, plugins=plugins) as src:
        spec = src.get_stream(name)
        out, bookmark = [], None
        for batch in src.read(spec, state=state):
            out.extend(batch.records)
            bookmark = batch.bookmark or bookmark
        return out, bookmark


@pytest.mark.parametrize("typ", ["hash", "json", "stream"])
def test_every_type_round_trips_exactly(redis_url: str, plugins: Any, typ: str) -> None:
    records = RECORDS if typ != "json" else [{**r, "score": 2.5} if r["id"] == 4 else r for r in RECORDS]
    spec = StreamSpec(f"all_{typ}", schema=SCHEMA, key_properties=("id",))
    write(redis_url, plugins, spec, records, streams=[{"name": spec.name, "type": typ}])
    out, _ = read_all(redis_url, plugins, spec.name)
    assert len(out) == len(records)
    out.sort(key=lambda r: r["id"])
    for want, got in zip(records, out, strict=True):
        exp = _expected(want)
        for k, v in exp.items():
            assert _same(v, got[k]), (typ, k, v, got[k])
        lead = "_id" if typ == "stream" else "_key"
        assert set(got) == {lead, *SCHEMA["properties"]}


def test_nan_and_infinity_round_trip_in_hashes_and_are_refused_in_json(redis_url: str, plugins: Any) -> None:
    schema = {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "x": {"type": ["number", "null"]},
            "xs": {"type": ["array", "null"], "items": {"type": "number"}},
        },
    }
    spec = StreamSpec("nan", schema=schema, key_properties=("id",))
    write(redis_url, plugins, spec, [{"id": 1, "x": math.nan}, {"id": 2, "x": -math.inf}])
    out, _ = read_all(redis_url, plugins, "nan")
    got = {r["id"]: r["x"] for r in out}
    assert math.isnan(got[1]) and got[2] == -math.inf
    jspec = spec.with_(name="nanj")
    with pytest.raises(SchemaError, match=r"stream 'nanj': field 'x': inf has no JSON form"):
        write(
            redis_url, plugins, jspec, [{"id": 1, "x": math.inf}], streams=[{"name": "nanj", "type": "json"}]
        )
    with pytest.raises(SchemaError, match=r"field 'xs': nan has no JSON form"):
        write(redis_url, plugins, spec, [{"id": 3, "xs": [1.0, math.nan]}])  # nested: JSON text in the hash


def test_hash_layout_is_the_documented_text_form(redis_url: str, plugins: Any, rclient: Any) -> None:
    spec = StreamSpec("users", schema=SCHEMA, key_properties=("id",))
    write(redis_url, plugins, spec, RECORDS[:2], key="user:{id}")
    h = rclient.hgetall("user:1")
    assert h[b"id"] == b"1"
    assert h[b"name"] == "héllo wörld ✓".encode()
    assert h[b"amount"] == b"12345678901234567890.123456789"
    assert h[b"score"] == b"0.1"
    assert h[b"active"] == b"true"
    assert h[b"ts"] == b"2024-01-02T03:04:05.000006+00:00"
    assert h[b"naive"] == b"1999-12-31T23:59:59.999999"
    assert h[b"day"] == b"2024-02-29"
    assert h[b"t"] == b"01:02:03.000004"
    assert h[b"blob"] == b"\x00\xff\r\n$3\r\n"
    assert h[b"meta"] == b'{"a":5}'
    assert h[b"doc"] == b'{"k":[1,2.5,null,"s"]}'
    h2 = rclient.hgetall("user:2")
    assert b"loose" not in h2 and b"naive" not in h2  # null: no field
    assert h2[b"name"] == b"" and h2[b"blob"] == b""  # empty is not null
    assert h2[b"doc"] == b'"just a string"'
    assert sorted(rclient.keys("user:*")) == [b"user:1", b"user:2"]


def test_json_and_string_layouts(redis_url: str, plugins: Any, rclient: Any) -> None:
    import orjson

    spec = StreamSpec("docs", schema=SCHEMA, key_properties=("id",))
    write(
        redis_url, plugins, spec, RECORDS[:1], streams=[{"name": "docs", "type": "json", "key": "doc:{id}"}]
    )
    doc = orjson.loads(rclient.get("doc:1"))
    assert (
        doc["amount"] == "12345678901234567890.123456789" and doc["ts"] == "2024-01-02T03:04:05.000006+00:00"
    )
    assert doc["blob"] == "AP8NCiQzDQo=" and doc["meta"] == {"a": 5}

    sschema = {"type": "object", "properties": {"k": {"type": "string"}, "value": {"type": "integer"}}}
    sspec = StreamSpec("counters", schema=sschema, key_properties=("k",))
    write(
        redis_url,
        plugins,
        sspec,
        [{"k": "a", "value": 1}, {"k": "b", "value": -7}],
        streams=[{"name": "counters", "type": "string", "key": "counter:{k}"}],
    )
    assert rclient.get("counter:a") == b"1" and rclient.get("counter:b") == b"-7"
    out, _ = read_all(redis_url, plugins, "counters")
    assert sorted((r["_key"], r["value"]) for r in out) == [("counter:a", 1), ("counter:b", -7)]


def test_ttl_is_set_on_hashes_and_strings(redis_url: str, plugins: Any, rclient: Any) -> None:
    spec = StreamSpec(
        "s", schema={"type": "object", "properties": {"id": {"type": "integer"}}}, key_properties=("id",)
    )
    write(redis_url, plugins, spec, [{"id": 1}, {"id": 2}], ttl=100)
    assert 90 < rclient.ttl("s:1") <= 100 and 90 < rclient.ttl("s:2") <= 100
    write(redis_url, plugins, spec, [{"id": 3}], streams=[{"name": "s", "type": "json", "ttl": 50}])
    assert 40 < rclient.ttl("s:3") <= 50
    assert rclient.ttl("dcapix:streams") == -1  # the catalog does not expire


def test_append_merges_fields_and_upsert_replaces_the_hash(
    redis_url: str, plugins: Any, rclient: Any
) -> None:
    schema = {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "a": {"type": ["string", "null"]},
            "b": {"type": ["string", "null"]},
        },
    }
    spec = StreamSpec("m", schema=schema, key_properties=("id",))
    write(redis_url, plugins, spec, [{"id": 1, "a": "x", "b": "y"}])
    write(redis_url, plugins, spec, [{"id": 1, "a": "x2", "b": None}])  # append: HSET merges
    assert rclient.hgetall("m:1") == {b"id": b"1", b"a": b"x2", b"b": b"y"}
    write(redis_url, plugins, spec, [{"id": 1, "a": "x3", "b": None}], load_method="upsert")
    assert rclient.hgetall("m:1") == {b"id": b"1", b"a": b"x3"}


def test_many_rows_in_several_pipelines_and_batches(redis_url: str, plugins: Any, rclient: Any) -> None:
    schema = {"type": "object", "properties": {"id": {"type": "integer"}, "v": {"type": "string"}}}
    spec = StreamSpec("big", schema=schema, key_properties=("id",))
    rows = [{"id": i, "v": f"v{i}" * (i % 7)} for i in range(25_000)]
    with create_adapter({"adapter": "redis", "url": redis_url, "batch_size": 4_000}, plugins=plugins) as dst:
        dst.start_write(spec)
        for i in range(0, len(rows), 9_000):
            dst.write(spec, Batch.from_records(rows[i : i + 9_000], schema=schema))
        dst.flush(spec)
        assert rclient.dbsize() == 25_000 + 1  # + the catalog: everything applied after flush()
        dst.finish_write(spec)
    with create_adapter(
        {"adapter": "redis", "url": redis_url, "batch_size": 3_000, "scan_count": 500}, plugins=plugins
    ) as src:
        batches = list(src.read(src.get_stream("big")))
    assert all(len(b) <= 3_000 for b in batches)
    got = sorted((r["id"], r["v"]) for b in batches for r in b.records)
    assert got == [(r["id"], r["v"]) for r in rows]


def test_columns_and_limit(redis_url: str, plugins: Any) -> None:
    schema = {"type": "object", "properties": {"id": {"type": "integer"}, "v": {"type": "string"}}}
    spec = StreamSpec("cl", schema=schema, key_properties=("id",))
    write(redis_url, plugins, spec, [{"id": i, "v": str(i)} for i in range(50)])
    with create_adapter({"adapter": "redis", "url": redis_url, "batch_size": 7}, plugins=plugins) as src:
        s = src.get_stream("cl")
        rows = [r for b in src.read(s, columns=["id"], limit=20) for r in b.records]
    assert len(rows) == 20 and all(set(r) == {"id"} for r in rows)
    assert len({r["id"] for r in rows}) == 20


def test_keys_written_by_others_are_read_with_a_configured_schema(
    redis_url: str, plugins: Any, rclient: Any
) -> None:
    for i in range(5):
        rclient.hset(
            f"legacy:{i}", mapping={"n": str(i * 10), "when": f"2024-01-0{i + 1}T00:00:00Z", "x": "1"}
        )
    rclient.set("legacy:not-a-hash", "ignored")  # SCAN ... TYPE hash skips it
    cfg = {
        "streams": [
            {
                "name": "legacy",
                "pattern": "legacy:*",
                "primary_keys": ["_key"],
                "schema": {
                    "n": {"type": "integer"},
                    "when": {"type": "string", "format": "date-time"},
                    "x": {"type": "boolean"},
                },
            }
        ]
    }
    out, _ = read_all(redis_url, plugins, "legacy", **cfg)
    got = sorted((r["_key"], r["n"], r["when"], r["x"]) for r in out)
    assert got == [(f"legacy:{i}", i * 10, dt.datetime(2024, 1, i + 1, tzinfo=UTC), True) for i in range(5)]
    # without a schema every field is a string: nothing is guessed
    out, _ = read_all(redis_url, plugins, "legacy", streams=[{"name": "legacy", "pattern": "legacy:*"}])
    assert sorted(r["n"] for r in out) == ["0", "10", "20", "30", "40"]


def test_a_field_outside_the_schema_is_an_error_naming_the_key(
    redis_url: str, plugins: Any, rclient: Any
) -> None:
    rclient.hset("p:1", mapping={"a": "1"})
    rclient.hset("p:2", mapping={"a": "2", "surprise": "!"})
    # a complete schema (x-replace): the sample of keys is not merged in
    cfg = {
        "streams": [{"name": "p", "schema": {"x-replace": True, "properties": {"a": {"type": "integer"}}}}]
    }
    with pytest.raises(SchemaError, match=r"stream 'p': key 'p:2' has field 'surprise'"):
        read_all(redis_url, plugins, "p", **cfg)
    out, _ = read_all(redis_url, plugins, "p", extra_fields="ignore", **cfg)
    assert sorted(r["a"] for r in out) == [1, 2]


def test_a_bad_value_is_an_error_naming_stream_field_and_key(
    redis_url: str, plugins: Any, rclient: Any
) -> None:
    rclient.hset("q:1", mapping={"n": "1"})
    rclient.hset("q:2", mapping={"n": "1.5"})  # not an integer: never rounded
    with pytest.raises(SchemaError, match=r"stream 'q', field 'n': key 'q:2'"):
        read_all(redis_url, plugins, "q", streams=[{"name": "q", "schema": {"n": {"type": "integer"}}}])
    rclient.hset("r:1", mapping={"d": "1.005"})
    with pytest.raises(SchemaError, match=r"field 'd'"):
        read_all(
            redis_url,
            plugins,
            "r",
            streams=[
                {
                    "name": "r",
                    "schema": {"d": {"type": "string", "format": "decimal", "x-precision": 10, "x-scale": 2}},
                }
            ],
        )


def test_writing_bad_records_fails_with_one_line(redis_url: str, plugins: Any) -> None:
    schema = {
        "type": "object",
        "properties": {"id": {"type": ["integer", "null"]}, "v": {"type": ["string", "null"]}},
    }
    spec = StreamSpec("w", schema=schema, key_properties=("id",))
    with pytest.raises(SchemaError, match=r"field 'id': null in row 1 of the batch"):
        write(redis_url, plugins, spec, [{"id": 1, "v": "a"}, {"id": None, "v": "b"}])
    vschema = {"type": "object", "properties": {"v": {"type": ["string", "null"]}}}
    with pytest.raises(SchemaError, match=r"key 'w:3': every field is null"):
        write(redis_url, plugins, StreamSpec("w", schema=vschema), [{"v": None}], key="w:3")
    with pytest.raises(SchemaError, match=r"field 'id'"):
        write(redis_url, plugins, spec, [{"id": "x"}])
    with pytest.raises(ConfigError, match=r"no '_key' field and no key properties"):
        write(redis_url, plugins, StreamSpec("nokey", schema=schema), [{"id": 1}])
    with pytest.raises(ConfigError, match=r"key template 'w:\{nope\}' names 'nope'"):
        write(redis_url, plugins, spec, [{"id": 1}], key="w:{nope}")
    with pytest.raises(AdapterError, match=r"unknown load_method 'overwrite'"):
        write(redis_url, plugins, spec, [{"id": 1}], load_method="overwrite")


def test_a_server_error_reply_names_the_key(redis_url: str, plugins: Any, rclient: Any) -> None:
    rclient.set("clash:2", "a string, not a hash")
    schema = {"type": "object", "properties": {"id": {"type": "integer"}}}
    spec = StreamSpec("clash", schema=schema, key_properties=("id",))
    with pytest.raises(AdapterError, match=r"stream 'clash': WRONGTYPE.*\(key 'clash:2'\)"):
        write(redis_url, plugins, spec, [{"id": 1}, {"id": 2}, {"id": 3}])
    assert rclient.hgetall("clash:3") == {b"id": b"3"}  # the pipeline was read to its end


def test_connection_errors_are_one_line_with_the_password_redacted(plugins: Any) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"redis://user:s3cr3t-pass@127.0.0.1:{port}/0"
    with (
        create_adapter(
            {"adapter": "redis", "url": url, "socket_timeout": 2, "streams": ["x"]}, plugins=plugins
        ) as src,
        pytest.raises(AdapterError) as info,
    ):
        src.discover()
    msg = str(info.value)
    assert "s3cr3t-pass" not in msg and "\n" not in msg
    assert msg.startswith("adapter 'redis'") and f"127.0.0.1:{port}" in msg


def test_config_errors_name_the_option(plugins: Any) -> None:
    with pytest.raises(ConfigError, match=r"adapter 'redis': option 'streams.0.type'"):
        create_adapter({"adapter": "redis", "streams": [{"name": "x", "type": "list"}]}, plugins=plugins)
    with pytest.raises(ConfigError, match=r"option 'batch_size'"):
        create_adapter({"adapter": "redis", "batch_size": 0}, plugins=plugins)
    with pytest.raises(ConfigError, match=r"option 'colour': unknown option"):
        create_adapter({"adapter": "redis", "colour": "red"}, plugins=plugins)


def test_url_and_timeout_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, plugins: Any, redis_url: str, rclient: Any
) -> None:
    monkeypatch.setenv("DC_API_X_REDIS_URL", redis_url)
    monkeypatch.setenv("DC_API_X_REDIS_TIMEOUT", "7")
    rclient.hset("env:1", "a", "b")
    with create_adapter({"adapter": "redis", "streams": [{"name": "env"}]}, plugins=plugins) as src:
        assert src.config.url == redis_url and src.config.socket_timeout == 7
        assert [r["a"] for b in src.read(src.get_stream("env")) for r in b.records] == ["b"]
    monkeypatch.delenv("DC_API_X_REDIS_URL")
    monkeypatch.setenv("REDIS_URL", "redis://elsewhere:1/2")
    assert create_adapter({"adapter": "redis"}, plugins=plugins).config.url == "redis://elsewhere:1/2"


def test_scan_returns_each_key_once_while_the_keyspace_grows(
    redis_url: str, plugins: Any, rclient: Any
) -> None:
    """SCAN may return a key twice when the table is rehashed during the scan: never a duplicate row."""
    pipe = rclient.pipeline(transaction=False)
    for i in range(3000):
        pipe.hset(f"g:{i}", "i", i)
    pipe.execute()
    with create_adapter(
        {
            "adapter": "redis",
            "url": redis_url,
            "scan_count": 50,
            "batch_size": 100,
            "streams": [{"name": "g", "schema": {"i": {"type": "integer"}}}],
        },
        plugins=plugins,
    ) as src:
        seen = []
        for n, batch in enumerate(src.read(src.get_stream("g"))):
            seen.extend(r["i"] for r in batch.records)
            if n < 10:  # grow the keyspace (rehashing) while the scan runs, under another prefix
                p2 = rclient.pipeline(transaction=False)
                for j in range(2000):
                    p2.set(f"other:{n}:{j}", 1)
                p2.execute()
    assert sorted(seen) == list(range(3000))


def test_two_streams_written_interleaved_on_one_adapter(redis_url: str, plugins: Any, rclient: Any) -> None:
    """Each stream has its own pipe: its replies (and errors) are never taken for another stream's."""
    schema = {"type": "object", "properties": {"id": {"type": "integer"}}}
    a, b = (
        StreamSpec("a", schema=schema, key_properties=("id",)),
        StreamSpec("b", schema=schema, key_properties=("id",)),
    )
    rclient.set("b:7", "not a hash")
    with create_adapter({"adapter": "redis", "url": redis_url, "batch_size": 3}, plugins=plugins) as dst:
        dst.start_write(a)
        dst.start_write(b)
        for i in range(0, 30, 10):
            dst.write(a, Batch.from_records([{"id": j} for j in range(i, i + 10)], schema=schema))
            if i == 0:
                dst.write(b, Batch.from_records([{"id": j} for j in range(10)], schema=schema))
        dst.flush(a)  # a's rows are all applied; b's error is not a's
        assert len(rclient.keys("a:*")) == 30
        with pytest.raises(AdapterError, match=r"stream 'b': WRONGTYPE.*\(key 'b:7'\)"):
            dst.finish_write(b)
        dst.write(a, Batch.from_records([{"id": 99}], schema=schema))
        dst.finish_write(a)
    assert len(rclient.keys("a:*")) == 31


def test_upsert_replaces_each_hash_in_a_transaction(redis_url: str, plugins: Any, rclient: Any) -> None:
    schema = {"type": "object", "properties": {"id": {"type": "integer"}, "a": {"type": ["string", "null"]}}}
    spec = StreamSpec("u", schema=schema, key_properties=("id",))
    rclient.set("u:2", "a string before")  # replaced as a whole, whatever it was
    write(redis_url, plugins, spec, [{"id": 1, "a": "x"}, {"id": 2, "a": None}], load_method="upsert", ttl=30)
    assert rclient.hgetall("u:2") == {b"id": b"2"} and 0 < rclient.ttl("u:2") <= 30
    rclient.config_set("maxmemory", 1)  # every write is refused while the transaction is queued
    try:
        oom = r"stream 'u': command not allowed when used memory.*\(key 'u:1'\)"
        with pytest.raises(AdapterError, match=oom):
            write(redis_url, plugins, spec, [{"id": 1, "a": "y"}], load_method="upsert", catalog_key=None)
    finally:
        rclient.config_set("maxmemory", 0)
    assert rclient.hgetall("u:1") == {b"id": b"1", b"a": b"x"}  # nothing half done


def test_an_error_inside_exec_is_an_error_of_the_pipeline(redis_url: str, plugins: Any) -> None:
    from dc_api_x_redis.connection import ReplyError, pack

    with create_adapter({"adapter": "redis", "url": redis_url}, plugins=plugins) as a:
        pipe = a.conn.pipe()
        payload = pack("MULTI") + pack("SET", "k", "v") + pack("HSET", "k", "f", "v") + pack("EXEC")
        pipe.send(payload + pack("PING"), 5)
        with pytest.raises(ReplyError, match="WRONGTYPE") as info:
            pipe.replies("s")
        assert info.value.index == 3
        pipe.send(pack("PING"), 1)  # the connection is still in step
        assert pipe.replies("s") == [b"PONG"]
        pipe.close()
