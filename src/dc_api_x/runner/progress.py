"""Progress and metrics of a run: a live ``rich`` display on a terminal, plain stderr lines otherwise.

:class:`RunMetrics` collects rows, batches, durations and bookmarks per stream (thread-safe);
:class:`Progress` shows them while the run goes on and :func:`format_summary` renders the final
table (rows per stream, duration, rows/s).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import IO, Any

__all__ = ["Progress", "RunMetrics", "StreamMetrics", "format_summary"]


@dataclass
class StreamMetrics:
    """What happened to one stream. ``rows`` counts the rows written while the stream runs and, once
    it ended, the rows the destination committed: a failed stream's rows written after its last commit
    are moved to ``rows_rolled_back`` (the destination discarded them)."""

    stream: str
    rows: int = 0
    rows_rolled_back: int = 0
    #: size of the data moved: the batches' Arrow buffers (JSON size of batches that never had an
    #: Arrow view); ``None`` where the runner does not see the data (process mode).
    bytes: int | None = 0
    batches: int = 0
    checkpoints: int = 0
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    status: str = "running"  # running | done | failed | skipped
    error: str | None = None
    bookmark: dict[str, Any] | None = None
    read_seconds: float = 0.0
    write_seconds: float = 0.0
    #: what the destination did besides writing (e.g. stale temporary files of a killed run removed).
    notes: list[str] = field(default_factory=list)
    #: requests the source repeated while reading this stream, by reason (sources with
    #: ``read_metrics()``: the HTTP adapter's ``429``, ``5xx``, ``transport``, ``truncated_body``…)
    retries: dict[str, int] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    @property
    def rows_per_second(self) -> float:
        s = self.seconds
        return self.rows / s if s > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "stream": self.stream,
            "status": self.status,
            "rows": self.rows,
            "rows_rolled_back": self.rows_rolled_back,
            "bytes": self.bytes,
            "batches": self.batches,
            "checkpoints": self.checkpoints,
            "seconds": round(self.seconds, 3),
            "rows_per_second": round(self.rows_per_second, 1),
            "bookmark": self.bookmark,
            "error": self.error,
            "read_wait_seconds": round(self.read_seconds, 3),
            "write_seconds": round(self.write_seconds, 3),
            "notes": list(self.notes),
            "retries": sum(self.retries.values()),
            "retries_by_reason": dict(self.retries),
        }


@dataclass
class RunMetrics:
    """Metrics of a whole run."""

    pipeline: str
    mode: str = "in-process"
    streams: dict[str, StreamMetrics] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    status: str = "running"
    #: the adapters' own figures by role (``source``/``destination``), from their ``figures()``
    adapters: dict[str, dict[str, Any]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add_figures(self, role: str, adapter: Any) -> None:
        """Add ``adapter.figures()`` (if it has that method) to :attr:`adapters` under ``role``:
        numbers are summed (several adapters of a role run in parallel), the rest replaced."""
        get = getattr(adapter, "figures", None)
        if get is None:
            return
        try:
            figures = get() or {}
        except Exception:  # figures are informative: never fail a run for them
            return
        if not figures:
            return
        with self._lock:
            _merge(self.adapters.setdefault(role, {}), figures)

    def stream(self, name: str) -> StreamMetrics:
        with self._lock:
            if name not in self.streams:
                self.streams[name] = StreamMetrics(name)
            return self.streams[name]

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.streams.values())

    @property
    def rows_rolled_back(self) -> int:
        return sum(s.rows_rolled_back for s in self.streams.values())

    @property
    def seconds(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    def as_dict(self) -> dict[str, Any]:
        secs = self.seconds
        return {
            "pipeline": self.pipeline,
            "mode": self.mode,
            "status": self.status,
            "rows": self.rows,
            "rows_rolled_back": self.rows_rolled_back,
            "seconds": round(secs, 3),
            "rows_per_second": round(self.rows / secs, 1) if secs > 0 else 0.0,
            "streams": [s.as_dict() for s in self.streams.values()],
            **({"adapters": self.adapters} if self.adapters else {}),
        }


def _merge(into: dict[str, Any], figures: Mapping[str, Any]) -> None:
    for k, v in figures.items():
        old = into.get(k)
        if isinstance(v, Mapping):
            if not isinstance(old, dict):
                old = into[k] = {}
            _merge(old, v)
        elif isinstance(v, (int, float)) and not isinstance(v, bool) and isinstance(old, (int, float)):
            into[k] = round(old + v, 6) if isinstance(old + v, float) else old + v
        else:
            into[k] = v


def format_summary(metrics: RunMetrics) -> str:
    """A plain-text table: one line per stream and a total."""
    lines = [f"pipeline {metrics.pipeline!r} ({metrics.mode}): {metrics.status}"]
    width = max([len(s) for s in metrics.streams] + [6])
    lines.append(f"  {'stream':<{width}}  {'status':<7} {'rows':>12} {'seconds':>9} {'rows/s':>12}")
    for s in metrics.streams.values():
        lines.append(
            f"  {s.stream:<{width}}  {s.status:<7} {s.rows:>12,} {s.seconds:>9.2f} "
            f"{s.rows_per_second:>12,.0f}"
        )
        if s.retries:
            why = ", ".join(f"{k}: {v}" for k, v in sorted(s.retries.items()))
            lines.append(f"  {'':<{width}}  retried {sum(s.retries.values())} request(s) ({why})")
        if s.error:
            lines.append(f"  {'':<{width}}  error: {s.error}")
        if s.rows_rolled_back:
            lines.append(
                f"  {'':<{width}}  rolled back: {s.rows_rolled_back:,} rows written after the last "
                "commit (not in the destination; not counted above)"
            )
        for note in s.notes:
            lines.append(f"  {'':<{width}}  note: {note}")
    secs = metrics.seconds
    rate = metrics.rows / secs if secs > 0 else 0.0
    lines.append(f"  {'total':<{width}}  {'':<7} {metrics.rows:>12,} {secs:>9.2f} {rate:>12,.0f}")
    return "\n".join(lines)


class Progress:
    """Shows :class:`RunMetrics` while a run goes on.

    On a terminal (and ``live`` not false) a ``rich`` live table refreshed 4 times a second; otherwise one log
    line per stream every ``interval`` seconds on ``stream`` (stderr), plus start/finish lines.
    """

    def __init__(
        self,
        metrics: RunMetrics,
        *,
        stream: IO[str] | None = None,
        live: bool | None = None,
        interval: float = 10.0,
        quiet: bool = False,
    ) -> None:
        self.metrics = metrics
        self.out = stream or sys.stderr
        self.quiet = quiet
        isatty = bool(getattr(self.out, "isatty", lambda: False)())
        self.live = (isatty if live is None else live) and not quiet
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._live: Any = None

    def _line(self, text: str) -> None:
        if not self.quiet:
            print(f"[dcapix] {text}", file=self.out, flush=True)

    def _table(self) -> Any:
        from rich.table import Table

        t = Table(title=f"dcapix run {self.metrics.pipeline}", expand=False)
        for col, just in (
            ("stream", "left"),
            ("status", "left"),
            ("rows", "right"),
            ("seconds", "right"),
            ("rows/s", "right"),
        ):
            t.add_column(col, justify=just)  # type: ignore[arg-type]
        for s in list(self.metrics.streams.values()):
            t.add_row(s.stream, s.status, f"{s.rows:,}", f"{s.seconds:.1f}", f"{s.rows_per_second:,.0f}")
        return t

    def start(self) -> Progress:
        if self.live:
            try:
                from rich.console import Console
                from rich.live import Live

                self._live = Live(
                    self._table(),
                    console=Console(file=self.out, force_terminal=True),
                    refresh_per_second=4,
                    transient=True,
                )
                self._live.start()
            except Exception:
                self._live = None
                self.live = False
        self._thread = threading.Thread(target=self._loop, name="dcapix-progress", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        wait = 0.25 if self._live is not None else self.interval
        while not self._stop.wait(wait):
            if self._live is not None:
                self._live.update(self._table())
            else:
                for s in list(self.metrics.streams.values()):
                    if s.status == "running":
                        self._line(
                            f"{s.stream}: {s.rows:,} rows, {s.seconds:.1f}s, {s.rows_per_second:,.0f} rows/s"
                        )

    def stream_started(self, name: str, detail: str = "") -> None:
        if self._live is None:
            self._line(f"{name}: started{(' ' + detail) if detail else ''}")

    def stream_finished(self, s: StreamMetrics) -> None:
        if self._live is None:
            extra = f": {s.error}" if s.error else ""
            if s.rows_rolled_back:
                extra += f" ({s.rows_rolled_back:,} rows rolled back)"
            self._line(
                f"{s.stream}: {s.status}, {s.rows:,} rows in {s.seconds:.2f}s "
                f"({s.rows_per_second:,.0f} rows/s){extra}"
            )

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        if self._live is not None:
            try:
                self._live.update(self._table())
                self._live.stop()
            finally:
                self._live = None

    def __enter__(self) -> Progress:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
