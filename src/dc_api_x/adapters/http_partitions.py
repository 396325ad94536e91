"""Partitions of an ``http`` stream (see :mod:`dc_api_x.ext.partitions`): windows of pages, or
independent request sets.

When the next page does not depend on the previous response — ``offset`` pagination with
``total_path``, ``page_number`` pagination with ``total_pages_path`` (or ``total_path`` and
``page_size``) — the first page tells how many pages there are, and the pages are split into
``max_partitions`` consecutive windows, each read by its own worker. Cursor and link-header
pagination (the next request is only known from the previous response) and incremental streams
(the bookmark filters what the server sends) are read by one reader.

A window's pages are combined into batches as the serial read does; they carry no bookmark
(full-table streams have none): a window is committed when it finishes. Offsets advance by the
records received (a server that caps the page size loses nothing); a window stops at its end
offset, on an empty page, or after its last page number.

**Independent request sets** (the stream's ``request_sets``) split any stream, whatever its
paginator (cursor and next-link ones included): a list of query-parameter sets
(``[{"region": "eu"}, {"region": "us"}]``), or a range split of a filter parameter
(``{"param_from": "since", "param_to": "until", "start": "2024-01-01", "end": "2024-07-01",
"parts": 6}``: adjacent windows ``[from, to)`` of dates, date-times or integers). Each set is one
partition, read by its own paginator from the stream's bookmark, incremental streams included;
its batches carry the set's own bookmark. The stream's bookmark stays the one the run started
from until every set finished, then becomes the greatest of the sets' bookmarks (the keys
delivered at that value merged), which is what a serial read of every set gives: a crash at any
moment resumes each set from its own committed bookmark and never skips what a set had not read.
A serial read (one worker) reads the sets in turn, and only its last batch carries the bookmark.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..ext.pagination import PageRequest
from ..ext.partitions import Partition, merge_unordered_bookmarks
from ..inference import infer_schema
from ..prefetch import Prefetcher
from ..types import Batch, Record, StreamSpec

if TYPE_CHECKING:  # pragma: no cover
    from ._http import HttpAdapter

__all__ = [
    "expand_request_sets",
    "http_partitions",
    "read_request_sets",
    "read_window",
]


def _int_at(response: Any, path: str | None) -> int | None:
    from ..pagination import _int_at as int_at

    return int_at(response, path)


def http_partitions(
    adapter: HttpAdapter, stream: StreamSpec, state: Mapping[str, Any] | None, max_partitions: int
) -> list[Partition] | None:
    """The page windows of ``stream`` (module docstring), from one request; ``None`` otherwise."""
    from ..pagination import OffsetPaginator, PageNumberPaginator

    if max_partitions < 2:
        return None
    s = adapter._stream_options(stream)
    if s.request_sets:
        sets = expand_request_sets(s.request_sets, f"adapter {adapter.name!r}, stream {s.name!r}")
        if len(sets) < 2:
            return None
        return [
            Partition(
                i,
                len(sets),
                {"params": p},
                dict(state) if state is not None else None,
                label=", ".join(f"{k}={v}" for k, v in p.items()),
            )
            for i, p in enumerate(sets)
        ]
    if stream.replication_key or s.replication_key:
        return None
    paginator = adapter._paginator(s.pagination if s.pagination is not None else adapter.options.pagination)
    o = paginator.options
    offset = isinstance(paginator, OffsetPaginator) and o.total_path and o.limit_param
    pages_kind = isinstance(paginator, PageNumberPaginator) and (
        o.total_pages_path or (o.total_path and o.page_size and o.page_size_param)
    )
    if not (offset or pages_kind):
        return None
    where = f"adapter {adapter.name!r}, stream {s.name!r}"
    paginator.reset()
    pr = adapter._first_request(s)
    paginator.prepare(pr)
    response, _ = adapter._fetch_page(pr, adapter._default_auth(s), s, where, probe=True)
    windows: list[dict[str, Any]] = []
    if offset:
        total = _int_at(response, o.total_path)
        if total is None:
            return None
        pages = math.ceil(max(total - o.start, 0) / o.limit)
        n = min(max_partitions, pages)
        if n < 2:
            return None
        for i in range(n):
            first = o.start + (i * pages // n) * o.limit
            stop = total if i == n - 1 else o.start + ((i + 1) * pages // n) * o.limit
            windows.append({"offset": first, "stop": stop})
    else:
        count = _int_at(response, o.total_pages_path) if o.total_pages_path else None
        if count is None:
            total = _int_at(response, o.total_path)
            if total is None:
                return None
            count = math.ceil(total / o.page_size)
        n = min(max_partitions, count)
        if n < 2:
            return None
        for i in range(n):
            windows.append(
                {"page": o.start_page + i * count // n, "last": o.start_page + (i + 1) * count // n - 1}
            )
    return [
        Partition(
            i,
            len(windows),
            w,
            None,
            label=(
                f"offset {w['offset']}..{w['stop']}" if "offset" in w else f"pages {w['page']}..{w['last']}"
            ),
        )
        for i, w in enumerate(windows)
    ]


def read_window(
    adapter: HttpAdapter,
    stream: StreamSpec,
    partition: Partition,
    *,
    state: Mapping[str, Any] | None = None,
    columns: Sequence[str] | None = None,
    limit: int | None = None,
) -> Iterator[Batch]:
    """The records of one window (pages combined into batches as :func:`._http_read.read_stream`
    does), or of one request set from ``state``."""
    if "params" in partition.options:  # one independent request set
        from ._http_read import read_stream

        return read_stream(
            adapter,
            stream,
            state=state,
            columns=columns,
            limit=limit,
            params=dict(partition.options["params"]),
        )
    return _read_pages(adapter, stream, partition, columns=columns, limit=limit)


#: a window's pages are fetched ahead (a thread per window) when each of its first two pages kept
#: the window waiting this long (wall time beyond the thread's own CPU time) for its answer; above
#: what the GIL costs a thread worker between two pages of a local server (a few switch intervals)
WAITING_FOR_PREFETCH = 0.005


def prefetch_when_waiting(pages: Iterator[Any], *, name: str) -> Iterator[Any]:
    """``pages``, with the next page fetched in a :class:`~dc_api_x.prefetch.Prefetcher` thread
    while this one is consumed, when the server keeps the window waiting: each of the first two
    pages took :data:`WAITING_FOR_PREFETCH` or more of wall time beyond this thread's CPU time.

    With latency (a remote API) the partitions' requests in flight double, as the serial read's
    prefetch does; a server that answers at once (a local one: W4, 200,000 records in about a
    second) makes the extra thread per window a cost of its own — its thread hops and the GIL
    handed back and forth on every page — so such windows are read in their worker's thread."""
    waited = []
    try:
        for _ in range(2):
            wall, cpu = time.perf_counter(), time.thread_time()
            try:
                page = next(pages)
            except StopIteration:
                return
            waited.append((time.perf_counter() - wall) - (time.thread_time() - cpu))
            yield page
    except GeneratorExit:  # the consumer stopped: so do the pages
        close = getattr(pages, "close", None)
        if close is not None:
            close()
        raise
    if min(waited) >= WAITING_FOR_PREFETCH:
        yield from Prefetcher(lambda: pages, depth=2, name=name)
    else:
        yield from pages


