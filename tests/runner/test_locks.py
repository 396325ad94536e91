"""Run locks with owner pid/host and a heartbeat, held by real processes: a live holder is named, a
SIGKILLed holder's lock is taken over at once (and its run marked abandoned), a frozen (SIGSTOP)
holder's lock is taken over after the timeout, and the frozen process, once resumed, notices it
lost the lock and cannot store state any more. On SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dc_api_x.exceptions import StateError
from dc_api_x.runner.history import get_run
from dc_api_x.runner.locks import LockBusyError, list_locks
from dc_api_x.runner.state import open_state_store

ROOT = Path(__file__).resolve().parents[2]
HOLDER = """
import sys, threading
from dc_api_x.runner.state import open_state_store
from dc_api_x.runner.history import begin_run
s = open_state_store(path=sys.argv[1])
s.lock_timeout = float(sys.argv[2])
lost = threading.Event()
begin_run(s, "holder-run", "pipe")
with s.lock("pipe", run_id="holder-run", on_lost=lost.set) as lk:
    s.set("pipe", "items", {"id": 1})
    print("LOCKED", flush=True)
    lost.wait(60)
    print("LOST " + str(lk.lost_reason) if lk.lost else "TIMEOUT", flush=True)
    try:
        s.set("pipe", "items", {"id": 999})
        print("STORED", flush=True)
    except Exception as exc:
        print("REFUSED " + str(exc), flush=True)
