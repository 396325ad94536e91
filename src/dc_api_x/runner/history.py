"""Run history: every run — manual, scheduled, via Singer, Meltano schedules — in the state store.

Two tables beside the state (same SQLite file or PostgreSQL database)::

    dcapix_runs         run_id, pipeline, trigger (manual | schedule), mode (in-process | via-singer |
                        meltano), status, scheduled_for, attempt, started_at, ended_at, seconds, rows,
                        bytes, error (one line, secrets redacted), pid, host, command, detail (JSON)
    dcapix_run_streams  run_id, stream, status, rows, bytes, seconds, error, state_before,
                        state_after (JSON), detail (the stream's metrics as JSON)

Statuses: ``starting`` (the scheduler launched the process), ``running``, ``done``, ``failed``,
``interrupted`` (SIGTERM / Ctrl-C), ``skipped`` (already running elsewhere, or a missed slot skipped by
the ``skip`` policy) and ``abandoned`` (the process died; its lock was taken over). Entries older than
the project's ``history_days`` (default 90; 0 keeps everything) are deleted when a run starts.
Recording never fails a run: a history write that fails is logged and the run goes on.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import logging
import os
import socket
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..exceptions import StateError
from ..logs import redact

if TYPE_CHECKING:
    from .progress import RunMetrics
    from .state import StateStore

__all__ = [
    "FINAL_STATUSES",
    "RunRecord",
    "StreamRecord",
    "begin_run",
    "finish_run",
    "get_run",
    "list_runs",
    "mark_abandoned",
    "one_line",
    "parse_time",
    "prune",
    "reap_orphans",
    "recording",
    "state_snapshot",
    "utc_iso",
]

log = logging.getLogger("dc_api_x.runner")

FINAL_STATUSES = ("done", "failed", "interrupted", "skipped", "abandoned")
OPEN_STATUSES = ("starting", "running")

HISTORY_DDL = (
    "CREATE TABLE IF NOT EXISTS dcapix_runs ("
    " run_id TEXT PRIMARY KEY, pipeline TEXT NOT NULL, trigger TEXT NOT NULL, mode TEXT NOT NULL,"
    " status TEXT NOT NULL, scheduled_for TEXT, attempt INTEGER NOT NULL DEFAULT 1,"
    " started_at TEXT NOT NULL, ended_at TEXT, seconds DOUBLE PRECISION, rows BIGINT, bytes BIGINT,"
    " error TEXT, pid INTEGER, host TEXT, command TEXT, detail TEXT, host_id TEXT)",
    "CREATE INDEX IF NOT EXISTS dcapix_runs_by_pipeline ON dcapix_runs (pipeline, started_at)",
    "CREATE INDEX IF NOT EXISTS dcapix_runs_by_start ON dcapix_runs (started_at)",
    "CREATE TABLE IF NOT EXISTS dcapix_run_streams ("
    " run_id TEXT NOT NULL, stream TEXT NOT NULL, status TEXT, rows BIGINT, bytes BIGINT,"
    " seconds DOUBLE PRECISION, error TEXT, state_before TEXT, state_after TEXT, detail TEXT,"
    " PRIMARY KEY (run_id, stream))",
)
_RUN_COLS = (
    "run_id, pipeline, trigger, mode, status, scheduled_for, attempt, started_at, ended_at, seconds, "
    "rows, bytes, error, pid, host, command, detail"
)
_STREAM_COLS = "stream, status, rows, bytes, seconds, error, state_before, state_after, detail"


def utc_iso(t: float | None = None) -> str:
    """UTC, millisecond ISO-8601 (fixed width, so text order is time order)."""
    return _dt.datetime.fromtimestamp(time.time() if t is None else t, _dt.timezone.utc).isoformat(
        timespec="milliseconds"
    )


def parse_time(text: str | None) -> float | None:
    """Epoch seconds of a stored ISO time (``None`` stays ``None``)."""
    if not text:
        return None
    return _dt.datetime.fromisoformat(text).timestamp()


def one_line(exc: BaseException | str | None) -> str | None:
    """The first line of an error, secrets redacted."""
    if exc is None:
        return None
    text = exc if isinstance(exc, str) else (str(exc) or type(exc).__name__)
    line = text.strip().splitlines()[0] if text.strip() else ""
    return redact(line)[:1000] or None


def _json(value: Any) -> str | None:
    if value is None:
        return None
    return json.dumps(value, sort_keys=True, default=str)


def _unjson(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


@dataclass
class StreamRecord:
    """One stream of a recorded run."""

    stream: str
    status: str | None = None
    rows: int | None = None
    bytes: int | None = None
    seconds: float | None = None
    error: str | None = None
    state_before: Any = None
    state_after: Any = None
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def rows_per_second(self) -> float | None:
        if self.rows is None or not self.seconds:
            return None
        return self.rows / self.seconds

    def as_dict(self) -> dict[str, Any]:
        rps = self.rows_per_second
        return {
            "stream": self.stream,
            "status": self.status,
            "rows": self.rows,
            "bytes": self.bytes,
            "seconds": self.seconds,
            "rows_per_second": round(rps, 1) if rps is not None else None,
            "error": self.error,
            "state_before": self.state_before,
            "state_after": self.state_after,
            "detail": self.detail,
        }


@dataclass
class RunRecord:
    """One recorded run."""

    run_id: str
    pipeline: str
    trigger: str
    mode: str
    status: str
    scheduled_for: str | None
    attempt: int
    started_at: str
    ended_at: str | None
    seconds: float | None
    rows: int | None
    bytes: int | None
    error: str | None
    pid: int | None
    host: str | None
    command: str | None
    detail: dict[str, Any] = field(default_factory=dict)
    streams: list[StreamRecord] = field(default_factory=list)

    def as_dict(self, *, streams: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "run_id": self.run_id,
            "pipeline": self.pipeline,
            "trigger": self.trigger,
            "mode": self.mode,
            "status": self.status,
            "scheduled_for": self.scheduled_for,
            "attempt": self.attempt,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "seconds": self.seconds,
            "rows": self.rows,
            "bytes": self.bytes,
            "error": self.error,
            "pid": self.pid,
            "host": self.host,
            "command": self.command,
            "detail": self.detail,
        }
        if streams:
            out["streams"] = [s.as_dict() for s in self.streams]
        return out


def _ensure(store: StateStore) -> None:
    store.ensure_tables("history", HISTORY_DDL)


def begin_run(
    store: StateStore,
    run_id: str,
    pipeline: str,
    *,
    trigger: str = "manual",
    mode: str = "in-process",
    status: str = "running",
    scheduled_for: str | None = None,
    attempt: int = 1,
    command: str | None = None,
    pid: int | None = None,
) -> None:
    """Insert the run (or, when the scheduler created it already, mark it ``status`` with this
    process's pid and host, keeping its start time). Prunes entries past the retention."""
    _ensure(store)
    now = utc_iso()
    from .locks import host_identity

    pid = os.getpid() if pid is None else pid
    host, host_id = socket.gethostname(), host_identity()
    with store.transaction(durable=False) as tx:
        found = tx.execute("SELECT status FROM dcapix_runs WHERE run_id = ?", (run_id,))
        if found:
            tx.execute(
                "UPDATE dcapix_runs SET status = ?, mode = ?, pid = ?, host = ?, host_id = ?,"
                " command = COALESCE(?, command) WHERE run_id = ?",
                (status, mode, pid, host, host_id, command, run_id),
            )
        else:
            tx.execute(
                f"INSERT INTO dcapix_runs ({_RUN_COLS}, host_id) VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL, NULL, NULL, ?, ?, ?, NULL, ?)",
                (
                    run_id,
                    pipeline,
                    trigger,
                    mode,
                    status,
                    scheduled_for,
                    attempt,
                    now,
                    pid,
                    host,
                    command,
                    host_id,
                ),
            )
    if store.history_days and status in OPEN_STATUSES:
        with contextlib.suppress(StateError):
            prune(store, store.history_days)


def finish_run(
    store: StateStore,
    run_id: str,
    *,
    status: str,
    error: str | None = None,
    streams: list[StreamRecord] | None = None,
    rows: int | None = None,
    bytes_: int | None = None,
    detail: Mapping[str, Any] | None = None,
    only_if_open: bool = False,
) -> bool:
    """Close a run: status, end time, duration, totals and its streams. With ``only_if_open`` a run
    that is closed already is left alone (returns ``False``)."""
    _ensure(store)
    end = time.time()
    streams = streams or []
    if rows is None and streams:
        rows = sum(s.rows or 0 for s in streams)
    if bytes_ is None and streams and any(s.bytes is not None for s in streams):
        bytes_ = sum(s.bytes or 0 for s in streams)
    with store.transaction(durable=False) as tx:
        found = tx.execute("SELECT status, started_at FROM dcapix_runs WHERE run_id = ?", (run_id,))
        if not found or (only_if_open and found[0][0] not in OPEN_STATUSES):
            return False
        started = parse_time(found[0][1]) or end
        tx.execute(
            "UPDATE dcapix_runs SET status = ?, ended_at = ?, seconds = ?, rows = ?, bytes = ?,"
            " error = ?, detail = ? WHERE run_id = ?",
            (
                status,
                utc_iso(end),
                round(end - started, 3),
                rows,
                bytes_,
                one_line(error),
                _json(dict(detail)) if detail else None,
                run_id,
            ),
        )
        for s in streams:
            tx.execute("DELETE FROM dcapix_run_streams WHERE run_id = ? AND stream = ?", (run_id, s.stream))
            tx.execute(
                f"INSERT INTO dcapix_run_streams (run_id, {_STREAM_COLS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    s.stream,
                    s.status,
                    s.rows,
                    s.bytes,
                    s.seconds,
                    one_line(s.error),
                    _json(s.state_before),
                    _json(s.state_after),
                    _json(s.detail) if s.detail else None,
                ),
            )
    return True


