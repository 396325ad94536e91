"""Meltano schedules without Airflow: ``dcapix schedule run --meltano-project DIR``.

The ``schedules:`` of a Meltano project (``meltano.yml`` and its ``include_paths``) become scheduler
jobs named ``meltano:<schedule>``. Each attempt runs Meltano's own command in the project
directory — ``meltano run <job>`` for a job schedule, ``meltano schedule run <name>`` for an
extractor/loader one — under the same run lock, retries and run history as a dcapix pipeline.
Meltano keeps its own state (state IDs ``<env>:<tap>-to-<target>`` for jobs); the history records
it before and after the run (``meltano state get``), and the per-stream row counts and durations
from the ``METRIC`` lines singer-sdk taps log (Meltano's ``--log-format=json``).

Meltano's intervals are cron expressions or presets (``@hourly``, ``@daily``, ``@weekly``,
``@monthly``, ``@yearly``; ``@once`` runs once; ``@manual``/``@none`` never by themselves),
evaluated in ``scheduler.timezone`` (UTC unless the dcapix file says otherwise).
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..exceptions import ConfigError, StateError
from .schedule import Job, Policy, Schedule
from .scheduler import Attempt, ChildProcess, describe_exit

if TYPE_CHECKING:
    from .config import SchedulerConfig
    from .scheduler import Scheduler

__all__ = ["find_meltano", "jobs_from_meltano", "read_meltano_project", "run_meltano_attempt"]

PREFIX = "meltano:"


def find_meltano(explicit: str | None = None) -> str:
    """The ``meltano`` executable: ``explicit``, ``$DCAPIX_MELTANO``, next to this Python, on PATH."""
    for cand in (explicit, os.environ.get("DCAPIX_MELTANO")):
        if cand:
            if os.sep in cand and not os.access(cand, os.X_OK):
                raise ConfigError(
                    f"meltano executable {cand!r} not found or not executable", plugin="meltano"
                )
            return cand
    local = Path(sys.executable).parent / "meltano"
    if local.exists():
        return str(local)
    found = shutil.which("meltano")
    if found is None:
        raise ConfigError(
            "meltano not found (next to this Python or on PATH); install it (pip install 'meltano>=4') "
            "or pass --meltano-bin PATH",
            plugin="meltano",
        )
    return found


def read_meltano_project(project_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """``meltano.yml`` with the ``schedules``, ``jobs`` and ``plugins`` of its ``include_paths``."""
    import yaml

    root = Path(project_dir)
    path = root / "meltano.yml"
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ConfigError(
            f"Meltano project {str(root)!r}: cannot read meltano.yml: {exc.strerror or exc}", plugin="meltano"
        ) from None
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0]
        raise ConfigError(f"{path}: not valid YAML: {first}", plugin="meltano") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level", plugin="meltano")
    for pattern in doc.get("include_paths") or []:
        for inc in sorted(glob.glob(str(root / pattern), recursive=True)):
            extra = yaml.safe_load(Path(inc).read_text(encoding="utf-8")) or {}
            for key in ("schedules", "jobs"):
                doc[key] = [*(doc.get(key) or []), *(extra.get(key) or [])]
            for kind, items in (extra.get("plugins") or {}).items():
                plugins = doc.setdefault("plugins", {})
                plugins[kind] = [*(plugins.get(kind) or []), *(items or [])]
    return doc


def _environment(doc: dict[str, Any], explicit: str | None) -> str | None:
    return explicit or os.environ.get("MELTANO_ENVIRONMENT") or doc.get("default_environment")


def _tasks(job: dict[str, Any]) -> list[str]:
    tasks = job.get("tasks") or []
    if isinstance(tasks, str):
        tasks = [tasks]
    out: list[str] = []
    for t in tasks:
        out.extend(t if isinstance(t, list) else [t])
    return [str(t) for t in out]


def state_ids(doc: dict[str, Any], sched: dict[str, Any], env: str | None) -> dict[str, str]:
    """``{extractor: state ID}`` Meltano uses for a schedule's runs."""
    if not sched.get("job"):
        ext = sched.get("extractor")
        return {str(ext): str(sched["name"])} if ext else {}
    plugins = doc.get("plugins") or {}
    extractors = {p.get("name") for p in plugins.get("extractors") or []}
    loaders = {p.get("name") for p in plugins.get("loaders") or []}
    job = next((j for j in doc.get("jobs") or [] if j.get("name") == sched["job"]), None)
    out: dict[str, str] = {}
    for task in _tasks(job or {}):
        pending: str | None = None
        for name in task.split():
            if name in extractors:
                pending = name
            elif name in loaders and pending:
                out[pending] = f"{env + ':' if env else ''}{pending}-to-{name}"
                pending = None
    return out


