"""The start of ``--worker-pool processes`` (runner/executors/processes.py): what the forkserver
preloads and does once for every worker, what a worker sets before its first partition, and how
the forkserver ends. The rows and the state of process runs: tests/scale/test_processes.py (and
below, HTTP page windows)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dc_api_x.runner.executors import processes
from tests.scale.conftest import write_config
from tests.scale.test_local import dcapix, state_of
from tests.support.destinations import parquet_rows
from tests.support.httpserver import LocalHTTPServer

pytestmark = pytest.mark.skipif(
    "forkserver" not in __import__("multiprocessing").get_all_start_methods(), reason="no forkserver"
)


def _adapters() -> tuple[type, type]:
    from dc_api_x.adapters._http import HttpAdapter
    from dc_api_x.adapters.files.parquet import ParquetAdapter

    return HttpAdapter, ParquetAdapter


def test_the_preload_holds_what_workers_import_and_fsspec_only_for_urls() -> None:
    http, parquet = _adapters()
    local = processes._preload(http, parquet, {"base_url": "http://h"}, {"path": "/tmp/lake"})
    # the HTTP adapter's transport and page decoding, the Parquet writer's compute kernels
    for mod in (
        "httpx",
        "httpcore",
        "msgspec",
        "dc_api_x.adapters._http_wire",
        "dc_api_x.adapters.http_partitions",
        "pyarrow._compute",
    ):
        assert mod in local
    assert local[-1] == "dc_api_x.runner.executors._warm"  # last: with everything above imported
    assert "fsspec" not in local  # a local path never imports it (~0.1 s of the forkserver's start)
    assert "fsspec" not in processes._preload(http, parquet, None, {"path": "file:///tmp/lake"})
    assert "fsspec" in processes._preload(http, parquet, None, {"path": "s3://bucket/lake"})
    assert "fsspec" in processes._preload(parquet, parquet, {"path": "memory://in"}, {"path": "/tmp/x"})


@pytest.fixture
def fresh_forkserver() -> Iterator[None]:
    """No forkserver of an earlier test (its preload would stay); none left for the next ones."""
    processes._stop_forkserver()
    yield
    processes._stop_forkserver()


def test_a_worker_forks_with_the_runs_modules_and_validators_loaded(fresh_forkserver: None) -> None:
    from tests.scale import _procprobe

    http, parquet = _adapters()
    processes.prestart(http, parquet, {"base_url": "http://h"}, {"path": "/tmp/lake"})
    from dc_api_x.runner.executors._warm import ENV

    assert ENV not in os.environ  # the variable naming the adapters was set for that start only
    ctx = processes._context()
    conn, child = ctx.Pipe()
    proc = ctx.Process(target=_procprobe.probe, args=(child, "system"))
    proc.start()
    child.close()
    found: dict[str, Any] = conn.recv()
    proc.join(30)
    assert found["modules"] == {
        "httpcore": True,
        "msgspec": True,
        "pyarrow._compute": True,
        "importlib.metadata": True,
        "fsspec": False,
    }
    assert found["http_options_built"]
    assert not found["plugins_loaded"]  # only pydantic ran in the forkserver: the worker loads them
    assert not found["env"]  # the forkserver removed it: the workers' environment is the driver's
    # _worker_setup: the Arrow pool the driver runs with, the collector as `dcapix run` tunes it
    from dc_api_x.runner.startup import GC_GEN0_THRESHOLD

    assert found["arrow_pool"] == "system"
    assert found["gc_threshold"] >= GC_GEN0_THRESHOLD and found["frozen"] > 0


_EXIT = """
import atexit, os, sys
atexit.register(lambda: print("teardown", flush=True))  # registered first: runs last
if sys.argv[1] == "forkserver":
    os.environ[{env!r}] = ""
import dc_api_x.runner.executors._warm
print("ok", flush=True)
"""


@pytest.mark.parametrize("role", ["forkserver", "import"])
def test_the_forkserver_ends_without_the_interpreters_teardown(role: str) -> None:
    from dc_api_x.runner.executors._warm import ENV

    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_EXIT.format(env=ENV)), role],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    # in the forkserver its exit handler ends the process first; imported elsewhere it does nothing
    assert out.stdout.split() == (["ok"] if role == "forkserver" else ["ok", "teardown"])


# ------------------------------------------------------------------------ HTTP page windows
TOTAL = 1_234


def _offset(req: Any) -> tuple[int, dict[str, str], Any]:
    start, size = int(req.arg("offset", "0")), int(req.arg("limit", "50"))
    rows = [
        {"id": i, "name": f"n{i}", "score": i * 0.5, "attrs": {"k": i % 3}}
        for i in range(start, min(start + size, TOTAL))
    ]
    return 200, {"content-type": "application/json"}, {"data": rows, "total": TOTAL}


def _http_source(url: str) -> dict[str, Any]:
    return {
        "adapter": "http",
        "base_url": url,
        "streams": [
            {
                "name": "items",
                "path": "/items",
                "records_path": "data",
                "primary_keys": ["id"],
                "pagination": {"type": "offset", "limit": 50, "total_path": "total"},
            }
        ],
    }


def test_http_windows_on_worker_processes_equal_the_serial_run(project: Path) -> None:
    with LocalHTTPServer() as srv:
        srv.route("GET", "/items", _offset)
        src = _http_source(srv.url)
        write_config(
            project,
            {
                name: {"source": src, "destination": {"adapter": "parquet", "path": str(project / name)}}
                for name in ("serial", "procs")
            },
        )
        assert dcapix("run", "serial", "--no-progress") == 0
        assert dcapix("run", "procs", "--no-progress", "--workers", "2", "--worker-pool", "processes") == 0
    rows = parquet_rows(project / "procs" / "items")
    assert rows == parquet_rows(project / "serial" / "items")
    assert len(rows) == TOTAL
    assert state_of(project, "procs") == state_of(project, "serial") == {}


def test_a_task_with_the_validated_configuration_does_not_validate_it_again(
    project: Path, monkeypatch: pytest.MonkeyPatch, builtin_plugins: Any
) -> None:
    """A local worker process gets the driver's :class:`PipelineConfig` (pickled): it is used as it
    is, without building pydantic's validators again; a dask task's JSON is validated."""
    from dc_api_x import create_adapter
    from dc_api_x.runner.config import PipelineConfig
    from dc_api_x.runner.executors.worker import partition_task

    with LocalHTTPServer() as srv:
        srv.route("GET", "/items", _offset)
        src = _http_source(srv.url)
        raw = {"source": src, "destination": {"adapter": "parquet", "path": str(project / "o")}}
        config = PipelineConfig.model_validate(raw)
        with create_adapter(src) as a:
            spec = a.discover()[0]
            parts = a.partitions(spec, max_partitions=2)
        assert parts is not None and len(parts) == 2

        def refused(*args: Any, **kwargs: Any) -> Any:
            raise AssertionError("validated again")

        monkeypatch.setattr(PipelineConfig, "model_validate", refused)
        res = partition_task("p", config, spec, parts[0].as_dict(), None, "t0", None)
        assert res.rows == parts[0].options["stop"] - parts[0].options["offset"] == 600
        with pytest.raises(AssertionError, match="validated again"):
            partition_task("p", raw, spec, parts[1].as_dict(), None, "t1", None)
    assert len(parquet_rows(project / "o" / "items")) == res.rows
