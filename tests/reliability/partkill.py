"""Partition-worker kills: seeded ``SIGKILL`` of the workers of a partitioned ``dcapix run``, then
reruns until the job is done (docs/scale.md, "Exact state under concurrency").

* ``--executor local``: the partitions run on threads of the ``dcapix run`` process, so killing a
  worker is killing that process — at a seeded crash point hit (``state.write``: inside a
  partition's checkpoint transaction; ``files.chunk_written``: mid part file) or a seeded delay after
  the plan was stored (anywhere: mid batch, mid flush, between a flush and its checkpoint).
* ``--executor dask``: a real ``distributed.LocalCluster`` of 2 worker processes (started once by
  :class:`DaskCluster`); the harness ``SIGKILL``\\ s the process of a worker that is running a
  ``dcapix-`` task a seeded delay after it started it; the driver either has the task rerun on the
  other worker or fails (``KilledWorker``), and the harness reruns until the plan is finished.

The source is the truth in SQLite with a ``TIMESTAMP`` replication key (split into ranges). Oracles
at every kill: the stream bookmark and every partition's bookmark (ids in the partition's range up
to it) must be committed in the destination; after the last run: the row oracle (0 lost, upsert 0
duplicates, append at most the rows committed but not covered by a recorded bookmark at the kills),
no plan entry left in the state store, no temporary file or staging table left.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from tests.reliability.kill import RUNNER_CHILD, KillStats, Scenario, _env, _Job, check_final_rows
from tests.reliability.oracle import leftovers
from tests.reliability.truth import Truth, _norm_ts, make_truth, write_source

__all__ = ["DaskCluster", "run_dask_trial", "run_local_trial", "scenarios"]

PARTITIONS = 4


def scenarios() -> list[Scenario]:
    """Local-executor scenarios first, then the dask ones."""
    return [
        Scenario("partitions", "worker", "state.write", "sqlite", "upsert"),
        Scenario("partitions", "worker", "time", "parquet"),
        Scenario("partitions", "worker", "files.chunk_written", "jsonl"),
        Scenario("partitions", "worker", "time", "sqlite", "upsert"),
        Scenario("dask", "worker", "time", "parquet"),
        Scenario("dask", "worker", "time", "sqlite", "upsert"),
    ]


def _entries(work: Path) -> dict[str, Any]:
    """partition key → value of the pipeline's ``items`` state entries (``""``: the stream bookmark)."""
    db = work / ".dcapix" / "state.db"
    if not db.exists():
        return {}
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        rows = con.execute(
            "SELECT partition, value FROM dcapix_state WHERE pipeline = 'copy' AND stream = 'items'"
        ).fetchall()
    except sqlite3.OperationalError:  # not created yet
        return {}
    finally:
        con.close()
    return {p: json.loads(v) for p, v in rows}


def _covered(truth: Truth, entries: dict[str, Any]) -> tuple[set[int], list[tuple[str, set[int]]]]:
    """(ids every recorded bookmark claims delivered, [(what, claimed ids) per bookmark])."""
    claims: list[tuple[str, set[int]]] = []
    stream = (entries.get("") or {}).get("replication_key_value")
    if stream is not None:
        claims.append(("stream bookmark", truth.ids_up_to(str(stream))))
    plan = entries.get("~plan") or {}
    ranges = {p["index"]: (p.get("options") or {}).get("range") or {} for p in plan.get("partitions", [])}
    for key, value in entries.items():
        if not key.startswith("~p") or not key[2:6].isdigit():
            continue
        index = int(key[2:6])
        rng = ranges.get(index, {})
        gt = rng.get("gt")
        lo = _norm_ts(gt) if gt is not None else None
        if value.get("done"):
            le = rng.get("le")
            hi = _norm_ts(le) if le is not None else None
        else:
            bm = (value.get("bookmark") or {}).get("replication_key_value")
            if bm is None:
                continue
            hi = _norm_ts(bm)
        ids = {
            r["id"]
            for r in truth.rows
            if (lo is None or _norm_ts(r["updated_at"]) > lo)
            and (hi is None or _norm_ts(r["updated_at"]) <= hi)
        }
        claims.append((f"partition {index}{' (done)' if value.get('done') else ''}", ids))
    covered: set[int] = set().union(*(c for _, c in claims)) if claims else set()
    return covered, claims


