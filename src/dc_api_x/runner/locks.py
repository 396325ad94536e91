"""Run locks: at most one run of a pipeline at a time, across processes and hosts.

A lock is a row of ``dcapix_locks`` in the state store (SQLite or PostgreSQL)::

    pipeline | owner (token) | run_id | pid | host | host_id | proc_start
             | acquired_at | heartbeat_at | timeout

* **Acquire** in one transaction: no row → insert ours. A row whose holder is alive → :class:`LockBusyError`
  naming pid, host, run and the age of its heartbeat.
* **Heartbeat.** While the lock is held a thread refreshes ``heartbeat_at`` every ``timeout / 3``
  seconds; every state write of the pipeline refreshes it too and checks, in the same transaction,
  that the row is still ours (a fence: a process that lost its lock cannot store state).
* **Stale locks are taken over** (and the takeover is logged, and the old run's history entry
  marked ``abandoned``) when the holder is provably gone — same host (hostname, boot id and PID
  namespace), and its pid no longer exists or now belongs to a process started at another time —
  or, from anywhere, when its heartbeat is older than the holder's ``timeout``. So ``kill -9`` on the
  same machine blocks nothing, and a lock left by a vanished host or a frozen process is taken over
  after the timeout. Hosts sharing a state store need synchronised clocks (NTP); keep the timeout
  well above their skew.
* **Losing the lock** (a frozen process resumed after another took it over) is noticed by the next
  heartbeat: it is logged and ``on_lost`` is called (``dcapix run`` stops the run, like Ctrl-C).
* **Joining.** The scheduler takes a pipeline's lock *before* it starts a run's process and holds
  it (heartbeat included) until the slot is done — retries and their backoff too — switching its
  ``run_id`` to each attempt's. The run's process, started with that run id, *joins* the lock
  instead of taking it: it neither heartbeats nor deletes the row, and its state writes are fenced
  by the scheduler's ownership. No other process can slip in while a run starts or between retries.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..exceptions import StateError

if TYPE_CHECKING:
    from .state import StateStore

__all__ = [
    "DEFAULT_LOCK_TIMEOUT",
    "LockBusyError",
    "LockHolder",
    "RunLock",
    "host_identity",
    "list_locks",
]

log = logging.getLogger("dc_api_x.runner")

#: seconds without heartbeat after which a lock is stale (the project's ``lock_timeout``).
DEFAULT_LOCK_TIMEOUT = 60.0

LOCK_DDL = (
    "CREATE TABLE IF NOT EXISTS dcapix_locks ("
    " pipeline TEXT PRIMARY KEY, owner TEXT NOT NULL, run_id TEXT, pid INTEGER NOT NULL,"
    " host TEXT NOT NULL, host_id TEXT NOT NULL, proc_start TEXT,"
    " acquired_at DOUBLE PRECISION NOT NULL, heartbeat_at DOUBLE PRECISION NOT NULL,"
    " timeout DOUBLE PRECISION NOT NULL)",
)
_COLS = "pipeline, owner, run_id, pid, host, host_id, proc_start, acquired_at, heartbeat_at, timeout"


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read().strip()
    except OSError:
        return ""


_HOST_ID: str | None = None


def host_identity() -> str:
    """This machine and PID namespace: ``hostname/boot-id/pid-namespace`` (pids are comparable only
    between processes with the same identity)."""
    global _HOST_ID
    if _HOST_ID is None:
        try:
            pidns = os.readlink("/proc/self/ns/pid")
        except OSError:
            pidns = ""
        _HOST_ID = f"{socket.gethostname()}/{_read('/proc/sys/kernel/random/boot_id')}/{pidns}"
    return _HOST_ID


def _proc_stat(pid: int) -> tuple[str, str] | None:
    """(state letter, start time in clock ticks since boot) of a process, from ``/proc``."""
    text = _read(f"/proc/{pid}/stat")
    if not text:
        return None
    fields = text[text.rfind(")") + 2 :].split()
    return (fields[0], fields[19]) if len(fields) > 19 else None


def proc_start(pid: int) -> str | None:
    stat = _proc_stat(pid)
    return stat[1] if stat else None


@dataclass(frozen=True)
class LockHolder:
    """Who holds a run lock."""

    pipeline: str
    owner: str
    run_id: str | None
    pid: int
    host: str
    host_id: str
    proc_start: str | None
    acquired_at: float
    heartbeat_at: float
    timeout: float

    def describe(self, now: float | None = None) -> str:
        now = time.time() if now is None else now
        since = _dt.datetime.fromtimestamp(self.acquired_at, _dt.timezone.utc).isoformat(timespec="seconds")
        run = f", run {self.run_id}" if self.run_id else ""
        return (
            f"pid {self.pid} on host {self.host}{run}, since {since}, "
            f"last heartbeat {max(0.0, now - self.heartbeat_at):.0f} s ago"
        )

    def gone(self) -> str | None:
        """Why the holder is provably dead (same host and PID namespace only), or ``None``."""
        if self.host_id != host_identity():
            return None
        if os.path.isdir("/proc/self"):
            stat = _proc_stat(self.pid)
            if stat is None:
                return f"process {self.pid} no longer exists"
            if stat[0] in ("Z", "X"):
                return f"process {self.pid} has exited"
            if self.proc_start and stat[1] != self.proc_start:
                return f"pid {self.pid} now belongs to another process"
            return None
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return f"process {self.pid} no longer exists"
        except PermissionError:
            return None
        return None

    def stale(self, now: float | None = None) -> str | None:
        """Why the lock may be taken over, or ``None`` while the holder is alive."""
        now = time.time() if now is None else now
        reason = self.gone()
        if reason:
            return reason
        age = now - self.heartbeat_at
        if age > self.timeout:
            return f"no heartbeat for {age:.0f} s (timeout {self.timeout:g} s)"
        return None


class LockBusyError(StateError):
    """The pipeline is running elsewhere; ``holder`` says where."""

    def __init__(self, message: str, holder: LockHolder) -> None:
        super().__init__(message)
        self.holder = holder


def _holder(row: tuple[Any, ...]) -> LockHolder:
    p, owner, run_id, pid, host, host_id, start, acq, hb, timeout = row
    return LockHolder(p, owner, run_id, int(pid), host, host_id, start, float(acq), float(hb), float(timeout))


def list_locks(store: StateStore) -> list[LockHolder]:
    """Every lock row of the store (held or stale)."""
    store.ensure_tables("locks", LOCK_DDL)
    return [_holder(r) for r in store.execute(f"SELECT {_COLS} FROM dcapix_locks ORDER BY pipeline")]


class RunLock:
    """The run lock of one pipeline (a context manager; see the module docstring).

    :param run_id: recorded in the lock (and named by a busy error / a takeover).
    :param timeout: seconds without heartbeat after which others take it over (default: the
        store's ``lock_timeout``).
    :param on_lost: called (in the heartbeat thread) when the lock turns out to be taken over.
    """

    def __init__(
        self,
        store: StateStore,
        pipeline: str,
        *,
        run_id: str | None = None,
        timeout: float | None = None,
        on_lost: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.pipeline = pipeline
        self.run_id = run_id
        self.timeout = float(timeout if timeout is not None else store.lock_timeout or DEFAULT_LOCK_TIMEOUT)
        self.on_lost = on_lost
        self.owner = uuid.uuid4().hex
        self.lost = False
        #: why the lock was lost (for messages), once :attr:`lost`.
        self.lost_reason: str | None = None
        #: the stale holder this lock was taken over from, if any.
        self.took_over: LockHolder | None = None
        #: this process joined a lock its scheduler holds for this run (see the module docstring).
        self.joined = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- acquire / release -----------------------------------------------------------------------
    def acquire(self) -> RunLock:
        store = self.store
        store.ensure_tables("locks", LOCK_DDL)
        pid = os.getpid()
        row = (
            self.pipeline,
            self.owner,
            self.run_id,
            pid,
            socket.gethostname(),
            host_identity(),
            proc_start(pid),
        )
        reason = None
        for _attempt in range(3):
            now = time.time()
            try:
                with store.transaction(durable=False) as tx:
                    lock_sql = " FOR UPDATE" if store.dialect == "postgresql" else ""
                    found = tx.execute(
                        f"SELECT {_COLS} FROM dcapix_locks WHERE pipeline = ?{lock_sql}", (self.pipeline,)
                    )
                    if found:
                        holder = _holder(found[0])
                        if self.run_id and holder.run_id == self.run_id:
                            # held for this very run by the scheduler that started us: join it
                            self.joined, self.owner = True, holder.owner
                            break
                        reason = holder.stale(now)
                        if reason is None:
                            raise LockBusyError(
                                f"pipeline {self.pipeline!r} is already running ({holder.describe(now)}); "
                                f"its lock is taken over once that process is gone or after "
                                f"{holder.timeout:g} s without heartbeat",
                                holder,
                            )
                        tx.execute(
                            "DELETE FROM dcapix_locks WHERE pipeline = ? AND owner = ?",
                            (self.pipeline, holder.owner),
                        )
                        self.took_over = holder
                    tx.execute(
                        f"INSERT INTO dcapix_locks ({_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (*row, now, now, self.timeout),
                    )
                break
            except LockBusyError:
                raise
            except StateError:
                # PostgreSQL: another process inserted the row between our SELECT and INSERT; look again
                if store.dialect != "postgresql" or _attempt == 2:
                    raise
                self.took_over = None
        if self.joined:
            store._fences[self.pipeline] = self.owner  # our state writes check the scheduler's lock
            return self
        if self.took_over is not None:
            old = self.took_over
            log.warning(
                "pipeline %s: took over the stale run lock of %s: %s",
                self.pipeline,
                old.describe(),
                reason,
            )
            if old.run_id:
                from .history import mark_abandoned

                mark_abandoned(
                    store,
                    old.run_id,
                    f"run lock taken over by {'run ' + self.run_id if self.run_id else 'pid ' + str(pid)}"
                    f" on {socket.gethostname()}: {reason}",
                )
        store._fences[self.pipeline] = self.owner
        self._thread = threading.Thread(
            target=self._heartbeat, name=f"dcapix-lock-{self.pipeline}", daemon=True
        )
        self._thread.start()
        return self

    def set_run(self, run_id: str) -> None:
        """Record another run (the next attempt) as the holder of this lock."""
        self.store.execute(
            "UPDATE dcapix_locks SET run_id = ? WHERE pipeline = ? AND owner = ?",
            (run_id, self.pipeline, self.owner),
            durable=False,
        )
        self.run_id = run_id

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self.store._fences.get(self.pipeline) == self.owner:
            del self.store._fences[self.pipeline]
        if self.joined:  # the scheduler that holds it releases it
            return
        try:
            self.store.execute(
                "DELETE FROM dcapix_locks WHERE pipeline = ? AND owner = ?",
                (self.pipeline, self.owner),
                durable=False,
            )
        except StateError as exc:  # the next run takes the stale lock over
            log.warning("pipeline %s: could not release the run lock: %s", self.pipeline, exc)

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    # -- heartbeat -------------------------------------------------------------------------------
    @property
    def heartbeat_interval(self) -> float:
        return max(0.2, self.timeout / 3)

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.heartbeat_interval):
            try:
                with self.store.transaction(durable=False) as tx:
                    tx.execute(
                        "UPDATE dcapix_locks SET heartbeat_at = ? WHERE pipeline = ? AND owner = ?",
                        (time.time(), self.pipeline, self.owner),
                    )
                    ours = tx.rowcount == 1
                    holder = None
                    if not ours:
                        rows = tx.execute(
                            f"SELECT {_COLS} FROM dcapix_locks WHERE pipeline = ?", (self.pipeline,)
                        )
                        holder = _holder(rows[0]) if rows else None
            except StateError as exc:
                log.warning("pipeline %s: run lock heartbeat failed: %s", self.pipeline, exc)
                continue
            if ours:
                continue
            if self._stop.is_set():  # released meanwhile
                return
            self.lost_reason = (
                f"lost the run lock ({f'now held by {holder.describe()}' if holder else 'it was removed'})"
            )
            self.lost = True
            log.error(
                "pipeline %s: %s; stopping: no state is stored from now on", self.pipeline, self.lost_reason
            )
            if self.on_lost is not None:
                try:
                    self.on_lost()
                except Exception:  # pragma: no cover - best effort
                    log.debug("on_lost callback failed", exc_info=True)
            return
