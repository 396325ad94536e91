"""B4 of the catalogue: an unsorted source (records in random ``updated_at`` order), killed midway.

The truth's rows are served by a loopback HTTP API (:class:`~tests.reliability.faultserver.FaultServer`,
no faults) in a seeded random order, 125 records a page; the stream declares ``replication_key:
updated_at`` and ``is_sorted: false``, so no page tells where the stream stands: a bookmark is only
safe once every record was read. The kill harness (:mod:`kill`) kills the runner after a seeded batch
(between its write and its checkpoint: pages are combined two at a time, 250 records a batch), or the
target at a seeded record, then reruns from the last stored (runner) or emitted (pipe) state until
the job completes.

Pass: as for every kill trial — 0 lost, 0 changed, upsert 0 duplicates, append duplicates only of
rows committed after the last state at a kill, no persisted or emitted state ahead of the committed
rows (a bookmark mid-stream would claim every row before its value, most of them unread) — and the
final state is the stream's maximum ``updated_at``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.reliability.faultserver import FaultServer
from tests.reliability.kill import KillStats, Scenario, _bookmark_value, _Job, run_trial
from tests.reliability.truth import Truth, _norm_ts, make_truth

__all__ = ["UnsortedStats", "unsorted_scenarios", "unsorted_source", "unsorted_trial"]

PAGE = 125
SECRET = "b4-secret"


@dataclass
class UnsortedStats:
    kill: KillStats
    #: the final state's bookmark value against the truth's maximum ``updated_at``
    final_bookmark: str | None = None
    expected_bookmark: str = ""
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.kill.ok and not self.errors and self.final_bookmark == self.expected_bookmark


def unsorted_scenarios() -> list[Scenario]:
    return [
        Scenario("runner", "runner", "runner.batch_written", "jsonl"),
        Scenario("runner", "runner", "runner.batch_written", "sqlite", "upsert"),
        Scenario("pipe", "target", "record", "jsonl"),
        Scenario("pipe", "target", "record", "sqlite", "upsert"),
    ]


def unsorted_source(url: str) -> dict[str, Any]:
    """The HTTP source of the shuffled truth: cursor pages, an unsorted incremental stream."""
    return {
        "adapter": "http",
        "base_url": url,
        "pagination": {"type": "cursor", "cursor_path": "next", "cursor_param": "cursor"},
        "auth": {
            "type": "oauth2_client_credentials",
            "token_url": f"{url}/token",
            "client_id": "reliability",
            "client_secret": SECRET,
        },
        "pages_per_batch": 2,
        "streams": [
            {
                "name": "items",
                "path": "/items",
                "records_path": "records",
                "primary_keys": ["id"],
                "replication_key": "updated_at",
                "is_sorted": False,
                "params": {"limit": PAGE},
            }
        ],
    }


def unsorted_trial(sc: Scenario, work: Path, *, seed: int, rows: int, kills: int) -> UnsortedStats:
    truth = make_truth(rows, seed=seed)
    served = list(truth.rows)
    random.Random(seed).shuffle(served)
    out = UnsortedStats(KillStats(sc, seed), expected_bookmark=max(r["updated_at"] for r in truth.rows))

    def final_state(job: _Job) -> Truth | None:
        bm = job.runner_state() if sc.mode == "runner" else _bookmark_value(job.singer_state)
        out.final_bookmark = None if bm is None else str(bm)
        if out.final_bookmark is not None and out.final_bookmark != out.expected_bookmark:
            # the value may come back as an equal instant in another form: compare instants
            if _norm_ts(out.final_bookmark) == _norm_ts(out.expected_bookmark):
                out.final_bookmark = out.expected_bookmark
            else:
                out.errors.append(
                    f"final bookmark {out.final_bookmark} is not the maximum {out.expected_bookmark}"
                )
        return None

    with FaultServer(served, seed=seed, fault_rate=0.0, secret=SECRET, token_uses=10**9) as srv:
        out.kill = run_trial(
            sc,
            work,
            seed=seed,
            rows=rows,
            kills=kills,
            truth=truth,
            after=final_state,
            source=unsorted_source(srv.url),
        )
    return out
