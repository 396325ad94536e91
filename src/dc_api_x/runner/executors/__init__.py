"""Partitioned, concurrent runs of one stream (``dcapix run --executor local|dask``).

:func:`run_partitioned` is what :meth:`Runner.run_stream` calls first: when the run asks for more
than one worker (``--workers``/``--partitions`` or the source's ``concurrency``/``partitions``)
and the source splits the stream (:meth:`~dc_api_x.ext.adapters.ProtocolAdapter.partitions`), the
partitions run on the chosen executor and the state is merged by
:class:`~dc_api_x.runner.partitions.PartitionPlan`; otherwise it returns ``None`` and the stream
runs serially as before.

* ``local`` (:mod:`.local`): a bounded thread pool in this process; each worker has its own pair of
  adapters, flushes at checkpoints and records its partition's bookmark after each flush. With
  ``--worker-pool processes`` (:mod:`.processes`): worker processes on this machine instead, which
  report each checkpoint to this process and wait until it is recorded.
* ``dask`` (:mod:`.dask`): each partition is a task on a dask.distributed cluster; the worker reads
  and writes its partition and returns counts and its bookmark; this process merges and stores the
  state.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from ...exceptions import ConfigError
from ...logs import redact
from .worker import PartitionResult, partition_task, run_partition

if TYPE_CHECKING:  # pragma: no cover
    from ...types import StreamSpec
    from ..pipeline import Runner
    from ..progress import StreamMetrics

__all__ = [
    "EXECUTORS",
    "POOLS",
    "PartitionResult",
    "partition_settings",
    "partition_task",
    "prestart_workers",
    "run_partition",
    "run_partitioned",
    "worker_pool",
]

log = logging.getLogger("dc_api_x.runner")

#: the ``--executor`` values.
EXECUTORS = ("local", "dask")
#: the ``--worker-pool`` values of the local executor (the first is the default).
POOLS = ("threads", "processes")


def partition_settings(runner: Runner) -> tuple[int, int]:
    """``(workers, max_partitions)`` of a run: ``--workers`` / ``--partitions``, else the source's
    ``concurrency`` / ``partitions`` keys; partitions default to the workers (at least 4 on the
    dask executor)."""
    opts = runner.options
    src = runner.config.source
    workers = opts.workers or getattr(src, "concurrency", None) or 1
    parts = opts.partitions or getattr(src, "partitions", None) or workers
    return int(workers), int(parts)


def worker_pool(runner: Runner) -> str:
    """``threads`` or ``processes``: ``--worker-pool``, else the source's ``worker_pool`` key."""
    pool = runner.options.worker_pool or getattr(runner.config.source, "worker_pool", None) or POOLS[0]
    if pool not in POOLS:
        raise ConfigError(
            f"pipeline {runner.name!r}: worker_pool must be one of {', '.join(POOLS)}, not {pool!r}",
            plugin="runner",
            field="worker_pool",
        )
    return str(pool)


def prestart_workers(name: str, config: Any, options: Any) -> None:
    """Called by ``dcapix run`` as soon as it has read the pipeline: when its partitions will run
    on local worker processes, start their forkserver now, so its imports overlap this process's
    start-up. Anything unexpected here only means the workers start later."""
    src = config.source
    if (options.executor or "local") != "local" or options.limit is not None:
        return
    if (options.worker_pool or getattr(src, "worker_pool", None)) != "processes":
        return
    if max(options.workers or src.concurrency or 1, options.partitions or src.partitions or 1) < 2:
        return
    try:
        from ...plugins import get_plugins
        from .processes import prestart

        adapters = get_plugins().adapters
        dst = config.destination
        prestart(
            adapters.get(src.adapter), adapters.get(dst.adapter), src.adapter_config(), dst.adapter_config()
        )
    except Exception as exc:  # pragma: no cover - the pool starts the server itself later
        log.debug("pipeline %s: no early start of the worker processes: %s", name, exc)


def run_partitioned(runner: Runner, spec: StreamSpec, source: Any, dest: Any) -> StreamMetrics | None:
    """Run ``spec`` in partitions on the run's executor; ``None`` when it runs serially instead."""
    from ..partitions import PLAN_KEY, PartitionPlan

    workers, max_parts = partition_settings(runner)
    executor = runner.options.executor or "local"
    pool = worker_pool(runner) if executor == "local" else None
    if executor == "dask" and not (
        runner.options.partitions or getattr(runner.config.source, "partitions", None)
    ):
        max_parts = max(max_parts, 4)  # a cluster: split even when no count was given
    store = runner.store
    stored_plan = False
    if store is not None:
        if runner.options.full_refresh:
            PartitionPlan.clear(store, runner.name, spec.name)  # a plan in progress no longer applies
        else:
            stored_plan = store.get(runner.name, spec.name, partition=PLAN_KEY) is not None
    if max_parts < 2 and executor == "local" and not stored_plan:
        return None
    if stored_plan:
        # an interrupted partitioned run: finish its plan (even with one worker), or the stream's
        # bookmark would skip what the unfinished partitions have not read yet
        log.info("stream %s: resuming the stored partition plan", spec.name)
    if runner.options.limit is not None and not stored_plan:
        log.info("stream %s: --limit reads serially (no partitions)", spec.name)
        return None
    load_method = runner.config.destination.load_method
    effective = load_method or getattr(getattr(dest, "options", None), "load_method", None) or "append"
    if effective == "overwrite":
        log.info("stream %s: load_method overwrite is committed as a whole; read serially", spec.name)
        return None
    state = None
    if store is not None and not runner.options.full_refresh:
        state = store.get(runner.name, spec.name)
    plan = PartitionPlan.open(
        store,
        runner.name,
        spec,
        source,
        state=state,
        max_partitions=max(max_parts, 1),
        full_refresh=runner.options.full_refresh,
        run_id=runner.options.run_id,
    )
    if plan is None:
        if executor != "local":
            log.warning(
                "pipeline %s: source adapter %r does not split stream %s into partitions; "
                "it runs serially in this process",
                runner.name,
                runner.config.source.adapter,
                spec.name,
            )
        return None
    m = runner.metrics.stream(spec.name)
    m.status, m.started = "running", time.monotonic()
    if runner.progress is not None:
        how = f"({len(plan.partitions)} partitions, {workers} workers, {executor}"
        how += f" {pool}" if pool else ""
        how += ", resuming a plan)" if plan.resumed else ")"
        runner.progress.stream_started(spec.name, how)
    log.info(
        "pipeline %s: stream %s in %d partitions (%d pending) on %s with %d workers",
        runner.name,
        spec.name,
        len(plan.partitions),
        len(plan.pending()),
        f"{executor} ({pool})" if pool else executor,
        workers,
    )
    _, dspec = runner.destination_spec(spec)
    try:
        # the driver prepares the destination once (tables, directories), so workers never race on DDL
        dest.start_write(dspec, load_method=load_method)
        if executor == "dask":
            from .dask import run_dask

            run_dask(runner, spec, plan, m, workers, dest)
        elif pool == "processes":
            from .processes import run_processes

            run_processes(runner, spec, plan, m, workers, source, dest)
        else:
            from .local import run_local

            run_local(runner, spec, plan, m, workers)
        dest.finish_write(dspec)
        m.bookmark = plan.finish(full_refresh=runner.options.full_refresh)
        m.status = "done"
    except BaseException as exc:
        m.status = "failed"
        m.error = redact(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        raise
    finally:
        m.finished = time.monotonic()
        if runner.progress is not None:
            runner.progress.stream_finished(m)
    return m
