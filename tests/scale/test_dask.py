"""``dcapix run --executor dask`` on a real ``distributed.LocalCluster`` (2 worker processes): the
same rows and state as the local executor and the serial run; a worker process SIGKILLed mid-run,
then a rerun: nothing lost, nothing duplicated, the same state."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.scale.conftest import fill_items, plain, write_config
from tests.scale.test_local import dcapix, state_of
from tests.support.destinations import RunDestinations, parquet_rows

#: each test starts dask clients and imports the adapters on the workers: > 20 s on the 2-core machine
pytestmark = pytest.mark.slow

distributed = pytest.importorskip(
    "distributed", reason="the dask extra is not installed (pip install -e '.[dask]')"
)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """A real LocalCluster: 2 worker processes, one thread each."""
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as c,
        distributed.Client(c) as client,
    ):
        yield c, client


def _source(pg_url: str, schema: str) -> dict[str, Any]:
    return {
        "adapter": "sql",
        "url": pg_url,
        "schema": schema,
        "streams": [{"table": "items", "replication_key": "updated_at"}],
        "batch_size": 1000,
    }


@pytest.mark.postgres
def test_dask_pg_to_parquet_equals_local_and_serial(
    project: Path, pg_url: str, pg_schema: str, cluster
) -> None:
    c, _ = cluster
    fill_items(pg_url, pg_schema, 0, 20_000, create=True)
    pipes = {
        name: {
            "source": _source(pg_url, pg_schema),
            "destination": {"adapter": "parquet", "path": str(project / name)},
        }
        for name in ("serial", "local", "dask")
    }
    write_config(project, pipes)
    for upto in (None, 22_000):
        if upto:
            fill_items(pg_url, pg_schema, 20_000, upto)
        assert dcapix("run", "serial", "--no-progress") == 0
        assert dcapix("run", "local", "--no-progress", "--partitions", "4", "--workers", "2") == 0
        assert (
            dcapix(
                "run",
                "dask",
                "--no-progress",
                "--executor",
                "dask",
                "--scheduler",
                c.scheduler_address,
                "--partitions",
                "4",
            )
            == 0
        )
        serial = parquet_rows(project / "serial" / "items")
        assert len(serial) == (upto or 20_000) + 3
        assert parquet_rows(project / "dask" / "items") == serial
        assert parquet_rows(project / "local" / "items") == serial
        assert state_of(project, "dask") == state_of(project, "serial") == state_of(project, "local")


@pytest.mark.postgres
@pytest.mark.parametrize("destination", ["parquet", "postgres-upsert"])
def test_dask_worker_sigkill_then_rerun(
    project: Path, pg_url: str, pg_schema: str, cluster, destination
) -> None:
    c, client = cluster
    fill_items(pg_url, pg_schema, 0, 40_000, create=True)

    dests = RunDestinations(destination, project, pg_url, pg_schema)
    dest, rows = dests.config, dests.rows

    write_config(
        project,
        {
            "serial": {"source": _source(pg_url, pg_schema), "destination": dest("serial")},
            "dask": {
                "source": {**_source(pg_url, pg_schema), "batch_size": 100},
                "destination": dest("dask"),
            },
        },
    )
    assert dcapix("run", "serial", "--no-progress") == 0
    killed: list[int] = []

    def killer() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            busy = [w for w, keys in client.processing().items() if any("dcapix-" in str(k) for k in keys)]
            if busy and any(p.startswith("~p") for _, p in state_of(project, "dask")):
                pids = client.run(os.getpid, workers=busy[:1])
                for pid in pids.values():
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                return
            time.sleep(0.01)

    t = threading.Thread(target=killer)
    t.start()
    args = ("run", "dask", "--no-progress", "--executor", "dask", "--scheduler", c.scheduler_address)
    try:
        rc: int | None = dcapix(*args, "--partitions", "12")
    except Exception:  # the scheduler may give the task up (KilledWorker): the run fails, state stays behind
        rc = None
    t.join()
    assert killed, "no worker was killed mid-run"
    client.wait_for_workers(2, timeout=60)
    if rc != 0 or any(p.startswith("~p") for _, p in state_of(project, "dask")):
        assert dcapix(*args) == 0  # the rerun resumes the stored plan
    assert rows("dask") == rows("serial")
    assert state_of(project, "dask") == state_of(project, "serial")
    if destination != "parquet":  # upserts were staged per partition and merged by the driver
        import psycopg

        with psycopg.connect(plain(pg_url)) as conn:
            tables = {
                r[0]
                for r in conn.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (pg_schema,)
                )
            }
        assert tables == {"items", "serial_items", "dask_items"}, tables
