"""Partitions of an ``http`` stream (see :mod:`dc_api_x.ext.partitions`): windows of pages.

When the next page does not depend on the previous response — ``offset`` pagination with
``total_path``, ``page_number`` pagination with ``total_pages_path`` (or ``total_path`` and
``page_size``) — the first page tells how many pages there are, and the pages are split into
``max_partitions`` consecutive windows, each read by its own worker. Cursor and link-header
pagination (the next request is only known from the previous response) and incremental streams
(the bookmark filters what the server sends) are read by one reader.

A window's batches carry no bookmark (full-table streams have none): a window is committed when it
finishes. Offsets advance by the records received (a server that caps the page size loses nothing);
a window stops at its end offset, on an empty page, or after its last page number.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..ext.pagination import PageRequest
from ..ext.partitions import Partition
from ..inference import infer_schema
from ..prefetch import Prefetcher
from ..types import Batch, Record, StreamSpec

if TYPE_CHECKING:  # pragma: no cover
    from ._http import HttpAdapter

__all__ = ["http_partitions", "read_window"]


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
    response, _ = adapter._fetch_page(pr, adapter._default_auth(s), s, where)
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
    columns: Sequence[str] | None = None,
    limit: int | None = None,
) -> Iterator[Batch]:
    """The records of one window, one batch per page."""
    s = adapter._stream_options(stream)
    where = f"adapter {adapter.name!r}, stream {s.name!r}"
    paginator = adapter._paginator(s.pagination if s.pagination is not None else adapter.options.pagination)
    o = paginator.options
    auth = adapter._default_auth(s)
    base = adapter._first_request(s)
    schema = stream.schema if stream.schema.get("properties") else (s.json_schema or None)
    w = partition.options
    remaining = limit

    def page(params: dict[str, Any]) -> list[Record]:
        pr = PageRequest(base.method, base.url, {**base.params, **params}, dict(base.headers), base.json)
        _, records = adapter._fetch_page(pr, auth, s, where)
        return records

    def batch(records: list[Record]) -> Batch:
        nonlocal schema
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

    # the next page is fetched while this one is consumed, as the serial read does
    source: Any = (
        Prefetcher(pages, depth=2, name=f"dcapix-http-{s.name}-{partition.index}")
        if adapter.options.prefetch
        else pages()
    )
    try:
        for records in source:
            if remaining is not None:
                records = records[:remaining]
                remaining -= len(records)
            if records:
                yield batch(records)
            if remaining is not None and remaining <= 0:
                return
    finally:
        close = getattr(source, "close", None)
        if close is not None:
            close()