def _check(job: _Job, stats: KillStats, kill: bool) -> None:
    """The state-safety oracle on every bookmark stored now; at a kill, the append duplicate bound."""
    committed = job.committed()
    if committed is None:
        return
    covered, claims = _covered(job.truth, _entries(job.work))
    for what, ids in claims:
        stats.states_checked += 1
        ahead = ids - committed
        if ahead:
            stats.states_ahead += 1
            stats.errors.append(f"{what} ahead of committed data by {len(ahead)} rows")
    if kill:
        stats.kills += 1
        stats.dup_bound += len(committed - covered)


def _sqlite_stage_tables(db: Path) -> list[str]:
    if not db.exists():
        return []
    con = sqlite3.connect(db, timeout=30)
    try:
        names = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    finally:
        con.close()
    return [n for n in names if n != "items"]


def _finish(job: _Job, stats: KillStats, done: bool) -> KillStats:
    if not done and not stats.errors:
        stats.errors.append(f"job not done after {stats.runs} runs")
    left = [k for k in _entries(job.work) if k.startswith("~")]
    if done and left:
        stats.errors.append(f"plan entries left in the state store after the job finished: {left}")
    check_final_rows(stats, job.truth, job.kind, job.where)
    if job.kind == "sqlite":
        stats.leftovers = [f"table {t}" for t in _sqlite_stage_tables(job.where)]
    else:
        stats.leftovers = leftovers(job.where)
    return stats


def _setup(sc: Scenario, work: Path, seed: int, rows: int) -> tuple[_Job, KillStats, random.Random]:
    rng = random.Random(seed)
    work.mkdir(parents=True, exist_ok=True)
    truth = make_truth(rows, seed=seed)
    write_source(work / "src.db", truth, timestamp_type="TIMESTAMP")
    stats = KillStats(sc, seed)
    job = _Job(sc, work, truth, rng, stats)
    # small checkpoints: each partition records several bookmarks before it finishes
    job.write_runner_config(checkpoint_rows=250)
    return job, stats, rng


def _start(job: _Job, args: list[str], crash: str | None) -> subprocess.Popen[bytes]:
    log = job.log.open("ab")
    log.write(f"--- run {args} crash={crash}\n".encode())
    log.flush()
    try:
        return subprocess.Popen(
            [sys.executable, "-c", RUNNER_CHILD, "run", "copy", "--no-progress", *args],
            cwd=job.work,
            env=_env(crash),
            stdout=log,
            stderr=log,
        )
    finally:
        log.close()


def run_local_trial(
    sc: Scenario, work: Path, *, seed: int, rows: int, kills: int, max_runs: int = 30
) -> KillStats:
    """``dcapix run copy --executor local --workers 2 --partitions 4``: ``kills`` seeded kills, then
    reruns (with and without ``--workers``: a rerun finishes the stored plan either way)."""
    job, stats, rng = _setup(sc, work, seed, rows)
    done = False
    while stats.runs < max_runs:
        want_kill = stats.kills < kills
        args = ["--executor", "local", "--workers", "2", "--partitions", str(PARTITIONS)]
        if not want_kill and rng.random() < 0.5:
            args = []  # a plain rerun resumes the plan with one worker
        crash = None
        if want_kill and sc.point != "time":
            # about one hit per 250-row checkpoint: a hit the rows not yet covered reach
            left = rows - len(_covered(job.truth, _entries(job.work))[0])
            crash = f"{sc.point}:{rng.randint(1, max(left // 250, 1))}"
        proc = _start(job, args, crash)
        if want_kill and sc.point == "time":
            delay = rng.uniform(0.0, 1.5)
            deadline = time.monotonic() + 120
            planned: float | None = None
            while proc.poll() is None and time.monotonic() < deadline:
                if planned is None and "~plan" in _entries(job.work):
                    planned = time.monotonic()
                if planned is not None and time.monotonic() - planned >= delay:
                    proc.send_signal(signal.SIGKILL)
                    break
                time.sleep(0.01)
        rc = proc.wait(timeout=300)
        stats.runs += 1
        if rc == -signal.SIGKILL:
            _check(job, stats, kill=True)
            continue
        if rc != 0:
            stats.errors.append(f"run exited {rc} (see {job.log})")
            break
        done = True  # (with a kill still due: the run finished before it; the job is complete)
        break
    return _finish(job, stats, done)