def mark_abandoned(store: StateStore, run_id: str, reason: str) -> None:
    """Close a run whose process died without closing it (its lock was taken over)."""
    try:
        finish_run(store, run_id, status="abandoned", error=reason, only_if_open=True)
    except StateError as exc:  # pragma: no cover - informative only
        log.warning("run %s: could not mark it abandoned: %s", run_id, exc)


def reap_orphans(store: StateStore) -> int:
    """Close the open runs of processes on this host (and PID namespace) that no longer exist — a
    scheduler killed before its child started, a ``dcapix run`` killed before it took its lock.
    Returns how many were marked ``abandoned``."""
    from .locks import LockHolder, host_identity

    _ensure(store)
    marks = ", ".join("?" for _ in OPEN_STATUSES)
    rows = store.execute(
        f"SELECT run_id, pipeline, pid FROM dcapix_runs WHERE status IN ({marks}) AND host_id = ?",
        (*OPEN_STATUSES, host_identity()),
    )
    n = 0
    for run_id, pipeline, pid in rows:
        if pid is None:
            continue
        probe = LockHolder(pipeline, "", run_id, int(pid), "", host_identity(), None, 0.0, 0.0, 0.0)
        reason = probe.gone()
        if reason and finish_run(
            store,
            run_id,
            status="abandoned",
            error=f"{reason} (found by a later scheduler)",
            only_if_open=True,
        ):
            n += 1
    return n


