"""``dcapix schedule run`` as a real long-running process, with per-second schedules, real SQLite
sources and real PostgreSQL destinations made slow (or failing) by a trigger:

* runs start at their slots, never overlap when a run is slower than its interval, and a failing
  pipeline is retried with backoff, then recorded as failed while the others keep their schedule;
* a SIGKILLed scheduler's stale lock is taken over (and logged) by the next scheduler;
* SIGTERM stops the scheduler cleanly: the running pipeline rolls back what it had not committed,
  the state never runs ahead of the data, no lock and no open run is left;
* the number of pipelines running at once is bounded;
* missed slots are caught up once, or skipped (and recorded) under the ``skip`` policy.

Timing assertions have tolerances of seconds (a loaded 2-core machine).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from dc_api_x.runner.history import OPEN_STATUSES
from dc_api_x.runner.locks import list_locks
from dc_api_x.runner.schedule import Job, Policy, Schedule, ScheduleBook
from dc_api_x.runner.scheduler import dcapix_argv
from dc_api_x.runner.state import open_state_store
from tests.runner.schedsupport import (
    SchedulerProcess,
    check_schedule_kept,
    child_env,
    make_items,
    pg_destination,
    pg_ids,
    pg_table,
    runs,
    slot_groups,
    source,
    sqlite_ids,
    t,
    wait_until,
    write_project,
)

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg(pg_url: str, pg_schema: str) -> tuple[str, str, str]:
    """(SQLAlchemy URL, psycopg URL, schema)."""
    return pg_url, pg_url.replace("postgresql+psycopg://", "postgresql://", 1), pg_schema


def _no_open_runs_or_locks(project: Path) -> None:
    assert not [r.run_id for r in runs(project) if r.status in OPEN_STATUSES]
    with open_state_store(project_dir=project) as store:
        assert list_locks(store) == []


def test_per_second_schedules_overlap_retries_and_failures(tmp_path: Path, pg) -> None:
    url, plain, schema = pg
    src = tmp_path / "src.db"
    make_items(src, 1000)
    pg_table(plain, schema, "items", sleep=0.3)  # 10 batches of 100: every run takes > 3 s
    pg_table(plain, schema, "broken", fail="quota exceeded for table broken (test trigger)")
    write_project(
        tmp_path,
        {
            # SQLite -> SQLite every 2 s (cron with a seconds field)
            "fast": {
                "source": source(src),
                "destination": {
                    "adapter": "sql",
                    "url": f"sqlite:///{tmp_path / 'dst.db'}",
                    "load_method": "upsert",
                },
                "schedule": "* * * * * */2",
            },
            # a full reload through the slow trigger every second: always slower than its interval
            "slow": {
                "source": source(src, incremental=False),
                "destination": pg_destination(url, schema),
                "schedule": "every 1s",
            },
            # fails every time: retried once after 0.5 s, then recorded as failed
            "bad": {
                "source": source(src),
                "destination": {**pg_destination(url, schema), "stream_map": {"items": "broken"}},
                "schedule": {"every": "4s", "retries": 1, "retry_delay": "0.5s"},
            },
        },
    )
    sched = SchedulerProcess(tmp_path)
    try:

        def enough() -> bool:
            h = runs(tmp_path)
            retried = [g for g in slot_groups(h, "bad") if len(g) == 2 and g[1].status == "failed"]
            return len(slot_groups(h, "fast")) >= 4 and len(retried) >= 2 and len(slot_groups(h, "slow")) >= 2

        wait_until(enough, 90, "4 runs of fast, 2 retried slots of bad and 2 runs of slow", sched)
        sched.proc.send_signal(signal.SIGTERM)
        assert sched.wait(60) == 0
    finally:
        sched.stop()
    out = sched.output()
    history = runs(tmp_path)
    _no_open_runs_or_locks(tmp_path)

    fast = slot_groups(history, "fast")
    check_schedule_kept(fast, 2.0, sched.started, out)
    assert all(len(g) == 1 and g[0].status in ("done", "interrupted") for g in fast)
    assert [g[0].rows for g in fast if g[0].status == "done"][:2] == [1000, 0]  # incremental
    assert sqlite_ids(tmp_path / "dst.db") == list(range(1, 1001))

    slow = slot_groups(history, "slow")
    check_schedule_kept(slow, 1.0, sched.started, out)
    assert slow[0][0].status == "done" and slow[0][0].rows == 1000 and (slow[0][0].seconds or 0) > 2.0
    assert pg_ids(plain, schema, "items") == list(range(1, 1001))

    bad = slot_groups(history, "bad")
    check_schedule_kept(bad, 4.0, sched.started, out)
    complete = [g for g in bad if len(g) == 2 and g[1].status != "interrupted"]  # SIGTERM may stop one
    assert len(complete) >= 2
    for first, second in complete:
        assert (first.status, second.status) == ("failed", "failed")
        assert "quota exceeded for table broken" in (first.error or "")
        assert "\n" not in (first.error or "")
        assert t(second.started_at) - t(first.ended_at) >= 0.5 - 0.05  # the backoff
        assert second.attempt == 2 and second.scheduled_for == first.scheduled_for
    assert all(len(g) <= 2 for g in bad)  # never more than retries + 1 attempts
    assert "bad: retry 1/1 in 0.5 s" in out and "bad: failed after 2 attempt(s)" in out
    assert "received SIGTERM" in out


def test_sigkilled_scheduler_lock_is_taken_over(tmp_path: Path, pg) -> None:
    url, plain, schema = pg
    src = tmp_path / "src.db"
    rows = 3000
    make_items(src, rows)
    pg_table(plain, schema, "items", sleep=0.3)  # 30 batches: 9 s at least
    write_project(
        tmp_path,
        {
            "slow": {
                "source": source(src),
                "destination": pg_destination(url, schema),
                "checkpoint_rows": 100,
                "schedule": "every 1s",
            }
        },
        lock_timeout=600,  # a takeover must not wait for the timeout: the owner is provably gone
    )
    first = SchedulerProcess(tmp_path, log_name="first.log")
    try:
        with open_state_store(project_dir=tmp_path) as store:

            def running_with_checkpoint() -> tuple[object, object] | None:
                run = next((r for r in runs(tmp_path) if r.status == "running"), None)
                locks = list_locks(store)
                if run is None or not locks or not store.get("slow", "items"):
                    return None
                return run, locks[0]

            running, held = wait_until(running_with_checkpoint, 60, "a running run with a checkpoint", first)
        # the scheduler holds the lock for the run it started (the run's process joined it)
        assert held.pid == first.pid and held.run_id == running.run_id
        os.kill(first.pid, signal.SIGKILL)  # the scheduler, and with it (PR_SET_PDEATHSIG) its child
        first.wait(30)
    finally:
        first.stop()
    wait_until(lambda: not os.path.exists(f"/proc/{running.pid}"), 10, "the child to die with the scheduler")
    with open_state_store(project_dir=tmp_path) as store:
        assert [h.run_id for h in list_locks(store)] == [running.run_id]  # left behind
        stored = store.get("slow", "items")
    assert stored is not None
    committed = pg_ids(plain, schema, "items")
    assert set(range(1, stored["replication_key_value"] + 1)) <= set(committed)  # never ahead

    second = SchedulerProcess(tmp_path, log_name="second.log")
    try:
        wait_until(
            lambda: any(r.status == "done" and t(r.started_at) > second.started for r in runs(tmp_path)),
            60,
            "a completed run after the restart",
            second,
        )
        second.proc.send_signal(signal.SIGTERM)
        assert second.wait(60) == 0
    finally:
        second.stop()
    out = second.output()
    assert "took over the stale run lock" in out and f"pid {first.pid}" in out
    killed = next(r for r in runs(tmp_path) if r.run_id == running.run_id)
    assert killed.status == "abandoned" and "no longer exists" in (killed.error or "")
    _no_open_runs_or_locks(tmp_path)
    assert pg_ids(plain, schema, "items") == list(range(1, rows + 1))  # resumed: nothing lost or doubled


def test_sigterm_stops_cleanly_and_state_stays_consistent(tmp_path: Path, pg) -> None:
    url, plain, schema = pg
    src = tmp_path / "src.db"
    make_items(src, 1200)
    pg_table(plain, schema, "items", sleep=0.3)
    write_project(
        tmp_path,
        {
            "slow": {
                "source": source(src),
                "destination": pg_destination(url, schema),
                "checkpoint_rows": 100,
                "schedule": "every 1s",
            }
        },
    )
    sched = SchedulerProcess(tmp_path)
    try:
        with open_state_store(project_dir=tmp_path) as store:
            wait_until(
                lambda: ((store.get("slow", "items") or {}).get("replication_key_value") or 0) >= 300,
                40,
                "three checkpoints",
                sched,
            )
        t0 = time.monotonic()
        sched.proc.send_signal(signal.SIGTERM)
        assert sched.wait(60) == 0
        assert time.monotonic() - t0 < 30
    finally:
        sched.stop()
    out = sched.output()
    assert "received SIGTERM" in out
    (run,) = runs(tmp_path)
    assert run.status == "interrupted" and run.trigger == "schedule"
    _no_open_runs_or_locks(tmp_path)
    with open_state_store(project_dir=tmp_path) as store:
        bookmark = store.get("slow", "items")["replication_key_value"]
    assert run.streams[0].state_after["replication_key_value"] == bookmark
    assert 300 <= bookmark < 1200
    committed = pg_ids(plain, schema, "items")
    assert set(range(1, bookmark + 1)) <= set(committed)  # the state is not ahead of the data
    assert set(committed) <= set(range(1, 1201))
    # a manual run continues from the stored state: every row once
    rc = subprocess.run(
        [*dcapix_argv(), "run", "slow", "--no-progress"], cwd=tmp_path, env=child_env(), capture_output=True
    ).returncode
    assert rc == 0
    assert pg_ids(plain, schema, "items") == list(range(1, 1201))
    last = runs(tmp_path)[-1]
    assert last.trigger == "manual" and last.streams[0].state_before["replication_key_value"] == bookmark


def test_concurrency_is_bounded(tmp_path: Path, pg) -> None:
    url, plain, schema = pg
    src = tmp_path / "src.db"
    make_items(src, 300)
    pipes = {}
    for name in ("a", "b", "c"):
        pg_table(plain, schema, name, sleep=0.3)
        pipes[name] = {
            "source": source(src),
            "destination": {**pg_destination(url, schema), "stream_map": {"items": name}},
            "schedule": "@hourly",
        }
    write_project(tmp_path, pipes)
    res = subprocess.run(
        [*dcapix_argv(), "schedule", "run", "--now", "--max-concurrent", "2"],
        cwd=tmp_path,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    history = runs(tmp_path)
    assert sorted(r.pipeline for r in history) == ["a", "b", "c"]
    assert all(r.status == "done" and r.rows == 300 and r.trigger == "manual" for r in history)
    events = sorted([(t(r.started_at), 1) for r in history] + [(t(r.ended_at), -1) for r in history])
    level = peak = 0
    for _, step in events:
        level += step
        peak = max(peak, level)
    assert peak == 2  # two at a time, never three


def test_missed_slots_catch_up_once_or_skip(tmp_path: Path) -> None:
    src = tmp_path / "src.db"
    make_items(src, 50)
    minute = (time.gmtime().tm_min + 30) % 60  # the latest slot is 29..30 minutes old
    dst = {"adapter": "sql", "url": f"sqlite:///{tmp_path / 'dst.db'}", "load_method": "upsert"}
    write_project(
        tmp_path,
        {
            "catchup": {"source": source(src), "destination": dst, "schedule": f"{minute} * * * *"},
            "skipper": {
                "source": source(src),
                "destination": dst,
                "schedule": {"cron": f"{minute} * * * *", "missed": "skip", "grace": "10s"},
            },
        },
    )
    # the scheduler last saw these schedules three hours ago
    with open_state_store(project_dir=tmp_path) as store:
        book = ScheduleBook(store)
        for name in ("catchup", "skipper"):
            book.register(
                Job(name, "pipeline", Schedule(cron=f"{minute} * * * *"), Policy()), time.time() - 3 * 3600
            )

    def once() -> str:
        res = subprocess.run(
            [*dcapix_argv(), "schedule", "run", "--once"],
            cwd=tmp_path,
            env=child_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert res.returncode == 0, res.stderr[-2000:]
        return res.stderr

    out = once()
    assert "catchup: 2 slot(s) missed" in out and "catchup: catching up once" in out
    assert "skipper: skipped: slot" in out and "missed-run policy skip" in out
    history = runs(tmp_path)
    (caught,) = [r for r in history if r.pipeline == "catchup"]
    assert caught.status == "done" and caught.rows == 50
    assert time.time() - t(caught.scheduled_for) > 25 * 60  # the latest missed slot
    (skipped,) = [r for r in history if r.pipeline == "skipper"]
    assert skipped.status == "skipped" and "late (grace 10 s)" in (skipped.error or "")
    once()  # nothing is due any more
    assert len(runs(tmp_path)) == 2


def _normalized(groups: list, n: int) -> list:
    """What two histories must agree on: per slot, its attempts' outcome, rows, errors and the state
    before/after per stream (not the ids or times)."""
    out = []
    for g in groups[:n]:
        out.append(
            [
                (
                    r.pipeline,
                    r.trigger,
                    r.attempt,
                    r.status,
                    r.rows,
                    r.error,
                    sorted((s.stream, s.rows, str(s.state_before), str(s.state_after)) for s in r.streams),
                )
                for r in g
            ]
        )
    return out


def _once_project(directory: Path) -> None:
    directory.mkdir()
    src = directory / "src.db"
    make_items(src, 200)
    write_project(
        directory,
        {
            "fast": {
                "source": source(src),
                "destination": {
                    "adapter": "sql",
                    "url": f"sqlite:///{directory / 'dst.db'}",
                    "load_method": "upsert",
                },
                "schedule": "every 3s",
            },
            # fails at every attempt: a stream the source does not have
            "bad": {
                "source": source(src),
                "destination": {"adapter": "sql", "url": f"sqlite:///{directory / 'dst.db'}"},
                "select": ["nope"],
                "schedule": {"every": "4s", "retries": 1, "retry_delay": "0.5s"},
            },
        },
    )


#: the most `schedule run --once` invocations of the cron loop running at once
_CRON_OVERLAP = 3


def _startup_seconds(cwd: Path) -> float:
    """The wall time of one short dcapix command (its start-up) on this machine now."""
    t0 = time.monotonic()
    subprocess.run(
        [*dcapix_argv(), "schedule", "list"], cwd=cwd, env=child_env(), capture_output=True, timeout=300
    )
    return time.monotonic() - t0


def _enough(project: Path) -> bool:
    h = runs(project)
    bad = [g for g in slot_groups(h, "bad") if len(g) == 2 and g[1].status == "failed"]
    fast = [g for g in slot_groups(h, "fast") if g[0].status == "done"]
    return len(fast) >= 3 and len(bad) >= 2


def test_once_under_a_cron_loop_gives_the_same_history(tmp_path: Path) -> None:
    long_dir, cron_dir = tmp_path / "long", tmp_path / "cron"
    _once_project(long_dir)
    _once_project(cron_dir)

    # The deadlines follow the machine's load, measured: one dcapix start-up, then the time the
    # long-running scheduler took for the history the cron loop must reproduce (the schedule
    # itself needs ~12 s of slots; on a loaded machine every run and start-up takes longer).
    startup = _startup_seconds(long_dir)
    started = time.monotonic()
    sched = SchedulerProcess(long_dir)
    try:
        limit = 60 + 15 * startup
        wait_until(lambda: _enough(long_dir), limit, "3 runs of fast and 2 retried slots of bad", sched)
        long_took = time.monotonic() - started
        sched.proc.send_signal(signal.SIGTERM)
        assert sched.wait(60) == 0
    finally:
        sched.stop()

    # a cron-like loop: `dcapix schedule run --once` at every even second, whether or not the
    # previous one has finished (as cron does; at most _CRON_OVERLAP at once, so that a loaded
    # machine is not buried under start-ups)
    log = open(cron_dir / "cron.log", "ab")  # noqa: SIM115
    procs: list[subprocess.Popen[bytes]] = []
    try:
        budget = max(90.0, 3 * long_took)
        deadline = time.monotonic() + budget
        while not _enough(cron_dir):
            assert time.monotonic() < deadline, (
                f"the cron loop did not produce the runs in {budget:.0f} s (3x the {long_took:.1f} s the "
                f"long-running scheduler took; one start-up {startup:.1f} s)"
            )
            time.sleep(2 - time.time() % 2)
            if sum(p.poll() is None for p in procs) >= _CRON_OVERLAP:
                continue
            procs.append(
                subprocess.Popen(
                    [*dcapix_argv(), "schedule", "run", "--once"],
                    cwd=cron_dir,
                    env=child_env(),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        codes = [p.wait(120) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        log.close()
    assert set(codes) <= {0, 1}  # 1: a job failed for good in that invocation
    assert 1 in codes and 0 in codes
    assert len(procs) >= 4

    long_h, cron_h = runs(long_dir), runs(cron_dir)
    # a pipeline busy in one invocation (running, or between retries) is not started by another:
    # its slot waits, as in the long-running form, instead of a run that finds it locked
    for h in (long_h, cron_h):
        assert {r.status for r in h} <= {"done", "failed", "interrupted"}
    for name, n in (("fast", 3), ("bad", 2)):
        long_g, cron_g = slot_groups(long_h, name), slot_groups(cron_h, name)
        assert _normalized(long_g, n) == _normalized(cron_g, n), name
        for g in cron_g:  # overlapping invocations never ran a slot twice
            assert [r.attempt for r in g] == list(range(1, len(g) + 1))
            assert t(g[0].scheduled_for) % (3 if name == "fast" else 4) == 0
    # and the content is what it should be
    fast = _normalized(slot_groups(cron_h, "fast"), 3)
    assert [g[0][3:5] for g in fast] == [("done", 200), ("done", 0), ("done", 0)]
    bad = _normalized(slot_groups(cron_h, "bad"), 2)
    assert [[(a[2], a[3]) for a in g] for g in bad] == [[(1, "failed"), (2, "failed")]] * 2
    assert "unknown stream 'nope'" in (bad[0][0][5] or "")
    _no_open_runs_or_locks(long_dir)
    _no_open_runs_or_locks(cron_dir)


def test_scheduled_via_singer_pipeline(tmp_path: Path) -> None:
    """``schedule: {via_singer: true}``: the attempt runs as tap-dcapix | target-dcapix, recorded."""
    src = tmp_path / "src.db"
    make_items(src, 150)
    dst = {"adapter": "sql", "url": f"sqlite:///{tmp_path / 'dst.db'}", "load_method": "upsert"}
    write_project(
        tmp_path,
        {
            "singer": {
                "source": source(src),
                "destination": dst,
                "schedule": {"every": "1h", "via_singer": True},
            }
        },
    )
    res = subprocess.run(
        [*dcapix_argv(), "schedule", "run", "--now"],
        cwd=tmp_path,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert "[singer] [tap]" in res.stderr  # the tap's log, forwarded twice over
    (run,) = runs(tmp_path)
    assert (run.mode, run.status, run.rows, run.trigger) == ("via-singer", "done", 150, "manual")
    assert run.streams[0].state_after["replication_key_value"] == 150
    assert sqlite_ids(tmp_path / "dst.db") == list(range(1, 151))
