"""Meltano schedules without Airflow: ``dcapix schedule run --meltano-project DIR`` runs this
repository's ``meltano.yml`` schedule (``demo-daily`` -> job ``demo-sync``) through real Meltano 4.x
(``meltano run demo-sync``), with the run lock, the missed-run policy and the run history
(rows per stream from Meltano's log, Meltano's state before and after).

Meltano is installed once into a venv under /tmp (``$MELTANO_VENV``, the one .ci/acceptance.sh
uses too) and reused; the plugins are installed by ``meltano install`` into a copy of the
repository (uv, warm cache: seconds).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dc_api_x.runner.schedule import Job, Policy, Schedule, ScheduleBook
from dc_api_x.runner.scheduler import dcapix_argv
from dc_api_x.runner.state import open_state_store
from tests.runner.schedsupport import ROOT, runs

MELTANO_VENV = Path(os.environ.get("MELTANO_VENV", "/tmp/dcapix-accept-meltano-venv"))
MELTANO_SPEC = os.environ.get("MELTANO_PIP_SPEC", "meltano>=4,<5")


@pytest.fixture(scope="session")
def meltano_bin() -> str:
    """A Meltano 4.x executable: ``$DCAPIX_TEST_MELTANO``, or the cached venv (created once)."""
    explicit = os.environ.get("DCAPIX_TEST_MELTANO")
    if explicit:
        return explicit
    exe = MELTANO_VENV / "bin" / "meltano"
    lock_path = Path(f"{MELTANO_VENV}.lock")
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel sessions install it once
        if not exe.exists():
            try:
                subprocess.run([sys.executable, "-m", "venv", str(MELTANO_VENV)], check=True, timeout=300)
                subprocess.run(
                    [str(MELTANO_VENV / "bin" / "pip"), "install", "-q", MELTANO_SPEC],
                    check=True,
                    timeout=900,
                    capture_output=True,
                )
            except (subprocess.SubprocessError, OSError) as exc:
                shutil.rmtree(MELTANO_VENV, ignore_errors=True)
                msg = f"!!! could not install {MELTANO_SPEC} into {MELTANO_VENV} ({exc}) -- Meltano SKIPPED"
                import warnings

                warnings.warn(msg, stacklevel=1)
                pytest.skip(msg)
    version = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=120).stdout
    assert " 4." in version, version
    return str(exe)


def _meltano_env() -> dict[str, str]:
    env = {
        **os.environ,
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
        "MELTANO_CLI_DISABLE_VERSION_CHECK": "true",
        "PYTHONPATH": str(ROOT),
    }
    env.pop("MELTANO_PROJECT_ROOT", None)
    env.pop("MELTANO_ENVIRONMENT", None)
    if not env.get("SSL_CERT_FILE") and Path("/etc/ssl/certs/ca-certificates.crt").exists():
        env["SSL_CERT_FILE"] = "/etc/ssl/certs/ca-certificates.crt"  # for uv (plugin installs)
    return env


@pytest.fixture
def meltano_project(tmp_path: Path, meltano_bin: str) -> Iterator[Path]:
    """A copy of this repository (as Meltano installs it: ``pip_url: -e .[…]``) with the demo data
    and the two plugins installed."""
    proj = tmp_path / "project"
    proj.mkdir()
    for name in ("pyproject.toml", "README.md", "meltano.yml"):
        shutil.copy2(ROOT / name, proj / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.sqlite", "*.db")
    for name in ("src", "taps", "targets", "examples"):
        shutil.copytree(ROOT / name, proj / name, ignore=ignore)
    env = _meltano_env()
    subprocess.run([sys.executable, "examples/make_demo_db.py"], cwd=proj, check=True, capture_output=True)
    res = subprocess.run(
        [meltano_bin, "install", "tap-dcapix", "target-dcapix"],
        cwd=proj,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    yield proj


def _dcapix(proj: Path, meltano_bin: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*dcapix_argv(), *args, "--meltano-project", str(proj), "--meltano-bin", meltano_bin],
        cwd=proj.parent,
        env=_meltano_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )


def _parquet_rows(directory: Path) -> int:
    import pyarrow.parquet as pq

    return sum(pq.read_metadata(p).num_rows for p in directory.rglob("*.parquet"))


def test_meltano_schedule_runs_through_real_meltano(meltano_project: Path, meltano_bin: str) -> None:
    proj = meltano_project
    listed = _dcapix(proj, meltano_bin, "schedule", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    (row,) = json.loads(listed.stdout)
    assert (row["job"], row["schedule"], row["kind"]) == ("meltano:demo-daily", "@daily (UTC)", "meltano")
    assert row["next_runs"][0].endswith("T00:00:00+00:00") and row["last_run"] is None

    # the scheduler last looked two days ago: the missed @daily slot is caught up once
    with open_state_store(project_dir=proj) as store:
        ScheduleBook(store).register(
            Job("meltano:demo-daily", "meltano", Schedule(cron="@daily"), Policy()), time.time() - 2 * 86400
        )
    first = _dcapix(proj, meltano_bin, "schedule", "run", "--once")
    assert first.returncode == 0, first.stderr[-3000:]
    assert "meltano:demo-daily: 1 slot(s) missed" in first.stderr
    assert "[meltano:demo-daily] meltano: Run completed" in first.stderr
    (run,) = runs(proj)
    assert (run.pipeline, run.mode, run.trigger, run.status) == (
        "meltano:demo-daily",
        "meltano",
        "schedule",
        "done",
    )
    assert run.command == "meltano run demo-sync" and run.rows == 1100
    streams = {s.stream: s for s in run.streams}
    assert {k: s.rows for k, s in streams.items()} == {"customers": 100, "orders": 1000}
    assert streams["orders"].state_before is None
    assert streams["orders"].state_after["replication_key_value"] == "2024-01-01T08:20:00+00:00"
    assert run.detail["state_ids"] == {"tap-dcapix": "dev:tap-dcapix-to-target-dcapix"}
    assert _parquet_rows(proj / "output" / "demo") == 1100

    # nothing is due any more
    again = _dcapix(proj, meltano_bin, "schedule", "run", "--once")
    assert again.returncode == 0 and len(runs(proj)) == 1

    # the same run lock as dcapix pipelines: while it is held elsewhere, the run is skipped
    with open_state_store(project_dir=proj) as store, store.lock("meltano:demo-daily", run_id="elsewhere"):
        busy = _dcapix(proj, meltano_bin, "schedule", "run", "--now", "meltano:demo-daily")
    assert busy.returncode == 0, busy.stderr[-2000:]
    skipped = runs(proj)[-1]
    assert skipped.status == "skipped" and "already running" in (skipped.error or "")
    assert len(runs(proj)) == 2


@pytest.mark.slow
def test_meltano_schedule_incremental_now_and_failure(meltano_project: Path, meltano_bin: str) -> None:
    """``--now`` twice: Meltano's state carries over (only new rows move); then a real failure."""
    proj = meltano_project
    first = _dcapix(proj, meltano_bin, "schedule", "run", "--now", "demo-daily")
    assert first.returncode == 0, first.stderr[-3000:]
    (run,) = runs(proj)
    assert (run.trigger, run.status, run.rows) == ("manual", "done", 1100)
    streams = {s.stream: s for s in run.streams}

    # new rows, run now: Meltano's own state carries over, only the new rows move
    subprocess.run(
        [sys.executable, "examples/make_demo_db.py", "--append", "--customers", "5", "--orders", "20"],
        cwd=proj,
        check=True,
        capture_output=True,
    )
    now = _dcapix(proj, meltano_bin, "schedule", "run", "--now", "demo-daily")
    assert now.returncode == 0, now.stderr[-3000:]
    second = runs(proj)[-1]
    assert (second.trigger, second.status, second.rows) == ("manual", "done", 25)
    s2 = {s.stream: s for s in second.streams}
    assert s2["orders"].state_before == streams["orders"].state_after
    assert _parquet_rows(proj / "output" / "demo") == 1125

    # a real failure (the source database is gone): no retry with --retries 0, recorded as failed
    (proj / "examples" / "demo.sqlite").unlink()
    failed = _dcapix(proj, meltano_bin, "schedule", "run", "--now", "--retries", "0", "demo-daily")
    assert failed.returncode == 1
    last = runs(proj)[-1]
    assert last.status == "failed" and last.error and "exited with code" in last.error
    assert len(runs(proj)) == 3
