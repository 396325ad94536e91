"""Parallel reads of one large PostgreSQL table: ranges of its heap pages COPYed over several ADBC
connections that share one snapshot, delivered strictly in page order.

A full-table read (no replication key, no row limit, a table rather than a query) of a table whose
estimated size (``pg_class.reltuples``) is at least :data:`MIN_ROWS` rows, on PostgreSQL 14 or later,
is split into ranges of heap pages (``pg_relation_size`` / ``block_size``): range ``i`` reads
``ctid >= '(b[i-1],0)' AND ctid < '(b[i],0)'`` (a TID range scan: those pages in order, as a
sequential scan reads them), the first from page 0 and the last with no upper bound, so every row is
in exactly one range. The ``read_connections`` option (default 2) sets how many connections read
ranges at once; 1 turns this off.

* **the same rows as one COPY**: the first connection opens a ``REPEATABLE READ`` transaction and
  exports its snapshot (``pg_export_snapshot()``), the others import it (``SET TRANSACTION SNAPSHOT``),
  as ``pg_dump --jobs`` does, so every range sees the database at one instant;
* **the same order**: range by range in page order, i.e. the heap order a single sequential COPY
  returns;
* **memory**: a worker starts range ``i`` only while ``i`` is less than :data:`LOOKAHEAD` ranges
  past the range being delivered, and each range holds at most :data:`QUEUE_BATCHES` batches not
  yet delivered;
* **why**: one COPY is bound by one server backend (the ``COPY … (FORMAT binary)`` output, ~1.7
  CPU-s per 1M rows of the W2 table) plus one thread receiving it (~1 CPU-s); two connections put
  both on two cores (docs/benchmarks.md).

Anything that does not qualify (a custom query, a partition of a partitioned run, an incremental
read, a small table, PostgreSQL before 14) reads with one COPY as before; so does a read whose
snapshot cannot be shared (logged).
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .lazy import lazy_module
from .pg_direct import qualified

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa
    import sqlalchemy as sa

    from ...ext.sql import SQLRead
else:  # a plain table read does not import it (.pg_direct)
    sa = lazy_module("sqlalchemy")

__all__ = [
    "LOOKAHEAD",
    "MIN_ROWS",
    "QUEUE_BATCHES",
    "RANGE_BYTES",
    "RangePlan",
    "plan_ranges",
    "range_select",
    "read_ranges",
    "table_estimate",
]

log = logging.getLogger("dc_api_x.adapters.sql")

#: tables estimated below this many rows are read with one COPY (the split costs a few round trips)
MIN_ROWS = 100_000
#: table bytes (``pg_relation_size``) per range: small enough that the ranges read ahead of the one
#: being delivered stay a few MiB each, large enough that the per-query cost (~1 ms) is noise
RANGE_BYTES = 8 << 20
#: at most this many ranges (a very large table gets longer ranges)
MAX_RANGES = 4096
#: ranges started past the one being delivered (bounded memory)
LOOKAHEAD = 2
#: record batches of one range waiting to be delivered (a worker blocks past that)
QUEUE_BATCHES = 2

_CATALOG = """
SELECT c.reltuples::float8, pg_relation_size(c.oid)::int8, current_setting('block_size')::int8,
       current_setting('server_version_num')::int8
  FROM pg_class c
 WHERE c.oid = to_regclass($1) AND c.relkind IN ('r', 'm')
