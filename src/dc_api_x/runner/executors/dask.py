"""``--executor dask``: the partitions of a stream as tasks on a dask.distributed cluster.

The driver (this process) plans the partitions, stores the plan, and submits one task per pending
partition to the scheduler at ``--scheduler ADDRESS`` (without it, a ``distributed.LocalCluster``
of ``--workers`` processes is started for the run). A task rebuilds the pipeline's adapters from
its configuration on the worker, reads its partition and writes it to the destination, and returns
a :class:`~.worker.PartitionResult` (counts and the partition's last bookmark). The driver records
each result in the state store as it arrives (:meth:`PartitionPlan.complete`) and, once all are
in, stores the merged bookmark: workers never touch the state store.

Single-writer destinations: an upsert into a SQL table is not done by the workers; each writes its
partition into a stage table of its own and the driver merges it in one transaction before it
records the partition (:mod:`dc_api_x.adapters.sql.staging`).

HTTP rate limits: the workers of the ``LocalCluster`` a run starts share one ``rate_limit`` and one
``Retry-After`` pause per host with the driver (:mod:`dc_api_x.hosttable`, as ``--worker-pool
processes``); the workers of a cluster at ``--scheduler ADDRESS`` pace per worker process.

A worker killed mid-task: the scheduler runs the task again on another worker (up to its
``allowed-failures``); the partition's files are named by plan, partition and checkpoint
(``FileAdapter.name_parts``), so the rerun replaces what the killed worker published, and SQL
upserts are idempotent. If the run itself dies, the next run resumes the stored plan.

``distributed`` is imported only here, when a run asks for this executor (the ``dask`` extra).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ...exceptions import ConfigError
from .worker import PartitionResult, partition_task, staged_upsert

if TYPE_CHECKING:  # pragma: no cover
    from ...types import StreamSpec
    from ..partitions import PartitionPlan
    from ..pipeline import Runner
    from ..progress import StreamMetrics

__all__ = ["dask_partition_task", "run_dask"]


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise ConfigError(
            "--executor dask needs dask.distributed: pip install 'dc-api-x[dask]'",
            plugin="runner",
            field="executor",
        ) from None
    return distributed


#: one partition on a dask worker (only plain values travel): the shared task function.
dask_partition_task = partition_task


def _client(runner: Runner, workers: int) -> tuple[Any, Any]:
    distributed = _import_distributed()
    address = runner.options.scheduler
    if address:
        try:
            return distributed.Client(address, timeout="30s"), None
        except (OSError, TimeoutError) as exc:
            raise ConfigError(
                f"pipeline {runner.name!r}: cannot reach the dask scheduler at {address}: {exc}",
                plugin="runner",
                field="scheduler",
            ) from None
    from ...hosttable import share_across_processes

    share_across_processes()  # the cluster's worker processes start from this one: one limit per host
    cluster = distributed.LocalCluster(n_workers=max(1, workers), threads_per_worker=1, processes=True)
    return distributed.Client(cluster), cluster


def run_dask(
    runner: Runner, spec: StreamSpec, plan: PartitionPlan, m: StreamMetrics, workers: int, dest: Any
) -> None:
    """Run the plan's pending partitions as dask tasks; record each result as it arrives. An upsert
    into a destination with ``merge_stage`` (SQL) is staged per partition and merged here."""
    pending = plan.pending()
    if not pending:
        return
    _, dspec = runner.destination_spec(spec)
    staged = staged_upsert(runner, dest)
    distributed = _import_distributed()
    client, cluster = _client(runner, workers)
    config = runner.config.model_dump(mode="json", by_alias=True, exclude_none=True)
    every = runner.options.checkpoint_rows
    try:
        futures = {}
        for part in pending:
            fut = client.submit(
                dask_partition_task,
                runner.name,
                config,
                spec,
                part.as_dict(),
                plan.start_state(part),
                plan.file_token(part),
                every,
                dest.stage_stream_name(dspec, plan.stage_token(part)) if staged else None,
                key=f"dcapix-{runner.name}-{spec.name}-{plan.plan_id}-{part.index}-{time.monotonic_ns()}",
                pure=False,
            )
            futures[fut] = part
        try:
            for fut in distributed.as_completed(list(futures)):
                part = futures[fut]
                res: PartitionResult = fut.result()
                if staged:  # the single writer: merge the partition's stage, then record it
                    dest.merge_stage(dspec, dest.stage_stream_name(dspec, plan.stage_token(part)))
                plan.complete(part, res.bookmark)
                m.rows += res.rows
                m.bytes = (m.bytes or 0) + res.bytes
                m.batches += res.batches
                m.read_seconds += res.read_seconds
                m.write_seconds += res.write_seconds
        except BaseException:
            client.cancel(list(futures))
            raise
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
