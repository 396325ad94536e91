"""Run-lock cases B7 and B8 of the catalogue (docs/reliability.md), against real ``dcapix run``
processes sharing one project's SQLite state store.

* **B7 concurrent runs**: two ``dcapix run copy`` started within 100 ms (seeded gap) on a slow
  source (the loopback fault server answering every page 0.3 s late). Exactly one runs; the other
  exits ≠ 0 with one line naming the holder (its pid and since when) and when the lock is taken
  over. If both exit 0 their runs must not overlap (the run history's start/end times). The
  destination (JSONL, append) then holds every row once and the stored bookmark is the last row's.
* **B8 stale lock**: a run ``SIGKILL``\\ ed while it holds the lock (crash point
  ``runner.batch_written``), then a new run at once: it takes the lock over (a WARNING saying so)
  and completes; rows exact.
* **B8 live holder**: ``lock_timeout: 1`` (heartbeat every 1/3 s) and a holder whose first page the
  server holds back until two contenders, started one after the other, have ended: each must be
  refused, and the holder then completes (its lock never stolen, its state never fenced off).
"""

from __future__ import annotations

import datetime as dt
import random
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.reliability.faultserver import FaultServer
from tests.reliability.kill import RUNNER_CHILD, _env, _source_config
from tests.reliability.oracle import check_rows, read_rows
from tests.reliability.truth import make_truth, write_source

__all__ = ["LockStats", "concurrent_trial", "live_holder_trial", "merge", "stale_trial"]

PAGE = 100


@dataclass
class LockStats:
    case: str  # B7 | B8-stale | B8-live
    trials: int = 0
    one_ran: int = 0  # B7: one ran, the other refused in one line naming the holder
    sequential: int = 0  # B7: both ran, one after the other (no overlap)
    overlapping: int = 0  # B7: two runs at once (must be 0)
    taken_over: int = 0  # B8-stale: the new run took the dead holder's lock and completed
    refusals: int = 0  # B8-live: contender attempts refused while the holder ran
    stolen: int = 0  # B8-live: a contender ran while the holder was alive, or the holder failed
    rows_bad: int = 0  # trials whose destination is not exactly the truth
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors and not self.overlapping and not self.stolen and not self.rows_bad


