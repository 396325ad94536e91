"""A server that ignores the pagination parameters (the same page for every offset past a point, or
fresh cursors over the same records) stops the read with one line naming both pages' URLs, before
any record of a repeated page is delivered — against the real local server and through
``dcapix run``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dc_api_x import ApiClient, PaginationError, create_adapter
from dc_api_x.ext.pagination import page_fingerprint
from dc_api_x.types import StreamSpec
from tests.support.process import dcapix

KEY = "k3y-Secret-91"


def rows(n: int) -> list[dict[str, Any]]:
    return [{"id": i, "name": f"r{i}"} for i in range(1, n + 1)]


def ignores_offset_after(data: list[dict[str, Any]], stuck_at: int) -> Any:
    """``?offset=&limit=``; every offset at or past ``stuck_at`` answers the page at ``stuck_at``."""

    def handler(req: Any) -> tuple[int, dict[str, str], Any]:
        off, lim = int(req.arg("offset", "0")), int(req.arg("limit", "10"))
        off = min(off, stuck_at)
        return 200, {}, {"records": data[off : off + lim], "total": len(data)}

    return handler


def source(server: Any, **pagination: Any) -> dict[str, Any]:
    return {
        "adapter": "http",
        "base_url": server.url,
        "streams": [
            {
                "name": "items",
                "path": "/items",
                "params": {"api_key": KEY},
                "records_path": "records",
                "primary_key": ["id"],
            }
        ],
        "pagination": {"type": "offset", "limit": 100, "total_path": "total", **pagination},
    }


def test_read_stops_at_the_first_repeated_page_and_delivers_nothing_of_it(server):
    server.route("GET", "/items", ignores_offset_after(rows(1000), 300))
    got: list[dict[str, Any]] = []
    with create_adapter(source(server)) as api, pytest.raises(PaginationError) as ei:
        for batch in api.read(StreamSpec("items")):
            got += batch.records
    assert [r["id"] for r in got] == list(range(1, 401))  # distinct: pages 1-4; page 5 repeats page 4
    msg = str(ei.value)
    assert "\n" not in msg and KEY not in msg
    assert "page 5 at " in msg and "offset=400" in msg
    assert "repeats page 4 (" in msg and "offset=300" in msg


def test_a_page_repeated_anywhere_in_the_history_is_caught(server):
    """Cursor pages A, B, A with fresh tokens each time: the token guard cannot see it."""
    pages = [[{"id": 1}, {"id": 2}], [{"id": 3}], [{"id": 1}, {"id": 2}], [{"id": 4}]]

    def handler(req: Any) -> tuple[int, dict[str, str], Any]:
        n = int(req.arg("cursor") or 0)
        return 200, {}, {"records": pages[n], "next": str(n + 1) if n + 1 < len(pages) else None}

    server.route("GET", "/c", handler)
    seen: list[Any] = []
    with ApiClient(server.url, hooks=[]) as api, pytest.raises(PaginationError) as ei:
        for rec in api.paginate("/c", paginator={"type": "cursor"}, records_path="records"):
            seen.append(rec["id"])
    assert seen == [1, 2, 3]
    assert "page 3 at " in str(ei.value) and "cursor=2" in str(ei.value)
    assert "repeats page 1 (" in str(ei.value)


def test_detect_repeated_pages_false_keeps_legitimately_equal_pages(server):
    server.route("GET", "/items", ignores_offset_after(rows(300), 100))
    with create_adapter(source(server, detect_repeated_pages=False)) as api:
        got = [r["id"] for b in api.read(StreamSpec("items")) for r in b.records]
    assert got == list(range(1, 201)) + list(range(101, 201))


def test_page_fingerprint():
    a = rows(500)
    assert page_fingerprint(a) == page_fingerprint([dict(r) for r in a])
    assert page_fingerprint(a) != page_fingerprint(a[:-1])
    assert page_fingerprint(a) != page_fingerprint([*a[:-1], {"id": 0, "name": "x"}])  # last record
    assert page_fingerprint([{"id": 1}]) != page_fingerprint([{"id": 2}])


def test_what_makes_the_same_page():
    """The same records (the same keys with the same values, as JSON values) are the same page;
    a value of another type, a key absent instead of null, another string is another page."""
    from decimal import Decimal

    import orjson

    from dc_api_x.values import json_loads

    def fp(text: bytes) -> bytes | None:
        return page_fingerprint(json_loads(text))

    page = fp(b'[{"id":1,"x":1.5,"s":"caf\\u00e9","o":{"a":1,"b":[1,2]}}]')
    assert page is not None
    same = [
        b'[{"id":1,"x":1.5,"s":"caf\\u00e9","o":{"a":1,"b":[1,2]}}]',
        b'[ { "id" : 1 , "x" : 1.50 , "s" : "caf\\u00e9" , "o" : { "a" : 1 , "b" : [ 1 , 2 ] } } ]',
        b'[{"id":1,"x":15e-1,"s":"caf\xc3\xa9","o":{"a":1,"b":[1,2]}}]',  # escaped or not
        b'[{"o":{"b":[1,2],"a":1},"s":"caf\\u00e9","x":1.5,"id":1}]',  # key order
    ]
    for text in same:
        assert fp(text) == page, text
    other = [
        b'[{"id":1.0,"x":1.5,"s":"caf\\u00e9","o":{"a":1,"b":[1,2]}}]',  # 1 and 1.0
        b'[{"id":"1","x":1.5,"s":"caf\\u00e9","o":{"a":1,"b":[1,2]}}]',  # 1 and "1"
        b'[{"id":1,"x":1.5,"s":"cafe","o":{"a":1,"b":[1,2]}}]',
        b'[{"id":1,"x":1.5,"s":"caf\\u00e9","o":{"a":1,"b":[2,1]}}]',  # list order counts
        b'[{"id":1,"x":1.5,"s":"caf\\u00e9","o":{"a":1,"b":[1,2]},"n":null}]',  # null, not absent
        b'[{"id":1,"x":1.5,"s":"caf\\u00e9","o":{"a":1,"b":[1,2]}},{"id":2}]',
    ]
    for text in other:
        assert fp(text) not in (page, None), text
    # numbers a float64 does not hold keep every digit, and are no strings
    long = fp(b'[{"x":0.1000000000000000055511151231257827}]')
    assert long is not None
    assert long != fp(b'[{"x":"0.1000000000000000055511151231257827"}]')
    assert long != fp(b'[{"x":0.1}]') and long != fp(b'[{"x":0.10000000000000000555111512312578271}]')
    big = fp(b'[{"x":123456789012345678901234567890}]')  # beyond 64 bits: fingerprinted too
    assert big is not None and big != fp(b'[{"x":"123456789012345678901234567890"}]')
    assert page_fingerprint([{"x": Decimal("1.5")}]) != page_fingerprint([{"x": "1.5"}])
    assert orjson.OPT_SORT_KEYS == 1 << 5  # (_http_columns writes with that option)


def _jsonl_ids(out: Path) -> list[int]:
    ids = []
    for f in sorted(out.rglob("*.jsonl")):
        ids += [json.loads(line)["id"] for line in f.read_text().splitlines() if line.strip()]
    return ids


def test_dcapix_run_stops_with_one_line_and_commits_nothing_of_the_repeated_pages(
    server, tmp_path, monkeypatch, capsys
):
    import yaml

    from dc_api_x.cli import main

    monkeypatch.chdir(tmp_path)
    server.route("GET", "/items", ignores_offset_after(rows(2000), 500))
    out = tmp_path / "out"
    src = source(server)
    src["streams"][0] |= {"replication_key": "id", "is_sorted": True}  # checkpoints commit
    cfg = {"pipelines": {"api": {"source": src, "destination": {"adapter": "jsonl", "path": str(out)}}}}
    (tmp_path / "dcapix.yml").write_text(yaml.safe_dump(cfg))
    proc = dcapix(tmp_path, "run", "api", "--no-progress", "--checkpoint-rows", "100")  # a real process
    err = proc.stderr
    assert proc.returncode == 1, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("dcapix: error: paginator 'offset': page 7 at ")
    assert "offset=600" in last and "repeats page 6 (" in last and "offset=500" in last
    assert KEY not in err and "Traceback" not in err
    ids = _jsonl_ids(out)
    assert len(ids) == len(set(ids))  # 0 rows committed from repeated pages
    assert set(ids) <= set(range(1, 601))  # the first page at offset 500 is the last delivered
    assert main(["state", "export"]) == 0
    stored = json.dumps(json.loads(capsys.readouterr().out))
    assert set(ids) and f'"replication_key_value": {max(ids)}' in stored  # state == what was committed
