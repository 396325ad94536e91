"""Schedules of ``dcapix schedule``: when jobs run, and which slot is due.

* :class:`Schedule` — a cron expression read by croniter in a time zone (presets ``@hourly``,
  ``@daily``, …; a 6th field is seconds), an interval aligned to the Unix epoch (``every: 30s``),
  ``@once`` or ``@manual``;
* :class:`Policy` — missed-run policy and retries of a job; :class:`Job` — what the scheduler starts
  (a pipeline of a dcapix file, or a Meltano schedule: :mod:`.meltano_schedules`);
* :class:`ScheduleBook` — table ``dcapix_schedules`` of the state store: per job the expression, when
  it was first seen and the last slot claimed (claiming is atomic, so two schedulers never start
  the same slot).

The loop that starts the runs is :mod:`.scheduler`.

Due slots: a job's *cursor* is the later of the slot it last claimed and the time the schedule was
first seen (a new or changed schedule starts with its next slot: nothing is back-filled). At each
tick, a job that is not running has a due slot when the latest slot ≤ now is after its cursor;
every slot in between was missed (the scheduler was down or the job still running) and the
policy decides: ``catch-up`` runs once now, ``skip`` runs only when the latest slot is at most
``grace`` seconds old and otherwise records one ``skipped`` entry. Either way missed slots collapse
into at most one run.
"""

from __future__ import annotations

import datetime as _dt
import math
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..exceptions import ConfigError

if TYPE_CHECKING:
    from .config import ProjectConfig, ScheduleConfig, SchedulerConfig
    from .scheduler import Attempt, Scheduler
    from .state import StateStore

__all__ = [
    "Job",
    "Policy",
    "Schedule",
    "ScheduleBook",
    "iso",
    "jobs_from_project",
    "new_run_id",
    "schedule_overview",
]

SCHEDULE_DDL = (
    "CREATE TABLE IF NOT EXISTS dcapix_schedules ("
    " job TEXT PRIMARY KEY, expression TEXT NOT NULL, since DOUBLE PRECISION NOT NULL,"
    " last_slot DOUBLE PRECISION, updated_at TEXT NOT NULL)",
)


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


def iso(t: float | None, tz: Any = None) -> str | None:
    """ISO-8601 of an epoch time (UTC unless ``tz``), seconds precision below a second dropped."""
    if t is None:
        return None
    d = _dt.datetime.fromtimestamp(t, tz or _dt.timezone.utc)
    return d.isoformat(timespec="milliseconds" if t % 1 else "seconds")


# ------------------------------------------------------------------------------------- schedule
class Schedule:
    """When a job runs. Times are epoch seconds; cron expressions are evaluated in ``timezone``
    (croniter handles the daylight-saving jumps)."""

    def __init__(self, *, cron: str | None = None, every: float | None = None, timezone: str = "UTC") -> None:
        from zoneinfo import ZoneInfo

        if (cron is None) == (every is None):
            raise ValueError("a schedule needs either cron or every")
        self.cron = cron
        self.every = float(every) if every is not None else None
        self.timezone = timezone
        self.tz = ZoneInfo(timezone)
        if cron in ("@manual", "@none"):
            self.kind = "manual"
        elif cron == "@once":
            self.kind = "once"
        elif cron is not None:
            self.kind = "cron"
            from croniter import croniter

            self._croniter = croniter
        else:
            self.kind = "every"
            if self.every is not None and self.every < 1:
                raise ValueError("an interval schedule needs at least 1 second")

    @classmethod
    def from_config(cls, cfg: ScheduleConfig, default_tz: str = "UTC") -> Schedule:
        return cls(cron=cfg.cron, every=cfg.every, timezone=cfg.timezone or default_tz)

    @property
    def expression(self) -> str:
        """Identity of the schedule (a change resets the job's bookkeeping)."""
        if self.kind == "every":
            return f"every {self.every:g}s"
        if self.kind == "cron":
            return f"cron {self.cron} {self.timezone}"
        return str(self.cron)

    def describe(self) -> str:
        if self.kind == "every":
            return f"every {_fmt_seconds(self.every or 0)}"
        if self.kind == "cron":
            return f"{self.cron} ({self.timezone})"
        return str(self.cron)

    def _dt(self, t: float) -> _dt.datetime:
        return _dt.datetime.fromtimestamp(t, self.tz)

    def next_after(self, t: float) -> float | None:
        """The first slot strictly after ``t`` (``None``: never)."""
        if self.kind == "every":
            assert self.every is not None
            return (math.floor(t / self.every) + 1) * self.every
        if self.kind != "cron":
            return None
        nxt = self._croniter(self.cron, self._dt(t)).get_next(_dt.datetime)
        return float(nxt.timestamp())

    def latest(self, t: float) -> float | None:
        """The last slot at or before ``t``."""
        if self.kind == "every":
            assert self.every is not None
            return math.floor(t / self.every) * self.every
        if self.kind != "cron":
            return None
        # croniter's get_prev is strict: start just after t's whole second
        start = self._dt(math.floor(t) + 1)
        prev = self._croniter(self.cron, start).get_prev(_dt.datetime)
        return float(prev.timestamp())

    def upcoming(self, t: float, n: int) -> list[float]:
        out: list[float] = []
        cur = t
        while len(out) < n:
            nxt = self.next_after(cur)
            if nxt is None:
                break
            out.append(nxt)
            cur = nxt
        return out

    def count_between(self, a: float, b: float, cap: int = 10_000) -> int:
        """How many slots lie strictly between ``a`` and ``b`` (at most ``cap``)."""
        if self.kind == "every":
            assert self.every is not None
            first = math.floor(a / self.every) + 1
            last = math.ceil(b / self.every) - 1
            return max(0, min(cap, last - first + 1))
        n, cur = 0, a
        while n < cap:
            nxt = self.next_after(cur)
            if nxt is None or nxt >= b:
                break
            n, cur = n + 1, nxt
        return n


