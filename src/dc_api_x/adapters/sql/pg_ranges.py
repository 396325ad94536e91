"""Parallel reads of one large PostgreSQL table: key ranges COPYed over several ADBC connections that
share one snapshot, delivered strictly in range order.

A full-table read (no replication key, no row limit) of a table whose estimated size
(``pg_class.reltuples``) is at least :data:`MIN_ROWS` rows, with a single integer key column that is
``NOT NULL`` and leads a btree index (a primary key is), is split into ranges of that column
(bounds from ``SELECT min(col), max(col)``, an index look-up): range ``i`` reads
``b[i-1] < col <= b[i]``, the first has no lower bound and the last no upper bound, so every row is in
exactly one range. The ``read_connections`` option (default 2) sets how many connections read ranges
at once; 1 turns this off.

* **the same rows as one COPY**: the first connection opens a ``REPEATABLE READ`` transaction and
  exports its snapshot (``pg_export_snapshot()``), the others import it (``SET TRANSACTION SNAPSHOT``),
  as ``pg_dump --jobs`` does, so every range sees the database at one instant;
* **order**: range by range in key order (within a range, the server's order); a single COPY
  returns the heap order. A full-table read never promised an order;
* **memory**: a worker starts range ``i`` only while ``i`` is less than :data:`LOOKAHEAD` ranges
  past the range being delivered, and each range holds at most :data:`QUEUE_BATCHES` batches not
  yet delivered; ranges are sized to about :data:`RANGE_BYTES` of table per range;
* **why**: one COPY is bound by one server backend (the ``COPY … (FORMAT binary)`` output, ~1.7
  CPU-s per 1M rows of the W2 table) plus one thread decoding it (~1.2 CPU-s); two connections
  put both on two cores (docs/benchmarks.md).

Anything that does not qualify (a custom query, a partition of a partitioned run, an incremental
read, a small table, a composite or non-integer key, a key without index) reads with one COPY as
before; so does a read whose snapshot cannot be shared (logged).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ...arrow import json_types

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

    from ...ext.sql import SQLRead

__all__ = ["LOOKAHEAD", "MIN_ROWS", "QUEUE_BATCHES", "RANGE_BYTES", "RangePlan", "plan_ranges", "read_ranges"]

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
SELECT c.reltuples::float8, pg_relation_size(c.oid)::int8, a.attnotnull,
       EXISTS (SELECT 1 FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
                 JOIN pg_am am ON am.oid = ic.relam
                WHERE i.indrelid = c.oid AND i.indkey[0] = a.attnum AND am.amname = 'btree'
                  AND i.indisvalid AND i.indpred IS NULL)
  FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
 WHERE c.oid = to_regclass($1) AND a.attname = $2 AND NOT a.attisdropped AND c.relkind IN ('r', 'm')
"""


@dataclass
class RangePlan:
    """The ranges of one read: ``bounds`` are the split points (``len(bounds) + 1`` ranges)."""

    column: str
    bounds: list[int]
    estimate: int

    def ranges(self) -> list[tuple[int | None, int | None]]:
        """``(gt, le)`` of each range (``None``: unbounded)."""
        b = self.bounds
        return [(b[i - 1] if i else None, b[i] if i < len(b) else None) for i in range(len(b) + 1)]


def _key_column(read: SQLRead) -> str | None:
    """The column a read could be split on: a full-table read of a table (not a query, not a range of
    a partitioned run) whose single key column is an integer."""
    from .partitions import RangeSource

    src = read.source
    if read.boundary is not None or read.limit is not None or src.query is not None or src.table is None:
        return None
    if isinstance(src, RangeSource):
        return None
    keys = list(read.spec.key_properties)
    if len(keys) != 1 or keys[0] not in read.props:
        return None
    types, _ = json_types(read.props[keys[0]])
    return keys[0] if types == {"integer"} else None


