"""HTTP page windows read by several workers (real local HTTP server): the same rows as a serial
run; a 429 with Retry-After seen by one worker pauses the others; ``rate_limit`` paces a host."""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from dc_api_x.adapters.http_limits import HostLimiter, host_limiter
from tests.scale.conftest import write_config
from tests.scale.test_local import dcapix, state_of
from tests.support.destinations import parquet_rows
from tests.support.httpserver import LocalHTTPServer

TOTAL = 2_345


def _items(delay: float = 0.0, throttle: dict[str, Any] | None = None):
    lock = threading.Lock()

    def offset(req: Any) -> tuple[int, dict[str, str], Any]:
        if throttle is not None:
            with lock:
                throttle["n"] = throttle.get("n", 0) + 1
                if throttle["n"] == throttle["refuse"]:
                    throttle["at"] = time.monotonic()
                    headers = {"retry-after": "1", "content-type": "application/json"}
                    return 429, headers, {"error": "slow down"}
                if "at" in throttle:
                    throttle.setdefault("after", []).append(time.monotonic())
        if delay:
            time.sleep(delay)
        start, size = int(req.arg("offset", "0")), int(req.arg("limit", "50"))
        rows = [{"id": i, "name": f"n{i}", "score": i * 0.5} for i in range(start, min(start + size, TOTAL))]
        return 200, {"content-type": "application/json"}, {"data": rows, "total": TOTAL}

    def pages(req: Any) -> tuple[int, dict[str, str], Any]:
        page, size = int(req.arg("page", "1")), int(req.arg("per_page", "50"))
        start = (page - 1) * size
        rows = [{"id": i, "name": f"n{i}", "score": i * 0.5} for i in range(start, min(start + size, TOTAL))]
        return 200, {"content-type": "application/json"}, {"data": rows, "pages": -(-TOTAL // size)}

    return offset, pages


def _stream(kind: str) -> dict[str, Any]:
    if kind == "offset":
        return {
            "name": "items",
            "path": "/items",
            "records_path": "data",
            "primary_keys": ["id"],
            "pagination": {"type": "offset", "limit": 50, "total_path": "total"},
        }
    return {
        "name": "items",
        "path": "/pages",
        "records_path": "data",
        "primary_keys": ["id"],
        "pagination": {
            "type": "page_number",
            "page_size": 50,
            "page_size_param": "per_page",
            "total_pages_path": "pages",
        },
    }


@pytest.mark.parametrize("kind", ["offset", "page_number"])
def test_page_windows_equal_the_serial_read(project: Path, builtin_plugins, kind: str) -> None:
    offset, pages = _items()
    with LocalHTTPServer() as srv:
        srv.route("GET", "/items", offset)
        srv.route("GET", "/pages", pages)
        src = {"adapter": "http", "base_url": srv.url, "streams": [_stream(kind)]}
        write_config(
            project,
            {
                "serial": {
                    "source": src,
                    "destination": {"adapter": "parquet", "path": str(project / "serial")},
                },
                "parts": {
                    "source": src,
                    "destination": {"adapter": "parquet", "path": str(project / "parts")},
                },
            },
        )
        from dc_api_x import create_adapter

        with create_adapter(src) as a:
            spec = a.discover()[0]
            windows = a.partitions(spec, max_partitions=4)
            assert windows is not None and len(windows) == 4
        assert dcapix("run", "serial", "--no-progress") == 0
        n = len(srv.requests)
        assert dcapix("run", "parts", "--no-progress", "--workers", "4") == 0
        # discovery (schema from the first page), whose answer also gives the total (the same
        # request: not asked again), then every page once (a worker's adapter asks for its own)
        assert len(srv.requests) - n == 1 + -(-TOTAL // 50)
    rows = parquet_rows(project / "parts" / "items")
    assert rows == parquet_rows(project / "serial" / "items")
    assert len(rows) == TOTAL and len({r[0] for r in rows}) == TOTAL
    assert state_of(project, "parts") == state_of(project, "serial") == {}


@pytest.mark.parametrize(
    ("pool", "workers", "most_in_flight"),
    [("threads", "4", 6), ("processes", "3", 4)],  # worker processes: dc_api_x.hosttable
)
def test_retry_after_pauses_every_worker(
    project: Path, builtin_plugins, pool: str, workers: str, most_in_flight: int
) -> None:
    throttle: dict[str, Any] = {"refuse": 8}  # a request of the workers (after discovery and the total)
    offset, _ = _items(delay=0.005, throttle=throttle)
    with LocalHTTPServer() as srv:
        srv.route("GET", "/items", offset)
        src = {
            "adapter": "http",
            "base_url": srv.url,
            "streams": [_stream("offset")],
            "retries": {"max_attempts": 3},
        }
        write_config(
            project, {"p": {"source": src, "destination": {"adapter": "parquet", "path": str(project / "o")}}}
        )
        t0 = time.monotonic()
        assert dcapix("run", "p", "--no-progress", "--workers", workers, "--worker-pool", pool) == 0
    assert len(parquet_rows(project / "o" / "items")) == TOTAL
    # one worker's request was refused with Retry-After: 1; no request of any worker reached the
    # server before that second was over, except those already on their way: sent before the 429
    # was answered, or by another worker in the moment before the refused worker's thread had
    # registered the pause (a few ms; more on a loaded machine) — at most two per other worker,
    # all close to the refusal (without the shared pause the other three workers go on at ~5 ms a
    # request: well over a hundred requests in that second)
    after = sorted(throttle["after"])
    in_flight = [t - throttle["at"] for t in after if t - throttle["at"] < 0.9]
    assert len(in_flight) <= most_in_flight and all(dt < 0.25 for dt in in_flight), in_flight
    assert len(after) > len(in_flight)
    assert time.monotonic() - t0 >= 1.0


def test_host_limiter_paces_and_pauses() -> None:
    lim = HostLimiter()
    slept: list[float] = []
    lim.sleep = slept.append
    for _ in range(5):
        lim.acquire(rate=10)
    assert len(slept) == 4 and all(0.05 < s <= 0.4 + 1e-6 for s in slept)
    assert slept == sorted(slept)  # each request one slot later
    lim2 = HostLimiter()
    lim2.sleep = slept.append
    lim2.pause(2.0)
    assert 1.9 < lim2.acquire() <= 2.0
    assert host_limiter("http://127.0.0.1:1/a") is host_limiter("http://127.0.0.1:1/b")
    assert host_limiter("http://127.0.0.1:1/a") is not host_limiter("http://127.0.0.1:2/a")


def test_rate_limit_is_shared_by_the_workers(project: Path, builtin_plugins) -> None:
    offset, _ = _items()
    seen: list[float] = []

    def timed(req: Any) -> tuple[int, dict[str, str], Any]:
        seen.append(time.monotonic())
        return offset(req)

    with LocalHTTPServer() as srv:
        srv.route("GET", "/items", timed)
        stream = {**_stream("offset"), "pagination": {"type": "offset", "limit": 200, "total_path": "total"}}
        src = {"adapter": "http", "base_url": srv.url, "streams": [stream], "rate_limit": 20}
        write_config(
            project, {"p": {"source": src, "destination": {"adapter": "parquet", "path": str(project / "o")}}}
        )
        assert dcapix("run", "p", "--no-progress", "--workers", "4") == 0
    assert len(parquet_rows(project / "o" / "items")) == TOTAL
    # discovery (its first page gives the total too) + 12 pages from 4 workers, paced at 20
    # requests per second overall
    assert len(seen) == 13
    gaps = [b - a for a, b in itertools.pairwise(seen)]
    assert seen[-1] - seen[0] >= 12 / 20 - 0.03, gaps  # 12 intervals of 1/20 s
    # no burst: in any window of the run at most the rate's share of requests, plus two for the
    # arrival jitter of its two ends (4 unpaced workers would put 4 requests in one instant; a
    # pairwise minimum gap failed under load on one late arrival followed by an on-time one)
    for i, j in itertools.combinations(range(len(seen)), 2):
        assert j - i <= (seen[j] - seen[i]) * 20 + 2, (i, j, gaps)


@pytest.mark.parametrize(("delay", "ahead"), [(0.0, False), (0.012, True)])
def test_a_window_fetches_ahead_only_when_the_server_keeps_it_waiting(monkeypatch, delay, ahead):
    """``prefetch_when_waiting``: the pages in order, fetched by a Prefetcher thread only when each of
    the first two kept the window waiting (a sleep here: wall time, no CPU)."""
    import time as _time

    from dc_api_x.adapters import http_partitions

    made = []
    real = http_partitions.Prefetcher

    def spy(*a, **kw):
        made.append(kw.get("name"))
        return real(*a, **kw)

    monkeypatch.setattr(http_partitions, "Prefetcher", spy)
    if not ahead:  # (a loaded machine may pause a thread for a few ms: far below this)
        monkeypatch.setattr(http_partitions, "WAITING_FOR_PREFETCH", 0.2)

    def pages():
        for i in range(6):
            _time.sleep(delay)
            yield [i]

    got = list(http_partitions.prefetch_when_waiting(pages(), name="w"))
    assert got == [[i] for i in range(6)]
    assert made == (["w"] if ahead else [])


def test_a_window_closed_early_closes_its_pages():
    from dc_api_x.adapters import http_partitions

    closed = []

    def pages():
        try:
            for i in range(6):
                yield [i]
        finally:
            closed.append(True)

    it = http_partitions.prefetch_when_waiting(pages(), name="w")
    assert next(it) == [0]
    it.close()
    assert closed == [True]