def prune(store: StateStore, keep_days: float) -> int:
    """Delete runs that started more than ``keep_days`` days ago; returns how many."""
    if not keep_days:
        return 0
    _ensure(store)
    cutoff = utc_iso(time.time() - keep_days * 86400)
    with store.transaction(durable=False) as tx:
        tx.execute(
            "DELETE FROM dcapix_run_streams WHERE run_id IN "
            "(SELECT run_id FROM dcapix_runs WHERE started_at < ?)",
            (cutoff,),
        )
        tx.execute("DELETE FROM dcapix_runs WHERE started_at < ?", (cutoff,))
        return max(tx.rowcount, 0)


def _run(row: tuple[Any, ...]) -> RunRecord:
    names = [c.strip() for c in _RUN_COLS.split(",")]
    values = dict(zip(names, row, strict=True))
    values["detail"] = _unjson(values["detail"]) or {}
    return RunRecord(**values)


def list_runs(
    store: StateStore,
    pipeline: str | None = None,
    *,
    status: str | None = None,
    limit: int | None = 50,
    since: str | None = None,
    streams: bool = False,
) -> list[RunRecord]:
    """Runs, newest first (``streams``: with their streams)."""
    _ensure(store)
    conds, args = [], []
    for col, val in (("pipeline", pipeline), ("status", status)):
        if val is not None:
            conds.append(f"{col} = ?")
            args.append(val)
    if since is not None:
        conds.append("started_at >= ?")
        args.append(since)
    where = (" WHERE " + " AND ".join(conds)) if conds else ""
    lim = f" LIMIT {int(limit)}" if limit else ""
    rows = store.execute(
        f"SELECT {_RUN_COLS} FROM dcapix_runs{where} ORDER BY started_at DESC, run_id DESC{lim}", args
    )
    runs = [_run(r) for r in rows]
    if streams and runs:
        by_id = {r.run_id: r for r in runs}
        ids = list(by_id)
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            marks = ", ".join("?" for _ in chunk)
            for row in store.execute(
                f"SELECT run_id, {_STREAM_COLS} FROM dcapix_run_streams WHERE run_id IN ({marks}) "
                "ORDER BY run_id, stream",
                chunk,
            ):
                by_id[row[0]].streams.append(_stream(row[1:]))
    return runs


