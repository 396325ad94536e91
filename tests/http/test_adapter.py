"""The ``http`` adapter's ETL side (discover / read / incremental) and request side, on the real server."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from dc_api_x import (
    AdapterError,
    ConfigError,
    HTTPStatusError,
    ResponseDecodeError,
    StreamSpec,
    UnknownPluginError,
    create_adapter,
)
from dc_api_x.adapters._http import infer_schema
from tests.http.conftest import OFFSET, cursor_route, make_rows, offset_route


def http(server, streams: list[dict[str, Any]], **kw: Any):
    return create_adapter(
        {
            "adapter": "http",
            "base_url": server.url,
            "streams": streams,
            "retries": {"backoff_factor": 0.01},
            **kw,
        }
    )


def all_records(batches) -> list[dict[str, Any]]:
    return [r for b in batches for r in b.records]


# ---------------------------------------------------------------------------------- discover
def test_discover_infers_schema_from_first_page(server):
    rows = [
        {
            "id": 1,
            "name": "a",
            "at": "2024-01-01T00:00:00Z",
            "local": "2024-01-01T10:00:00",
            "day": "2024-02-03",
            "price": 1.5,
            "n": None,
            "ok": True,
            "tags": ["x"],
            "meta": {"k": 1},
            "mixed": 1,
        },
        {
            "id": 2,
            "name": None,
            "at": "2024-01-02T00:00:00.123+02:00",
            "local": "2024-01-01T11:00:00",
            "day": "2024-02-04",
            "price": 2,
            "n": None,
            "ok": False,
            "tags": [],
            "meta": None,
            "mixed": "x",
        },
    ]
    server.route("GET", "/items", lambda req: (200, {}, {"data": rows}))
    with http(
        server,
        [
            {
                "name": "items",
                "path": "/items",
                "records_path": "data",
                "primary_key": "id",
                "replication_key": "at",
            },
            {
                "name": "fixed",
                "path": "/items",
                "records_path": "data",
                "schema": {"type": "object", "properties": {"id": {"type": "integer"}}},
            },
        ],
    ) as api:
        specs = {s.name: s for s in api.discover()}
    items = specs["items"]
    assert items.key_properties == ("id",) and items.replication_key == "at"
    assert items.replication_method == "INCREMENTAL"
    props = items.schema["properties"]
    assert props["id"] == {"type": ["integer", "null"]}
    assert props["name"] == {"type": ["string", "null"]}
    assert props["at"] == {"type": ["string", "null"], "format": "date-time"}
    assert props["local"] == {"type": ["string", "null"], "format": "date-time", "x-timezone": False}
    assert props["day"] == {"type": ["string", "null"], "format": "date"}
    assert props["price"] == {"type": ["number", "null"]}
    assert props["ok"] == {"type": ["boolean", "null"]}
    assert props["tags"]["x-json"] and props["meta"]["x-json"] and props["mixed"]["x-json"]
    assert props["n"] == {"type": ["string", "null"]}
    assert specs["fixed"].schema == {"type": "object", "properties": {"id": {"type": "integer"}}}
    assert len(server.requests) == 1  # only the stream without a schema was sampled


def test_inferred_schema_converts_to_arrow():
    schema = infer_schema(make_rows(3))
    from dc_api_x import Batch

    table = Batch.from_records(make_rows(3), schema=schema).to_arrow()
    assert table.num_rows == 3 and str(table.schema.field("updated_at").type).startswith("timestamp")


# ---------------------------------------------------------------------------------- full table
def test_read_offset_pages_combined_into_batches(server, monkeypatch):
    from dc_api_x.adapters import _http_read

    server.route("GET", "/items", offset_route(make_rows(35)))
    stream = {"name": "items", "path": "/items", "records_path": "records", "primary_keys": ["id"]}
    with http(server, [stream], pagination=OFFSET, pages_per_batch=1) as api:
        assert [len(b) for b in api.read(api.get_stream("items"))] == [10, 10, 10, 5]
    # default: pages combined until a batch holds BATCH_ROWS records (or BATCH_SECONDS went by)
    with http(server, [stream], pagination=OFFSET) as api:
        assert [len(b) for b in api.read(api.get_stream("items"))] == [35]
        monkeypatch.setattr(_http_read, "BATCH_ROWS", 15)
        assert [len(b) for b in api.read(api.get_stream("items"))] == [20, 15]
        monkeypatch.setattr(_http_read, "BATCH_SECONDS", 0.0)
        batches = list(api.read(api.get_stream("items")))
    assert [len(b) for b in batches] == [10, 10, 10, 5]
    assert [r["id"] for r in all_records(batches)] == list(range(35))
    assert all(b.bookmark is None for b in batches)
    assert batches[0].schema["properties"]["id"] == {"type": ["integer", "null"]}


def test_read_pages_per_batch_limit_and_columns(server):
    server.route("GET", "/c", cursor_route(make_rows(47), size=10))
    cursor = {"type": "cursor", "cursor_path": "next", "cursor_param": "cursor"}
    with http(
        server,
        [{"name": "c", "path": "/c", "records_path": "records", "pages_per_batch": 2, "pagination": cursor}],
    ) as api:
        spec = StreamSpec(name="c")
        assert [len(b) for b in api.read(spec)] == [20, 20, 7]
        server.requests.clear()
        batches = list(api.read(spec, limit=15, columns=["id", "name"]))
    assert [r["id"] for r in all_records(batches)] == list(range(15))
    assert set(all_records(batches)[0]) == {"id", "name"}
    assert len(server.requests) == 2  # stopped as soon as the limit was reached


def test_read_errors_name_stream_and_url(server):
    server.route("GET", "/html", lambda req: (200, {"content-type": "text/html"}, "<p>maintenance</p>"))
    server.route("GET", "/gone", lambda req: (410, {}, {"error": "gone"}))
    server.route("GET", "/bad", lambda req: (200, {}, {"records": [1, 2]}))
    with http(
        server,
        [
            {"name": "h", "path": "/html", "params": {"api_key": "sekr1t-k"}},
            {"name": "g", "path": "/gone"},
            {"name": "b", "path": "/bad", "records_path": "records"},
        ],
    ) as api:
        with pytest.raises(ResponseDecodeError) as ei:
            list(api.read(StreamSpec("h")))
        assert "'h'" in str(ei.value) and "/html" in str(ei.value) and "sekr1t-k" not in str(ei.value)
        with pytest.raises(HTTPStatusError) as ei2:
            list(api.read(StreamSpec("g")))
        assert "'g'" in str(ei2.value) and "410" in str(ei2.value) and "/gone" in str(ei2.value)
        with pytest.raises(ResponseDecodeError, match="record #0"):
            list(api.read(StreamSpec("b")))
        with pytest.raises(AdapterError, match="unknown stream 'zzz'; known: h, g, b"):
            list(api.read(StreamSpec("zzz")))


# ---------------------------------------------------------------------------------- incremental
class IncrementalAPI:
    """Records sorted by (updated_at, id); ``?since=V`` returns records with updated_at >= V."""

    def __init__(self, server, rows: list[dict[str, Any]]) -> None:
        self.rows = rows
        server.route("GET", "/events", self.handle)

    def handle(self, req):
        since = req.arg("since")
        rows = sorted(self.rows, key=lambda r: (r["updated_at"], r["id"]))
        if since is not None:
            rows = [r for r in rows if r["updated_at"] >= since]
        off, lim = int(req.arg("offset", "0")), int(req.arg("limit", "10"))
        return 200, {}, {"records": rows[off : off + lim], "total": len(rows)}


def ts(minute: int) -> str:
    return f"2024-05-01T10:{minute:02d}:00Z"


INCR = {
    "name": "events",
    "path": "/events",
    "records_path": "records",
    "primary_keys": ["id"],
    "replication_key": "updated_at",
    "replication_param": "since",
    "pagination": OFFSET,
}


def test_incremental_bookmark_and_boundary_keys(server):
    rows = [{"id": i, "updated_at": ts(i // 3)} for i in range(25)]  # 3 records per minute
    api_data = IncrementalAPI(server, rows)
    with http(server, [INCR], pages_per_batch=1) as api:
        spec = api.get_stream("events")
        first = list(api.read(spec))
        assert [r["id"] for r in all_records(first)] == list(range(25))
        # not declared is_sorted: only the last batch carries the bookmark
        assert [b.bookmark is not None for b in first] == [False, False, True]
        state = first[-1].bookmark
        assert state == {
            "replication_key": "updated_at",
            "replication_key_value": ts(8),
            "keys_at_value": [[24]],
        }
        assert server.requests[1].arg("since") is None

        # new data: one more record at the bookmark value (id 25), a later one, and a late
        # arrival that is older than the bookmark (not re-read: the server filters by since)
        api_data.rows += [
            {"id": 25, "updated_at": ts(8)},
            {"id": 26, "updated_at": ts(9)},
            {"id": 27, "updated_at": ts(1)},
        ]
        server.requests.clear()
        second = list(api.read(spec, state=state))
        assert [r["id"] for r in all_records(second)] == [25, 26]  # 24 dropped: delivered at that value
        assert all(r.arg("since") == ts(8) for r in server.requests)
        assert second[-1].bookmark == {
            "replication_key": "updated_at",
            "replication_key_value": ts(9),
            "keys_at_value": [[26]],
        }

        # nothing new: no batch, the state stays as it is
        assert list(api.read(spec, state=second[-1].bookmark)) == []


def test_incremental_keys_at_value_accumulate_across_batches(server):
    rows = [{"id": i, "updated_at": ts(0)} for i in range(12)] + [{"id": 12, "updated_at": ts(1)}]
    IncrementalAPI(server, rows)
    with http(server, [{**INCR, "is_sorted": True}], pages_per_batch=1) as api:
        spec = api.get_stream("events")
        batches = list(api.read(spec, limit=11))
        # sorted stream: every batch carries the state after it
        assert batches[0].bookmark == {
            "replication_key": "updated_at",
            "replication_key_value": ts(0),
            "keys_at_value": [[i] for i in range(10)],
        }
        state = batches[-1].bookmark
        assert state["keys_at_value"] == [[i] for i in range(11)]
        # resuming after an interruption at the middle of a run of equal values: no loss, no dup
        rest = list(api.read(spec, state=state))
        assert [r["id"] for r in all_records(rest)] == [11, 12]
        assert rest[-1].bookmark["replication_key_value"] == ts(1)


def test_state_without_keys_drops_records_at_the_bookmark(server):
    IncrementalAPI(server, [{"id": i, "updated_at": ts(i)} for i in range(5)])
    with http(server, [INCR]) as api:
        got = all_records(
            api.read(
                api.get_stream("events"),
                state={"replication_key": "updated_at", "replication_key_value": ts(2)},
            )
        )
    assert [r["id"] for r in got] == [3, 4]


def test_replication_start_is_inclusive(server):
    IncrementalAPI(server, [{"id": i, "updated_at": ts(i)} for i in range(5)])
    with http(server, [{**INCR, "replication_start": ts(3)}]) as api:
        spec = api.get_stream("events")  # samples the first page for the schema
        server.requests.clear()
        got = all_records(api.read(spec))
    assert [r["id"] for r in got] == [3, 4]
    assert [r.arg("since") for r in server.requests] == [ts(3)]


def test_is_sorted_violation_is_an_error(server):
    rows = [{"id": 1, "updated_at": ts(5)}, {"id": 2, "updated_at": ts(3)}]
    server.route("GET", "/u", lambda req: (200, {}, rows))
    stream = {"name": "u", "path": "/u", "replication_key": "updated_at", "is_sorted": True}
    with http(server, [stream]) as api, pytest.raises(AdapterError, match=r"updated_at.*not sorted"):
        list(api.read(api.get_stream("u")))


def test_unsorted_records_bookmark_is_the_max(server):
    rows = [{"id": 1, "updated_at": ts(5)}, {"id": 2, "updated_at": ts(3)}, {"id": 3, "updated_at": None}]
    server.route("GET", "/u", lambda req: (200, {}, rows))
    stream = {"name": "u", "path": "/u", "replication_key": "updated_at", "primary_key": "id"}
    with http(server, [stream]) as api:
        batches = list(api.read(api.get_stream("u")))
    assert len(all_records(batches)) == 3  # a null replication value is kept, never dropped
    assert batches[-1].bookmark == {
        "replication_key": "updated_at",
        "replication_key_value": ts(5),
        "keys_at_value": [[1]],
    }


# ---------------------------------------------------------------------------------- request side
def test_stream_yields_chunks(server):
    payload = bytes(range(256)) * 1000
    server.route("GET", "/blob", lambda req: (200, {"content-type": "application/octet-stream"}, payload))
    server.route("GET", "/missing", lambda req: (404, {}, {"error": "no"}))
    with http(server, []) as api:
        with api.stream("GET", "/blob", chunk_size=4096) as resp:
            assert resp.status_code == 200
            chunks = list(resp)
        assert b"".join(chunks) == payload and len(chunks) > 1
        with pytest.raises(HTTPStatusError, match="404"), api.stream("GET", "/missing"):
            pass


def test_request_verbs_headers_params_and_json(server):
    server.route(
        "*",
        "/echo",
        lambda req: (
            201 if req.method == "POST" else 200,
            {"x-m": req.method},
            {
                "method": req.method,
                "query": req.query,
                "json": req.json() if req.body else None,
                "h": req.headers.get("x-h"),
                "ua": req.headers.get("user-agent"),
            },
        ),
    )
    with http(server, [], headers={"X-H": "base"}, params={"v": "2"}) as api:
        resp = api.request("post", "/echo", json={"a": 1}, params={"q": "z"})
        assert resp.status_code == 201 and resp.headers["X-M"] == "POST"
        assert resp.data == {
            "method": "POST",
            "query": {"v": ["2"], "q": ["z"]},
            "json": {"a": 1},
            "h": "base",
            "ua": resp.data["ua"],
        }
        assert resp.data["ua"].startswith("dc-api-x/")
        assert resp.url.startswith(server.url + "/echo?")
        assert api.request("DELETE", "/echo", headers={"X-H": "override"}).data["h"] == "override"


def test_http2_option_builds_a_client(server):
    server.route("GET", "/x", lambda req: (200, {}, {"ok": 1}))
    with http(server, [], http2=True, verify=False, limits={"max_connections": 2}) as api:
        assert api.request("GET", "/x").data == {"ok": 1}


def test_invalid_options_raise_config_error_naming_the_field(plugins):
    with pytest.raises(ConfigError, match="base_url"):
        create_adapter({"adapter": "http", "base_url": "ftp://x"})
    with pytest.raises(ConfigError, match=r"streams.0.records_pth"):
        create_adapter({"adapter": "http", "streams": [{"name": "a", "records_pth": "x"}]})
    with pytest.raises(ConfigError, match=r"retries.max_attempts"):
        create_adapter({"adapter": "http", "retries": {"max_attempts": 0}})
    with pytest.raises(ConfigError, match=r"streams.*duplicate stream name 'a'"):
        create_adapter({"adapter": "http", "streams": [{"name": "a"}, {"name": "a"}]})
    with pytest.raises(ConfigError, match=r"timeout.read"):
        create_adapter({"adapter": "http", "timeout": {"read": -1}})
    with pytest.raises(UnknownPluginError, match=r"known: .*cursor"):
        create_adapter({"adapter": "http", "pagination": {"type": "nope"}})
    with pytest.raises(UnknownPluginError, match=r"known: .*bearer"):
        create_adapter({"adapter": "http", "streams": [{"name": "a", "auth": {"type": "nope"}}]})


def test_plugins_do_not_import_httpx():
    code = (
        "import sys, dc_api_x; dc_api_x.enable_plugins(); dc_api_x.list_adapters(); "
        "dc_api_x.list_paginators(); dc_api_x.get_paginator('cursor'); "
        "dc_api_x.get_auth_provider('bearer'); "
        "dc_api_x.get_hook('logging'); import dc_api_x.client; "
        "print(sorted(m for m in ('httpx', 'h2', 'sqlalchemy', 'pyarrow') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# ---------------------------------------------------------------------------------- prefetch
def test_prefetch_keeps_order_and_raises_errors_in_place(server):
    rows = make_rows(60)

    def handler(req):
        off = int(req.arg("offset", "0"))
        if off >= 40:
            return 404, {}, {"error": "gone"}
        return 200, {}, {"records": rows[off : off + 10], "total": 60}

    server.route("GET", "/items", handler)
    stream = {"name": "items", "path": "/items", "records_path": "records", "pagination": OFFSET}
    with http(server, [stream]) as api:
        got: list[int] = []
        with pytest.raises(HTTPStatusError, match="404"):
            for batch in api.read(StreamSpec("items")):
                got += [r["id"] for r in batch.records]
        assert got == list(range(40))  # every page before the failing one, in order
        with http(server, [stream], prefetch=False) as sync:
            got2: list[int] = []
            with pytest.raises(HTTPStatusError):
                for batch in sync.read(StreamSpec("items")):
                    got2 += [r["id"] for r in batch.records]
        assert got2 == got


def test_prefetch_producer_stops_with_the_consumer(server):
    import threading
    import time

    before = set(threading.enumerate())

    server.route("GET", "/items", offset_route(make_rows(500)))
    stream = {"name": "items", "path": "/items", "records_path": "records", "pagination": OFFSET}
    with http(server, [stream], pages_per_batch=1) as api:
        reader = api.read(StreamSpec("items"))
        first = next(reader)
        assert [r["id"] for r in first.records] == list(range(10))
        reader.close()

        def producers() -> list[str]:  # (threads of this test: another test's may still be ending)
            return [
                t.name for t in threading.enumerate() if t.name.startswith("dcapix-http-") and t not in before
            ]

        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and producers():
            time.sleep(0.02)
        assert producers() == []
    assert len(server.requests) <= 5  # at most a couple of pages ahead, not the whole stream


def test_inferred_schema_grows_with_fields_seen_later(server):
    rows = [{"id": i} for i in range(10)] + [{"id": i, "extra": f"x{i}", "n": 1.5} for i in range(10, 20)]
    server.route("GET", "/items", offset_route(rows))
    stream = {"name": "items", "path": "/items", "records_path": "records", "pagination": OFFSET}
    with http(server, [stream], pages_per_batch=1) as api:
        spec = api.get_stream("items")
        assert list(spec.schema["properties"]) == ["id"]  # inferred from the first page only
        batches = list(api.read(spec))
    assert list(batches[0].schema["properties"]) == ["id"]
    assert batches[1].schema["properties"]["extra"] == {"type": ["string", "null"]}
    table = batches[1].to_arrow()
    assert table.column("extra").to_pylist() == [f"x{i}" for i in range(10, 20)]
    assert table.column("n").to_pylist() == [1.5] * 10
    # an explicit schema is the user's choice: it is not widened
    fixed = {**stream, "schema": {"type": "object", "properties": {"id": {"type": "integer"}}}}
    with http(server, [fixed]) as api:
        assert all(list(b.schema["properties"]) == ["id"] for b in api.read(api.get_stream("items")))


def test_combined_pages_arrow_view_equals_the_records_across_a_widened_schema(server):
    """Pages combined into one batch are transposed page by page as they arrive
    (:class:`~dc_api_x.arrow.RecordColumns`): its Arrow view equals the records' own, including a
    field first seen on a later page (``None`` before it) and nested objects as JSON text."""
    import pyarrow as pa

    from dc_api_x.arrow import records_to_arrow

    rows = [{"id": i, "at": "2024-01-02T03:04:05Z"} for i in range(10)] + [
        {"id": i, "extra": f"x{i}", "obj": {"k": [i]}, "at": None} for i in range(10, 25)
    ]
    server.route("GET", "/items", offset_route(rows))
    stream = {"name": "items", "path": "/items", "records_path": "records", "pagination": OFFSET}
    with http(server, [stream]) as api:
        batches = list(api.read(api.get_stream("items")))
    assert len(batches) == 1 and [r["id"] for r in batches[0].records] == list(range(25))
    table = batches[0].to_arrow()
    assert table.equals(records_to_arrow(rows, batches[0].schema))
    assert table.column("extra").to_pylist() == [None] * 10 + [f"x{i}" for i in range(10, 25)]
    assert table.column("obj").to_pylist()[10] == '{"k":[10]}'
    assert table.schema.field("at").type == pa.timestamp("us", tz="UTC")


def test_no_second_read_ahead_thread_inside_a_reader_thread(server):
    """Inside a Prefetcher's reader thread (the runner's), read() fetches its pages in that thread:
    no ``dcapix-http-`` producer thread, the same records."""
    import threading

    from dc_api_x.prefetch import Prefetcher

    before = set(threading.enumerate())
    server.route("GET", "/items", offset_route(make_rows(45)))
    stream = {"name": "items", "path": "/items", "records_path": "records", "pagination": OFFSET}
    seen: list[list[str]] = []

    def producers() -> list[str]:  # (threads of this test: another test's may still be ending)
        return [
            t.name for t in threading.enumerate() if t.name.startswith("dcapix-http-") and t not in before
        ]

    def batches():
        for b in api.read(StreamSpec("items")):
            seen.append(producers())
            yield b

    with http(server, [stream], pages_per_batch=1) as api:
        got = [r["id"] for b in Prefetcher(batches, depth=1) for r in b.records]
        assert got == list(range(45)) and len(seen) == 5 and seen == [[]] * 5
        # called directly, the adapter reads ahead in its own producer thread
        direct = api.read(StreamSpec("items"))
        next(direct)
        assert producers()
        direct.close()


def test_httpx_is_imported_without_its_command_line_client():
    """The adapter imports httpx without ``httpx._main`` (click, rich, pygments: 60-80 ms of CPU
    per run); ``httpx.main`` and ``import httpx._main`` still give the real command afterwards."""
    code = (
        "import sys\n"
        "from dc_api_x import create_adapter\n"
        "create_adapter({'adapter': 'http', 'base_url': 'http://127.0.0.1:9'}).client\n"
        "print('httpx._main' in sys.modules)\n"
        "import httpx._main, httpx\n"
        "print(type(httpx._main.main).__name__, callable(httpx.main))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    assert lines[0] == "False"
    assert lines[1] == "Command True"  # the real (click) command once asked for