class DaskCluster:
    """A real ``distributed.LocalCluster`` of 2 worker processes (1 thread each) for the trials."""

    def __init__(self) -> None:
        import logging

        import distributed

        self.cluster = distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,  # the nanny's "Restarting worker" after each kill
        )
        self.client = distributed.Client(self.cluster)

    @property
    def address(self) -> str:
        return str(self.cluster.scheduler_address)

    def close(self) -> None:
        self.client.close()
        self.cluster.close()

    def kill_busy_worker(self, deadline: float) -> int | None:
        """SIGKILL the process of a worker running a ``dcapix-`` task; its pid (None: none ran)."""
        while time.monotonic() < deadline:
            try:
                busy = [
                    w
                    for w, keys in self.client.processing().items()
                    if any("dcapix-" in str(k) for k in keys)
                ]
                if busy:
                    pids = self.client.run(os.getpid, workers=busy[:1])
                    for pid in pids.values():
                        os.kill(pid, signal.SIGKILL)
                        return int(pid)
            except (OSError, KeyError):
                pass
            time.sleep(0.01)
        return None


def run_dask_trial(
    sc: Scenario, work: Path, cluster: DaskCluster, *, seed: int, rows: int, kills: int, max_runs: int = 8
) -> KillStats:
    """``dcapix run copy --executor dask --scheduler ADDR --partitions 6`` on ``cluster``: ``kills``
    worker processes killed mid-task (one per run), reruns until the plan is finished."""
    job, stats, rng = _setup(sc, work, seed, rows)
    done = False
    while stats.runs < max_runs:
        want_kill = stats.kills < kills
        proc = _start(job, ["--executor", "dask", "--scheduler", cluster.address, "--partitions", "6"], None)
        killed: list[int] = []

        def killer(proc: subprocess.Popen[bytes], killed: list[int]) -> None:
            time.sleep(rng.uniform(0.0, 1.0))
            pid = cluster.kill_busy_worker(time.monotonic() + 120)
            if pid is not None and proc.poll() is None:
                killed.append(pid)
                _check(job, stats, kill=True)  # the driver is alive: what it stored so far

        t = threading.Thread(target=killer, args=(proc, killed), daemon=True) if want_kill else None
        if t is not None:
            t.start()
        rc = proc.wait(timeout=600)
        if t is not None:
            t.join(timeout=180)
        stats.runs += 1
        if killed:
            try:
                cluster.client.wait_for_workers(2, timeout=120)
            except Exception as exc:
                stats.errors.append(f"the killed worker did not come back: {exc}")
                break
        _check(job, stats, kill=False)
        left = [k for k in _entries(job.work) if k.startswith("~")]
        if rc == 0 and not left:
            done = True
            break
        if rc == 0 and left:
            stats.errors.append(f"run exited 0 with plan entries left: {left}")
            break
        # rc != 0 (the scheduler gave the task up: KilledWorker) or a kill still to do: rerun
    return _finish(job, stats, done)