def _fmt_seconds(s: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size and s % size == 0:
            return f"{s / size:g}{unit}"
    return f"{s:g}s"


@dataclass(frozen=True)
class Policy:
    """Missed runs and retries of one job."""

    missed: str = "catch-up"
    grace: float = 300.0
    retries: int = 2
    retry_delay: float = 30.0
    retry_max_delay: float = 600.0

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based) before the next one."""
        return float(min(self.retry_delay * 2 ** (attempt - 1), self.retry_max_delay))

    @classmethod
    def merged(cls, defaults: SchedulerConfig, cfg: ScheduleConfig | None = None) -> Policy:
        def pick(name: str) -> Any:
            v = getattr(cfg, name, None) if cfg is not None else None
            return getattr(defaults, name) if v is None else v

        return cls(
            missed=pick("missed"),
            grace=float(pick("grace")),
            retries=int(pick("retries")),
            retry_delay=float(pick("retry_delay")),
            retry_max_delay=float(pick("retry_max_delay")),
        )


# ------------------------------------------------------------------------------------------ jobs
@dataclass
class Job:
    """Something the scheduler starts: a pipeline of a dcapix file or a Meltano schedule."""

    name: str  # the run-history / lock name
    kind: str  # "pipeline" | "meltano"
    schedule: Schedule
    policy: Policy
    spec: dict[str, Any] = field(default_factory=dict)
    #: runs one attempt, returns the final status (see :mod:`.history`).
    execute: Callable[[Job, Attempt, Scheduler], str] | None = None


def jobs_from_project(
    project: ProjectConfig, *, state_db: str | None = None, names: Sequence[str] | None = None
) -> list[Job]:
    """The scheduled pipelines of a dcapix pipeline file (``names``: only these)."""
    from .config import ScheduleConfig
    from .scheduler import run_pipeline_attempt

    jobs = []
    for name, pipe in project.pipelines.items():
        if names and name not in names:
            continue
        cfg = pipe.schedule
        if cfg is None:
            if names:  # named explicitly: runnable with --now, never by itself
                cfg = ScheduleConfig(cron="@manual")
            else:
                continue
        if not cfg.enabled:
            continue
        try:
            sched = Schedule.from_config(cfg, project.scheduler.timezone)
        except ValueError as exc:
            raise ConfigError(
                f"pipeline {name!r}: schedule: {exc}", plugin="runner", field="schedule"
            ) from None
        jobs.append(
            Job(
                name,
                "pipeline",
                sched,
                Policy.merged(project.scheduler, cfg),
                {
                    "pipeline": name,
                    "config": str(Path(project.path).resolve()) if project.path else None,
                    "project_dir": str(project.project_dir),
                    "state_db": state_db,
                    "via_singer": cfg.via_singer,
                },
                execute=run_pipeline_attempt,
            )
        )
    return jobs


# ----------------------------------------------------------------------------------- bookkeeping
class ScheduleBook:
    """Per job: the schedule expression, when it was first seen and the last slot claimed."""

    def __init__(self, store: StateStore) -> None:
        self.store = store
        store.ensure_tables("schedules", SCHEDULE_DDL)
        self._cache: dict[str, tuple[str, float, float | None]] = {}

    def _load(self, job: Job) -> tuple[str, float, float | None] | None:
        rows = self.store.execute(
            "SELECT expression, since, last_slot FROM dcapix_schedules WHERE job = ?", (job.name,)
        )
        if not rows:
            return None
        expr, since, last = rows[0]
        entry = (str(expr), float(since), None if last is None else float(last))
        self._cache[job.name] = entry
        return entry

    def register(self, job: Job, now: float) -> None:
        """First sight of a job (or of a changed schedule): its slots start after ``now``."""
        entry = self._load(job)
        if entry is not None and entry[0] == job.schedule.expression:
            return
        from .history import utc_iso

        with self.store.transaction() as tx:
            tx.execute("DELETE FROM dcapix_schedules WHERE job = ?", (job.name,))
            tx.execute(
                "INSERT INTO dcapix_schedules (job, expression, since, last_slot, updated_at) "
                "VALUES (?, ?, ?, NULL, ?)",
                (job.name, job.schedule.expression, now, utc_iso(now)),
            )
        self._cache[job.name] = (job.schedule.expression, now, None)

    def cursor(self, job: Job) -> float:
        entry = self._cache.get(job.name) or self._load(job)
        if entry is None:
            return math.inf
        return max(entry[1], entry[2]) if entry[2] is not None else entry[1]

    def last_slot(self, job: Job) -> float | None:
        entry = self._cache.get(job.name) or self._load(job)
        return entry[2] if entry else None

    def due(self, job: Job, now: float) -> tuple[float, int] | None:
        """``(slot, missed)``: the slot to run now and how many earlier ones were missed."""
        sched = job.schedule
        if sched.kind == "manual":
            return None
        entry = self._cache.get(job.name) or self._load(job)
        if entry is None:
            return None
        if sched.kind == "once":
            return (entry[1], 0) if entry[2] is None else None
        cursor = self.cursor(job)
        latest = sched.latest(now)
        if latest is None or latest <= cursor:
            return None
        return latest, sched.count_between(cursor, latest)

    def claim(self, job: Job, slot: float) -> bool:
        """Mark ``slot`` started; ``False`` when another scheduler claimed it (or a later one)."""
        from .history import utc_iso

        with self.store.transaction() as tx:
            tx.execute(
                "UPDATE dcapix_schedules SET last_slot = ?, updated_at = ? WHERE job = ? AND expression = ?"
                " AND (last_slot IS NULL OR last_slot < ?)",
                (slot, utc_iso(), job.name, job.schedule.expression, slot),
            )
            ok = tx.rowcount == 1
        self._load(job)
        return ok


def schedule_overview(jobs: Sequence[Job], store: StateStore, *, count: int = 3) -> list[dict[str, Any]]:
    """Per job: schedule, the next ``count`` run times (in its time zone), whether a slot is due
    now, and the last recorded run (``dcapix schedule list``, the report)."""
    from .history import list_runs

    book = ScheduleBook(store)
    now = time.time()
    out = []
    for job in jobs:
        last = list_runs(store, job.name, limit=1)
        due = book.due(job, now) if book.last_slot(job) is not None or book.cursor(job) < math.inf else None
        out.append(
            {
                "job": job.name,
                "kind": job.kind,
                "schedule": job.schedule.describe(),
                "timezone": job.schedule.timezone,
                "next_runs": [iso(t, job.schedule.tz) for t in job.schedule.upcoming(now, count)],
                "due_now": due is not None,
                "missed_policy": job.policy.missed,
                "retries": job.policy.retries,
                "last_run": last[0].as_dict(streams=False) if last else None,
            }
        )
    return out
