"""``--executor local``: the partitions of a stream on a bounded thread pool in this process.

Threads suffice on one machine: the readers and writers spend their time in code that releases the
GIL (ADBC / psycopg, pyarrow, Parquet encoding, sockets). Each worker records its partition's
bookmark after every flush, so a crash resumes each partition from its last checkpoint.
"""

from __future__ import annotations

import functools
import threading
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any

from .worker import PartitionResult, run_partition

if TYPE_CHECKING:  # pragma: no cover
    from ...types import StreamSpec
    from ..partitions import PartitionPlan
    from ..pipeline import Runner
    from ..progress import StreamMetrics

__all__ = ["run_local"]


def _token(plan: PartitionPlan, part: Any, recorded: int, n: int) -> str:
    """The name token of the files written after the ``n``-th checkpoint of this run of ``part``."""
    return plan.file_token(part, recorded + n)


def run_local(runner: Runner, spec: StreamSpec, plan: PartitionPlan, m: StreamMetrics, workers: int) -> None:
    """Run the plan's pending partitions, ``workers`` at a time; the first error stops the others
    (at their next batch) and is raised once they ended."""
    stop = threading.Event()
    mutex = threading.Lock()
    can_checkpoint = runner.store is not None

    def on_batch(rows: int, size: int) -> None:
        with mutex:
            m.rows += rows
            m.bytes = (m.bytes or 0) + size
            m.batches += 1

    def on_checkpoint(part: Any, bookmark: dict[str, Any]) -> None:
        plan.checkpoint(part, bookmark)
        with mutex:
            m.checkpoints += 1

    def one(part: Any) -> PartitionResult | None:
        if stop.is_set():
            return None
        try:
            res = run_partition(
                runner,
                spec,
                part,
                plan.start_state(part),
                on_checkpoint if can_checkpoint else None,
                on_batch,
                stop,
                functools.partial(_token, plan, part, plan.checkpoints[part.index]),
            )
        except BaseException:
            stop.set()
            raise
        plan.complete(part, res.bookmark)
        with mutex:
            m.read_seconds += res.read_seconds
            m.write_seconds += res.write_seconds
        return res

    pending = plan.pending()
    if not pending:
        return
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix=f"dcapix-part-{spec.name}") as ex:
        futures = [ex.submit(one, p) for p in pending]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        if any(f.exception() is not None for f in done):
            stop.set()
        errors = [f.exception() for f in futures]
    first = next((e for e in errors if e is not None and not isinstance(e, KeyboardInterrupt)), None)
    if first is None:
        first = next((e for e in errors if e is not None), None)
    if first is not None:
        raise first
