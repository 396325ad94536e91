"""One partition, read and written by one worker (a thread, a local worker process, or a task on a
dask worker).

:func:`run_partition` does the work with the driver's :class:`Runner`; :func:`partition_task` is
the same from plain values in another process (a dask task, a local worker process): it rebuilds
the pipeline's adapters from the configuration there."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from ...ext.partitions import Partition
    from ...types import StreamSpec
    from ..config import PipelineConfig
    from ..pipeline import Runner

__all__ = ["PartitionResult", "partition_task", "run_partition", "staged_upsert"]


@dataclass
class PartitionResult:
    """What a worker returns for one partition (small and picklable)."""

    index: int
    rows: int = 0
    batches: int = 0
    bytes: int = 0
    checkpoints: int = 0
    bookmark: dict[str, Any] | None = None
    read_seconds: float = 0.0
    write_seconds: float = 0.0


def run_partition(
    runner: Runner,
    spec: StreamSpec,
    part: Partition,
    state: Mapping[str, Any] | None,
    on_checkpoint: Callable[[Partition, dict[str, Any]], None] | None = None,
    on_batch: Callable[[int, int], None] | None = None,
    stop: Any = None,
    token: Callable[[int], str] | None = None,
    stage: str | None = None,
) -> PartitionResult:
    """Read ``part`` from ``state`` and write it to a destination adapter of its own.

    With ``on_checkpoint``, the destination is flushed every ``checkpoint_rows`` rows /
    ``checkpoint_seconds`` and ``on_checkpoint(part, bookmark)`` is called *after* the flush
    returned. ``finish_write`` commits the rest; the caller records the returned bookmark.
    ``on_batch(rows, bytes)`` reports progress; a set ``stop`` event ends the read early (raising
    ``KeyboardInterrupt``, nothing after the last checkpoint is recorded). ``token(n)`` names the
    files written after the ``n``-th checkpoint of this run (destinations with ``name_parts``), so a
    rerun of the partition replaces what a killed one published without recording it. ``stage``:
    write the partition to that stream instead, as a whole (``overwrite``), for the driver to merge
    (single-writer destinations, see ``dc_api_x.adapters.sql.staging``).
    """
    from ..pipeline import _batch_bytes

    chain, dspec = runner.destination_spec(spec)
    load_method = runner.config.destination.load_method
    if stage is not None:
        dspec, load_method = dspec.with_(name=stage), "overwrite"
    every_rows = runner.options.checkpoint_rows or runner.config.checkpoint_rows
    every_secs = runner.options.checkpoint_seconds or runner.config.checkpoint_seconds
    res = PartitionResult(part.index)
    src = runner.make_source()
    dst = None
    try:
        dst = runner.make_destination()
        dst.start_write(dspec, load_method=load_method)
        name_parts = getattr(dst, "name_parts", None) if token is not None else None
        if name_parts is not None:
            assert token is not None
            name_parts(token(0))
        pending: dict[str, Any] | None = None
        last = dict(state) if state is not None else None  # the bookmark recorded last
        since_rows, since_t = 0, time.monotonic()
        batches = iter(src.read_partition(spec, part, state=state))
        while True:
            t0 = time.perf_counter()
            batch = next(batches, None)
            res.read_seconds += time.perf_counter() - t0
            if batch is None:
                break
            if stop is not None and stop.is_set():
                raise KeyboardInterrupt("another partition failed")
            if chain is not None:
                batch = chain.apply(batch)
            n = len(batch)
            t0 = time.perf_counter()
            if n:
                dst.write(dspec, batch)
            res.write_seconds += time.perf_counter() - t0
            size = _batch_bytes(batch)
            res.rows += n
            res.bytes += size
            res.batches += 1
            since_rows += n
            if on_batch is not None:
                on_batch(n, size)
            if batch.bookmark is not None:
                pending = dict(batch.bookmark)
            if pending is not None and pending == last:
                pending = None  # the bookmark did not move (unordered files): nothing to record yet
            if (
                on_checkpoint is not None
                and pending is not None
                and (since_rows >= every_rows or time.monotonic() - since_t >= every_secs)
            ):
                dst.flush(dspec)
                on_checkpoint(part, pending)
                res.bookmark, last, pending = pending, pending, None
                res.checkpoints += 1
                if name_parts is not None:
                    assert token is not None
                    name_parts(token(res.checkpoints))
                since_rows, since_t = 0, time.monotonic()
        t0 = time.perf_counter()
        dst.finish_write(dspec)
        res.write_seconds += time.perf_counter() - t0
        if pending is not None:
            res.bookmark = pending
        return res
    finally:
        src.close()
        if dst is not None:
            dst.close()


def staged_upsert(runner: Runner, dest: Any) -> bool:
    """Whether partitions written by other processes are staged and merged by the driver: an upsert
    into a single-writer destination with ``merge_stage`` (SQL, :mod:`dc_api_x.adapters.sql.staging`)."""
    load_method = runner.config.destination.load_method
    effective = load_method or getattr(getattr(dest, "options", None), "load_method", None) or "append"
    return effective == "upsert" and hasattr(dest, "merge_stage")


def partition_task(
    name: str,
    config: Mapping[str, Any] | PipelineConfig,
    spec: StreamSpec,
    part: dict[str, Any],
    state: Mapping[str, Any] | None,
    token: str | Callable[[int], str],
    checkpoint_rows: int | None,
    stage: str | None = None,
    *,
    checkpoint_seconds: float | None = None,
    on_checkpoint: Callable[[Partition, dict[str, Any]], None] | None = None,
    on_batch: Callable[[int, int], None] | None = None,
    stop: Any = None,
) -> PartitionResult:
    """:func:`run_partition` in another process from plain values: the pipeline ``name``'s
    configuration as JSON-able ``config`` (or the validated :class:`PipelineConfig` itself, as a
    local worker process gets it: used as it is), the partition as :meth:`Partition.as_dict`. ``token`` is
    the name token of every file written (a dask task: no checkpoints) or ``token(n)`` after the
    ``n``-th checkpoint (a local worker process reporting its checkpoints)."""
    from ...ext.partitions import Partition
    from ..config import PipelineConfig
    from ..pipeline import Runner, RunOptions

    if not isinstance(config, PipelineConfig):
        config = PipelineConfig.model_validate(dict(config))
    runner = Runner(
        name,
        config,
        None,
        RunOptions(checkpoint_rows=checkpoint_rows, checkpoint_seconds=checkpoint_seconds),
    )
    tokens: Callable[[int], str] = token if callable(token) else (lambda n: token)
    return run_partition(
        runner, spec, Partition.from_dict(part), state, on_checkpoint, on_batch, stop, tokens, stage=stage
    )