def _project(work: Path, source: dict[str, Any], lock_timeout: float | None = None) -> None:
    cfg: dict[str, Any] = {
        "pipelines": {
            "copy": {
                "source": source,
                "destination": {"adapter": "jsonl", "path": str(work / "out"), "load_method": "append"},
                "checkpoint_rows": 200,
            }
        }
    }
    if lock_timeout is not None:
        cfg["lock_timeout"] = lock_timeout
    (work / "dcapix.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))


def _http_source(srv: FaultServer) -> dict[str, Any]:
    return {
        "adapter": "http",
        "base_url": srv.url,
        "auth": {
            "type": "oauth2_client_credentials",
            "token_url": f"{srv.url}/token",
            "client_id": "reliability",
            "client_secret": srv.secret,
        },
        "timeout": {"connect": 5, "read": 5, "write": 5, "pool": 5},
        "pagination": {"type": "cursor", "cursor_path": "next", "cursor_param": "cursor"},
        "streams": [
            {
                "name": "items",
                "path": "/items",
                "records_path": "records",
                "primary_keys": ["id"],
                "replication_key": "updated_at",
                "is_sorted": True,
                "params": {"limit": PAGE},
            }
        ],
    }


def _start(work: Path, tag: str, crash: str | None = None) -> subprocess.Popen[bytes]:
    out = (work / f"{tag}.log").open("wb")
    try:
        return subprocess.Popen(
            [sys.executable, "-c", RUNNER_CHILD, "run", "copy", "--no-progress"],
            cwd=work,
            env=_env(crash),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    finally:
        out.close()


def _log(work: Path, tag: str) -> str:
    return (work / f"{tag}.log").read_text(errors="replace")


def _busy_line(text: str, holder: int) -> bool:
    """One ``dcapix: error:`` line naming the holder's pid, since when, and the takeover rule."""
    lines = [x for x in text.splitlines() if "already running" in x]
    return (
        len(lines) == 1
        and f"pid {holder} " in lines[0]
        and "since " in lines[0]
        and "taken over" in lines[0]
        and "Traceback" not in text
    )


def _runs(work: Path) -> list[tuple[float, float | None, str]]:
    """(started, finished, status) of every run in the history."""
    con = sqlite3.connect(work / ".dcapix" / "state.db", timeout=30)
    try:
        cols = [r[1] for r in con.execute("PRAGMA table_info(dcapix_runs)")]
        start = next(c for c in ("started_at", "started", "start") if c in cols)
        end = next(c for c in ("finished_at", "ended_at", "finished", "end") if c in cols)
        rows = con.execute(f"SELECT {start}, {end}, status FROM dcapix_runs").fetchall()
    finally:
        con.close()

    def t(v: Any) -> float | None:
        if v is None:
            return None
        if isinstance(v, (int, float)):
            return float(v)
        return dt.datetime.fromisoformat(str(v)).timestamp()

    return [(t(a) or 0.0, t(b), str(s)) for a, b, s in rows]


def _rows_exact(work: Path, truth: Any, stats: LockStats) -> None:
    res = check_rows(truth, read_rows("jsonl", work / "out"))
    if not res.exact:
        stats.rows_bad += 1
        stats.errors.append(f"{work.name}: destination not exact: {res.describe()}")


def concurrent_trial(work: Path, seed: int, rows: int) -> LockStats:
    """B7: two runs started within 100 ms."""
    stats = LockStats("B7")
    rng = random.Random(seed)
    work.mkdir(parents=True, exist_ok=True)
    truth = make_truth(rows, seed=seed)
    stats.trials += 1
    with FaultServer(truth.rows, seed=seed, fault_rate=1.0, kinds=("slow",), max_faults_per_page=1000) as srv:
        _project(work, _http_source(srv))
        a = _start(work, "a")
        time.sleep(rng.uniform(0.0, 0.1))
        b = _start(work, "b")
        ra, rb = a.wait(timeout=300), b.wait(timeout=300)
    if (ra, rb).count(0) == 1:
        winner, ltag = (a, "b") if ra == 0 else (b, "a")
        if _busy_line(_log(work, ltag), winner.pid):
            stats.one_ran += 1
        else:
            stats.errors.append(
                f"{work.name}: refused run's output does not name the holder: {_log(work, ltag)[-300:]!r}"
            )
    elif (ra, rb) == (0, 0):
        runs = sorted(_runs(work))
        if len(runs) == 2 and runs[0][1] is not None and runs[0][1] <= runs[1][0]:
            stats.sequential += 1
        else:
            stats.overlapping += 1
            stats.errors.append(f"{work.name}: both runs ran, overlapping: {runs}")
    else:
        stats.errors.append(
            f"{work.name}: exits {ra}, {rb}: {_log(work, 'a')[-200:]!r} {_log(work, 'b')[-200:]!r}"
        )
    _rows_exact(work, truth, stats)
    return stats


def stale_trial(work: Path, seed: int, rows: int) -> LockStats:
    """B8: the holder is SIGKILLed; the next run takes its lock over at once."""
    stats = LockStats("B8-stale")
    rng = random.Random(seed)
    work.mkdir(parents=True, exist_ok=True)
    truth = make_truth(rows, seed=seed)
    write_source(work / "src.db", truth)
    _project(work, _source_config(work, batch_size=100))
    stats.trials += 1
    a = _start(work, "a", crash=f"runner.batch_written:{rng.randint(1, max(rows // 100 - 1, 1))}")
    if a.wait(timeout=300) != -signal.SIGKILL:
        stats.errors.append(f"{work.name}: the holder was not killed: {_log(work, 'a')[-200:]!r}")
        return stats
    b = _start(work, "b")
    rb = b.wait(timeout=300)
    text = _log(work, "b")
    if rb == 0 and f"took over the stale run lock of pid {a.pid} " in text:
        stats.taken_over += 1
    else:
        stats.errors.append(f"{work.name}: rerun exit {rb}, no takeover logged: {text[-300:]!r}")
    _rows_exact(work, truth, stats)
    return stats


def live_holder_trial(work: Path, seed: int, rows: int, contenders: int = 2) -> LockStats:
    """B8: a live, heartbeating holder is never taken over. ``lock_timeout: 1`` (heartbeat every
    1/3 s); the server holds the holder's first page back (a gate) until ``contenders`` runs started
    one after the other have ended, each of which must be refused; then the holder completes."""
    import threading

    stats = LockStats("B8-live")
    work.mkdir(parents=True, exist_ok=True)
    truth = make_truth(rows, seed=seed)
    stats.trials += 1
    gate = threading.Event()
    with FaultServer(truth.rows, seed=seed, fault_rate=1.0, kinds=("slow",), max_faults_per_page=1000) as srv:
        serve = srv._get

        def gated(h: Any) -> None:
            gate.wait(600)
            serve(h)

        srv._get = gated  # type: ignore[method-assign]
        src = _http_source(srv)
        src["timeout"] = {"connect": 5, "read": 600, "write": 5, "pool": 5}
        _project(work, src, lock_timeout=1)
        a = _start(work, "a")
        db = work / ".dcapix" / "state.db"
        deadline = time.monotonic() + 300
        while a.poll() is None and time.monotonic() < deadline:  # until the holder has its lock
            try:
                con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
                try:
                    if con.execute("SELECT count(*) FROM dcapix_locks").fetchone()[0]:
                        break
                finally:
                    con.close()
            except sqlite3.Error:
                pass
            time.sleep(0.02)
        try:
            for n in range(1, contenders + 1):
                if a.poll() is not None:
                    stats.errors.append(f"{work.name}: the holder ended before contender {n}: {a.returncode}")
                    break
                b = _start(work, f"b{n}")
                rb = b.wait(timeout=300)
                if rb != 0 and _busy_line(_log(work, f"b{n}"), a.pid):
                    stats.refusals += 1
                elif rb == 0:
                    stats.stolen += 1
                    stats.errors.append(f"{work.name}: contender {n} ran while the holder was alive")
                else:
                    stats.errors.append(
                        f"{work.name}: contender {n} exit {rb}: {_log(work, f'b{n}')[-300:]!r}"
                    )
        finally:
            gate.set()
        ra = a.wait(timeout=600)
    if ra != 0:
        stats.stolen += 1
        stats.errors.append(f"{work.name}: the holder failed ({ra}): {_log(work, 'a')[-300:]!r}")
    _rows_exact(work, truth, stats)
    return stats


def merge(case: str, parts: list[LockStats]) -> LockStats:
    """The trials of one case, summed."""
    out = LockStats(case)
    for p in parts:
        for name in (
            "trials",
            "one_ran",
            "sequential",
            "overlapping",
            "taken_over",
            "refusals",
            "stolen",
            "rows_bad",
        ):
            setattr(out, name, getattr(out, name) + getattr(p, name))
        out.errors += p.errors
    return out