def _read_pages(
    adapter: HttpAdapter,
    stream: StreamSpec,
    partition: Partition,
    *,
    columns: Sequence[str] | None = None,
    limit: int | None = None,
) -> Iterator[Batch]:
    from . import _http_read as rd
    from ._http_columns import PageColumns, PageColumnsBatch

    s = adapter._stream_options(stream)
    where = f"adapter {adapter.name!r}, stream {s.name!r}"
    paginator = adapter._paginator(s.pagination if s.pagination is not None else adapter.options.pagination)
    o = paginator.options
    auth = adapter._default_auth(s)
    base = adapter._first_request(s)
    schema = stream.schema if stream.schema.get("properties") else (s.json_schema or None)
    w = partition.options
    remaining = limit

    # pages decoded straight into columns once the first page showed the body's keys
    # (_http_read.page_loop): a batch is then a PageColumnsBatch of the pages
    planner = rd._planner(paginator, s, lambda: schema) if columns is None and limit is None else None
    first: list[Any] = []

    def page(params: dict[str, Any]) -> list[Record]:
        pr = PageRequest(base.method, base.url, {**base.params, **params}, dict(base.headers), base.json)
        plan = planner(first[0]) if planner is not None and first else None
        response, records = adapter._fetch_page(pr, auth, s, where, plan)
        if not first:
            first.append(response.data)
        return records

    def batch(records: list[Any]) -> Batch:
        nonlocal schema
        if planner is not None:
            if schema is None:
                schema = infer_schema([r for p in records if type(p) is not PageColumns for r in p])
            for p in records:
                if type(p) is PageColumns:
                    p.rows = ()
            return PageColumnsBatch(parts=records, schema=schema)
        if columns is not None:
            records = [{c: r[c] for c in columns if c in r} for r in records]
        if schema is None:
            schema = infer_schema(records)
        return Batch(records=records, schema=schema)

    def pages() -> Iterator[list[Record]]:
        if "offset" in w:
            at, stop = int(w["offset"]), int(w["stop"])
            while at < stop:
                records = page({o.offset_param: at, o.limit_param: o.limit})[: stop - at]
                if not records:
                    return
                at += len(records)
                yield records
        else:
            for number in range(int(w["page"]), int(w["last"]) + 1):
                params: dict[str, Any] = {o.page_param: number}
                if o.page_size_param and o.page_size:
                    params[o.page_size_param] = o.page_size
                records = page(params)
                if not records:
                    return
                yield records

    # the next page is fetched while this one is consumed when the server keeps the window waiting
    source: Any = (
        prefetch_when_waiting(pages(), name=f"dcapix-http-{s.name}-{partition.index}")
        if adapter.options.prefetch
        else pages()
    )
    # pages combined into batches as the serial read does (_http_read.BATCH_ROWS / BATCH_SECONDS)
    per_batch = s.pages_per_batch or adapter.options.pages_per_batch
    pending: list[Any] = []  # records, or with a planner the pages (parts of a PageColumnsBatch)
    rows = 0
    pages_in, first_at = 0, 0.0
    try:
        it = iter(source)
        while True:
            try:
                records = next(it)
            except StopIteration:
                break
            except BaseException:
                if pending:  # the pages before the failing one, as with one batch per page
                    yield batch(pending)
                raise
            if remaining is not None:
                records = records[:remaining]
                remaining -= len(records)
            if not pending:
                first_at = time.monotonic()
            if planner is not None:
                pending.append(records)
            elif pending:
                pending.extend(records)
            else:
                pending = records
            rows += len(records)
            pages_in += 1
            done = remaining is not None and remaining <= 0
            if per_batch:
                full = pages_in >= per_batch
            else:
                full = rows >= rd.BATCH_ROWS or time.monotonic() - first_at >= rd.BATCH_SECONDS
            if (full or done) and pending:
                yield batch(pending)
                pending, pages_in, rows = [], 0, 0
            if done:
                return
        if pending:
            yield batch(pending)
    finally:
        close = getattr(source, "close", None)
        if close is not None:
            close()


