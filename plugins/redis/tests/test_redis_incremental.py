"""Incremental reads: Redis streams by entry id, key streams by a replication key (boundary bookmark)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from dc_api_x import AdapterError, Batch, ConfigError, StreamSpec, create_adapter

SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}, "label": {"type": ["string", "null"]}}}


def _write(url: str, plugins: Any, spec: StreamSpec, records: list[dict[str, Any]], **options: Any) -> None:
    with create_adapter({"adapter": "redis", "url": url, **options}, plugins=plugins) as dst:
        dst.start_write(spec)
        dst.write(spec, Batch.from_records(records, schema=spec.schema))
        dst.finish_write(spec)


def _read(url: str, plugins: Any, name: str, state: Any = None, **options: Any) -> list[Batch]:
    with create_adapter({"adapter": "redis", "url": url, **options}, plugins=plugins) as src:
        return list(src.read(src.get_stream(name), state=state))


def test_stream_entries_resume_after_the_bookmark_of_a_committed_batch(
    redis_url: str, plugins: Any, rclient: Any
) -> None:
    spec = StreamSpec("events", schema=SCHEMA)
    _write(redis_url, plugins, spec, [{"n": i, "label": f"e{i}"} for i in range(10)], type="stream")
    assert rclient.xlen("events") == 10
    batches = _read(redis_url, plugins, "events", batch_size=3)
    assert [len(b) for b in batches] == [3, 3, 3, 1]
    ids = [r["_id"] for b in batches for r in b.records]
    assert [b.bookmark for b in batches] == [
        {"replication_key": "_id", "replication_key_value": ids[i], "keys_at_value": [[ids[i]]]}
        for i in (2, 5, 8, 9)
    ]
    # the run stopped after the second batch was committed: the rest, no gap and no duplicate
    rest = _read(redis_url, plugins, "events", state=batches[1].bookmark, batch_size=3)
    assert [r["n"] for b in rest for r in b.records] == [6, 7, 8, 9]
    # new entries (written by anyone): a second run moves only them
    for i in range(10, 13):
        rclient.xadd("events", {"n": str(i), "label": f"e{i}"})
    new = _read(redis_url, plugins, "events", state=batches[-1].bookmark)
    assert [(r["n"], r["label"]) for b in new for r in b.records] == [(10, "e10"), (11, "e11"), (12, "e12")]
    assert _read(redis_url, plugins, "events", state=new[-1].bookmark) == []
    # a Singer state with bookmarks per stream works too
    again = _read(redis_url, plugins, "events", state={"bookmarks": {"events": batches[-1].bookmark}})
    assert [r["n"] for b in again for r in b.records] == [10, 11, 12]


def test_stream_state_of_another_key_means_a_full_read_and_a_bad_id_is_an_error(
    redis_url: str, plugins: Any, rclient: Any
) -> None:
    rclient.xadd("s", {"n": "1"})
    rclient.xadd("s", {"n": "2"})
    opts = {"streams": [{"name": "s", "type": "stream", "schema": {"n": {"type": "integer"}}}]}
    full = _read(
        redis_url, plugins, "s", state={"replication_key": "other", "replication_key_value": "x"}, **opts
    )
    assert [r["n"] for b in full for r in b.records] == [1, 2]
    with pytest.raises(AdapterError, match=r"stream 's': the bookmark 'yesterday' is not a stream entry id"):
        _read(
            redis_url,
            plugins,
            "s",
            state={"replication_key": "_id", "replication_key_value": "yesterday"},
            **opts,
        )
    with pytest.raises(ConfigError, match=r"read incrementally by its entry id"):
        _read(redis_url, plugins, "s", streams=[{"name": "s", "type": "stream", "replication_key": "n"}])


def test_stream_copy_keeps_entry_ids(redis_url: str, plugins: Any, rclient: Any) -> None:
    for i in range(4):
        rclient.xadd("src", {"n": str(i)}, id=f"{1000 + i}-{i}")
    opts = {"streams": [{"name": "src", "type": "stream", "schema": {"n": {"type": "integer"}}}]}
    with create_adapter({"adapter": "redis", "url": redis_url, **opts}, plugins=plugins) as src:
        spec = src.get_stream("src")
        batches = list(src.read(spec))
    _write(redis_url, plugins, spec.with_(name="dst"), [r for b in batches for r in b.records], type="stream")
    assert [e[0] for e in rclient.xrange("dst")] == [b"1000-0", b"1001-1", b"1002-2", b"1003-3"]
    assert rclient.xrange("dst")[0][1] == {b"n": b"0"}  # the id is not stored as a field


def test_stream_maxlen_trims(redis_url: str, plugins: Any, rclient: Any) -> None:
    spec = StreamSpec("capped", schema=SCHEMA)
    _write(
        redis_url,
        plugins,
        spec,
        [{"n": i} for i in range(50)],
        streams=[{"name": "capped", "type": "stream", "maxlen": 10, "approximate": False}],
    )
    assert rclient.xlen("capped") == 10
    assert [int(e[1][b"n"]) for e in rclient.xrange("capped")] == list(range(40, 50))


UPD = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "updated_at": {"type": "string", "format": "date-time"},
        "v": {"type": ["string", "null"]},
    },
}


def _t(h: int) -> dt.datetime:
    return dt.datetime(2024, 1, 1, h, tzinfo=dt.timezone.utc)


def test_hashes_incremental_by_a_replication_key_with_boundary_semantics(
    redis_url: str, plugins: Any, rclient: Any
) -> None:
    spec = StreamSpec("acct", schema=UPD, key_properties=("id",), replication_key="updated_at")
    _write(redis_url, plugins, spec, [{"id": i, "updated_at": _t(i % 4), "v": "a"} for i in range(20)])
    # the catalog carries the key properties and the replication key: reading back is incremental
    batches = _read(redis_url, plugins, "acct", batch_size=6)
    rows = [r for b in batches for r in b.records]
    assert sorted(r["id"] for r in rows) == list(range(20))
    assert [b.bookmark for b in batches[:-1]] == [None] * (len(batches) - 1)  # SCAN has no order
    bm = batches[-1].bookmark
    assert (
        bm["replication_key"] == "updated_at" and bm["replication_key_value"] == "2024-01-01T03:00:00+00:00"
    )
    assert sorted(k[0] for k in bm["keys_at_value"]) == [3, 7, 11, 15, 19]
    assert _read(redis_url, plugins, "acct", state=bm) == []  # nothing new: no batch, the state stays
    # an update, a new row at the boundary value and a new row after it
    _write(
        redis_url,
        plugins,
        spec,
        [
            {"id": 0, "updated_at": _t(5), "v": "b"},
            {"id": 20, "updated_at": _t(3), "v": "new at the boundary"},
            {"id": 21, "updated_at": _t(6), "v": "c"},
        ],
    )
    new = _read(redis_url, plugins, "acct", state=bm, batch_size=6)
    assert sorted((r["id"], r["v"]) for b in new for r in b.records) == [
        (0, "b"),
        (20, "new at the boundary"),
        (21, "c"),
    ]
    assert new[-1].bookmark["replication_key_value"] == "2024-01-01T06:00:00+00:00"
    assert new[-1].bookmark["keys_at_value"] == [[21]]


def test_json_documents_incremental_too(redis_url: str, plugins: Any) -> None:
    spec = StreamSpec("docs", schema=UPD, key_properties=("id",), replication_key="updated_at")
    _write(redis_url, plugins, spec, [{"id": i, "updated_at": _t(i)} for i in range(5)], type="json")
    first = _read(redis_url, plugins, "docs")
    assert sorted(r["id"] for b in first for r in b.records) == list(range(5))
    _write(redis_url, plugins, spec, [{"id": 9, "updated_at": _t(9)}], type="json")
    again = _read(redis_url, plugins, "docs", state=first[-1].bookmark)
    assert [r["id"] for b in again for r in b.records] == [9]


def test_catalog_lists_what_was_written(redis_url: str, plugins: Any, rclient: Any) -> None:
    import orjson

    _write(
        redis_url,
        plugins,
        StreamSpec("a", schema=UPD, key_properties=("id",)),
        [{"id": 1, "updated_at": _t(1)}],
    )
    _write(redis_url, plugins, StreamSpec("b", schema=SCHEMA), [{"n": 1}], type="stream")
    with create_adapter({"adapter": "redis", "url": redis_url}, plugins=plugins) as src:
        specs = {s.name: s for s in src.discover()}
    assert set(specs) == {"a", "b"}
    assert specs["a"].key_properties == ("id",) and specs["a"].options["redis"]["pattern"] == "a:*"
    assert list(specs["a"].schema["properties"]) == ["_key", "id", "updated_at", "v"]
    assert specs["b"].replication_key == "_id" and specs["b"].options["redis"]["key"] == "b"
    entry = orjson.loads(rclient.hget("dcapix:streams", "a"))
    assert entry["type"] == "hash" and entry["key"] == "{_stream}:{id}" and entry["schema"] == UPD
    with create_adapter({"adapter": "redis", "url": redis_url, "catalog_key": None}, plugins=plugins) as src:
        assert src.discover() == []


def test_a_stream_written_by_key_records_the_prefix_of_its_keys(
    redis_url: str, plugins: Any, rclient: Any
) -> None:
    """Records carrying ``_key`` keep their keys; the catalog learns a SCAN pattern that finds them."""
    import orjson

    schema = {"type": "object", "properties": {"_key": {"type": "string"}, "v": {"type": "integer"}}}
    spec = StreamSpec("copy", schema=schema, key_properties=("_key",))
    _write(redis_url, plugins, spec, [{"_key": "acct:eu:1", "v": 1}, {"_key": "acct:eu:2", "v": 2}])
    entry = orjson.loads(rclient.hget("dcapix:streams", "copy"))
    assert (entry["key"], entry["key_prefix"], entry["pattern"]) == (None, "acct:eu:", "acct:eu:*")
    _write(redis_url, plugins, spec, [{"_key": "acct:us:3", "v": 3}])  # a later run widens it
    entry = orjson.loads(rclient.hget("dcapix:streams", "copy"))
    assert (entry["key_prefix"], entry["pattern"]) == ("acct:", "acct:*")
    rows = [r for b in _read(redis_url, plugins, "copy") for r in b.records]
    assert sorted((r["_key"], r["v"]) for r in rows) == [("acct:eu:1", 1), ("acct:eu:2", 2), ("acct:us:3", 3)]
    assert rclient.hgetall("acct:eu:1") == {b"v": b"1"}  # the key is not stored as a field
