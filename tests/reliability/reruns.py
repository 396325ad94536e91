"""Reruns of a finished job (cases B1, B2, B5): N reruns change 0 rows; an empty run leaves the
stored state byte-identical; a future bookmark reads nothing and keeps the state.

Runs ``dcapix run`` (state in ``.dcapix/state.db``, compared as the stored text) and
``tap-dcapix | target-dcapix`` (the STATE the target prints, compared as bytes with the one given).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from tests.reliability.kill import KillStats, Scenario, _Job
from tests.reliability.oracle import read_rows
from tests.reliability.truth import make_truth, write_source

__all__ = ["RerunResult", "reruns"]


@dataclass
class RerunResult:
    dest: str
    reruns: int = 0
    rows_changed: int = 0  # over all reruns: rows added, removed or altered
    state_identical: bool = True
    pipe_state_identical: bool = True
    future_rows: int = 0
    future_state_kept: bool = True
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            not self.errors
            and self.rows_changed == 0
            and self.state_identical
            and self.pipe_state_identical
            and self.future_rows == 0
            and self.future_state_kept
        )


def _digest(rows: list[dict]) -> tuple[int, str]:
    lines = sorted(json.dumps(r, sort_keys=True, default=str) for r in rows)
    return len(lines), hashlib.sha256("\n".join(lines).encode()).hexdigest()


def _raw_state(work: Path) -> str | None:
    con = sqlite3.connect(work / ".dcapix" / "state.db")
    try:
        row = con.execute(
            "SELECT value FROM dcapix_state WHERE pipeline='copy' AND stream='items'"
        ).fetchone()
    except sqlite3.OperationalError:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        raise AssertionError(f"state table not found (tables: {tables})") from None
    finally:
        con.close()
    return None if row is None else row[0]


def reruns(work: Path, *, dest: str, load_method: str, rows: int, n: int = 10, seed: int = 0) -> RerunResult:
    work.mkdir(parents=True, exist_ok=True)
    truth = make_truth(rows, seed=seed)
    write_source(work / "src.db", truth)
    sc = Scenario("runner", "runner", "none", dest, load_method)
    job = _Job(sc, work, truth, None, KillStats(sc, seed))  # type: ignore[arg-type]
    res = RerunResult(f"{dest} ({load_method})")
    if job.run_runner(None) != 0:
        res.errors.append(f"first run failed (see {job.log})")
        return res
    first = _digest(read_rows(job.kind, job.where))
    state0 = _raw_state(work)
    for _ in range(n):
        if job.run_runner(None) != 0:
            res.errors.append(f"rerun failed (see {job.log})")
            break
        res.reruns += 1
        now = _digest(read_rows(job.kind, job.where))
        if now != first:
            res.rows_changed += abs(now[0] - first[0]) or 1
        if _raw_state(work) != state0:
            res.state_identical = False
    # the same through the pipe: the target prints back exactly the state it was given
    job.singer_state = None
    job.run_pipe(None, None)
    given = job.singer_state
    if given is not None:
        tap_rc, tgt_rc = job.run_pipe(None, None)
        res.pipe_state_identical = (tap_rc, tgt_rc) == (0, 0) and json.dumps(job.singer_state) == json.dumps(
            given
        )
    else:
        res.errors.append("the pipe run printed no state")
    # a future bookmark: nothing read, state kept
    con = sqlite3.connect(work / ".dcapix" / "state.db")
    future = json.dumps(
        {"replication_key": "updated_at", "replication_key_value": "2999-01-01T00:00:00+00:00"}
    )
    con.execute("UPDATE dcapix_state SET value=? WHERE pipeline='copy' AND stream='items'", (future,))
    con.commit()
    con.close()
    before = _digest(read_rows(job.kind, job.where))
    if job.run_runner(None) != 0:
        res.errors.append(f"future-bookmark run failed (see {job.log})")
    after = _digest(read_rows(job.kind, job.where))
    res.future_rows = after[0] - before[0] if after != before else 0
    res.future_state_kept = _raw_state(work) == future
    return res


def corrupt_state(work: Path, *, rows: int, seed: int = 0) -> tuple[int, str, int, int]:
    """Case B10: a finished job whose stored state is then truncated JSON. Returns (exit code, the
    error lines, rows before, rows after): the run must refuse in one line and reload nothing."""
    work.mkdir(parents=True, exist_ok=True)
    truth = make_truth(rows, seed=seed)
    write_source(work / "src.db", truth)
    sc = Scenario("runner", "runner", "none", "jsonl")
    job = _Job(sc, work, truth, None, KillStats(sc, seed))  # type: ignore[arg-type]
    if job.run_runner(None) != 0:
        raise AssertionError(f"first run failed (see {job.log})")
    before = len(read_rows(job.kind, job.where))
    con = sqlite3.connect(work / ".dcapix" / "state.db")
    con.execute("UPDATE dcapix_state SET value='{\"replication_key\": \"upd' WHERE pipeline='copy'")
    con.commit()
    con.close()
    start = job.log.stat().st_size
    rc = job.run_runner(None)
    out = job.log.read_bytes()[start:].decode(errors="replace")
    errors = "\n".join(ln for ln in out.splitlines() if ln.startswith("dcapix: error") or "Traceback" in ln)
    return rc, errors, before, len(read_rows(job.kind, job.where))