def _stream(row: tuple[Any, ...]) -> StreamRecord:
    stream, status, rows, bytes_, seconds, error, before, after, detail = row
    return StreamRecord(
        stream,
        status,
        rows,
        bytes_,
        seconds,
        error,
        _unjson(before),
        _unjson(after),
        _unjson(detail) or {},
    )


def get_run(store: StateStore, run_id: str) -> RunRecord:
    """One run with its streams; ``run_id`` may be a unique prefix. Unknown → :class:`StateError`."""
    _ensure(store)
    rows = store.execute(f"SELECT {_RUN_COLS} FROM dcapix_runs WHERE run_id = ?", (run_id,))
    if not rows:
        rows = store.execute(
            f"SELECT {_RUN_COLS} FROM dcapix_runs WHERE run_id LIKE ? ORDER BY started_at DESC LIMIT 3",
            (run_id.replace("%", "").replace("_", "") + "%",),
        )
        if len(rows) > 1:
            raise StateError(
                f"run id {run_id!r} is ambiguous: {', '.join(r[0] for r in rows)}…; give more characters"
            )
    if not rows:
        raise StateError(f"no run {run_id!r} in the history of {store.location}")
    rec = _run(rows[0])
    rec.streams = [
        _stream(r)
        for r in store.execute(
            f"SELECT {_STREAM_COLS} FROM dcapix_run_streams WHERE run_id = ? ORDER BY stream", (rec.run_id,)
        )
    ]
    return rec


def state_snapshot(store: StateStore, pipeline: str, partition: str) -> dict[str, Any]:
    """``{stream: bookmark}`` of a pipeline's state in one partition."""
    try:
        return {e.stream: e.value for e in store.list(pipeline, partition=partition)}
    except StateError as exc:
        log.warning("pipeline %s: state not readable for the run history: %s", pipeline, exc)
        return {}


def _outcome(exc: BaseException | None, metrics: RunMetrics, lock: Any = None) -> tuple[str, str | None]:
    if exc is not None and getattr(lock, "lost", False):
        return "interrupted", getattr(lock, "lost_reason", None) or "lost the run lock"
    if exc is None:
        return ("done" if metrics.status in ("done", "running") else metrics.status), None
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted", one_line(exc) or "interrupted"
    return "failed", one_line(exc)


def streams_from_metrics(
    metrics: RunMetrics, before: Mapping[str, Any], after: Mapping[str, Any]
) -> list[StreamRecord]:
    out = []
    for s in list(metrics.streams.values()):
        d = s.as_dict()
        out.append(
            StreamRecord(
                s.stream,
                s.status,
                s.rows,
                getattr(s, "bytes", None),
                round(s.seconds, 3),
                s.error,
                before.get(s.stream),
                after.get(s.stream),
                {k: v for k, v in d.items() if k not in ("stream", "status", "rows", "error", "bookmark")},
            )
        )
    return out


@contextlib.contextmanager
def recording(
    store: StateStore | None,
    pipeline: str,
    metrics_of: Any,
    *,
    run_id: str,
    trigger: str = "manual",
    mode: str = "in-process",
    partition: str = "",
    scheduled_for: str | None = None,
    attempt: int = 1,
    lock: Any = None,
) -> Iterator[None]:
    """Record the run of the block: ``running`` at the start, then the outcome, per-stream rows,
    bytes, durations and the state before and after. ``metrics_of`` is a :class:`RunMetrics` or a
    callable returning it (the run may replace the object); ``lock`` the run's :class:`~.locks.RunLock`
    (a run stopped because it lost its lock says so). History errors are logged, never raised."""
    if store is None:
        yield
        return
    before: dict[str, Any] = {}
    try:
        before = state_snapshot(store, pipeline, partition)
        begin_run(
            store,
            run_id,
            pipeline,
            trigger=trigger,
            mode=mode,
            scheduled_for=scheduled_for,
            attempt=attempt,
        )
    except StateError as exc:
        log.warning("pipeline %s: run history not recorded: %s", pipeline, exc)
    failure: BaseException | None = None
    try:
        yield
    except BaseException as exc:
        failure = exc
        raise
    finally:
        metrics = metrics_of() if callable(metrics_of) else metrics_of
        try:
            status, error = _outcome(failure, metrics, lock)
            if error is None:
                error = next((s.error for s in metrics.streams.values() if s.error), None)
            after = state_snapshot(store, pipeline, partition)
            finish_run(
                store,
                run_id,
                status=status,
                error=error,
                streams=streams_from_metrics(metrics, before, after),
                rows=metrics.rows,
                detail={k: v for k, v in metrics.as_dict().items() if k != "streams"},
            )
        except StateError as exc:
            log.warning("pipeline %s: run history not recorded: %s", pipeline, exc)