"""


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_spec(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield str(tmp_path / "state.db")
    else:
        pg_url = request.getfixturevalue("pg_url")
        import psycopg

        plain = pg_url.replace("postgresql+psycopg://", "postgresql://", 1)
        yield plain
        with psycopg.connect(plain, autocommit=True) as conn:  # tables are per database: start clean
            for t in ("dcapix_locks", "dcapix_runs", "dcapix_run_streams", "dcapix_state"):
                conn.execute(f"DROP TABLE IF EXISTS {t}")


def _holder(spec: str, timeout: float) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, spec, str(timeout)], stdout=subprocess.PIPE, text=True, env=env
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    assert line == "LOCKED", line
    return proc


def test_live_holder_is_named_and_a_killed_one_is_taken_over(store_spec: str, caplog) -> None:
    holder = _holder(store_spec, 60)
    try:
        with open_state_store(path=store_spec) as store:
            with pytest.raises(LockBusyError) as busy:
                store.lock("pipe").acquire()
            msg = str(busy.value)
            assert f"pid {holder.pid} on host {socket.gethostname()}" in msg
            assert "run holder-run" in msg and "already running" in msg
            assert busy.value.holder.pid == holder.pid
            # another pipeline is independent
            with store.lock("other"):
                pass
            holder.send_signal(signal.SIGKILL)
            holder.wait()
            # the row is still there, but its process is gone: taken over at once, and said so
            assert [h.pipeline for h in list_locks(store)] == ["pipe"]
            with caplog.at_level(logging.WARNING, logger="dc_api_x.runner"), store.lock("pipe", run_id="r2"):
                assert [(h.pid, h.run_id) for h in list_locks(store)] == [(os.getpid(), "r2")]
            assert "took over the stale run lock" in caplog.text and f"pid {holder.pid}" in caplog.text
            assert "no longer exists" in caplog.text
            run = get_run(store, "holder-run")
            assert run.status == "abandoned" and "taken over by run r2" in (run.error or "")
            assert list_locks(store) == []  # released
            # the killed holder's committed state is kept
            assert store.get("pipe", "items") == {"id": 1}
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def test_frozen_holder_is_taken_over_after_the_timeout_and_fenced(store_spec: str, caplog) -> None:
    timeout = 1.5
    holder = _holder(store_spec, timeout)
    try:
        os.kill(holder.pid, signal.SIGSTOP)
        t0 = time.monotonic()
        with open_state_store(path=store_spec) as store:
            store.lock_timeout = timeout
            with pytest.raises(LockBusyError, match=r"after 1\.5 s without heartbeat"):
                store.lock("pipe").acquire()  # alive and fresh: busy
            lock = None
            deadline = time.monotonic() + 30
            while lock is None and time.monotonic() < deadline:
                try:
                    with caplog.at_level(logging.WARNING, logger="dc_api_x.runner"):
                        lock = store.lock("pipe", run_id="taker").acquire()
                except LockBusyError:
                    time.sleep(0.1)
            assert lock is not None, "the stale lock was never taken over"
            waited = time.monotonic() - t0
            assert waited >= timeout - 0.2  # not before the timeout ...
            assert "no heartbeat for" in caplog.text and "took over the stale run lock" in caplog.text
            try:
                store.set("pipe", "items", {"id": 2})  # ... and the new holder may store state
                os.kill(holder.pid, signal.SIGCONT)
                assert holder.stdout is not None
                lost = holder.stdout.readline().strip()
                refused = holder.stdout.readline().strip()
                assert lost.startswith("LOST") and "now held by" in lost and f"pid {os.getpid()}" in lost
                assert refused.startswith("REFUSED") and "taken over by another process" in refused
                assert store.get("pipe", "items") == {"id": 2}  # the resumed process stored nothing
            finally:
                lock.release()
            assert get_run(store, "holder-run").status == "abandoned"
    finally:
        if holder.poll() is None:
            os.kill(holder.pid, signal.SIGCONT)
            holder.kill()
        holder.wait()


def test_heartbeat_keeps_a_slow_holder_alive(tmp_path: Path) -> None:
    """A holder that keeps running past the timeout is never taken over: its heartbeat is fresh."""
    spec = str(tmp_path / "state.db")
    holder = _holder(spec, 0.6)
    try:
        with open_state_store(path=spec) as store:
            for _ in range(8):  # 2.4 s = four timeouts
                with pytest.raises(LockBusyError):
                    store.lock("pipe").acquire()
                time.sleep(0.3)
    finally:
        holder.kill()
        holder.wait()


def test_state_write_outside_a_lock_is_not_fenced(tmp_path: Path) -> None:
    with open_state_store(path=str(tmp_path / "s.db")) as store:
        store.set("p", "s", {"id": 1})  # `dcapix state set` holds no lock
        with store.lock("p"):
            store.set("p", "s", {"id": 2})
            # someone removed our lock row (e.g. a takeover): the next state write is refused
            store.execute("DELETE FROM dcapix_locks WHERE pipeline = 'p'")
            with pytest.raises(StateError, match="taken over by another process"):
                store.set("p", "s", {"id": 3})
        assert store.get("p", "s") == {"id": 2}


def test_a_run_joins_the_lock_its_scheduler_holds_for_it(tmp_path: Path) -> None:
    db = str(tmp_path / "s.db")
    with open_state_store(path=db) as sched_store, open_state_store(path=db) as run_store:
        held = sched_store.lock("p", run_id="attempt-1").acquire()
        try:
            with pytest.raises(LockBusyError):  # anyone else is refused
                run_store.lock("p", run_id="other").acquire()
            with run_store.lock("p", run_id="attempt-1") as joined:  # the run it was taken for joins
                assert joined.joined
                run_store.set("p", "s", {"id": 1})  # fenced by the scheduler's ownership
                (row,) = list_locks(run_store)
                assert (row.pid, row.run_id) == (os.getpid(), "attempt-1")
            assert [h.run_id for h in list_locks(sched_store)] == ["attempt-1"]  # still held
            held.set_run("attempt-2")  # a retry: the next attempt joins, the first one no more
            with run_store.lock("p", run_id="attempt-2"):
                pass
            with pytest.raises(LockBusyError):
                run_store.lock("p", run_id="attempt-1").acquire()
            # the scheduler loses the lock: the joined run's state writes are refused
            with run_store.lock("p", run_id="attempt-2"):
                sched_store.execute("DELETE FROM dcapix_locks")
                with pytest.raises(StateError, match="taken over by another process"):
                    run_store.set("p", "s", {"id": 2})
        finally:
            held.release()
        assert run_store.get("p", "s") == {"id": 1}
