"""Per-host request pacing shared by every ``http`` adapter of the process.

The partitions of an HTTP stream run on several workers, each with its own adapter and client. A
server's rate limit is per host, not per client, so the pacing is too: :func:`host_limiter` returns
the one :class:`HostLimiter` of a ``scheme://host:port``. Before each request the adapter calls
:meth:`HostLimiter.acquire` with its ``rate_limit`` option (requests per second; ``None``: no
pacing) and, when a response is ``429`` (or ``503``) with ``Retry-After``, :meth:`HostLimiter.pause`:
every worker of that host then waits until the server said it may try again, instead of each one
discovering the limit with a rejected request of its own. The tasks of an
:class:`~dc_api_x.AsyncApiClient` take the same slots (:meth:`HostLimiter.aacquire`).

Across processes: ``dcapix run --worker-pool processes`` calls
:func:`~dc_api_x.hosttable.share_across_processes` in the driver before it starts its workers;
every limiter of a process that inherits the table (:mod:`dc_api_x.hosttable`) keeps its slot and
pause there, so the workers of a run share one rate and one ``Retry-After`` pause per host as
threads do. Workers on other machines (``--executor dask``) pace per worker process.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from ..hosttable import ENV, SharedTable, share_across_processes, shared_table

__all__ = ["ENV", "HostLimiter", "host_limiter", "share_across_processes"]


class HostLimiter:
    """Request slots of one host: at most ``rate`` requests per second, none while paused."""

    def __init__(self, key: str = "", shared: SharedTable | None = None) -> None:
        self.key = key
        self._lock = threading.Lock()
        self._next = 0.0  # monotonic time of the next free slot
        self._paused_until = 0.0
        #: the slot of this host in the table the run's processes share (None: this process only)
        self._shared = shared.slot(key) if shared is not None else None
        self._table = shared
        #: requests that had to wait (for tests and metrics)
        self.waits = 0
        self.sleep = time.sleep

    def reserve(self, rate: float | None = None) -> float:
        """Take this host's next slot without waiting; returns the seconds until it (0: now)."""
        with self._lock:
            shared = self._shared
            if shared is not None:
                delay = shared.reserve(rate)
            else:
                now = time.monotonic()
                at = max(now, self._paused_until)
                if rate:
                    at = max(at, self._next)
                    self._next = at + 1.0 / rate
                delay = at - now
            if delay > 0:
                self.waits += 1
        return max(delay, 0.0)

    def acquire(self, rate: float | None = None) -> float:
        """Wait for this host's next slot; returns the seconds waited."""
        delay = self.reserve(rate)
        if delay > 0:
            self.sleep(delay)
        return delay

    async def aacquire(self, rate: float | None = None) -> float:
        """:meth:`acquire` for async clients: the task awaits its slot (the event loop runs on);
        the slots and pauses are the same as the threads' of the process."""
        delay = self.reserve(rate)
        if delay > 0:
            import anyio

            await anyio.sleep(delay)
        return delay

    def pause(self, seconds: float) -> None:
        """No request to this host for ``seconds`` from now (a ``Retry-After``)."""
        with self._lock:
            until = time.monotonic() + max(seconds, 0.0)
            if self._shared is not None:
                self._shared.pause(until)
            else:
                self._paused_until = max(self._paused_until, until)

    @property
    def paused_for(self) -> float:
        """Seconds until the pause ends (0 when not paused)."""
        until = self._shared.paused_until() if self._shared is not None else self._paused_until
        return max(0.0, until - time.monotonic())


_limiters: dict[str, HostLimiter] = {}
_mutex = threading.Lock()


def host_limiter(url: Any) -> HostLimiter:
    """The limiter of ``url``'s ``scheme://host:port`` (an ``httpx.URL`` or a string)."""
    import httpx

    u = url if isinstance(url, httpx.URL) else httpx.URL(str(url))
    port = u.port or (443 if u.scheme == "https" else 80)
    key = f"{u.scheme}://{u.host}:{port}"
    lim = _limiters.get(key)
    if lim is None or (lim._shared is None and lim._table is not shared_table()):
        with _mutex:  # new, or a table made since (share_across_processes): its slot from now on
            table = shared_table()
            lim = _limiters.get(key)
            if lim is None:
                lim = _limiters[key] = HostLimiter(key, table)
            elif lim._shared is None and table is not None:
                lim._shared, lim._table = table.slot(key), table
    return lim
