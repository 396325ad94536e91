"""Kill the runner with SIGKILL mid-run, rerun: no row lost, none duplicated (upsert), and with
append at most the rows after the last checkpoint duplicated. The state never runs ahead."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dc_api_x.runner.state import open_state_store
from tests.runner.conftest import dcapix, write_config
from tests.runner.support import make_source_db, table_rows
from tests.support.process import ROOT, cli_with_plugins, kill_when

CHILD = cli_with_plugins("tests.runner.support")
ROWS = 20_000


def _kill_mid_run(project: Path, min_state: int) -> int:
    db = project / ".dcapix" / "state.db"

    def checkpointed() -> bool:
        if not db.exists():
            return False
        with open_state_store(path=str(db)) as s:
            state = s.get("copy", "items")
        return bool(state and state["id"] >= min_state)

    rc = kill_when(project, CHILD, ["run", "copy", "--no-progress"], checkpointed, what="a checkpoint")
    assert rc == -signal.SIGKILL
    with open_state_store(project_dir=project) as s:
        final = s.get("copy", "items")
    assert final is not None and final["id"] < ROWS  # killed mid-way
    return int(final["id"])


@pytest.mark.parametrize("load_method", ["upsert", "append"])
def test_sigkill_mid_run_then_rerun(rplugins, project, load_method) -> None:
    src, dst = project / "src.db", project / "dst.db"
    make_source_db(src, ROWS)
    write_config(
        project,
        {
            "copy": {
                "source": {"adapter": "t_sqlite_src", "path": str(src), "batch_size": 200, "delay": 0.004},
                "destination": {"adapter": "t_sqlite_dst", "path": str(dst), "load_method": load_method},
                "checkpoint_rows": 1000,
            }
        },
    )
    saved = _kill_mid_run(project, 3000)
    # the state never runs ahead of what the destination committed
    committed = [r[0] for r in table_rows(dst, "items")]
    assert set(range(1, saved + 1)) <= set(committed)
    assert dcapix("run", "copy", "--no-progress") == 0
    ids = [r[0] for r in table_rows(dst, "items")]
    assert sorted(set(ids)) == list(range(1, ROWS + 1))  # no row lost
    if load_method == "upsert":
        assert len(ids) == ROWS  # none duplicated
    else:
        assert len(ids) - ROWS <= 1000  # at most the rows after the last checkpoint


@pytest.mark.postgres
def test_sigkill_postgres_to_postgres_upsert(plugins, project, pg_url, pg_schema) -> None:
    """The same with the real SQL adapter on both sides (incremental on ``seq``, upsert)."""
    if "sql" not in plugins.adapters:
        pytest.skip("sql adapter not registered")
    import psycopg

    plain = pg_url.replace("postgresql+psycopg://", "postgresql://", 1)
    n = 300_000
    dst_schema = f"{pg_schema}_d"
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(
            f'CREATE TABLE "{pg_schema}".big (id bigint PRIMARY KEY, seq bigint NOT NULL, '
            "payload text NOT NULL)"
        )
        conn.execute(
            f'INSERT INTO "{pg_schema}".big SELECT g, g, repeat(md5(g::text), 4) '
            f"FROM generate_series(1, {n}) g"
        )
        conn.execute(f'CREATE SCHEMA "{dst_schema}"')
    try:
        write_config(
            project,
            {
                "copy": {
                    "source": {
                        "adapter": "sql",
                        "url": pg_url,
                        "batch_size": 2000,
                        "streams": [{"table": "big", "schema": pg_schema, "replication_key": "seq"}],
                    },
                    "destination": {
                        "adapter": "sql",
                        "url": pg_url,
                        "schema": dst_schema,
                        "load_method": "upsert",
                    },
                    "checkpoint_rows": 10_000,
                }
            },
        )
        env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "dc_api_x.cli", "run", "copy", "--no-progress"],
            cwd=project,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        saved = None
        deadline = time.monotonic() + 120
        try:
            while time.monotonic() < deadline and proc.poll() is None:
                db = project / ".dcapix" / "state.db"
                if db.exists():
                    with open_state_store(path=str(db)) as s:
                        entries = s.list("copy")
                    if entries and entries[0].value:
                        saved = entries[0]
                        break
                time.sleep(0.01)
            if proc.poll() is not None:
                pytest.fail(
                    f"run ended (rc {proc.returncode}) before a checkpoint could be seen: "
                    f"{proc.stderr.read().decode()[-500:] if proc.stderr else ''}"
                )
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.wait(timeout=30)
        assert saved is not None
        with open_state_store(project_dir=project) as s:
            state = s.get("copy", saved.stream)
        assert state is not None
        with psycopg.connect(plain, autocommit=True) as conn:
            tables = [
                r[0]
                for r in conn.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (dst_schema,)
                )
            ]
            table = f'"{dst_schema}"."{tables[0]}"'
            mid = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        assert 0 < mid < n  # killed mid-way, with committed rows
        assert dcapix("run", "copy", "--no-progress") == 0
        with psycopg.connect(plain, autocommit=True) as conn:
            count, distinct, lo, hi = conn.execute(
                f"SELECT count(*), count(DISTINCT id), min(id), max(id) FROM {table}"
            ).fetchone()
        assert (count, distinct, lo, hi) == (n, n, 1, n)  # nothing lost, nothing duplicated
    finally:
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{dst_schema}" CASCADE')


def test_sigterm_stops_cleanly(rplugins, project) -> None:
    src, dst = project / "src.db", project / "dst.db"
    make_source_db(src, ROWS)
    write_config(
        project,
        {
            "copy": {
                "source": {"adapter": "t_sqlite_src", "path": str(src), "batch_size": 200, "delay": 0.004},
                "destination": {"adapter": "t_sqlite_dst", "path": str(dst), "load_method": "append"},
                "checkpoint_rows": 1000,
            }
        },
    )
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, "run", "copy", "--no-progress"],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        db = project / ".dcapix" / "state.db"
        if db.exists():
            with open_state_store(path=str(db)) as s:
                if s.get("copy", "items"):
                    break
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)  # a second one must not re-enter the cleanup
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "items" in out  # the summary of what was done
    with open_state_store(project_dir=project) as s:
        saved = s.get("copy", "items")["id"]
    ids = [r[0] for r in table_rows(dst, "items")]
    assert saved < ROWS and ids == list(range(1, saved + 1))  # exactly the committed rows
    assert dcapix("run", "copy", "--no-progress") == 0
    assert [r[0] for r in table_rows(dst, "items")] == list(range(1, ROWS + 1))
