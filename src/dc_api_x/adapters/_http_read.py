"""The read side of the HTTP adapter: a stream's pages driven by its paginator, turned into batches.

:func:`read_stream` is :meth:`HttpAdapter.read` (and, with ``params``, the read of one independent
request set, :mod:`dc_api_x.adapters.http_partitions`). Per page it does what the plain
``httpx`` + ``orjson`` loop does — one request, one decode — plus the paginator's bookkeeping; the
records go on unchanged (no per-record copy unless a projection or the incremental filter needs
one). Pages are combined into one :class:`Batch` until it holds :data:`BATCH_ROWS` records or
:data:`BATCH_SECONDS` went by since its first page (``pages_per_batch`` set: exactly that many
pages): the consumer's Arrow conversion and write then run once per ~``BATCH_ROWS`` records
instead of once per page (its fixed cost per column is paid 10-20 times less often).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..arrow import ColumnarBatch, RecordColumns
from ..ext.pagination import MISSING, PageRequest, Paginator
from ..inference import infer_schema as _infer
from ..prefetch import Prefetcher, in_reader_thread
from ..types import Batch, JSONSchema, Record, StreamSpec
from ._http_bookmark import HttpBookmark
from ._http_columns import PageColumns, PageColumnsBatch, PagePlan, page_plan

if TYPE_CHECKING:  # pragma: no cover
    from ..ext.adapters import Response
    from ._http import HttpAdapter
    from ._http_options import StreamOptions

__all__ = ["BATCH_ROWS", "BATCH_SECONDS", "page_loop", "read_stream", "widen_schema"]

log = logging.getLogger("dc_api_x.http")

#: Records per batch when pages are combined (no ``pages_per_batch``).
BATCH_ROWS = 5000
#: A combined batch is handed on once its first page waited this long (slow APIs).
BATCH_SECONDS = 0.25


def _infer_schema(records: Sequence[Mapping[str, Any]]) -> JSONSchema:
    return _infer(records, nested=False, all_nullable=True)


def read_stream(
    adapter: HttpAdapter,
    stream: StreamSpec | str,
    *,
    state: Mapping[str, Any] | None = None,
    columns: Sequence[str] | None = None,
    limit: int | None = None,
    params: Mapping[str, Any] | None = None,
    hold_bookmark: bool = False,
) -> Iterator[Batch]:
    """The batches of ``stream`` (see :meth:`HttpAdapter.read`).

    :param params: query parameters added to the stream's own (one independent request set).
    :param hold_bookmark: no batch carries a bookmark except the last one (an empty batch when
        nothing is left): a caller reading several request sets one after the other must not
        store one set's bookmark while the next is unread.
    """
    s = adapter._stream_options(stream)
    name = s.name
    where = f"adapter {adapter.name!r}, stream {name!r}"
    spec = stream if isinstance(stream, StreamSpec) else None
    rk = spec.replication_key if spec is not None and spec.replication_key else s.replication_key
    pks = tuple(spec.key_properties) if spec is not None and spec.key_properties else tuple(s.primary_keys)
    schema: JSONSchema | None = None
    if spec is not None and spec.schema.get("properties"):
        schema = spec.schema
    else:
        schema = s.json_schema or adapter._schemas.get(name)
    # an inferred schema (no explicit `schema` option) grows with fields first seen later:
    # a field missing from the batch schema would be dropped by the Arrow view
    widen = s.json_schema is None
    cols = list(columns) if columns is not None else None
    if cols is not None and schema is not None:
        props = schema.get("properties") or {}
        schema = {**schema, "properties": {c: props[c] for c in cols if c in props}}

    paginator = adapter._paginator(s.pagination if s.pagination is not None else adapter.options.pagination)
    paginator.reset()
    auth = adapter._default_auth(s)
    base = adapter._first_request(s)
    if params:
        base.params.update(params)

    # -- incremental setup
    tracker = HttpBookmark(rk, pks, where, s.is_sorted) if rk else None
    if tracker is not None:
        tracker.start(state, s.replication_start)
        if s.replication_param and tracker.lower is not MISSING:
            base.params[s.replication_param] = tracker.lower
    sorted_marks = tracker is not None and tracker.sorted and not hold_bookmark

    per_batch = s.pages_per_batch or adapter.options.pages_per_batch
    max_rows = BATCH_ROWS if per_batch is None else None
    remaining = limit
    pending: list[Record] = []
    pages_in = 0
    first_at = 0.0
    held: list[Batch] = []  # unsorted incremental streams: the bookmark goes on the last batch

    transposed: RecordColumns | None = None  # the pending records' columns, page by page
    # pages decoded straight into columns (PagePlan, no dict per record): once one arrived, the
    # batch is a PageColumnsBatch of parts (PageColumns, or the records of a page decoded to dicts)
    parts: list[PageColumns | list[Record]] = []
    part_rows = 0
    plain = tracker is None and cols is None and limit is None
    planner = _planner(paginator, s, lambda: schema) if plain else None

    def emit(
        records: list[Record] | list[PageColumns | list[Record]], of_parts: bool = False
    ) -> Iterator[Batch]:
        if not records:
            return
        batch: Batch
        if of_parts:
            batch = PageColumnsBatch(parts=records, schema=schema)  # type: ignore[arg-type]
        else:
            batch = ColumnarBatch(records=records, columns=transposed, schema=schema)  # type: ignore[arg-type]
        if sorted_marks:
            assert tracker is not None
            batch.bookmark = tracker.bookmark()
            yield batch
        elif tracker is None:
            yield batch
        else:
            if held:
                yield held.pop()
            held.append(batch)

    if remaining is not None and remaining <= 0:
        return
    source = iter(
        pages(
            adapter,
            paginator,
            base,
            auth,
            s,
            where,
            max_records=limit if tracker is None else None,
            planner=planner,
        )
    )
    while True:
        try:
            _response, page = next(source)
        except StopIteration:
            break
        except BaseException:
            # what the pages before the failing one hold is delivered (and, for a sorted
            # incremental stream, its bookmark) before the error, as with one batch per page
            yield from emit(parts, True)
            yield from emit(pending)
            raise
        if type(page) is PageColumns or parts:
            if type(page) is not PageColumns:  # a page the plan did not take: its dicts
                grown = _dict_page(page, schema, widen, where)
                if schema is None and grown is not None:
                    adapter._schemas[name] = grown
                schema = grown
            if not parts:
                if pending:  # the dict pages before the first page of columns
                    parts.append(pending)
                    part_rows = len(pending)
                    pending = []
                else:
                    first_at = time.monotonic()
            if type(page) is PageColumns:
                page.rows, page.json_sample = (), {}  # (for the paginator's page fingerprint: taken)
            parts.append(page)
            part_rows += len(page)
            pages_in += 1
            if max_rows is None:
                full = pages_in >= per_batch
            else:
                full = part_rows >= max_rows or time.monotonic() - first_at >= BATCH_SECONDS
            if full:
                yield from emit(parts, True)
                parts, part_rows, pages_in = [], 0, 0
            continue
        # the limit is applied inside filter(): the bookmark must not count undelivered records
        records = tracker.filter(page, remaining) if tracker is not None else page
        if remaining is not None:
            if len(records) > remaining:
                records = records[:remaining]
            remaining -= len(records)
        if cols is not None:
            records = [{c: r[c] for c in cols if c in r} for r in records]
        if schema is None and records:
            schema = _infer_schema(records)
            if cols is None:  # a projection is not the stream's schema
                adapter._schemas[name] = schema
        elif widen and records and cols is None:
            schema = widen_schema(schema, records, where)
        if pending:
            pending.extend(records)
        else:
            pending = records
            first_at = time.monotonic()
            transposed = RecordColumns() if schema is not None and schema.get("properties") else None
        if transposed is not None and records:
            # transposed now, hot in cache: the Arrow view is built from these lists
            try:
                transposed.add(records, schema["properties"] if schema is not None else ())
            except Exception:  # e.g. a record that is no object: the Arrow view decides
                transposed = None
        pages_in += 1
        done = remaining is not None and remaining <= 0
        if max_rows is None:
            full = pages_in >= per_batch
        else:
            full = len(pending) >= max_rows or time.monotonic() - first_at >= BATCH_SECONDS
        if full or done:
            yield from emit(pending)
            pending, pages_in = [], 0
        if done:
            break
    yield from emit(parts, True)
    yield from emit(pending)
    if held:
        last = held.pop()
        last.bookmark = tracker.bookmark() if tracker is not None else None
        yield last
    elif hold_bookmark and tracker is not None:
        yield Batch(records=[], schema=schema, bookmark=tracker.bookmark())


def pages(
    adapter: HttpAdapter,
    paginator: Paginator[Any],
    base: PageRequest,
    auth: Any,
    s: StreamOptions,
    where: str,
    max_records: int | None = None,
    planner: Callable[[Any], PagePlan | None] | None = None,
) -> Iterator[tuple[Response, list[Record]]]:
    """Drive ``paginator``: yields ``(response, records)`` per page (records cut to max_items).

    With the ``prefetch`` option the pages are fetched by a producer thread, one or two pages
    ahead of the consumer (in order; errors re-raised here), unless the caller already runs in a
    :class:`~dc_api_x.prefetch.Prefetcher` reader thread (the runner's). ``max_records``: stop fetching
    once that many records were produced (a ``limit`` with no filtering).
    """
    if not adapter.options.prefetch or in_reader_thread():
        # already in a read-ahead thread (the runner's reader): no second thread hop per page
        yield from page_loop(adapter, paginator, base, auth, s, where, max_records, planner)
        return
    yield from Prefetcher(
        lambda: page_loop(adapter, paginator, base, auth, s, where, max_records, planner),
        depth=2,
        name=f"dcapix-http-{s.name}",
    )


def page_loop(
    adapter: HttpAdapter,
    paginator: Paginator[Any],
    base: PageRequest,
    auth: Any,
    s: StreamOptions,
    where: str,
    max_records: int | None,
    planner: Callable[[Any], PagePlan | None] | None = None,
) -> Iterator[tuple[Response, list[Record]]]:
    """The pages of ``paginator``. ``planner``: given the first page's body (decoded the ordinary
    way), the :class:`PagePlan` that decodes the next pages into columns (``None``: dicts)."""
    produced = 0
    first: Any = MISSING  # the first page's body, until the planner decided
    plan: PagePlan | None = None
    while not paginator.finished:
        pr = PageRequest(base.method, base.url, dict(base.params), dict(base.headers), base.json)
        paginator.prepare(pr)
        if planner is not None and first is not MISSING:
            plan = planner(first)
        response, records = adapter._fetch_page(pr, auth, s, where, plan)
        if first is MISSING and planner is not None:
            first = response.data
        # (a page's fingerprint is the same whether it was decoded to dicts or into columns)
        records = paginator.clip(records)
        paginator.advance(response, records)
        yield response, records
        produced += len(records)
        if max_records is not None and produced >= max_records:
            return


def _dict_page(
    records: list[Record], schema: JSONSchema | None, widen: bool, where: str
) -> JSONSchema | None:
    """For a page decoded to dicts among pages of columns (no limit, filter nor projection then):
    the schema grown by its new fields when it is inferred."""
    if schema is None and records:
        return _infer_schema(records)
    if widen and records:
        return widen_schema(schema, records, where)
    return schema


def _plain_paginator(paginator: Paginator[Any]) -> bool:
    """Whether ``paginator``'s decisions read the body's keys and the number of records only (a
    page of :class:`PageColumns` is for it a sequence of rows, the body's other keys its ``data``)."""
    from ..pagination import (
        CursorPaginator,
        LinkHeaderPaginator,
        OffsetPaginator,
        PageNumberPaginator,
        SinglePagePaginator,
    )

    known = (CursorPaginator, LinkHeaderPaginator, OffsetPaginator, PageNumberPaginator, SinglePagePaginator)
    return type(paginator) in known and paginator.options.max_items is None


def _planner(
    paginator: Paginator[Any], s: StreamOptions, get_schema: Callable[[], JSONSchema | None]
) -> Callable[[Any], PagePlan | None] | None:
    """The planner of :func:`page_loop` for a stream (``None`` when its pages stay dicts): a plan
    for the current schema (rebuilt when the schema grew), from the first page's body."""
    key = s.records_path
    if not key or "." in key or not _plain_paginator(paginator):
        return None
    o = paginator.options
    paths = [getattr(o, n) for n in type(o).model_fields if n.endswith("_path")]
    made: list[Any] = [None, None]  # schema, plan

    def planner(first: Any) -> PagePlan | None:
        schema = get_schema()
        if schema is None:
            return None
        if made[0] is not schema:
            made[0], made[1] = schema, page_plan(schema, key, first, paths=paths)
        return made[1]  # type: ignore[no-any-return]

    return planner


def widen_schema(schema: JSONSchema | None, records: list[Record], where: str) -> JSONSchema | None:
    """``schema`` plus the fields of ``records`` it does not have (types inferred from them)."""
    if schema is None:
        return None
    props = schema.get("properties") or {}
    if set().union(*records) <= props.keys():  # C-level: ~0.1 us per record
        return schema
    new = _infer_schema([{k: v for k, v in r.items() if k not in props} for r in records])["properties"]
    log.info("%s: new field(s) %s added to the inferred schema", where, ", ".join(sorted(new)))
    return {**schema, "properties": {**props, **new}}
