"""``tap-dcapix`` with ``concurrency`` > 1: a stream's partitions read by a thread pool and emitted
interleaved, each STATE covering only what was fully emitted.

The partitions come from the adapter (:meth:`~dc_api_x.ext.adapters.ProtocolAdapter.partitions`,
see :mod:`dc_api_x.ext.partitions`); each worker reads one with an adapter of its own and hands its
batches to the emitting thread through a bounded queue. Every batch leaves here carrying the
stream bookmark *after* it is emitted: the merge
(:meth:`~dc_api_x.ext.adapters.ProtocolAdapter.merge_partition_bookmarks`) of the partitions'
bookmarks of batches already handed over, with a partition counted as finished only once its last
batch was. So a STATE the tap writes after a batch never covers a record that was not written
before it; a restart from any STATE re-reads (at worst) what other partitions had emitted beyond it,
and loses nothing.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from dc_api_x.types import Batch, StreamSpec

__all__ = ["partitioned_batches"]

_END = object()


def partitioned_batches(
    adapter: Any,
    make_adapter: Callable[[], Any],
    spec: StreamSpec,
    state: Mapping[str, Any] | None,
    workers: int,
    max_partitions: int,
    columns: Sequence[str] | None = None,
) -> Iterator[Batch] | None:
    """The stream's batches from its partitions, interleaved (module docstring); ``None`` when the
    adapter does not split the stream (read it serially)."""
    parts = adapter.partitions(spec, state=state, max_partitions=max_partitions)
    if not parts:
        return None
    return _interleave(adapter, make_adapter, spec, state, list(parts), max(1, workers), columns)


def _interleave(
    adapter: Any,
    make_adapter: Callable[[], Any],
    spec: StreamSpec,
    state: Mapping[str, Any] | None,
    parts: list[Any],
    workers: int,
    columns: Sequence[str] | None,
) -> Iterator[Batch]:
    n = len(parts)
    q: queue.Queue[tuple[int, Any]] = queue.Queue(maxsize=2 * workers)
    stop = threading.Event()
    bookmarks: list[dict[str, Any] | None] = [None] * n
    done = [False] * n
    base = dict(state) if state is not None else None

    def put(item: tuple[int, Any]) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def work(part: Any) -> None:
        if stop.is_set():
            return
        a = make_adapter()
        try:
            for batch in a.read_partition(spec, part, state=part.state, columns=columns):
                if not put((part.index, batch)):
                    return
            put((part.index, _END))
        except BaseException as exc:
            put((part.index, exc))
        finally:
            a.close()

    def merged() -> dict[str, Any] | None:
        return adapter.merge_partition_bookmarks(spec, base, bookmarks, done)  # type: ignore[no-any-return]

    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"tap-dcapix-{spec.name}")
    try:
        for p in parts:
            pool.submit(work, p)
        last = base
        remaining = n
        while remaining:
            i, item = q.get()
            if item is _END:
                done[i] = True
                remaining -= 1
                now = merged()
                if now is not None and now != last:
                    last = now
                    yield Batch(records=[], schema=spec.schema, bookmark=now)  # a STATE, no record
                continue
            if isinstance(item, BaseException):
                raise item
            if item.bookmark is not None:
                bookmarks[i] = dict(item.bookmark)
            now = merged()
            item.bookmark = now if now != last else None
            if now is not None:
                last = now
            yield item
    finally:
        stop.set()
        while True:  # unblock workers waiting to hand over a batch
            try:
                q.get_nowait()
            except queue.Empty:
                break
        pool.shutdown(wait=True, cancel_futures=True)