def jobs_from_meltano(
    project_dir: str | os.PathLike[str],
    defaults: SchedulerConfig,
    *,
    meltano: str | None = None,
    names: Sequence[str] | None = None,
    environment: str | None = None,
) -> list[Job]:
    """Scheduler jobs for the ``schedules:`` of a Meltano project (``names``: only these; a name
    may be given with or without the ``meltano:`` prefix)."""
    from .config import check_cron

    root = Path(project_dir).resolve()
    doc = read_meltano_project(root)
    env = _environment(doc, environment)
    wanted = {n[len(PREFIX) :] if n.startswith(PREFIX) else n for n in names or ()}
    jobs: list[Job] = []
    job_names = {j.get("name") for j in doc.get("jobs") or []}
    for sched in doc.get("schedules") or []:
        name = str(sched.get("name") or "")
        if not name or (wanted and name not in wanted):
            continue
        where = f"Meltano project {str(root)!r}, schedule {name!r}"
        if sched.get("job") and sched["job"] not in job_names:
            raise ConfigError(f"{where}: unknown job {sched['job']!r}", plugin="meltano", field="job")
        if not sched.get("job") and not (sched.get("extractor") and sched.get("loader")):
            raise ConfigError(f"{where}: needs a job, or an extractor and a loader", plugin="meltano")
        try:
            cron = check_cron(str(sched.get("interval") or "@manual"))
            schedule = Schedule(cron=cron, timezone=defaults.timezone)
        except ValueError as exc:
            raise ConfigError(f"{where}: interval: {exc}", plugin="meltano", field="interval") from None
        jobs.append(
            Job(
                PREFIX + name,
                "meltano",
                schedule,
                Policy.merged(defaults),
                {
                    "project_dir": str(root),
                    "schedule": name,
                    "job": sched.get("job"),
                    "env": {str(k): str(v) for k, v in (sched.get("env") or {}).items()},
                    "environment": env,
                    "state_ids": state_ids(doc, sched, env),
                    "meltano": meltano,
                },
                execute=run_meltano_attempt,
            )
        )
    return jobs


