"""``--executor local --worker-pool processes``: the partitions of a stream on worker processes.

Threads share one GIL: a run whose time goes to Python code (decoding the JSON pages of an HTTP
API that answers at once, building records, transforms) gets no faster with more threads, while
worker processes each have an interpreter of their own. They cost a start (the ``forkserver``
imports the runner and the two adapters once; each worker forks from it) and a pipe message per
batch; see docs/scale.md for when they win.

* ``--workers`` processes (never more than the pending partitions) from the ``forkserver`` start
  method (``spawn`` where there is none). ``dcapix run`` starts the forkserver as soon as it has
  read the pipeline (:func:`prestart`), so its imports overlap the driver's own start-up, and
  stops it at exit (the workers' CPU time is then counted in the run's, as for threads). Each
  worker runs partitions one after the other with
  :func:`.worker.partition_task`, the task function of the dask executor: it rebuilds the
  pipeline's adapters from the configuration, reads its partition and writes it.
* A worker sends its progress (rows per batch) and every checkpoint to the driver over its pipe,
  and waits until the driver has recorded the checkpoint in the state store before it reads on: a
  partition checkpoints as on the thread pool (the bookmark recorded only after the destination's
  flush returned, files named per partition and checkpoint). Only the driver touches the state store.
* An upsert into a single-writer destination (SQL, ``merge_stage``) is staged per partition and
  merged by the driver before it records the partition, as on the dask executor.
* A worker that dies (SIGKILL, out of memory): its partition goes to a new worker, from its last
  recorded checkpoint, up to :data:`RETRIES` times; files the dead worker published after that
  checkpoint get the same names again and are replaced. A driver that dies closes the workers'
  lifeline pipes: each worker exits at once, and the next run resumes the stored plan.
* The first failing partition stops the others at their next batch (their recorded checkpoints
  stay) and is raised once they ended; so does an interrupt of the driver.
"""

from __future__ import annotations

import atexit
import functools
import logging
import multiprocessing
import os
import pickle
import re
import signal
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...exceptions import DcApiXError
from ..partitions import file_token
from .worker import PartitionResult, partition_task, staged_upsert

if TYPE_CHECKING:  # pragma: no cover
    from multiprocessing.connection import Connection

    from ...ext.partitions import Partition
    from ...types import StreamSpec
    from ..partitions import PartitionPlan
    from ..pipeline import Runner
    from ..progress import StreamMetrics

__all__ = ["RETRIES", "prestart", "run_processes"]

log = logging.getLogger("dc_api_x.runner")

#: how many times a partition whose worker process died is given to a new worker.
RETRIES = 2
#: seconds the workers get to stop after a failure or an interrupt before they are killed.
STOP_GRACE = 30.0
#: libraries the forkserver imports too when the driver has loaded them for this run (fsspec: only
#: for a file adapter whose path is a URL, see :func:`_preload`).
_HEAVY = (
    "pyarrow",
    "pyarrow.parquet",
    "httpx",
    "orjson",
    "sqlalchemy",
    "psycopg",
    "adbc_driver_postgresql.dbapi",
)
#: what the built-in adapters import only when they start reading or writing (module prefix ->
#: modules): preloaded before the driver has loaded them (``dcapix run`` starts the forkserver
#: early); each costs every worker 0.15-0.35 CPU-s otherwise. ``fsspec`` only for a file adapter
#: whose ``path`` is a URL (a local path never imports it, and it costs the forkserver ~0.1 s).
_LAZY = {
    "dc_api_x.adapters._http": (
        "httpx",
        "httpcore",  # httpx imports its transport when the first client is made
        "msgspec",
        "dc_api_x.factories",
        "dc_api_x.pagination",
        "dc_api_x.adapters._http_read",
        "dc_api_x.adapters._http_wire",  # the page requests' connections (http.client)
        "dc_api_x.adapters._http_columns",
        "dc_api_x.adapters.http_partitions",
        "dateutil.relativedelta",
        "encodings.idna",
    ),
    "dc_api_x.adapters.files": ("pyarrow._compute",),  # the Parquet writer's dictionary choice
    "dc_api_x.adapters.sql": ("sqlalchemy",),
}
#: the forkserver's last preload: builds the adapters' options validators once for every worker.
_WARM = "dc_api_x.runner.executors._warm"
#: the file adapters' modules (their ``path`` option decides whether fsspec is needed).
_FILES = "dc_api_x.adapters.files"


