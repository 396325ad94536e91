"""``dcapix run --executor local --worker-pool processes``: partitions on worker processes give
exactly the rows and the state of the serial run (PostgreSQL -> Parquet, -> PostgreSQL upsert,
-> SQLite upsert); a worker process SIGKILLed mid-run is replaced and its partition resumed; the
driver SIGKILLed mid-run takes its workers with it and a rerun finishes the plan. Nothing lost,
nothing duplicated, the state equal to the serial run's."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dc_api_x.runner.state import open_state_store
from tests.scale.conftest import fill_items, plain, write_config
from tests.scale.test_local import dcapix, state_of
from tests.support.destinations import RunDestinations
from tests.support.process import CLI, ROOT

PROCESSES = ("--worker-pool", "processes")


class Destinations(RunDestinations):
    """:class:`RunDestinations` plus ``sqlite-upsert``: a table ``{name}_items`` per pipeline in one
    SQLite file of the project, loaded by upsert."""

    def config(self, name: str) -> dict[str, Any]:
        if self.kind != "sqlite-upsert":
            return super().config(name)
        return {
            "adapter": "sql",
            "url": f"sqlite:///{self.project / 'dest.db'}",
            "load_method": "upsert",
            "streams": [{"name": "items", "table": f"{name}_items"}],
        }

    def rows(self, name: str) -> list[tuple[Any, ...]]:
        if self.kind != "sqlite-upsert":
            return super().rows(name)
        with sqlite3.connect(self.project / "dest.db") as conn:
            return sorted(conn.execute(f'SELECT id, updated_at, amount, name FROM "{name}_items"').fetchall())

    def tables(self) -> set[str]:
        """The tables of the destination (stage tables left behind would show here)."""
        if self.kind == "sqlite-upsert":
            with sqlite3.connect(self.project / "dest.db") as conn:
                return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        import psycopg

        with psycopg.connect(plain(self.pg_url)) as conn:
            return {
                r[0]
                for r in conn.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                    (self.pg_schema,),
                )
            } - {"items"}


def _source(pg_url: str, schema: str, batch_size: int = 500) -> dict[str, Any]:
    return {
        "adapter": "sql",
        "url": pg_url,
        "schema": schema,
        "streams": [{"table": "items", "replication_key": "updated_at"}],
        "batch_size": batch_size,
    }


@pytest.mark.postgres
@pytest.mark.parametrize("destination", ["parquet", "postgres-upsert", "sqlite-upsert"])
def test_process_workers_equal_the_serial_run(
    project: Path, pg_url: str, pg_schema: str, destination: str
) -> None:
    fill_items(pg_url, pg_schema, 0, 12_000, create=True)
    dests = Destinations(destination, project, pg_url, pg_schema)
    pipes = {
        "serial": {"source": _source(pg_url, pg_schema), "destination": dests.config("serial")},
        # the pool from the pipeline file; checkpoints inside the partitions
        "procs": {
            "source": {**_source(pg_url, pg_schema), "worker_pool": "processes", "concurrency": 2},
            "destination": dests.config("procs"),
            "checkpoint_rows": 1000,
        },
    }
    write_config(project, pipes)
    for upto in (None, 13_500):  # a first run, then an incremental one from the merged bookmark
        if upto:
            fill_items(pg_url, pg_schema, 12_000, upto)
        assert dcapix("run", "serial", "--no-progress") == 0
        assert dcapix("run", "procs", "--no-progress", "--partitions", "4") == 0
        serial = dests.rows("serial")
        assert len(serial) == (upto or 12_000) + 3
        assert dests.rows("procs") == serial
        assert state_of(project, "procs") == state_of(project, "serial")
    if destination != "parquet":  # upserts were staged per partition and merged by the driver
        assert dests.tables() == {"serial_items", "procs_items"}


def test_worker_pool_flag_overrides_the_file_and_is_checked(project: Path) -> None:
    from dc_api_x.runner.config import Endpoint
    from dc_api_x.runner.executors import worker_pool
    from dc_api_x.runner.pipeline import RunOptions

    class _R:
        name = "p"

        def __init__(self, flag: str | None, key: str | None) -> None:
            self.options = RunOptions(worker_pool=flag)
            src = {"adapter": "sql"} if key is None else {"adapter": "sql", "worker_pool": key}
            self.config = type("C", (), {"source": Endpoint.model_validate(src)})()

    assert worker_pool(_R(None, None)) == "threads"  # type: ignore[arg-type]
    assert worker_pool(_R(None, "processes")) == "processes"  # type: ignore[arg-type]
    assert worker_pool(_R("threads", "processes")) == "threads"  # type: ignore[arg-type]
    with pytest.raises(Exception, match="worker_pool must be one of threads, processes"):
        worker_pool(_R("fibers", None))  # type: ignore[arg-type]
    with pytest.raises(Exception, match="worker_pool"):
        Endpoint.model_validate({"adapter": "sql", "worker_pool": "fibers"})
    assert "worker_pool" not in Endpoint.model_validate({"adapter": "sql", "worker_pool": "threads"}).options


# ------------------------------------------------------------------------------------ SIGKILL
def _children(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(d.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _workers(driver: int) -> list[int]:
    """The worker processes of a ``dcapix run``: the forkserver's children (the driver's grandchildren)."""
    return [g for c in _children(driver) for g in _children(c) if _alive(g)]


def _start(project: Path, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.Popen(
        [sys.executable, "-c", CLI, *args],
        cwd=project,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _wait_for(
    proc: subprocess.Popen[bytes], ready: Callable[[], bool], what: str, timeout: float = 120
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            pytest.fail(f"the run ended before {what} (rc {proc.returncode}): {err}")
        if ready():
            return
        time.sleep(0.01)
    proc.kill()
    pytest.fail(f"{what} did not happen within {timeout:.0f} s")


def _progress(project: Path, pipeline: str) -> tuple[int, int, int]:
    """(partitions with a recorded bookmark, partitions done, partitions) of the stored plan."""
    if not (project / ".dcapix" / "state.db").exists():
        return 0, 0, 0
    st = state_of(project, pipeline)
    plan = st.get(("items", "~plan"))
    parts = [v for (_, p), v in st.items() if p.startswith("~p")]
    total = len(plan["partitions"]) if plan else 0
    return sum(1 for v in parts if v.get("bookmark")), sum(1 for v in parts if v.get("done")), total


ROWS = 30_000


def _kill_setup(project: Path, pg_url: str, pg_schema: str, destination: str) -> Destinations:
    fill_items(pg_url, pg_schema, 0, ROWS, create=True)
    dests = Destinations(destination, project, pg_url, pg_schema)
    write_config(
        project,
        {
            "serial": {"source": _source(pg_url, pg_schema), "destination": dests.config("serial")},
            "procs": {
                "source": _source(pg_url, pg_schema, batch_size=250),
                "destination": dests.config("procs"),
                "checkpoint_rows": 250,
            },
        },
    )
    assert dcapix("run", "serial", "--no-progress") == 0
    return dests


def _same_as_serial(project: Path, dests: Destinations) -> None:
    assert dests.rows("procs") == dests.rows("serial")  # nothing lost, nothing duplicated
    assert state_of(project, "procs") == state_of(project, "serial")
    with open_state_store(project_dir=project) as s:
        assert [e.partition for e in s.list("procs")] == [""]  # the plan is closed


@pytest.mark.postgres
@pytest.mark.parametrize("destination", ["parquet", "postgres-upsert"])
def test_sigkill_of_a_worker_process_is_resumed_by_a_new_worker(
    project: Path, pg_url: str, pg_schema: str, destination: str
) -> None:
    dests = _kill_setup(project, pg_url, pg_schema, destination)
    proc = _start(project, "run", "procs", "--no-progress", "--workers", "2", "--partitions", "6", *PROCESSES)

    def mid_run() -> bool:
        recorded, done, total = _progress(project, "procs")
        # Parquet: partitions checkpoint inside; upsert: a stage is recorded when merged (done)
        moved = recorded >= 1 if destination == "parquet" else done >= 1
        return moved and done < total - 1 and len(_workers(proc.pid)) == 2

    _wait_for(proc, mid_run, "a recorded partition with two busy workers")
    victim = _workers(proc.pid)[0]
    os.kill(victim, signal.SIGKILL)
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err.decode()
    assert f"worker process {victim}" in err.decode() and "a new worker resumes it" in err.decode()
    _same_as_serial(project, dests)
    if destination != "parquet":
        assert dests.tables() == {"serial_items", "procs_items"}


@pytest.mark.postgres
@pytest.mark.parametrize("destination", ["parquet", "sqlite-upsert"])
def test_sigkill_of_the_driver_ends_its_workers_and_a_rerun_finishes(
    project: Path, pg_url: str, pg_schema: str, destination: str
) -> None:
    dests = _kill_setup(project, pg_url, pg_schema, destination)
    proc = _start(project, "run", "procs", "--no-progress", "--workers", "2", "--partitions", "6", *PROCESSES)
    workers: list[int] = []

    def mid_run() -> bool:
        recorded, done, total = _progress(project, "procs")
        moved = recorded >= 2 if destination == "parquet" else done >= 1
        workers[:] = _workers(proc.pid)
        return moved and done < total - 1 and len(workers) == 2

    _wait_for(proc, mid_run, "two recorded partitions with two busy workers")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    deadline = time.monotonic() + 20
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [w for w in workers if _alive(w)], "a worker outlived its driver"
    assert 0 < len(dests.rows("procs")) < ROWS + 3
    assert ("items", "~plan") in state_of(project, "procs")
    assert dcapix("run", "procs", "--no-progress", "--workers", "2", *PROCESSES) == 0
    _same_as_serial(project, dests)
    if destination != "parquet":
        assert dests.tables() == {"serial_items", "procs_items"}


@pytest.mark.postgres
def test_a_failing_partition_stops_the_run_and_a_rerun_finishes(
    project: Path, pg_url: str, pg_schema: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A partition whose read fails in its worker process: the run fails with that error (raised
    in the driver), the others stop, what they recorded stays; once the source is fixed, a rerun
    finishes the plan with the serial run's rows and state."""
    import psycopg

    fill_items(pg_url, pg_schema, 0, 8000, create=True)
    with psycopg.connect(plain(pg_url), autocommit=True) as conn:
        conn.execute(f'CREATE TABLE "{pg_schema}".divisor (d integer)')
        conn.execute(f'INSERT INTO "{pg_schema}".divisor VALUES (0)')
        # the rows 6000.. divide by zero while divisor.d is 0: the last partitions fail
        conn.execute(
            f'CREATE VIEW "{pg_schema}".items_v AS SELECT i.id, i.updated_at, '
            f'CASE WHEN i.id >= 6000 THEN i.amount + 0 * (1 / (SELECT d FROM "{pg_schema}".divisor)) '
            "ELSE i.amount END AS amount, i.name "
            f'FROM "{pg_schema}".items i'
        )
    view = {"table": "items_v", "replication_key": "updated_at", "primary_keys": ["id"]}  # a view has none
    src = {**_source(pg_url, pg_schema), "streams": [view]}
    dests = {n: {"adapter": "parquet", "path": str(project / n)} for n in ("serial", "procs")}
    write_config(
        project,
        {n: {"source": src, "destination": d, "checkpoint_rows": 500} for n, d in dests.items()},
    )
    capsys.readouterr()
    assert dcapix("run", "procs", "--no-progress", "--workers", "2", "--partitions", "4", *PROCESSES) != 0
    assert "division by zero" in capsys.readouterr().err
    left = state_of(project, "procs")
    assert ("items_v", "~plan") in left
    assert not all(v.get("done") for (_, p), v in left.items() if p.startswith("~p"))
    with psycopg.connect(plain(pg_url), autocommit=True) as conn:
        conn.execute(f'UPDATE "{pg_schema}".divisor SET d = 1')
    assert dcapix("run", "procs", "--no-progress", "--workers", "2", *PROCESSES) == 0
    assert dcapix("run", "serial", "--no-progress") == 0
    from tests.support.destinations import parquet_rows

    serial = parquet_rows(project / "serial" / "items_v")
    assert len(serial) == 8003
    assert parquet_rows(project / "procs" / "items_v") == serial
    assert state_of(project, "procs") == state_of(project, "serial")
