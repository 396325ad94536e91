"""Helpers of the scheduler tests: real ``dcapix schedule run`` processes, real SQLite files and a
real PostgreSQL destination whose speed (or failure) comes from a trigger on the table."""

from __future__ import annotations

import datetime as dt
import itertools
import os
import re
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from dc_api_x.runner.history import RunRecord, list_runs, parse_time
from dc_api_x.runner.scheduler import dcapix_argv
from dc_api_x.runner.state import open_state_store

ROOT = Path(__file__).resolve().parents[2]


def make_items(path: Path, rows: int, start: int = 1) -> None:
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
        conn.executemany(
            "INSERT INTO items VALUES (?, ?)", [(i, f"n{i}") for i in range(start, start + rows)]
        )
    conn.close()


def sqlite_ids(path: Path, table: str = "items") -> list[int]:
    conn = sqlite3.connect(path)
    try:
        return [r[0] for r in conn.execute(f'SELECT id FROM "{table}" ORDER BY id')]
    finally:
        conn.close()


def source(src: Path, *, incremental: bool = True, batch_size: int = 100) -> dict[str, Any]:
    stream: dict[str, Any] = {"name": "items", "table": "items", "primary_keys": ["id"]}
    if incremental:
        stream["replication_key"] = "id"
    return {"adapter": "sql", "url": f"sqlite:///{src}", "batch_size": batch_size, "streams": [stream]}


def pg_table(plain_url: str, schema: str, table: str, *, sleep: float = 0.0, fail: str | None = None) -> None:
    """``schema.table (id, name)`` with a statement trigger that sleeps ``sleep`` s per insert, or
    raises ``fail`` — a real slow or failing destination."""
    import psycopg

    body = f"RAISE EXCEPTION '{fail}';" if fail else f"PERFORM pg_sleep({sleep});"
    with psycopg.connect(plain_url, autocommit=True) as conn:
        conn.execute(f'CREATE TABLE "{schema}"."{table}" (id bigint PRIMARY KEY, name text)')
        conn.execute(
            f'CREATE FUNCTION "{schema}"."{table}_trg"() RETURNS trigger LANGUAGE plpgsql AS '
            f"$$ BEGIN {body} RETURN NULL; END $$"
        )
        conn.execute(
            f'CREATE TRIGGER t AFTER INSERT ON "{schema}"."{table}" FOR EACH STATEMENT '
            f'EXECUTE FUNCTION "{schema}"."{table}_trg"()'
        )


def pg_ids(plain_url: str, schema: str, table: str) -> list[int]:
    import psycopg

    with psycopg.connect(plain_url, autocommit=True) as conn:
        return [r[0] for r in conn.execute(f'SELECT id FROM "{schema}"."{table}" ORDER BY id')]


def pg_destination(url: str, schema: str) -> dict[str, Any]:
    return {"adapter": "sql", "url": url, "schema": schema, "load_method": "upsert"}


def write_project(directory: Path, pipelines: dict[str, Any], **top: Any) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "dcapix.yml"
    path.write_text(yaml.safe_dump({**top, "pipelines": pipelines}, sort_keys=False))
    return path


def child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


class SchedulerProcess:
    """``dcapix schedule run ARGS`` in ``project`` with its output in a log file."""

    def __init__(self, project: Path, *args: str, log_name: str = "scheduler.log") -> None:
        self.log = project / log_name
        self._fh = open(self.log, "ab")  # noqa: SIM115 - closed in wait()
        self.started = time.time()
        self.proc = subprocess.Popen(
            [*dcapix_argv(), "schedule", "run", *args],
            cwd=project,
            env=child_env(),
            stdout=self._fh,
            stderr=subprocess.STDOUT,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait(self, timeout: float = 60) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self._fh.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._fh.close()


def runs(project: Path) -> list[RunRecord]:
    """The project's run history, oldest first, with streams."""
    with open_state_store(project_dir=project) as store:
        return list(reversed(list_runs(store, limit=None, streams=True)))


def wait_until(
    cond: Callable[[], Any], timeout: float, what: str, proc: SchedulerProcess | None = None
) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        if proc is not None and proc.proc.poll() is not None:
            raise AssertionError(
                f"scheduler exited ({proc.proc.returncode}) before {what}:\n{proc.output()[-3000:]}"
            )
        time.sleep(0.2)
    tail = proc.output()[-3000:] if proc is not None else ""
    raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{tail}")


def t(text: str | None) -> float:
    value = parse_time(text)
    assert value is not None
    return value


def slot_groups(history: list[RunRecord], name: str) -> list[list[RunRecord]]:
    """The scheduled runs of one job grouped by slot (attempts in order), slots in order."""
    groups: dict[str, list[RunRecord]] = {}
    for r in history:
        if r.pipeline == name and r.trigger == "schedule" and r.scheduled_for:
            groups.setdefault(r.scheduled_for, []).append(r)
    return [sorted(g, key=lambda r: r.attempt) for _, g in sorted(groups.items(), key=lambda kv: t(kv[0]))]


_REAPED = re.compile(r"^(\S+) \[schedule\] \S+: run (\w+) \w+ after ", re.M)


def reaped_times(log: str) -> dict[str, float]:
    """When the scheduler saw each run's process end (its log line), by run id: the job is busy
    until then (a process may take a while to exit after it recorded its end)."""
    return {m.group(2): dt.datetime.fromisoformat(m.group(1)).timestamp() for m in _REAPED.finditer(log)}


def check_schedule_kept(groups: list[list[RunRecord]], interval: float, since: float, log: str) -> None:
    """Runs happen at their slots: aligned, never early, never overlapping, started promptly when
    due and free, and a slot is missing only while the job was busy with the one before (until the
    scheduler reaped its process). Tolerances are for a loaded 2-core machine."""
    start_tol, busy_tol = 2.5, 0.5
    reaped = reaped_times(log)
    assert groups, "no scheduled run"
    prev_end = None
    prev_slot = None
    for g in groups:
        slot = t(g[0].scheduled_for)
        assert abs(slot / interval - round(slot / interval)) < 1e-6, f"slot {g[0].scheduled_for} not aligned"
        assert slot > since - 1e-6, "a slot from before the scheduler started was run"
        first = g[0]
        assert t(first.started_at) >= slot - 0.05, f"run {first.run_id} started before its slot"
        due = slot if prev_end is None else max(slot, prev_end)
        assert t(first.started_at) - due <= start_tol, (
            f"run {first.run_id} started {t(first.started_at) - due:.2f} s after it was due"
        )
        if prev_end is not None:
            assert t(first.started_at) >= prev_end, f"run {first.run_id} overlaps the previous run"
            assert prev_slot is not None
            k = round(prev_slot / interval) + 1
            while k * interval < slot - 1e-6:  # a skipped slot: the job was busy then
                assert k * interval <= prev_end + busy_tol, (
                    f"slot {dt.datetime.fromtimestamp(k * interval, dt.timezone.utc)} was not run although "
                    "the job was idle"
                )
                k += 1
        for a, b in itertools.pairwise(g):  # retries of one slot do not overlap either
            assert t(b.started_at) >= t(a.ended_at)
        last = g[-1]
        prev_end = reaped.get(last.run_id) or (t(last.ended_at) if last.ended_at else time.time())
        assert last.ended_at is None or prev_end >= t(last.ended_at) - 0.05
        prev_slot = slot
