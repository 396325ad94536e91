"""SIGKILL a partitioned ``dcapix run`` (4 workers) mid-run, rerun: nothing lost, nothing duplicated,
the state equal to the serial run's; while it ran, the stored stream bookmark never covered a row
the destination had not committed."""

from __future__ import annotations

import datetime as dt
import signal
from pathlib import Path
from typing import Any

import pytest

from dc_api_x.runner.state import open_state_store
from tests.scale.conftest import fill_items, plain, write_config
from tests.scale.test_local import dcapix, state_of
from tests.support.destinations import RunDestinations
from tests.support.process import CLI, kill_when

ROWS = 60_000


def kill_mid_run(project: Path, pipeline: str, *extra: str) -> dict[tuple[str, str], Any]:
    """Start ``dcapix run PIPELINE`` in a child process; SIGKILL it once at least two partitions
    have stored a checkpoint and the plan is not finished. Returns the state left behind."""

    def two_checkpoints() -> bool:
        if not (project / ".dcapix" / "state.db").exists():
            return False
        parts = [v for (_, p), v in state_of(project, pipeline).items() if p.startswith("~p")]
        return sum(1 for v in parts if v.get("bookmark")) >= 2 and not all(v.get("done") for v in parts)

    args = ["run", pipeline, "--no-progress", *extra]
    what = "two partition checkpoints"
    rc = kill_when(project, CLI, args, two_checkpoints, what=what, timeout=120, poll=0.01)
    assert rc == -signal.SIGKILL
    return state_of(project, pipeline)


def _source(pg_url: str, schema: str) -> dict[str, Any]:
    return {
        "adapter": "sql",
        "url": pg_url,
        "schema": schema,
        "streams": [{"table": "items", "replication_key": "updated_at"}],
        "batch_size": 250,
    }


@pytest.mark.postgres
@pytest.mark.parametrize("destination", ["parquet", "postgres-upsert"])
def test_sigkill_partitioned_run_then_rerun(
    project: Path, pg_url: str, pg_schema: str, destination: str
) -> None:
    fill_items(pg_url, pg_schema, 0, ROWS, create=True)

    dests = RunDestinations(destination, project, pg_url, pg_schema)
    dest, rows = dests.config, dests.rows

    write_config(
        project,
        {
            "serial": {"source": _source(pg_url, pg_schema), "destination": dest("serial")},
            "parts": {
                "source": _source(pg_url, pg_schema),
                "destination": dest("parts"),
                "checkpoint_rows": 250,
            },
        },
    )
    assert dcapix("run", "serial", "--no-progress") == 0
    left = kill_mid_run(project, "parts", "--workers", "4")
    assert ("items", "~plan") in left
    committed = rows("parts")
    assert 0 < len(committed) < ROWS
    # the stored stream bookmark never runs ahead: every source row before it is committed
    merged = left.get(("items", ""))
    if merged is not None:
        upto = dt.datetime.fromisoformat(merged["replication_key_value"])
        have = {r[0] for r in committed}
        import psycopg

        with psycopg.connect(plain(pg_url)) as conn:
            before = {
                r[0]
                for r in conn.execute(f'SELECT id FROM "{pg_schema}".items WHERE updated_at < %s', (upto,))
            }
        assert before <= have
    # the rerun finishes the stored plan: with 4 workers, or (Parquet) with none asked for
    rerun = ("--workers", "4") if destination != "parquet" else ()
    assert dcapix("run", "parts", "--no-progress", *rerun) == 0
    assert rows("parts") == rows("serial")  # nothing lost, nothing duplicated
    assert state_of(project, "parts") == state_of(project, "serial")
    with open_state_store(project_dir=project) as s:
        assert [e.partition for e in s.list("parts")] == [""]