# ------------------------------------------------------------------------------ request sets
def _split_bounds(start: Any, end: Any, parts: int, where: str) -> list[Any]:
    """``parts + 1`` ascending bounds from ``start`` to ``end`` (dates, date-times or integers),
    in the form of ``start`` (ISO text stays ISO text)."""
    import datetime as dt

    from ..values import parse_datetime

    if isinstance(start, int) and isinstance(end, int) and not isinstance(start, bool):
        lo, hi = start, end
        if hi <= lo:
            raise ValueError(f"{where}: request_sets: end {end!r} is not after start {start!r}")
        parts = min(parts, hi - lo)
        return [lo + (hi - lo) * i // parts for i in range(parts + 1)]
    text = isinstance(start, str)
    if text and len(start.strip()) <= 10 and len(str(end).strip()) <= 10:
        d0, d1 = dt.date.fromisoformat(start.strip()), dt.date.fromisoformat(str(end).strip())
        days = (d1 - d0).days
        if days <= 0:
            raise ValueError(f"{where}: request_sets: end {end!r} is not after start {start!r}")
        parts = min(parts, days)
        return [(d0 + dt.timedelta(days=days * i // parts)).isoformat() for i in range(parts + 1)]
    t0 = parse_datetime(start) if text else start
    t1 = parse_datetime(end) if isinstance(end, str) else end
    if not isinstance(t0, dt.datetime) or not isinstance(t1, dt.datetime) or t1 <= t0:
        raise ValueError(f"{where}: request_sets: cannot split {start!r} .. {end!r}")
    span = int((t1 - t0).total_seconds())
    parts = max(1, min(parts, span))
    out = [t0 + dt.timedelta(seconds=span * i // parts) for i in range(parts)] + [t1]
    return [b.isoformat() for b in out]


def expand_request_sets(spec: Any, where: str) -> list[dict[str, Any]]:
    """The query-parameter sets of a stream's ``request_sets`` (module docstring), in order."""
    if isinstance(spec, list):
        sets = []
        for i, item in enumerate(spec):
            if not isinstance(item, Mapping) or not item:
                raise ValueError(f"{where}: request_sets[{i}] must be a non-empty mapping of query params")
            sets.append(dict(item))
        return sets
    if isinstance(spec, Mapping):
        missing = [k for k in ("param_from", "param_to", "start", "end") if spec.get(k) is None]
        if missing:
            raise ValueError(f"{where}: request_sets: missing {', '.join(missing)}")
        parts = int(spec.get("parts") or 4)
        bounds = _split_bounds(spec["start"], spec["end"], max(parts, 1), where)
        pf, pt = str(spec["param_from"]), str(spec["param_to"])
        extra = dict(spec.get("params") or {})
        return [{**extra, pf: a, pt: b} for a, b in itertools.pairwise(bounds)]
    raise ValueError(f"{where}: request_sets must be a list of query-param mappings or a range split")


def read_request_sets(
    adapter: HttpAdapter,
    stream: StreamSpec | str,
    *,
    state: Mapping[str, Any] | None = None,
    columns: Sequence[str] | None = None,
    limit: int | None = None,
) -> Iterator[Batch]:
    """The serial read of a stream with ``request_sets``: every set in turn, each from ``state``;
    no batch carries a bookmark but the last one (the sets' bookmarks merged)."""
    from ._http_read import read_stream

    s = adapter._stream_options(stream)
    sets = expand_request_sets(s.request_sets, f"adapter {adapter.name!r}, stream {s.name!r}")
    marks: list[Mapping[str, Any] | None] = []
    remaining = limit
    schema = None
    for params in sets:
        if remaining is not None and remaining <= 0:
            break
        mark: Mapping[str, Any] | None = None
        for batch in read_stream(
            adapter, stream, state=state, columns=columns, limit=remaining, params=params, hold_bookmark=True
        ):
            mark, batch.bookmark = batch.bookmark or mark, None
            schema = batch.schema or schema
            if remaining is not None:
                remaining -= len(batch)
            if len(batch):
                yield batch
        marks.append(mark)
    if remaining is not None and remaining <= 0 and len(marks) < len(sets):
        return  # a limited read stops early: the bookmark stays where it was
    merged = merge_unordered_bookmarks(state, marks, [True] * len(marks))
    if merged is not None and merged != (dict(state) if state is not None else None):
        yield Batch(records=[], schema=schema, bookmark=merged)
