"""B3 of the catalogue: 5,000 rows sharing one ``updated_at``, a kill inside them, and a row arriving
later with that same timestamp.

The source (the truth's SQLite table) has rows with strictly increasing timestamps, then a block of
``ties`` rows that all have the timestamp of the block's first row (seconds precision) and end the
stream. The kill
harness (:mod:`kill`) kills the target at a seeded record or the runner at a seeded batch — most
kills land inside the block, where the bookmark's value stays the same and only its
``keys_at_value`` grow — then reruns from the last state until the job is done: its final state is
the block's value with its 5,000 keys. Then one more row is added *with the block's timestamp* (and
an id above every other), and the job runs once more.

Pass: as for every kill trial (0 lost, 0 changed, upsert 0 duplicates, append duplicates only of rows
committed after the last state at a kill, no state ahead of the committed rows — a state inside the
block claims the rows before its value and exactly the keys it lists at it), and the late row
delivered by the last run, which (append) adds that one row and re-reads nothing: the re-read volume
of the boundary is 0.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.reliability.kill import KillStats, Scenario, _Job, run_trial
from tests.reliability.oracle import read_rows
from tests.reliability.truth import Truth, make_truth, ts

__all__ = ["TieStats", "tie_scenarios", "tie_trial"]


@dataclass
class TieStats:
    kill: KillStats
    ties: int
    late_added: int | None = None  # append: rows the last run added (1: the late row only)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.kill.ok and not self.errors and self.late_added in (None, 1)


def tie_scenarios() -> list[Scenario]:
    return [
        Scenario("pipe", "target", "record", "sqlite", "upsert"),
        Scenario("pipe", "target", "record", "jsonl"),
        Scenario("runner", "runner", "runner.batch_written", "sqlite", "upsert"),
        Scenario("runner", "runner", "runner.batch_written", "jsonl"),
    ]


def _first(rows: int, ties: int) -> int:
    return max(rows - ties + 1, 1)


def tie_truth(rows: int, ties: int, seed: int) -> Truth:
    """``rows`` rows; the last ``ties`` (ids ``first …``) share the timestamp of ``first``: the
    stream ends in the block, so the final bookmark is its value (with every key of it)."""
    base = make_truth(rows, seed=seed)
    first = _first(rows, ties)
    for r in base.rows:
        if r["id"] >= first:
            r["updated_at"] = ts(first)
    return Truth(base.rows)


def tie_trial(sc: Scenario, work: Path, *, seed: int, rows: int, ties: int, kills: int) -> TieStats:
    truth = tie_truth(rows, ties, seed)
    out = TieStats(KillStats(sc, seed), ties)
    tie_ts = ts(_first(rows, ties))

    def late_row(job: _Job) -> Truth:
        """Add a row at the block's timestamp to the source, run once more from the last state."""
        new = {**truth.rows[-1], "id": rows + 1, "updated_at": tie_ts, "name": "late-ø"}
        con = sqlite3.connect(job.work / "src.db")
        try:
            con.execute("INSERT INTO items VALUES (:id, :updated_at, :name, :amount, :payload)", new)
            con.commit()
        finally:
            con.close()
        grown = Truth([*truth.rows, new])
        job.truth = grown
        before = len(read_rows(job.kind, job.where)) if sc.load_method == "append" else None
        if sc.mode == "runner":
            rc: Any = job.run_runner(None)
        else:
            rc = job.run_pipe(None, None)
            rc = 0 if rc == (0, 0) else rc
        if rc != 0:
            out.errors.append(f"the run after the late row exited {rc}")
        if before is not None:
            out.late_added = len(read_rows(job.kind, job.where)) - before
        return grown

    out.kill = run_trial(sc, work, seed=seed, rows=rows, kills=kills, truth=truth, after=late_row)
    return out