_stop_registered = False


def _context() -> Any:
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def _url_path(options: Mapping[str, Any] | None) -> bool:
    """Whether a file adapter's ``path`` is a URL (fsspec), not a local path."""
    path = (options or {}).get("path")
    return (
        isinstance(path, str)
        and bool(re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", path))
        and not (path.startswith("file://"))
    )


def _preload(
    source_cls: type,
    dest_cls: type,
    source_options: Mapping[str, Any] | None = None,
    dest_options: Mapping[str, Any] | None = None,
) -> list[str]:
    """What the forkserver imports once before forking the workers: the runner, the modules of
    the two adapters, what they import when they start (:data:`_LAZY`) and the heavy libraries this
    process has loaded so far."""
    # importlib.metadata: the plugin set, loaded by each worker after its fork, reads entry points
    # (runner.startup: the collector's settings a worker takes, relax_gc)
    mods = [
        "dc_api_x.runner.executors.worker",
        "dc_api_x.runner.pipeline",
        "dc_api_x.runner.startup",
        "importlib.metadata",
    ]
    for cls, options in ((source_cls, source_options), (dest_cls, dest_options)):
        mods.append(cls.__module__)
        mods += [m for prefix, lazy in _LAZY.items() if cls.__module__.startswith(prefix) for m in lazy]
        if cls.__module__.startswith(_FILES) and _url_path(options):
            mods.append("fsspec")
    mods += [m for m in _HEAVY if m in sys.modules]
    mods.append(_WARM)  # last: the adapters' validators, with everything above imported
    return list(dict.fromkeys(mods))


def _stop_forkserver() -> None:
    """Stop the forkserver and wait for it: it reaped the workers, so their CPU time is counted in
    this process's children (``time dcapix run …`` shows it), and no server outlives the run."""
    from multiprocessing import forkserver

    stop = getattr(getattr(forkserver, "_forkserver", None), "_stop", None)  # not public API
    if stop is not None:
        try:
            stop()
        except OSError:  # pragma: no cover - already gone
            pass


def prestart(
    source_cls: type,
    dest_cls: type,
    source_options: Mapping[str, Any] | None = None,
    dest_options: Mapping[str, Any] | None = None,
) -> None:
    """Start the forkserver now, importing the runner and the adapters while this process is
    still starting up (the first worker forks without waiting for those imports). The options
    (the endpoints' adapter configuration) tell whether a file adapter needs fsspec."""
    global _stop_registered
    from ...hosttable import share_across_processes

    share_across_processes()  # one rate and Retry-After pause per host for all the workers
    ctx = _context()
    if ctx.get_start_method() != "forkserver":
        return
    from multiprocessing import forkserver

    ctx.set_forkserver_preload(_preload(source_cls, dest_cls, source_options, dest_options))
    from ._warm import ENV

    # the forkserver's last preload builds these adapters' options validators (its environment is
    # this process's at its start; the variable is set only for that moment)
    before = os.environ.get(ENV)
    os.environ[ENV] = " ".join(f"{c.__module__}:{c.__qualname__}" for c in (source_cls, dest_cls))
    try:
        forkserver.ensure_running()
    finally:
        if before is None:
            os.environ.pop(ENV, None)
        else:  # pragma: no cover - set by someone else
            os.environ[ENV] = before
    if not _stop_registered:
        atexit.register(_stop_forkserver)
        _stop_registered = True


# ----------------------------------------------------------------------------- the worker process
def _portable(exc: BaseException) -> BaseException:
    """``exc`` if it survives pickling, else a :class:`DcApiXError` with its type and message."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return DcApiXError(f"{type(exc).__name__}: {exc}")
    return exc


def _arrow_pool() -> str | None:
    """The backend of this process's Arrow memory pool (``dcapix run`` picks the C library's
    ``malloc``, ``runner/startup.py``), ``None`` before pyarrow is loaded."""
    # (getattr: pyarrow may be half imported by the thread that imports it ahead)
    pool = getattr(sys.modules.get("pyarrow"), "default_memory_pool", None)
    return None if pool is None else str(pool().backend_name)


def _worker_setup(arrow_pool: str | None) -> None:
    """What a worker process sets before its first partition: the driver's Arrow memory pool (the
    forkserver was started before ``dcapix run`` chose it) and the collector as the run tunes it
    (``runner/startup.py``: what the forkserver imported goes to the permanent generation, the young
    generation is collected less often — a worker holds batches whose objects all survive)."""
    from ..startup import relax_gc

    relax_gc()
    if arrow_pool is not None:
        import pyarrow as pa

        if pa.default_memory_pool().backend_name != arrow_pool:
            make = getattr(pa, f"{arrow_pool}_memory_pool", None)
            if make is not None:
                try:
                    pa.set_memory_pool(make())
                except (NotImplementedError, pa.ArrowException):  # pragma: no cover - not built in
                    pass


def _worker_main(conn: Connection, lifeline: Connection, arrow_pool: str | None = None) -> None:
    """A worker process: run the partitions the driver sends until it sends ``None``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver decides when to stop (over the lifeline)
    _worker_setup(arrow_pool)
    stop = threading.Event()

    def watch() -> None:
        try:
            while True:
                if lifeline.recv() == "stop":
                    stop.set()
        except (EOFError, OSError):
            os._exit(70)  # the driver is gone: nothing written from now on could be recorded

    threading.Thread(target=watch, name="dcapix-lifeline", daemon=True).start()

    def on_checkpoint(part: Any, bookmark: dict[str, Any]) -> None:
        conn.send(("checkpoint", bookmark))
        if conn.recv() != "ack":  # pragma: no cover - the driver only answers "ack"
            raise KeyboardInterrupt("the driver stopped the run")

    def on_batch(rows: int, size: int) -> None:
        conn.send(("batch", rows, size))

    while True:
        try:
            task = conn.recv()
        except EOFError:
            return
        if task is None:
            return
        report = task.pop("report")
        try:
            res = partition_task(
                **task, on_checkpoint=on_checkpoint if report else None, on_batch=on_batch, stop=stop
            )
        except BaseException as exc:
            conn.send(("error", _portable(exc), traceback.format_exc()))
        else:
            conn.send(("done", res))


