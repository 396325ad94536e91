"""The loop of ``dcapix schedule run`` (and of ``--once`` / ``--now``).

:class:`Scheduler` starts due jobs (:mod:`.schedule`) as child processes — ``dcapix run PIPELINE``
with the running interpreter, or ``meltano run JOB`` (:mod:`.meltano_schedules`) — at most
``max_concurrent`` at a time and never two of one job: before it claims a slot it takes the job's
run lock (:mod:`.locks`) and holds it until the slot's last attempt ended; the run's process joins
that lock by run id. It applies the missed-run policy, retries a failed attempt with exponential
backoff, and on SIGTERM/SIGINT starts nothing new, passes SIGTERM on (each run rolls back what it
did not commit and records itself ``interrupted``) and waits for the runs. Children die with the
scheduler (``PR_SET_PDEATHSIG``); runs left open by dead processes are marked ``abandoned``.
"""

from __future__ import annotations

import datetime as _dt
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from ..exceptions import ConfigError
from ..logs import redact
from .schedule import Job, ScheduleBook, iso, new_run_id

if TYPE_CHECKING:
    from .state import StateStore

__all__ = ["Attempt", "ChildProcess", "Scheduler", "dcapix_argv", "describe_exit", "run_pipeline_attempt"]


@dataclass
class Attempt:
    """One attempt of a job (its slot, number and trigger) while it runs."""

    job: Job
    slot: float | None
    number: int
    trigger: str
    run_id: str = field(default_factory=new_run_id)
    status: str | None = None
    child: ChildProcess | None = None
    thread: threading.Thread | None = None
    started: float = field(default_factory=time.time)
    #: the job's run lock, taken by the scheduler before the slot's first attempt and held until its
    #: last one ended; the run's process joins it.
    lock: Any = None

    @property
    def scheduled_for(self) -> str | None:
        return iso(self.slot)

    def release_lock(self) -> None:
        """The slot is done (or never started): give the job's run lock back."""
        if self.lock is not None:
            self.lock.release()
            self.lock = None


