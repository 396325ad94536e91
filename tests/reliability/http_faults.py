"""HTTP fault runs: ``dcapix run`` (http source → JSONL) against :class:`FaultServer` (cases C1-C8).

A *delivery* run reads the whole truth set through the seeded fault schedule and must deliver every
record exactly (row oracle), never retry before a ``Retry-After`` deadline, spend at most 5 attempts
per page, ask for a token at most once per expiry (no refresh storm) and finish before its deadline.
An *exhaustion* run (``/down``: 503 forever; ``/loop``: tokens A→B→A; ``/empty``: ``next`` forever
with no records) must exit ≠ 0 before its deadline with one error line and no state stored.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.reliability.faultserver import FAULTS, FaultServer
from tests.reliability.oracle import check_rows, read_rows
from tests.reliability.truth import make_truth

__all__ = ["HttpStats", "delivery_run", "exhaustion_run"]

ROOT = Path(__file__).resolve().parents[2]
MAX_ATTEMPTS = 5


@dataclass
class HttpStats:
    name: str
    faults: int = 0
    fault_kinds: Counter[str] = field(default_factory=Counter)
    records: int = 0
    delivered_exact: bool = False
    lost: int = 0
    dups: int = 0
    early_retries: int = 0
    max_attempts: int = 0
    token_requests: int = 0
    expiries: int = 0
    seconds: float = 0.0
    past_deadline: bool = False
    rc: int = 0
    state_stored: bool = False
    error_line: str = ""
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def _source(srv: FaultServer, path: str, canary: str, limit: int) -> dict[str, Any]:
    return {
        "adapter": "http",
        "base_url": srv.url,
        "timeout": {"connect": 2, "read": 1, "write": 2, "pool": 2},
        "retries": {
            "max_attempts": MAX_ATTEMPTS,
            "backoff_factor": 0.02,
            "max_backoff": 0.2,
            "max_retry_after": 5,
        },
        "pagination": {"type": "cursor", "cursor_path": "next", "cursor_param": "cursor"},
        "auth": {
            "type": "oauth2_client_credentials",
            "token_url": f"{srv.url}/token",
            "client_id": "reliability",
            "client_secret": canary,
        },
        "streams": [
            {
                "name": "items",
                "path": path,
                "records_path": "records",
                "primary_keys": ["id"],
                "replication_key": "updated_at",
                "is_sorted": path == "/items",
                "params": {"limit": limit},
            }
        ],
    }


def _run(work: Path, source: dict[str, Any], deadline: float) -> tuple[int, float, str]:
    cfg = {
        "pipelines": {
            "api": {
                "source": source,
                "destination": {"adapter": "jsonl", "path": str(work / "out")},
                "checkpoint_rows": 100,
            }
        }
    }
    (work / "dcapix.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    env = {k: v for k, v in os.environ.items() if k != "DCAPIX_CRASH_POINT"}
    env["PYTHONPATH"] = f"{ROOT}{os.pathsep}{env.get('PYTHONPATH', '')}"
    t0 = time.monotonic()
    with (work / "run.log").open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dc_api_x.cli", "run", "api", "--no-progress"],
            cwd=work,
            env=env,
            stdout=log,
            stderr=log,
        )
        try:
            rc = proc.wait(timeout=deadline)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            rc = -999
    err = (work / "run.log").read_text(errors="replace")
    return rc, time.monotonic() - t0, err


def _stored_state(work: Path) -> Any:
    from dc_api_x.runner.state import open_state_store

    db = work / ".dcapix" / "state.db"
    if not db.exists():
        return None
    with open_state_store(path=str(db)) as s:
        return s.get("api", "items")


def delivery_run(
    work: Path,
    *,
    seed: int,
    rows: int,
    canary: str,
    fault_rate: float = 0.35,
    limit: int = 20,
    deadline: float = 180,
    kinds: tuple[str, ...] = FAULTS,
) -> HttpStats:
    work.mkdir(parents=True, exist_ok=True)
    truth = make_truth(rows, seed=seed, width=60)
    st = HttpStats(f"delivery seed={seed}")
    with FaultServer(
        truth.rows,
        seed=seed,
        fault_rate=fault_rate,
        secret=canary,
        token_prefix=f"{canary}-tok",
        token_uses=max(rows // limit // 3, 5),
        kinds=kinds,
    ) as srv:
        rc, st.seconds, err = _run(work, _source(srv, "/items", canary, limit), deadline)
        hits = list(srv.hits)
        st.token_requests = srv.tokens_issued
        st.expiries = srv.expired_401s
    st.rc = rc
    st.past_deadline = rc == -999
    st.faults = sum(1 for h in hits if h.fault)
    st.fault_kinds = Counter(h.fault for h in hits if h.fault)
    if rc != 0:
        st.errors.append(f"exit {rc}: {err.strip().splitlines()[-1:] if err.strip() else ''}")
    # retry timing and attempts per page (within one token: a 401 retry is not a fault retry)
    per_page: dict[str, list[Any]] = {}
    for h in hits:
        if h.path == "/items":
            per_page.setdefault(h.page, []).append(h)
    for hs in per_page.values():
        hs.sort(key=lambda h: h.t)
        real = [h for h in hs if h.fault or h is hs[-1]]
        st.max_attempts = max(st.max_attempts, len(real))
        for a, b in itertools.pairwise(hs):
            if a.not_before is not None and b.t < a.not_before:
                st.early_retries += 1
    if st.max_attempts > MAX_ATTEMPTS:
        st.errors.append(f"{st.max_attempts} attempts on one page (max {MAX_ATTEMPTS})")
    if st.early_retries:
        st.errors.append(f"{st.early_retries} retries before Retry-After")
    if st.token_requests > st.expiries + 1:
        st.errors.append(f"{st.token_requests} token requests for {st.expiries} expiries (refresh storm)")
    result = check_rows(truth, read_rows("jsonl", work / "out"))
    st.records, st.lost, st.dups = result.rows, result.lost, result.dups
    st.delivered_exact = result.lost == 0 and result.changed == 0 and result.extra == 0
    if not st.delivered_exact or result.dups:
        st.errors.append("records: " + result.describe())
    return st


def exhaustion_run(work: Path, path: str, *, canary: str, deadline: float = 60) -> HttpStats:
    """``/down``, ``/loop`` or ``/empty``: exit ≠ 0 in time, one error line, no state stored."""
    work.mkdir(parents=True, exist_ok=True)
    truth = make_truth(10, seed=0, width=10)
    st = HttpStats(f"exhaustion {path}")
    with FaultServer(truth.rows, seed=0, fault_rate=0.0, secret=canary, token_prefix=f"{canary}-tok") as srv:
        rc, st.seconds, err = _run(work, _source(srv, path, canary, 10), deadline)
        st.faults = sum(1 for h in srv.hits if h.fault)
        st.fault_kinds = Counter(h.fault for h in srv.hits if h.fault)
        st.max_attempts = max(Counter(h.page for h in srv.hits if h.path == path).values() or [0])
    st.rc = rc
    st.past_deadline = rc == -999
    st.state_stored = bool(_stored_state(work))
    lines = [ln for ln in err.splitlines() if "error" in ln.lower() or "failed" in ln.lower()]
    st.error_line = lines[-1][:200] if lines else ""
    if st.past_deadline:
        st.errors.append(f"still running after its {deadline:.0f} s deadline")
    elif rc == 0 and path != "/empty":  # no records and a next token: stopping there is fine
        st.errors.append("exit 0")
    if "Traceback" in err:
        st.errors.append("traceback in the output")
    if st.state_stored:
        st.errors.append("state stored")
    if path == "/down" and st.max_attempts > MAX_ATTEMPTS:
        st.errors.append(f"{st.max_attempts} attempts (max {MAX_ATTEMPTS})")
    return st