"""


@dataclass
class RangePlan:
    """The page ranges of one read: ``bounds`` are the split points, in heap pages
    (``len(bounds) + 1`` ranges)."""

    bounds: list[int]
    estimate: int

    def ranges(self) -> list[tuple[int | None, int | None]]:
        """``(from, to)`` pages of each range (``None``: unbounded)."""
        b = self.bounds
        return [(b[i - 1] if i else None, b[i] if i < len(b) else None) for i in range(len(b) + 1)]


def _splittable(read: SQLRead) -> bool:
    """A full-table read of a table (not a query, not a range of a partitioned run)."""
    src = read.source
    if read.boundary is not None or read.limit is not None or src.query is not None or src.table is None:
        return False
    # a partition's source is a RangeSource (.partitions, which imports SQLAlchemy: not imported for
    # a plain read, and then no source can be one)
    # (getattr: the module may be half imported by another thread, its class not made yet)
    cls = getattr(sys.modules.get("dc_api_x.adapters.sql.partitions"), "RangeSource", None)
    return cls is None or not isinstance(src, cls)


def table_estimate(read: SQLRead, cur: Any) -> tuple[int, int, int, int] | None:
    """``(estimated rows, heap bytes, block size, server version)`` of the table a full-table read
    reads (one catalog query on ``cur``, an ADBC cursor of an autocommit connection), or ``None``:
    not such a read, or no such table."""
    if not _splittable(read):
        return None
    src = read.source
    cur.execute(_CATALOG, parameters=(qualified(str(src.table), src.schema),))
    row = cur.fetchone()
    if row is None:
        return None
    reltuples, size, block, version = row
    estimate = int(reltuples) if reltuples is not None and reltuples >= 0 else int(size or 0) // 128
    return estimate, int(size or 0), int(block), int(version)


def plan_ranges(read: SQLRead, cur: Any, connections: int, sizes: Any = False) -> RangePlan | None:
    """The page ranges of ``read`` (module docstring), or ``None`` to read with one COPY; ``cur`` is
    an ADBC cursor of an autocommit connection (one catalog query, no table scan), ``sizes`` what
    :func:`table_estimate` gave if it was asked already."""
    if connections < 2 or not _splittable(read):
        return None
    if sizes is False:
        sizes = table_estimate(read, cur)
    if sizes is None:
        return None
    estimate, size, block, version = sizes
    if version < 140000:  # TID range scans
        return None
    pages = size // block
    if estimate < MIN_ROWS or pages < 2:
        return None
    n = max(2 * connections, min(MAX_RANGES, -(-int(size) // RANGE_BYTES)))
    bounds: list[int] = []
    for i in range(1, n):
        p = pages * i // n
        if 0 < p < pages and (not bounds or p > bounds[-1]):
            bounds.append(p)
    if not bounds:
        return None
    return RangePlan(bounds, estimate)


def range_select(stmt: Any, start: int | None, stop: int | None) -> Any:
    """``stmt`` (the read's ``SELECT``) restricted to the heap pages ``start <= page < stop`` (a TID
    range scan: the pages are read in order, as a sequential scan reads them)."""
    if start is not None:
        stmt = stmt.where(sa.literal_column(f"ctid >= '({int(start)},0)'::tid"))
    if stop is not None:
        stmt = stmt.where(sa.literal_column(f"ctid < '({int(stop)},0)'::tid"))
    return stmt


class _Stop(Exception):
    """The consumer went away: workers stop at their next batch."""


def read_ranges(
    connect: Callable[[], Any],
    first: Any,
    sqls: list[str],
    connections: int,
    name: str = "dcapix-pg-range",
) -> _Ranges:
    """The record batches of every statement of ``sqls``, in order, read by up to ``connections``
    connections (``first``, already open, and new ones from ``connect``) sharing ``first``'s snapshot.

    The snapshot is exported before this returns (its errors raise here); ``first`` starts the first
    range at once, and each further connection is opened, joins the snapshot and starts claiming
    ranges in its own worker thread (a connection's TCP and SCRAM round trips, ~10 ms on an idle
    machine and more under load, no longer delay the first ``COPY``). A further connection that
    cannot be opened or cannot import the snapshot only lowers the parallelism (logged). The
    iteration raises what a worker raised (the first error; the others stop). ``close()`` stops the
    workers and closes the connections it opened (``first`` is left to the caller, rolled back)."""
    try:
        _begin(first)
        cur = first.cursor()
        try:
            cur.execute("SELECT pg_export_snapshot()")
            snapshot = cur.fetchone()[0]
        finally:
            cur.close()
    except BaseException:
        _end([first])
        raise
    return _Ranges(first, connect, snapshot, sqls, min(connections, len(sqls)), name)


class _Ranges:
    """The workers of :func:`read_ranges` (started here) and the in-order delivery of their batches."""

    def __init__(
        self, first: Any, connect: Callable[[], Any], snapshot: str, sqls: list[str], workers: int, name: str
    ) -> None:
        self.connect, self.snapshot, self.sqls = connect, snapshot, sqls
        #: the open connections, ``first`` first (a worker adds its own once it is open; guarded by
        #: state); every one but ``first`` is closed by close()
        self.conns: list[Any] = [first]
        self.queues: list[queue.Queue[Any]] = [queue.Queue(QUEUE_BATCHES) for _ in sqls]
        self.state = threading.Condition()
        self.delivering = 0  # the range being delivered (guarded by state)
        self.claimed = 0  # the next range to start (guarded by state)
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self.closed = False
        self.threads = [
            threading.Thread(
                target=self._work, args=(first if k == 0 else None,), name=f"{name}-{k}", daemon=True
            )
            for k in range(max(1, workers))
        ]
        for t in self.threads:
            t.start()

    def _join(self) -> Any:
        """A further connection in the first one's snapshot, or ``None`` (logged: fewer connections)."""
        conn = None
        try:
            conn = self.connect()
            _begin(conn)
            cur = conn.cursor()
            try:
                cur.execute(f"SET TRANSACTION SNAPSHOT '{self.snapshot}'")
            finally:
                cur.close()
        except Exception as exc:
            log.info("sql: a further read connection failed (%s); reading with fewer", exc)
            if conn is not None:
                _end([conn], closing_first=True)
            return None
        with self.state:
            self.conns.append(conn)
        return conn

    def _put(self, i: int, item: Any) -> None:
        while True:
            if self.stop.is_set():
                raise _Stop
            try:
                self.queues[i].put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _next_range(self) -> int | None:
        with self.state:
            n = len(self.sqls)
            while not self.stop.is_set() and self.claimed < n and self.claimed > self.delivering + LOOKAHEAD:
                self.state.wait(0.1)
            if self.stop.is_set() or self.claimed >= n:
                return None
            self.claimed += 1
            return self.claimed - 1

    def _work(self, conn: Any) -> None:
        # a further connection: opened here, while the first one reads
        if conn is None and (self.stop.is_set() or (conn := self._join()) is None):
            return
        while (i := self._next_range()) is not None:
            cur = conn.cursor()
            try:
                own = getattr(conn, "record_batches", None)  # our COPY decoder's (.pgcopy)
                if own is not None:
                    batches = own(self.sqls[i])
                else:
                    cur.execute(self.sqls[i])
                    batches = cur.fetch_record_batch()
                for rb in batches:
                    self._put(i, rb)
                self._put(i, None)
            except _Stop:
                return
            except BaseException as exc:
                self.errors.append(exc)
                self.stop.set()
                return
            finally:
                try:
                    cur.close()
                except Exception:  # pragma: no cover - a COPY cut short
                    pass

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        for i, q in enumerate(self.queues):
            with self.state:
                self.delivering = i
                self.state.notify_all()
            while True:
                try:
                    item = q.get(timeout=0.1)
                except queue.Empty:
                    if self.errors:
                        raise self.errors[0] from None
                    continue
                if item is None:
                    break
                yield item
        if self.errors:  # pragma: no cover - a worker failing after its last batch
            raise self.errors[0]

    def close(self) -> None:
        """Stop the workers, roll back, close the connections this reader opened."""
        if self.closed:
            return
        self.closed = True
        self.stop.set()
        for q in self.queues:  # unblock a worker waiting to put
            while True:
                try:
                    q.get_nowait()
                except queue.Empty:
                    break
        for t in self.threads:
            t.join()
        with self.state:
            conns = list(self.conns)
        _end(conns)


def _begin(conn: Any) -> None:
    cur = conn.cursor()
    try:
        cur.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
    finally:
        cur.close()


def _end(conns: list[Any], closing_first: bool = False) -> None:
    """Roll back the snapshot transactions; close every connection but the first (the caller's),
    with ``closing_first`` that one too."""
    for k, conn in enumerate(conns):
        try:
            cur = conn.cursor()
            try:
                cur.execute("ROLLBACK")
            finally:
                cur.close()
        except Exception:
            pass
        if k or closing_first:
            try:
                conn.close()
            except Exception:
                pass