def meltano_state(meltano: str, cwd: str, env: dict[str, str], state_id: str) -> dict[str, Any] | None:
    """``meltano state get ID`` (``None`` when it fails)."""
    try:
        res = subprocess.run(
            [meltano, "state", "get", state_id],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if res.returncode != 0:
        return None
    for line in reversed(res.stdout.strip().splitlines()):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


class _LogParser:
    """Reads Meltano's JSON log lines: per-stream record counts and durations, a readable line."""

    def __init__(self) -> None:
        self.rows: dict[str, int] = {}
        self.seconds: dict[str, float] = {}
        self.error: str | None = None
        self.meltano_run_id: str | None = None

    def __call__(self, line: str) -> str | None:
        try:
            ev = json.loads(line)
        except ValueError:
            return line
        if not isinstance(ev, dict):
            return line
        metric = ev.get("metric_info")
        if isinstance(metric, dict):
            stream = str((metric.get("tags") or {}).get("stream") or "")
            if stream and ev.get("producer"):
                if metric.get("metric") == "record_count":
                    self.rows[stream] = self.rows.get(stream, 0) + int(metric.get("value") or 0)
                elif metric.get("metric") == "sync_duration":
                    self.seconds[stream] = self.seconds.get(stream, 0.0) + float(metric.get("value") or 0)
            return None
        text = str(ev.get("event", ""))
        if ev.get("run_id") and not self.meltano_run_id:
            self.meltano_run_id = str(ev["run_id"])
        level = str(ev.get("level", "info"))
        if level in ("error", "critical") and text:
            self.error = text.strip().splitlines()[0]
        who = ev.get("string_id") or ev.get("name") or "meltano"
        return f"{who} {level}: {text}" if level not in ("info", "debug") else f"{who}: {text}"


def run_meltano_attempt(job: Job, attempt: Attempt, sched: Scheduler) -> str:
    """One attempt of a Meltano schedule under the job's run lock, recorded in the run history."""
    from .history import StreamRecord, begin_run, finish_run

    spec, store = job.spec, sched.store
    meltano = find_meltano(spec.get("meltano"))
    cwd = spec["project_dir"]
    env = {**os.environ, **spec.get("env", {})}
    if spec.get("environment"):
        env["MELTANO_ENVIRONMENT"] = spec["environment"]
    env.pop("MELTANO_PROJECT_ROOT", None)
    if spec.get("job"):
        argv = [meltano, "--log-format=json", "run", spec["job"]]
    else:
        argv = [meltano, "--log-format=json", "schedule", "run", spec["schedule"]]
    command = " ".join(["meltano", *argv[2:]])
    common: dict[str, Any] = {
        "trigger": attempt.trigger,
        "mode": "meltano",
        "scheduled_for": attempt.scheduled_for,
        "attempt": attempt.number,
        "command": command,
    }

    lock = attempt.lock  # held by the scheduler for the slot; it releases it after the last attempt
    if lock is None:  # a caller that did not take it (the scheduler keeps it in attempt.lock):
        from .locks import LockBusyError

        def stop_child() -> None:
            if attempt.child is not None:
                attempt.child.terminate()

        try:
            lock = attempt.lock = store.lock(job.name, run_id=attempt.run_id, on_lost=stop_child).acquire()
        except LockBusyError as exc:
            begin_run(store, attempt.run_id, job.name, status="skipped", **common)
            finish_run(store, attempt.run_id, status="skipped", error=str(exc))
            sched.emit(f"{job.name}: {exc}; skipped")
            return "skipped"
    try:
        begin_run(store, attempt.run_id, job.name, status="running", **common)
        ids: dict[str, str] = spec.get("state_ids") or {}
        before = {ext: meltano_state(meltano, cwd, env, sid) for ext, sid in ids.items()}
        if sched.stopping:
            finish_run(store, attempt.run_id, status="interrupted", error="scheduler stopping")
            return "interrupted"
        parser = _LogParser()
        t0 = time.time()
        attempt.child = ChildProcess(
            argv, prefix=f"[{job.name}]", out=sched.out, cwd=cwd, env=env, on_line=parser
        )
        rc = attempt.child.wait()
        took = time.time() - t0
        after = {ext: meltano_state(meltano, cwd, env, sid) for ext, sid in ids.items()}
        if rc == 0:
            status, error = "done", None
        elif sched.stopping or lock.lost or rc in (-signal.SIGTERM, 143, 130):
            status = "interrupted"
            error = lock.lost_reason or f"meltano stopped ({describe_exit(rc)})"
        else:
            status = "failed"
            error = f"{parser.error or attempt.child.last_error or command} ({describe_exit(rc)})"
        streams = []
        for stream in sorted(set(parser.rows) | set(parser.seconds)):
            streams.append(
                StreamRecord(
                    stream,
                    "done" if rc == 0 else status,
                    parser.rows.get(stream, 0),
                    None,
                    round(parser.seconds[stream], 3) if stream in parser.seconds else None,
                    None,
                    _bookmark(before, stream),
                    _bookmark(after, stream),
                )
            )
        finish_run(
            store,
            attempt.run_id,
            status=status,
            error=error,
            streams=streams,
            rows=sum(parser.rows.values()),
            detail={
                "meltano_run_id": parser.meltano_run_id,
                "state_ids": ids,
                "exit_code": rc,
                "seconds_meltano": round(took, 3),
            },
        )
        return status
    except StateError as exc:
        sched.emit(f"{job.name}: run history not recorded: {exc}")
        return "failed"


def _bookmark(states: dict[str, dict[str, Any] | None], stream: str) -> Any:
    for value in states.values():
        bookmarks = ((value or {}).get("singer_state") or {}).get("bookmarks") or {}
        if stream in bookmarks:
            return bookmarks[stream]
    return None
