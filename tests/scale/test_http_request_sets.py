"""HTTP streams split into independent request sets (cursor pagination, which page windows cannot
split), read by several workers against a real local HTTP server: the rows and the state of a
serial run; per-set bookmarks merged so that the stream's bookmark never runs ahead; a failed set
resumed from its own bookmark, nothing lost nor duplicated."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path
from typing import Any

import pytest

from dc_api_x.adapters.http_partitions import expand_request_sets
from dc_api_x.ext.partitions import merge_unordered_bookmarks
from tests.scale.conftest import write_config
from tests.scale.test_local import dcapix, parquet_rows, state_of
from tests.support.httpserver import LocalHTTPServer

REGIONS = ("eu", "us", "ap")
T0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)


class Events:
    """``/events?region=R&since=ISO&cursor=N``: the rows of a region at or after ``since``, sorted
    by ``updated_at``, 7 per page, cursor pagination; every 3 rows of a region share a value."""

    def __init__(self, per_region: int) -> None:
        self.rows: list[dict[str, Any]] = []
        self.fail: dict[str, int] = {}  # region -> page number answering 400 (once)
        self.lock = threading.Lock()
        self.add(per_region)

    def add(self, per_region: int) -> None:
        with self.lock:
            base = len(self.rows)
            for n in range(per_region):
                for k, region in enumerate(REGIONS):
                    i = base + n * len(REGIONS) + k
                    at = T0 + dt.timedelta(minutes=(base // len(REGIONS) + n) // 3)
                    self.rows.append(
                        {
                            "id": i,
                            "region": region,
                            "updated_at": at.isoformat().replace("+00:00", "Z"),
                            "amount": f"{i}.{i % 100:02d}",
                            "score": i / 7,  # a float with 16-17 significant digits, kept exact
                        }
                    )

    def route(self, req: Any) -> tuple[int, dict[str, str], Any]:
        region, since = req.arg("region"), req.arg("since")
        at = int(req.arg("cursor") or 0)
        page = at // 7 + 1
        with self.lock:
            if self.fail.get(region) == page:
                del self.fail[region]
                return 400, {"content-type": "application/json"}, {"error": "bad page"}
            rows = [
                r for r in self.rows if r["region"] == region and (since is None or r["updated_at"] >= since)
            ]
        rows.sort(key=lambda r: (r["updated_at"], r["id"]))
        body = {"data": rows[at : at + 7], "next": str(at + 7) if at + 7 < len(rows) else None}
        return 200, {"content-type": "application/json"}, body


def _source(url: str) -> dict[str, Any]:
    return {
        "adapter": "http",
        "base_url": url,
        "streams": [
            {
                "name": "events",
                "path": "/events",
                "records_path": "data",
                "primary_keys": ["id"],
                "replication_key": "updated_at",
                "replication_param": "since",
                "is_sorted": True,
                "pages_per_batch": 1,
                "request_sets": [{"region": r} for r in REGIONS],
                "pagination": {"type": "cursor", "cursor_path": "next", "cursor_param": "cursor"},
            }
        ],
    }


def _pipelines(project: Path, url: str) -> None:
    write_config(
        project,
        {
            name: {
                "source": _source(url),
                "destination": {"adapter": "parquet", "path": str(project / name)},
                "checkpoint_rows": 7,
            }
            for name in ("serial", "parts")
        },
    )


def test_request_sets_equal_the_serial_read_and_state(project: Path, builtin_plugins) -> None:
    events = Events(40)
    with LocalHTTPServer() as srv:
        srv.route("GET", "/events", events.route)
        _pipelines(project, srv.url)
        from dc_api_x import create_adapter

        with create_adapter(_source(srv.url)) as a:
            spec = a.discover()[0]
            parts = a.partitions(spec, max_partitions=4)
            assert parts is not None and [p.options for p in parts] == [
                {"params": {"region": r}} for r in REGIONS
            ]
        assert dcapix("run", "serial", "--no-progress") == 0
        assert dcapix("run", "parts", "--no-progress", "--workers", "3") == 0
        rows = parquet_rows(project / "parts" / "events")
        assert rows == parquet_rows(project / "serial" / "events")
        assert len(rows) == 120 and len({r[0] for r in rows}) == 120
        serial_state = state_of(project, "serial")
        assert state_of(project, "parts") == serial_state
        bookmark = serial_state[("events", "")]
        # the greatest value of every set, with the keys of all three regions delivered at it
        last = max(r["updated_at"] for r in events.rows)
        assert bookmark["replication_key_value"] == last
        assert sorted(k[0] for k in bookmark["keys_at_value"]) == sorted(
            r["id"] for r in events.rows if r["updated_at"] == last
        )
        # new rows: both pipelines read only them, and agree again
        events.add(10)
        assert dcapix("run", "serial", "--no-progress") == 0
        assert dcapix("run", "parts", "--no-progress", "--workers", "3") == 0
    rows = parquet_rows(project / "parts" / "events")
    assert rows == parquet_rows(project / "serial" / "events")
    assert len(rows) == 150 and len({r[0] for r in rows}) == 150  # nothing read twice
    assert state_of(project, "parts") == state_of(project, "serial")
    assert {r[0]: r for r in rows}[5][-1] == 5 / 7  # every digit of the float


def test_a_failed_set_resumes_from_its_own_bookmark(project: Path, builtin_plugins) -> None:
    events = Events(40)
    with LocalHTTPServer() as srv:
        srv.route("GET", "/events", events.route)
        _pipelines(project, srv.url)
        assert dcapix("run", "serial", "--no-progress") == 0
        events.fail["us"] = 3  # the third page of one set answers 400 (not retried): the run fails
        assert dcapix("run", "parts", "--no-progress", "--workers", "3") != 0
        left = state_of(project, "parts")
        assert ("events", "~plan") in left
        committed = parquet_rows(project / "parts" / "events")
        us = sorted(r[0] for r in committed if r[1] == "us")
        assert 0 < len(us) < 40  # the pages before the failing one were committed
        # the stream bookmark did not move: the sets that finished are not ahead of the failed one
        assert left.get(("events", "")) is None
        assert dcapix("run", "parts", "--no-progress", "--workers", "3") == 0
    rows = parquet_rows(project / "parts" / "events")
    assert rows == parquet_rows(project / "serial" / "events")  # nothing lost, nothing duplicated
    assert state_of(project, "parts") == state_of(project, "serial")


def test_merge_waits_for_every_set_then_takes_the_greatest() -> None:
    base = {"replication_key": "t", "replication_key_value": 5, "keys_at_value": [[1]]}
    a = {"replication_key": "t", "replication_key_value": 9, "keys_at_value": [[3]]}
    b = {"replication_key": "t", "replication_key_value": 7, "keys_at_value": [[4]]}
    c = {"replication_key": "t", "replication_key_value": 9, "keys_at_value": [[6], [3]]}
    assert merge_unordered_bookmarks(base, [a, b, c], [True, False, True]) == base
    assert merge_unordered_bookmarks(None, [a, None], [True, False]) is None
    assert merge_unordered_bookmarks(base, [a, b, c], [True] * 3) == {**a, "keys_at_value": [[3], [6]]}
    assert merge_unordered_bookmarks(base, [None, None], [True, True]) == base


def test_expand_request_sets() -> None:
    w = "stream 'x'"
    assert expand_request_sets([{"r": "eu"}, {"r": "us"}], w) == [{"r": "eu"}, {"r": "us"}]
    days = {"param_from": "from", "param_to": "to", "start": "2024-01-01", "end": "2024-01-31", "parts": 3}
    assert expand_request_sets(days, w) == [
        {"from": "2024-01-01", "to": "2024-01-11"},
        {"from": "2024-01-11", "to": "2024-01-21"},
        {"from": "2024-01-21", "to": "2024-01-31"},
    ]
    ints = {
        "param_from": "min_id",
        "param_to": "max_id",
        "start": 0,
        "end": 10,
        "parts": 4,
        "params": {"k": 1},
    }
    assert expand_request_sets(ints, w) == [
        {"k": 1, "min_id": 0, "max_id": 2},
        {"k": 1, "min_id": 2, "max_id": 5},
        {"k": 1, "min_id": 5, "max_id": 7},
        {"k": 1, "min_id": 7, "max_id": 10},
    ]
    times = {
        "param_from": "a",
        "param_to": "b",
        "start": "2024-01-01T00:00:00Z",
        "end": "2024-01-01T01:00:00Z",
    }
    got = expand_request_sets({**times, "parts": 2}, w)
    assert got == [
        {"a": "2024-01-01T00:00:00+00:00", "b": "2024-01-01T00:30:00+00:00"},
        {"a": "2024-01-01T00:30:00+00:00", "b": "2024-01-01T01:00:00+00:00"},
    ]
    with pytest.raises(ValueError, match="not after"):
        expand_request_sets({**days, "end": "2023-12-01"}, w)
    with pytest.raises(ValueError, match="non-empty mapping"):
        expand_request_sets([{}], w)


def test_range_split_reads_the_rows_of_the_serial_run(project: Path, builtin_plugins) -> None:
    rows = [
        {"id": i, "day": (dt.date(2024, 1, 1) + dt.timedelta(days=i % 60)).isoformat()} for i in range(300)
    ]

    def route(req: Any) -> tuple[int, dict[str, str], Any]:
        lo, hi, at = req.arg("from"), req.arg("to"), int(req.arg("cursor") or 0)
        sel = sorted((r for r in rows if lo <= r["day"] < hi), key=lambda r: r["id"])
        return 200, {}, {"data": sel[at : at + 9], "next": str(at + 9) if at + 9 < len(sel) else None}

    with LocalHTTPServer() as srv:
        srv.route("GET", "/days", route)
        stream = {
            "name": "days",
            "path": "/days",
            "records_path": "data",
            "request_sets": {
                "param_from": "from",
                "param_to": "to",
                "start": "2024-01-01",
                "end": "2024-03-01",
                "parts": 5,
            },
            "pagination": {"type": "cursor", "cursor_path": "next", "cursor_param": "cursor"},
        }
        src = {"adapter": "http", "base_url": srv.url, "streams": [stream]}
        write_config(
            project,
            {
                n: {"source": src, "destination": {"adapter": "parquet", "path": str(project / n)}}
                for n in ("s", "p")
            },
        )
        assert dcapix("run", "s", "--no-progress") == 0
        assert dcapix("run", "p", "--no-progress", "--workers", "4") == 0
    got = parquet_rows(project / "p" / "days")
    assert got == parquet_rows(project / "s" / "days")
    assert sorted(r[0] for r in got) == list(range(300))