def plan_ranges(read: SQLRead, cur: Any, connections: int) -> RangePlan | None:
    """The ranges of ``read`` (module docstring), or ``None`` to read with one COPY; ``cur`` is an ADBC
    cursor of an autocommit connection (two catalog queries, no table scan)."""
    from sqlalchemy.dialects.postgresql.base import PGDialect

    if connections < 2:
        return None
    col = _key_column(read)
    if col is None:
        return None
    src = read.source
    qualified = PGDialect().identifier_preparer.format_table(sa.table(str(src.table), schema=src.schema))
    cur.execute(_CATALOG, parameters=(qualified, col))
    row = cur.fetchone()
    if row is None:
        return None
    reltuples, size, notnull, indexed = row
    if not (notnull and indexed):
        return None
    estimate = int(reltuples) if reltuples is not None and reltuples >= 0 else int(size or 0) // 128
    if estimate < MIN_ROWS:
        return None
    ident = PGDialect().identifier_preparer
    cur.execute(f"SELECT min({ident.quote(col)}), max({ident.quote(col)}) FROM {qualified}")
    lo, hi = cur.fetchone()
    if lo is None or hi is None:
        return None
    lo, hi = int(lo), int(hi)
    n = max(2 * connections, min(MAX_RANGES, -(-int(size or 0) // RANGE_BYTES)))
    bounds: list[int] = []
    for i in range(1, n):
        p = lo + (hi - lo) * i // n
        if lo <= p < hi and (not bounds or p > bounds[-1]):
            bounds.append(p)
    if not bounds:
        return None
    return RangePlan(col, bounds, estimate)


def range_select(stmt: Any, column: str, gt: int | None, le: int | None) -> Any:
    """``stmt`` (the read's ``SELECT``) restricted to ``gt < column <= le``."""
    col: Any = sa.column(column)
    if gt is not None:
        stmt = stmt.where(col > sa.literal(gt, sa.BigInteger))
    if le is not None:
        stmt = stmt.where(col <= sa.literal(le, sa.BigInteger))
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

    The snapshot is shared before this returns (its errors raise here, with every connection it
    opened closed); a further connection that cannot be opened only lowers the parallelism. The
    iteration raises what a worker raised (the first error; the others stop). ``close()`` stops the
    workers and closes the connections it opened (``first`` is left to the caller, rolled back)."""
    conns = [first]
    try:
        _begin(first)
        cur = first.cursor()
        try:
            cur.execute("SELECT pg_export_snapshot()")
            snapshot = cur.fetchone()[0]
        finally:
            cur.close()
    except BaseException:
        _end(conns)
        raise
    for _ in range(min(connections, len(sqls)) - 1):
        conn = None
        try:
            conn = connect()
            _begin(conn)
            cur = conn.cursor()
            try:
                cur.execute(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
            finally:
                cur.close()
        except Exception as exc:
            log.info("sql: a further read connection failed (%s); reading with %d", exc, len(conns))
            if conn is not None:
                _end([conn], closing_first=True)
            break
        conns.append(conn)
    return _Ranges(conns, sqls, name)


class _Ranges:
    """The workers of :func:`read_ranges` (started here) and the in-order delivery of their batches."""

    def __init__(self, conns: list[Any], sqls: list[str], name: str) -> None:
        self.conns, self.sqls = conns, sqls
        self.queues: list[queue.Queue[Any]] = [queue.Queue(QUEUE_BATCHES) for _ in sqls]
        self.state = threading.Condition()
        self.delivering = 0  # the range being delivered (guarded by state)
        self.claimed = 0  # the next range to start (guarded by state)
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self.closed = False
        self.threads = [
            threading.Thread(target=self._work, args=(c,), name=f"{name}-{k}", daemon=True)
            for k, c in enumerate(conns)
        ]
        for t in self.threads:
            t.start()

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
        while (i := self._next_range()) is not None:
            cur = conn.cursor()
            try:
                cur.execute(self.sqls[i])
                for rb in cur.fetch_record_batch():
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
        _end(self.conns)


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