# ---------------------------------------------------------------------------------- child process
def _pdeathsig() -> None:  # pragma: no cover - runs in the child
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class ChildProcess:
    """A run's process: output forwarded line by line with a ``[job]`` prefix (secrets masked),
    killed with the scheduler (``PR_SET_PDEATHSIG``), stopped with SIGTERM on :meth:`terminate`.

    :param on_line: sees every output line first; returns the text to print (``None``: the line).
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        prefix: str,
        out: IO[str],
        cwd: str | None = None,
        env: dict[str, str] | None = None,
        on_line: Callable[[str], str | None] | None = None,
    ) -> None:
        self.prefix = prefix
        self.out = out
        self.on_line = on_line
        #: the last line that looked like an error (for the run history).
        self.last_error: str | None = None
        self.proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            preexec_fn=_pdeathsig,
        )
        self._reader = threading.Thread(target=self._forward, name=f"dcapix-out-{prefix}", daemon=True)
        self._reader.start()

    def _forward(self) -> None:
        assert self.proc.stdout is not None
        for raw in iter(self.proc.stdout.readline, b""):
            line = raw.decode("utf-8", errors="replace").rstrip("\n")
            shown: str | None = line
            if self.on_line is not None:
                try:
                    shown = self.on_line(line)
                except Exception:  # pragma: no cover - never let parsing stop the forwarding
                    shown = line
            if shown is None:
                continue
            low = shown.lower()
            if "error" in low or "traceback" in low or "failed" in low:
                self.last_error = shown.strip()
            try:
                print(f"{self.prefix} {redact(shown)}", file=self.out, flush=True)
            except Exception:  # pragma: no cover
                pass
        self.proc.stdout.close()

    def wait(self) -> int:
        rc = self.proc.wait()
        self._reader.join(timeout=10)
        return rc

    def terminate(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:  # pragma: no cover
                pass

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.kill()
            except ProcessLookupError:  # pragma: no cover
                pass


def _mode(job: Job) -> str:
    if job.kind == "meltano":
        return "meltano"
    return "via-singer" if job.spec.get("via_singer") else "in-process"


def describe_exit(rc: int) -> str:
    if rc < 0:
        try:
            name = signal.Signals(-rc).name
        except ValueError:
            name = str(-rc)
        return f"killed by {name}"
    return f"exited with code {rc}"


def dcapix_argv() -> list[str]:
    """How to start ``dcapix`` with the running interpreter (and its installed plugins)."""
    return [sys.executable, "-c", "import sys; from dc_api_x.cli import main; sys.exit(main())"]


def run_pipeline_attempt(job: Job, attempt: Attempt, sched: Scheduler) -> str:
    """One attempt of a pipeline: ``dcapix run PIPELINE --run-id …`` as a child process. The child
    records its run (lock, rows, state); the scheduler creates the entry first (``starting``) and
    closes it when the child could not (killed, crashed before recording)."""
    from .cli import EXIT_BUSY
    from .history import OPEN_STATUSES, begin_run, finish_run, get_run

    spec = job.spec
    argv = [*dcapix_argv(), "run", spec["pipeline"], "--no-progress"]
    if spec.get("config"):
        argv += ["-c", spec["config"]]
    if spec.get("state_db"):
        argv += ["--state-db", spec["state_db"]]
    if spec.get("via_singer"):
        argv.append("--via-singer")
    argv += ["--run-id", attempt.run_id, "--trigger", attempt.trigger, "--attempt", str(attempt.number)]
    if attempt.slot is not None:
        argv += ["--scheduled-for", attempt.scheduled_for or ""]
    store = sched.store
    begin_run(
        store,
        attempt.run_id,
        job.name,
        trigger=attempt.trigger,
        mode="via-singer" if spec.get("via_singer") else "in-process",
        status="starting",
        scheduled_for=attempt.scheduled_for,
        attempt=attempt.number,
        command=f"dcapix run {spec['pipeline']}",
    )
    if sched.stopping:
        finish_run(store, attempt.run_id, status="interrupted", error="scheduler stopping", only_if_open=True)
        return "interrupted"
    attempt.child = ChildProcess(argv, prefix=f"[{job.name}]", out=sched.out, cwd=spec.get("project_dir"))
    rc = attempt.child.wait()
    rec = get_run(store, attempt.run_id)
    if rec.status in OPEN_STATUSES:
        status = "interrupted" if rc in (130, -signal.SIGTERM) else "failed"
        finish_run(
            store,
            attempt.run_id,
            status=status,
            error=(
                f"{attempt.child.last_error} ({describe_exit(rc)})"
                if attempt.child.last_error
                else f"dcapix run {describe_exit(rc)}"
            ),
            only_if_open=True,
        )
        rec = get_run(store, attempt.run_id)
    if rc == EXIT_BUSY:
        return "skipped"
    return rec.status


# ------------------------------------------------------------------------------------- scheduler
class Scheduler:
    """The loop of ``dcapix schedule run`` (see the module docstring).

    :param once: start what is due now (with its retries), wait for it, return.
    :param now: start every job now, whatever its schedule (trigger ``manual``), then return.
    """

    def __init__(
        self,
        jobs: Sequence[Job],
        store: StateStore,
        *,
        max_concurrent: int = 4,
        once: bool = False,
        now: bool = False,
        stop_timeout: float = 120.0,
        out: IO[str] | None = None,
    ) -> None:
        names = [j.name for j in jobs]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ConfigError(f"two scheduled jobs are called {sorted(dup)[0]!r}", plugin="schedule")
        self.jobs = list(jobs)
        self.store = store
        self.max_concurrent = max(1, max_concurrent)
        self.once = once or now
        self.now_mode = now
        self.stop_timeout = stop_timeout
        self.out = out or sys.stderr
        self.book = ScheduleBook(store)
        self.stopping = False
        self._wake = threading.Event()
        self._active: dict[str, Attempt] = {}
        self._queue: deque[Attempt] = deque()
        self._retry: dict[str, tuple[float, Attempt]] = {}
        self._busy: set[str] = set()
        self._waiting: dict[str, str] = {}  # job -> owner of the lock it waits for (logged once)
        #: final outcome per attempt, in the order they ended: (job, status, attempt number).
        self.outcomes: list[tuple[str, str, int]] = []
        self.failed_jobs = 0

    # -- messages --------------------------------------------------------------------------------
    def emit(self, text: str) -> None:
        stamp = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")
        try:
            print(f"{stamp} [schedule] {redact(text)}", file=self.out, flush=True)
        except Exception:  # pragma: no cover
            pass

    # -- control ---------------------------------------------------------------------------------
    def request_stop(self, reason: str = "stop requested") -> None:
        if not self.stopping:
            self.stopping = True
            self.emit(f"{reason}: starting no new run, stopping {len(self._active)} running")
        self._wake.set()

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT stop the scheduler cleanly (main thread only)."""
        if threading.current_thread() is not threading.main_thread():
            return

        def handler(signum: int, frame: Any) -> None:
            self.request_stop(f"received {signal.Signals(signum).name}")

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    # -- the loop --------------------------------------------------------------------------------
    def run(self) -> int:
        """Run until stopped (or, with ``once``/``now``, until the due runs ended). Returns the exit
        code: 1 when a job failed for good in a ``--once`` run, else 0."""
        from .history import reap_orphans

        start = time.time()
        for job in self.jobs:
            self.book.register(job, start)
        orphans = reap_orphans(self.store)
        if orphans:
            self.emit(f"{orphans} run(s) of processes that no longer exist marked abandoned")
        mode = "now" if self.now_mode else "once" if self.once else "continuous"
        self.emit(
            f"{len(self.jobs)} job(s), max {self.max_concurrent} at a time ({mode}); state store "
            f"{self.store.location}"
        )
        first = True
        while not self.stopping:
            now = time.time()
            self._reap(now)
            if first or not self.once:
                self._find_due(now)
                first = False
            for name, (when, att) in list(self._retry.items()):
                if when <= now:
                    del self._retry[name]
                    att.lock.set_run(att.run_id)  # still held: nothing ran in between
                    self._queue.append(att)
            while self._queue and len(self._active) < self.max_concurrent and not self.stopping:
                self._start(self._queue.popleft())
            if self.once and not (self._active or self._queue or self._retry):
                break
            self._sleep(now)
        self._shutdown()
        if self.once and self.failed_jobs:
            return 1
        return 0

    def _lock(self, att: Attempt, *, record_busy: bool = False) -> bool:
        """Take the job's run lock for ``att`` (the run's process adopts it). ``False`` when the job
        is running elsewhere; with ``record_busy`` that is recorded as a ``skipped`` run."""
        from .history import begin_run, finish_run
        from .locks import LockBusyError

        def stop_child() -> None:
            if att.child is not None:
                att.child.terminate()

        try:
            att.lock = self.store.lock(att.job.name, run_id=att.run_id, on_lost=stop_child).acquire()
        except LockBusyError as exc:
            att.lock = None
            name = att.job.name
            if record_busy:
                begin_run(
                    self.store,
                    att.run_id,
                    name,
                    trigger=att.trigger,
                    mode=_mode(att.job),
                    status="skipped",
                    scheduled_for=att.scheduled_for,
                    attempt=att.number,
                )
                finish_run(self.store, att.run_id, status="skipped", error=str(exc))
                self.emit(f"{name}: skipped: {exc}")
            elif self._waiting.get(name) != exc.holder.owner:
                self._waiting[name] = exc.holder.owner
                self.emit(f"{name}: running elsewhere ({exc.holder.describe()}); its next run waits for it")
            return False
        self._waiting.pop(att.job.name, None)
        return True

    def _find_due(self, now: float) -> None:
        from .history import begin_run, finish_run

        for job in self.jobs:
            if job.name in self._busy:
                continue
            if self.now_mode:
                att = Attempt(job, None, 1, "manual")
                if self._lock(att, record_busy=True):
                    self._busy.add(job.name)
                    self._queue.append(att)
                continue
            due = self.book.due(job, now)
            if due is None:
                continue
            slot, missed = due
            att = Attempt(job, slot, 1, "schedule")
            if not self._lock(att):
                continue  # running elsewhere: the slot stays due and is caught up once it is free
            if not self.book.claim(job, slot):
                att.release_lock()
                continue  # another scheduler started it
            late = now - slot
            if missed:
                self.emit(
                    f"{job.name}: {missed} slot(s) missed before {iso(slot, job.schedule.tz)} "
                    f"(scheduler not running or the job still busy)"
                )
            if job.policy.missed == "skip" and late > job.policy.grace:
                att.release_lock()
                begin_run(
                    self.store,
                    att.run_id,
                    job.name,
                    trigger="schedule",
                    mode=_mode(job),
                    status="skipped",
                    scheduled_for=att.scheduled_for,
                )
                reason = (
                    f"slot {iso(slot, job.schedule.tz)} is {late:.0f} s late (grace {job.policy.grace:g} s); "
                    f"missed-run policy skip"
                )
                finish_run(self.store, att.run_id, status="skipped", error=reason)
                self.emit(f"{job.name}: skipped: {reason}")
                continue
            if missed and job.policy.missed == "catch-up":
                self.emit(f"{job.name}: catching up once")
            self._busy.add(job.name)
            self._queue.append(att)

    def _start(self, att: Attempt) -> None:
        job = att.job
        slot = f" for {iso(att.slot, job.schedule.tz)}" if att.slot is not None else ""
        self.emit(f"{job.name}: starting run {att.run_id}{slot} (attempt {att.number})")
        att.started = time.time()

        def work() -> None:
            try:
                assert job.execute is not None
                att.status = job.execute(job, att, self)
            except BaseException as exc:
                att.status = "failed"
                self.emit(f"{job.name}: run {att.run_id} could not be started: {exc}")
            finally:
                self._wake.set()

        att.thread = threading.Thread(target=work, name=f"dcapix-job-{job.name}", daemon=True)
        self._active[job.name] = att
        att.thread.start()

    def _reap(self, now: float) -> None:
        for name, att in list(self._active.items()):
            if att.thread is not None and att.thread.is_alive():
                continue
            del self._active[name]
            job, status = att.job, att.status or "failed"
            took = now - att.started
            self.outcomes.append((name, status, att.number))
            self.emit(f"{name}: run {att.run_id} {status} after {took:.1f} s (attempt {att.number})")
            if status == "failed" and att.number <= job.policy.retries and not self.stopping and att.lock:
                delay = job.policy.backoff(att.number)
                self.emit(f"{name}: retry {att.number}/{job.policy.retries} in {delay:g} s")
                nxt = Attempt(job, att.slot, att.number + 1, att.trigger, lock=att.lock)
                self._retry[name] = (now + delay, nxt)
                continue
            att.release_lock()
            if status == "failed":
                self.failed_jobs += 1
                if job.policy.retries:
                    self.emit(f"{name}: failed after {att.number} attempt(s); next run on schedule")
            self._busy.discard(name)

    def _sleep(self, now: float) -> None:
        wake = now + 30.0
        for job in self.jobs:
            if job.name in self._busy or self.once:
                continue
            nxt = job.schedule.next_after(now)
            if nxt is not None:
                wake = min(wake, nxt)
        for when, _ in self._retry.values():
            wake = min(wake, when)
        timeout = max(0.0, wake - time.time()) + 0.002
        if self._active:
            timeout = min(timeout, 1.0)
        if self._waiting and not self.once:  # a due job waits for a lock held elsewhere
            timeout = min(timeout, 2.0)
        self._wake.wait(timeout)
        self._wake.clear()

    def _shutdown(self) -> None:
        for name, (_, att) in list(self._retry.items()):
            self.emit(f"{name}: pending retry cancelled")
            att.release_lock()
        self._retry.clear()
        while self._queue:  # queued, never started: give their locks back
            self._queue.popleft().release_lock()
        if not self._active:
            return
        for att in self._active.values():
            if att.child is not None:
                att.child.terminate()
        deadline = time.time() + self.stop_timeout
        for att in list(self._active.values()):
            if att.thread is not None:
                att.thread.join(max(0.0, deadline - time.time()))
        for att in self._active.values():
            if att.thread is not None and att.thread.is_alive() and att.child is not None:
                self.emit(f"{att.job.name}: did not stop within {self.stop_timeout:g} s; killing it")
                att.child.kill()
                att.thread.join(30)
        self._reap(time.time())
