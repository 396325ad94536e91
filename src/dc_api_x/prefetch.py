"""Read-ahead in a thread: :class:`Prefetcher` (bottom layer: the standard library only).

Used where producing an item waits on I/O that releases the GIL while the consumer works on the
previous one: the runner's reader (batches read while the previous batch is written) and the HTTP
adapter's ``prefetch`` option (pages fetched while the previous page is converted).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["Prefetcher", "in_reader_thread"]

log = logging.getLogger(__name__)

_END = object()
_local = threading.local()


def in_reader_thread() -> bool:
    """Whether the caller runs in a :class:`Prefetcher`'s reader thread: its items are already
    produced ahead of their consumer, so a second read-ahead thread inside would only add a thread
    hop per item (the HTTP adapter then fetches its pages in this thread)."""
    return bool(getattr(_local, "reader", False))


class Prefetcher:
    """Runs an iterator in a reader thread, at most ``depth`` items ahead of the consumer.

    The reader takes a permit *before* producing an item and the consumer gives it back when it
    takes the item, so with ``depth=1`` the reader produces item N+1 while item N is consumed and
    no more than two items are alive at once (a bounded queue would hold a third). ``depth`` 0
    means no thread (items are produced on demand in the caller's thread). ``make`` is called in
    the reader thread; the items come out in order, and an error of the reader is raised in the
    consumer where the item it failed to produce would have been. Stopping the iteration (or
    :meth:`close`) stops the reader and closes the iterator. ``wait_seconds`` is the time the
    consumer spent waiting for items. With a reader thread, ``on_idle`` (if given) is called in the
    consumer's thread every ``idle_seconds`` the consumer waits for an item (e.g. the runner's
    checkpoint of what it already wrote while a slow source produces the next batch); its time is
    not counted in ``wait_seconds`` and its errors are raised to the consumer.
    """

    def __init__(
        self,
        make: Callable[[], Iterator[Any]],
        depth: int,
        name: str = "dcapix-reader",
        *,
        on_idle: Callable[[], None] | None = None,
        idle_seconds: float = 1.0,
    ) -> None:
        self._make = make
        self._on_idle = on_idle
        self._idle_seconds = idle_seconds
        self.depth = depth
        self.wait_seconds = 0.0
        self._q: queue.Queue[Any] = queue.Queue()
        self._permits = threading.Semaphore(max(depth, 1))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._it: Iterator[Any] | None = None
        self._name = name

    def _run(self) -> None:
        it = None
        _local.reader = True
        try:
            it = self._make()
            while True:
                while not self._permits.acquire(timeout=0.2):
                    if self._stop.is_set():
                        return
                if self._stop.is_set():
                    return
                try:
                    item = next(it)
                except StopIteration:
                    break
                self._q.put(item)
            self._q.put(_END)
        except BaseException as exc:
            self._q.put(exc)
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:  # pragma: no cover - best effort
                    log.debug("closing the reader failed", exc_info=True)

    def __iter__(self) -> Iterator[Any]:
        try:
            if self.depth <= 0:
                self._it = self._make()
                while True:
                    t0 = time.perf_counter()
                    try:
                        item = next(self._it)
                    except StopIteration:
                        return
                    finally:
                        self.wait_seconds += time.perf_counter() - t0
                    yield item
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()
            while True:
                t0 = time.perf_counter()
                if self._on_idle is None:
                    item = self._q.get()
                else:
                    while True:
                        try:
                            item = self._q.get(timeout=self._idle_seconds)
                            break
                        except queue.Empty:
                            t1 = time.perf_counter()
                            self._on_idle()
                            t0 += time.perf_counter() - t1  # (not waiting for the source)
                self.wait_seconds += time.perf_counter() - t0
                self._permits.release()
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self.close()

    def close(self) -> None:
        """Stop the reader (waiting for the item it is producing) and close the iterator."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            while True:  # drop what the reader produced and nobody will consume
                try:
                    self._q.get_nowait()
                except queue.Empty:
                    break
        elif self._it is not None:
            close = getattr(self._it, "close", None)
            if close is not None:
                close()
