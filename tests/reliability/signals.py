"""A6 of the catalogue: SIGTERM during a batch in flight, and a second SIGTERM 10 ms after the first.

* ``target``: ``tap-dcapix | target-dcapix`` through the kill harness's pipe (:mod:`kill`); at a
  seeded record the harness sends the target ``SIGTERM``, 10 ms later a second one, stops
  forwarding and ends the tap. Every STATE line the target printed is checked against the rows
  committed when it arrives (the state-safety oracle).
* ``runner``: ``dcapix run`` on the same source; once its first checkpoint is stored, a seeded
  0 to 300 ms later, ``SIGTERM`` and 10 ms later a second one. The stored state is checked against
  the committed rows after the process ended.

A trial passes when the stopped process ends by itself (within 60 s: no hang, no re-entrant drain)
with exit 0 (the drain finished) or ≠ 0 and one error line, no traceback, no state covering
uncommitted rows, and after reruns from the last state (printed or stored) until the job completes:
0 rows lost, 0 changed, upsert 0 duplicates, append duplicates at most the rows committed after the
last state at the stop; no temporary file left.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.reliability.kill import (
    RUNNER_CHILD,
    KillStats,
    Scenario,
    _bookmark_value,
    _env,
    _Job,
    check_final_rows,
)
from tests.reliability.oracle import leftovers
from tests.reliability.truth import make_truth, write_source

__all__ = ["double_sigterm", "sigterm_scenarios", "sigterm_trial"]

#: the gap between the two signals
GAP = 0.010


def double_sigterm(proc: subprocess.Popen[Any]) -> None:
    """SIGTERM, then a second one 10 ms later."""
    proc.send_signal(signal.SIGTERM)
    time.sleep(GAP)
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)


def sigterm_scenarios() -> list[Scenario]:
    return [
        Scenario("pipe", "target", "sigterm2", "jsonl"),
        Scenario("pipe", "target", "sigterm2", "sqlite", "upsert"),
        Scenario("runner", "runner", "sigterm2", "jsonl"),
        Scenario("runner", "runner", "sigterm2", "sqlite", "upsert"),
    ]


def _clean_end(job: _Job, rc: int, text: str, stats: KillStats) -> None:
    """The stopped process's own end: no traceback, exit 0 or one error line."""
    if "Traceback" in text:
        stats.errors.append(f"a traceback after SIGTERM x2 (see {job.log})")
    if rc not in (0, 130, 143, -signal.SIGTERM, 1):
        stats.errors.append(f"exit {rc} after SIGTERM x2")
    if rc == -signal.SIGKILL:
        stats.errors.append("killed: the stop hung (no exit within 60 s)")


def _runner_stop(job: _Job, rng: random.Random, immediate: bool = False) -> tuple[int, str, bool]:
    """``dcapix run`` stopped by two SIGTERMs once its first checkpoint is stored (a seeded 0 to
    300 ms later; at once when ``immediate``)."""
    job.write_runner_config()
    start = job.log.stat().st_size if job.log.exists() else 0
    with job.log.open("ab") as log:
        log.write(b"--- run sigterm x2\n")
        log.flush()
        proc = subprocess.Popen(
            [sys.executable, "-c", RUNNER_CHILD, "run", "copy", "--no-progress"],
            cwd=job.work,
            env=_env(None),
            stdout=log,
            stderr=log,
        )
        deadline = time.monotonic() + 300
        while proc.poll() is None and time.monotonic() < deadline and job.runner_state() is None:
            time.sleep(0.02)
        delay = rng.uniform(0, 0.3)
        time.sleep(0 if immediate else delay)
        signalled = proc.poll() is None
        if signalled:
            double_sigterm(proc)
        try:
            rc = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
    job.stats.runs += 1
    return rc, job.log.read_bytes()[start:].decode("utf-8", "replace"), signalled


def sigterm_trial(
    sc: Scenario,
    work: Path,
    *,
    seed: int,
    rows: int,
    stops: int,
    max_runs: int = 20,
    immediate: bool = False,
) -> KillStats:
    """Up to ``stops`` double-SIGTERM stops of one job, then reruns until it completes. A runner
    job that finished before its first stop (a fast machine, few rows) is tried again on a fresh
    copy, stopped at once after its first checkpoint (``immediate``)."""
    rng = random.Random(seed)
    work.mkdir(parents=True, exist_ok=True)
    truth = make_truth(rows, seed=seed)
    write_source(work / "src.db", truth)
    stats = KillStats(sc, seed)
    job = _Job(sc, work, truth, rng, stats)
    job.stop = double_sigterm
    done = False
    while stats.runs < max_runs and not stats.errors:
        left = stats.kills < stops
        if sc.mode == "runner":
            if left:
                rc, text, signalled = _runner_stop(job, rng, immediate)
                if signalled:
                    _clean_end(job, rc, text, stats)
                    job.note_kill(job.runner_state())
                    continue
                if stats.kills == 0 and not immediate and rc == 0:
                    return sigterm_trial(
                        sc,
                        work.with_name(work.name + "-at-once"),
                        seed=seed,
                        rows=rows,
                        stops=stops,
                        max_runs=max_runs,
                        immediate=True,
                    )
            else:
                rc = job.run_runner(None)
        else:
            bookmark = _bookmark_value(job.singer_state)
            remaining = rows - (len(truth.ids_up_to(bookmark)) if bookmark else 0)
            start = job.log.stat().st_size if job.log.exists() else 0
            try:
                tap_rc, rc = job.run_pipe(rng.randint(1, max(remaining, 1)) if left else None, None)
            except subprocess.TimeoutExpired:
                stats.errors.append("the target did not end within 120 s of its stop (a hang)")
                break
            if job.stopped:
                job.stopped = False
                _clean_end(job, rc, job.log.read_bytes()[start:].decode("utf-8", "replace"), stats)
                job.note_kill(_bookmark_value(job.singer_state))
                continue
            rc = rc or tap_rc
        if rc != 0:
            stats.errors.append(f"run exited {rc} without a stop (see {job.log})")
            break
        done = True  # (a run that finished before its stop ends the trial too)
        break
    if not done and not stats.errors:
        stats.errors.append(f"job not done after {stats.runs} runs")
    check_final_rows(stats, truth, job.kind, job.where)
    stats.leftovers = leftovers(job.where if job.where.is_dir() else job.where.parent / "__none__")
    return stats