# ---------------------------------------------------------------------------------------- driver
def _send(conn: Connection, msg: Any) -> None:
    """Send to a worker that may have ended (its sentinel then tells the driver)."""
    try:
        conn.send(msg)
    except OSError:
        pass


@dataclass
class _Worker:
    proc: Any
    conn: Connection
    lifeline: Connection
    part: Partition | None = None
    #: rows reported since the partition's last recorded checkpoint (rolled back if it dies)
    unrecorded: int = 0

    def close(self) -> None:
        for c in (self.conn, self.lifeline):
            try:
                c.close()
            except OSError:  # pragma: no cover
                pass


def run_processes(
    runner: Runner,
    spec: StreamSpec,
    plan: PartitionPlan,
    m: StreamMetrics,
    workers: int,
    source: Any,
    dest: Any,
) -> None:
    """Run the plan's pending partitions on up to ``workers`` worker processes (module docstring)."""
    from multiprocessing.connection import wait

    pending: deque[Partition] = deque(plan.pending())
    if not pending:
        return
    _, dspec = runner.destination_spec(spec)
    staged = staged_upsert(runner, dest)
    report = runner.store is not None and not staged  # a stage is merged as a whole: no checkpoints
    # the validated configuration itself: a worker unpickles it without building pydantic's
    # validators (or this process its serializer), ~0.05-0.08 CPU-s each
    config: Any = runner.config
    try:
        pickle.dumps(config)
    except Exception:  # pragma: no cover - a value pickle refuses: its JSON form, validated there
        config = runner.config.model_dump(mode="json", by_alias=True, exclude_none=True)
    arrow_pool = _arrow_pool()
    ctx = _context()
    cfg = runner.config
    # (a no-op when the forkserver already runs)
    prestart(type(source), type(dest), cfg.source.adapter_config(), cfg.destination.adapter_config())
    deaths: dict[int, int] = {}
    errors: list[BaseException] = []
    pool: list[_Worker] = []
    stopping: float | None = None  # the deadline of the workers' stop

    def start() -> _Worker:
        conn, child = ctx.Pipe()
        life, life_child = ctx.Pipe()
        proc = ctx.Process(
            target=_worker_main,
            args=(child, life_child, arrow_pool),
            name=f"dcapix-part-{spec.name}",
            daemon=True,
        )
        proc.start()
        child.close()
        life_child.close()
        w = _Worker(proc, conn, life)
        pool.append(w)
        return w

    def assign(w: _Worker) -> None:
        part = pending.popleft()
        w.part, w.unrecorded, i = part, 0, part.index
        stage = dest.stage_stream_name(dspec, plan.stage_token(part)) if staged else None
        _send(
            w.conn,
            {
                "name": runner.name,
                "config": config,
                "spec": spec,
                "part": part.as_dict(),
                "state": plan.start_state(part),
                "token": functools.partial(file_token, plan.plan_id, part.index, plan.checkpoints[i]),
                "checkpoint_rows": runner.options.checkpoint_rows,
                "checkpoint_seconds": runner.options.checkpoint_seconds,
                "stage": stage,
                "report": report,
            },
        )

    def stop() -> None:
        nonlocal stopping
        if stopping is None:
            stopping = time.monotonic() + STOP_GRACE
            pending.clear()
            for w in pool:
                _send(w.lifeline, "stop")

    def next_task(w: _Worker) -> None:
        w.part = None
        if pending and stopping is None:
            assign(w)
        else:
            _send(w.conn, None)

    def handle(w: _Worker, msg: tuple[Any, ...]) -> None:
        part = w.part
        assert part is not None
        kind = msg[0]
        if kind == "batch":
            m.rows += msg[1]
            m.bytes = (m.bytes or 0) + msg[2]
            m.batches += 1
            w.unrecorded += msg[1]
        elif kind == "checkpoint":
            plan.checkpoint(part, msg[1])
            m.checkpoints += 1
            w.unrecorded = 0
            _send(w.conn, "ack")
        elif kind == "done":
            res: PartitionResult = msg[1]
            if staged:  # the single writer: merge the partition's stage, then record it
                dest.merge_stage(dspec, dest.stage_stream_name(dspec, plan.stage_token(part)))
            plan.complete(part, res.bookmark)
            m.read_seconds += res.read_seconds
            m.write_seconds += res.write_seconds
            next_task(w)
        else:  # "error"
            log.debug("partition %s failed in worker %s:\n%s", part.key, w.proc.pid, msg[2])
            errors.append(msg[1])
            w.part = None
            stop()
            next_task(w)

    def died(w: _Worker) -> None:
        part = w.part
        assert part is not None
        w.proc.join(5)
        pool.remove(w)
        w.close()
        m.rows -= w.unrecorded
        m.rows_rolled_back += w.unrecorded
        if stopping is not None:
            return
        n = deaths[part.index] = deaths.get(part.index, 0) + 1
        what = f"worker process {w.proc.pid} (partition {part.key}) ended with exit code {w.proc.exitcode}"
        if n > RETRIES:
            errors.append(DcApiXError(f"pipeline {runner.name!r}, stream {spec.name}: {what}, {n} times"))
            stop()
            return
        log.warning("stream %s: %s; a new worker resumes it from its last checkpoint", spec.name, what)
        pending.appendleft(part)
        assign(start())

    try:
        for _ in range(min(max(1, workers), len(pending))):
            assign(start())
        while True:
            busy = [w for w in pool if w.part is not None]
            if not busy:
                break
            timeout = None if stopping is None else max(0.0, stopping - time.monotonic())
            ready = set(wait([w.conn for w in busy] + [w.proc.sentinel for w in busy], timeout))
            if not ready:
                break  # the grace period is over: the workers still busy are ended below
            for w in busy:
                if w.conn not in ready and w.proc.sentinel not in ready:
                    continue
                while w.part is not None:
                    try:
                        if not w.conn.poll():
                            break
                        msg = w.conn.recv()
                    except (EOFError, OSError):  # the worker ended: its sentinel tells
                        break
                    handle(w, msg)
                if w.part is not None and not w.proc.is_alive():
                    died(w)
    finally:
        # an interrupt or a failure of the driver ends here too: closing the lifelines ends the
        # workers at once (what they recorded stays recorded)
        for w in pool:
            if w.part is None:
                _send(w.conn, None)
            w.close()
        for w in pool:
            w.proc.join(5)
            if w.proc.is_alive():  # pragma: no cover - a worker stuck in a call
                w.proc.kill()
                w.proc.join(5)
    first = next((e for e in errors if not isinstance(e, KeyboardInterrupt)), errors[0] if errors else None)
    if first is not None:
        raise first
