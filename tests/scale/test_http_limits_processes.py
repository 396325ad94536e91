"""One rate and one ``Retry-After`` pause per host for all the worker *processes* of a run
(``--worker-pool processes`` and a run's own dask ``LocalCluster``; :mod:`dc_api_x.hosttable`),
against a real local HTTP server: ``rate_limit`` paces the host for the run, not for each process
(a 429 seen by one worker process pausing the others: ``test_http.py``); the table itself."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from dc_api_x.adapters import http_limits
from tests.scale.conftest import write_config
from tests.scale.test_http import TOTAL, _items, _stream
from tests.scale.test_local import dcapix
from tests.support.destinations import parquet_rows
from tests.support.httpserver import LocalHTTPServer


@pytest.mark.parametrize(
    "workers",
    [
        pytest.param(("--workers", "4", "--worker-pool", "processes"), id="processes"),
        pytest.param(("--executor", "dask", "--workers", "2"), id="dask-cluster", marks=pytest.mark.slow),
    ],
)
def test_rate_limit_paces_the_host_for_all_worker_processes(
    project: Path, builtin_plugins, workers: tuple[str, ...]
) -> None:
    if "dask" in workers:
        pytest.importorskip("distributed", reason="the dask extra is not installed (pip install '.[dask]')")
    rate = 40.0
    offset, _ = _items()
    arrived: list[float] = []

    def timed(req: Any) -> Any:
        arrived.append(time.monotonic())
        return offset(req)

    with LocalHTTPServer() as srv:
        srv.route("GET", "/items", timed)
        src = {"adapter": "http", "base_url": srv.url, "streams": [_stream("offset")], "rate_limit": rate}
        write_config(
            project, {"p": {"source": src, "destination": {"adapter": "parquet", "path": str(project / "o")}}}
        )
        assert dcapix("run", "p", "--no-progress", *workers) == 0
    assert len(parquet_rows(project / "o" / "items")) == TOTAL
    # the driver's discovery request (which also gives the total), then the workers start: their ~48
    # pages at 40 per second for the whole run arrive over at least (n - 1) / 40 s, the median gap the
    # rate's; processes pacing themselves alone send their pages side by side in a fraction of that
    pages = arrived[1:]
    assert len(pages) >= 47
    gaps = sorted(b - a for a, b in itertools.pairwise(pages))
    assert pages[-1] - pages[0] >= (len(pages) - 1) / rate * 0.9, gaps
    assert gaps[len(gaps) // 2] >= 0.8 / rate, gaps


_CHILD = """
import sys
from dc_api_x.adapters.http_limits import host_limiter
lim = host_limiter(f"http://127.0.0.1:{sys.argv[2]}/x")
if sys.argv[1] == "pause":
    lim.pause(30)
print(round(lim.paused_for))
"""
_DRIVER = """
import os, subprocess, sys
from dc_api_x.adapters.http_limits import ENV, host_limiter, share_across_processes
early = host_limiter("http://127.0.0.1:10/")  # made before the table: moves to it
path = share_across_processes()
assert share_across_processes() == path and os.environ[ENV] == path
host_limiter("http://127.0.0.1:10/").pause(20)
def run(what, port=9):
    args = [sys.executable, "-c", sys.argv[1], what, str(port)]
    return subprocess.run(args, capture_output=True, text=True, check=True).stdout.strip()
print(path, run("pause"), run("look"), run("look", 10), round(early.paused_for))
"""
_KILLED = """
import itertools
import os
from dc_api_x.adapters.http_limits import share_across_processes
print(share_across_processes(), flush=True)
os._exit(0)
"""


def _python(code: str, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != http_limits.ENV}
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_table_is_shared_by_processes_and_removed_at_exit() -> None:
    path, *left = _python(_DRIVER, _CHILD).split()
    paused, seen, own, early = map(int, left)  # seconds of pause left, seen by each
    assert 25 <= seen <= paused <= 30  # the second process sees the first one's pause
    assert 15 <= early <= own <= 20  # and the driver's, paused by a limiter made before the table
    assert not os.path.exists(path)  # removed when the driver exited


def test_a_killed_drivers_table_is_removed_by_the_next() -> None:
    left = _python(_KILLED)
    assert os.path.exists(left)  # os._exit: no atexit handler ran, as after a SIGKILL
    second = _python(_KILLED)
    assert not os.path.exists(left)
    os.unlink(second)
