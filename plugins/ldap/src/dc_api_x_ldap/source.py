"""Reading in the ``ldap`` adapter: a stream's entries page by page with the simple paged results
control (RFC 2696), converted to Arrow column-wise in groups of pages (:data:`GROUP_ENTRIES`). The
native reader (:mod:`.native`, ``reader: auto|native``) decodes the entries in C straight into
column buffers; through a backend (``reader: backend``, or where the native reader cannot serve)
entries come as Python objects. The server prepares the next page while this one is converted:
the native reader and python-ldap send its request before the page is yielded
(``paged_search(ahead=True)``), the other backends fetch in a thread (:class:`PageFetcher`).
Incremental streams use ``modifyTimestamp`` (or ``entryCSN``) with the toolkit's boundary bookmark
(:class:`dc_api_x.bookmarks.BoundaryBookmark`), bounded by the server's clock when the read began.
"""

from __future__ import annotations

import datetime as _dt
import gc
import logging
import queue
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from dc_api_x.exceptions import SchemaError
from dc_api_x.types import Batch, StreamSpec

from .backends import LdapError, first
from .base import LdapBase
from .schema import (
    ValueProblem,
    column_index,
    column_of,
    format_generalized_time,
    page_to_arrow,
    parse_generalized_time,
)

__all__ = ["LdapSource", "PageFetcher"]

log = logging.getLogger("dc_api_x_ldap")


class LdapSource(LdapBase):
    """:meth:`read` and :meth:`server_time`."""

    def server_time(self) -> _dt.datetime:
        """The server's clock now (cn=Monitor's current time, or the root DSE's ``currentTime``);
        without either, this machine's clock minus ``clock_skew``."""
        for base, attr in (("cn=Current,cn=Time,cn=Monitor", "monitorTimestamp"), ("", "currentTime")):
            try:
                found = self.reader.search(base, "base", "(objectClass=*)", [attr])
            except (LdapError, NotImplementedError):
                continue
            text = first(found[0][1], attr) if found else None
            if text:
                try:
                    return parse_generalized_time(text)
                except ValueError:
                    continue
        now = _dt.datetime.now(_dt.timezone.utc) - _dt.timedelta(seconds=self.options.clock_skew)
        return now.replace(microsecond=0)

    def _start_search(self, stream: StreamSpec) -> tuple[Any, Any, Any] | None:
        """Begin the read :meth:`read` would send for ``stream`` with no state, no column
        selection and no limit (:mod:`.ahead`): ``(key, pages, server time)``, the pages received
        in a thread (at most ``ahead.AHEAD_GROUPS`` groups ahead), or ``None`` without the native
        reader."""
        native = self.native()
        if native is None:
            return None
        names, search, controls = _search_plan(stream, None, None, self.options, native=True)
        now = self.server_time() if stream.replication_key is not None else None
        drop = _dropping(search, stream)
        resolve = _resolver(names, self._aliases(), drop)

        def receive() -> Iterator[Any]:
            return native.paged_columns(  # type: ignore[no-any-return]
                *search, ncols=_ncols(names, drop), resolve=resolve, group=GROUP_ENTRIES, controls=controls
            )

        from .ahead import AHEAD_GROUPS

        return (search, tuple(controls), tuple(names)), PageFetcher(receive, AHEAD_GROUPS), now

    def read(
        self,
        stream: StreamSpec,
        *,
        state: Mapping[str, Any] | None = None,
        columns: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> Iterator[Batch]:
        """The stream's entries, one batch per page (Arrow, converted column-wise).

        Incremental streams: the search adds ``(rk>=bookmark)``; entries at the bookmark value
        whose DN is listed in ``keys_at_value`` are dropped (the toolkit's boundary semantics).
        A paged search returns entries in the server's order, not by ``rk``, so the new bookmark is
        carried by the **last** batch only; and it only covers entries changed before the read
        began (by the server's clock): an entry changed while the read runs is read again by the
        next run rather than possibly skipped.
        """
        o = dict(stream.options)
        if "base" not in o:
            stream = self.get_stream(stream.name)
            o = dict(stream.options)
        props = stream.properties
        rk = stream.replication_key
        bm = None
        start_filter = None
        if rk is not None:
            from dc_api_x.bookmarks import BoundaryBookmark

            try:
                bm = BoundaryBookmark.from_state(
                    state, rk, ("dn",), stream=stream.name, convert=lambda v: _bookmark_value(rk, v)
                )
            except ValueError as exc:
                raise self.error(f"bad bookmark in state: {exc}", stream=stream.name) from None
            if bm.start_value is not None:
                start_filter = f"({rk}>={_filter_value(rk, bm.start_value)})"
        native_read = limit is None and self.options.reader != "backend"
        names, search, controls = _search_plan(
            stream, columns, start_filter, self.options, native=native_read
        )
        # the search begun ahead (ahead.py) when it is this very one, else it is cancelled
        ahead = self._claim_ahead((search, tuple(controls), tuple(names)) if limit is None else None)
        upper: Any = None
        if rk is not None:
            now = ahead[1] if ahead is not None and ahead[1] is not None else self.server_time()
            upper = now if rk == "modifyTimestamp" else now.strftime("%Y%m%d%H%M%S.%fZ")
        schema = {"type": "object", "properties": {n: props[n] for n in names}}
        from dc_api_x.arrow import jsonschema_to_arrow

        arrow_schema = jsonschema_to_arrow(schema)
        aliases = self._aliases()
        # the next page is fetched (and the server works on it) while this one is converted;
        # with a limit, no page beyond it is asked for
        pages: Any
        cache: dict[str, Any] = {}

        def convert(page: Any) -> Any:
            return page_to_arrow(page, schema, arrow_schema, aliases, cache)

        native = self.native() if limit is None and ahead is None else None
        if ahead is None and native is None and native_read and _dropping(search, stream):
            # not read natively after all (no extension, ldaps:// …): the backend gets the list
            names, search, controls = _search_plan(stream, columns, start_filter, self.options)
        if ahead is not None or native is not None:  # the C decoder over the reader's own connection
            from .native import group_to_table

            drop = _dropping(search, stream)
            if ahead is not None:
                pages = ahead[0]
            else:
                assert native is not None
                resolve = _resolver(names, aliases, drop)

                def receive() -> Iterator[Any]:
                    return native.paged_columns(  # type: ignore[no-any-return,union-attr]
                        *search,
                        ncols=_ncols(names, drop),
                        resolve=resolve,
                        group=GROUP_ENTRIES,
                        controls=controls,
                    )

                # received in a thread of its own when RECEIVE_AHEAD: the C reader goes on asking
                # for pages while a group is converted (else the server idles meanwhile)
                pages = PageFetcher(receive, RECEIVE_AHEAD) if RECEIVE_AHEAD else receive()

            def convert(page: Any) -> Any:
                if drop:  # (the attributes outside the stream: not converted)
                    page = (*page[:3], page[3][:-1])
                return group_to_table(page, schema, arrow_schema)

        elif limit is not None:
            pages = self.backend.paged_search(*search, controls=controls)
        elif self.backend.pages_ahead:  # no thread: the server works on page N+1 while N converts
            pages = _PageGroups(
                self.backend.paged_search(*search, controls=controls, ahead=True), GROUP_ENTRIES
            )
        else:
            # up to a group's pages ahead, so the search goes on while a group is converted
            ahead_pages = max(1, -(-GROUP_ENTRIES // search[4]))
            pages = PageFetcher(lambda: self.backend.paged_search(*search, controls=controls), ahead_pages)
            pages = _PageGroups(pages, GROUP_ENTRIES)
        held: Batch | None = None
        top = _Top(rk, upper) if bm is not None and rk is not None else None
        left = limit
        gc_was_on = _pause_gc()
        try:
            while True:
                try:
                    page = next(pages)
                except StopIteration:
                    break
                except LdapError as exc:
                    raise self._fail(exc, stream=stream.name) from None
                except ValueProblem as exc:  # an attribute outside the schema (native reader)
                    raise _value_error(exc, self.name, stream.name) from None
                try:
                    table = convert(page)
                except ValueProblem as exc:
                    raise _value_error(exc, self.name, stream.name) from None
                if bm is not None and bm.has_start:
                    table = _drop_delivered(table, bm, rk)  # type: ignore[arg-type]
                if left is not None:
                    table = table.slice(0, left)
                    left -= table.num_rows
                if top is not None:
                    top.add(table)
                if held is not None:
                    yield held
                held = Batch.from_arrow(table, schema=schema)
                if left is not None and left <= 0:
                    break
            # the bookmark too before the collector is back: its thousands of DN keys (every
            # entry changed in the last second) would trigger collections of everything alive
            bookmark = None
            if bm is not None:
                if top is not None:
                    top.finish(bm)
                bookmark = bm.to_state()
                if bookmark is None and state:
                    bookmark = None  # nothing delivered before the cut-off: the old state stands
        finally:
            if isinstance(pages, PageFetcher) and not pages.done and self._native is not None:
                # stopped early (an error, the consumer closed the read): the receiving thread is
                # stopped at once, not after the rest of its group
                from .ahead import cancel

                cancel(self._native, pages)
            else:
                pages.close()
            if gc_was_on:
                gc.enable()
        if held is not None:
            held.bookmark = bookmark
            yield held
        elif bookmark is not None:
            yield Batch.from_records([], schema=schema, bookmark=bookmark)


def _search_plan(
    stream: StreamSpec,
    columns: Sequence[str] | None,
    start_filter: str | None,
    options: Any,
    *,
    native: bool = False,
) -> tuple[list[str], tuple[str, str, str, list[str], int], list[Any]]:
    """``(names, search, controls)`` of a read of ``stream``: the columns (``dn`` first), the paged
    search's ``(base, scope, filter, attributes, page_size)`` and its extra controls. The native
    reader asks for ``*`` and the operational attributes where every attribute of the stream's
    object classes is a property (``operational`` in the stream's options; see :func:`_dropping`)."""
    o = stream.options
    props = stream.properties
    rk = stream.replication_key
    names = ["dn", *[c for c in (columns or props) if c in props and c != "dn"]]
    if rk is not None and rk not in names:
        names.append(rk)
    request = list(o.get("attributes") or names[1:])
    if columns is not None:
        request = names[1:]
    elif native and o.get("operational") is not None:
        request = ["*", *o["operational"]]
    flt = str(o.get("filter") or "(objectClass=*)")
    if start_filter is not None:
        flt = f"(&{flt}{start_filter})"
    search = (
        str(o["base"]),
        str(o.get("scope") or "sub"),
        flt,
        request,
        int(o.get("page_size") or options.page_size),
    )
    return names, search, [c.as_tuple() for c in options.controls]


def _dropping(search: tuple[str, str, str, list[str], int], stream: StreamSpec) -> bool:
    """Whether the native read ``search`` asks for ``*`` in place of the stream's attributes
    (:func:`_search_plan`): an attribute outside them is then dropped (one more column, never
    converted), as the server leaves it out when they are listed."""
    return stream.options.get("operational") is not None and search[3][:1] == ["*"]


def _resolver(names: list[str], aliases: dict[str, str], drop: bool = False) -> Callable[[str, str], int]:
    """The native reader's ``resolve``: an attribute description to its column (with ``drop``,
    one outside the stream to the extra last column)."""
    idx = column_index(names[1:])
    extra = len(names) - 1

    def resolve(name: str, dn: str) -> int:
        if drop:
            try:
                return column_of(name, idx, aliases, dn)
            except ValueProblem:
                return extra
        return column_of(name, idx, aliases, dn)

    return resolve


def _ncols(names: list[str], drop: bool) -> int:
    return len(names) - 1 + (1 if drop else 0)


#: pages are converted to Arrow in groups of at least this many entries (a page of a small
#: ``page_size`` costs as many Arrow calls per column as a large one); reads with a limit convert
#: page by page so that no page beyond the limit is asked for
GROUP_ENTRIES = 10_000

#: groups the native reader receives ahead of the conversion, in a thread of its own (0: none, the
#: server then works only on the page asked for before the group is converted)
RECEIVE_AHEAD = 1


class _PageGroups:
    """The pages of ``pages`` joined into lists of at least ``size`` entries (the last one may be
    smaller); :meth:`close` closes ``pages``."""

    def __init__(self, pages: Any, size: int) -> None:
        self.pages = pages
        self.size = size

    def __iter__(self) -> _PageGroups:
        return self

    def __next__(self) -> list[Any]:
        group: list[Any] = []
        while len(group) < self.size:
            try:
                page = next(self.pages)
            except StopIteration:
                if group:
                    return group
                raise
            if group:
                group.extend(page)
            else:
                group = list(page)
        return group

    def close(self) -> None:
        self.pages.close()


def _pause_gc() -> bool:
    """Switch the cyclic garbage collector off while pages are decoded (``True`` if it was on).

    A page is thousands of fresh lists, dicts and bytes; each allocation burst triggers
    collections that scan every live object again (15 % of a 50,000-entry read in a py-spy
    profile). Entries form no cycles, so reference counting frees them all the same; the
    collector is switched back on when the read ends or is closed."""
    was_on = gc.isenabled()
    if was_on:
        gc.disable()
    return was_on


class PageFetcher:
    """Runs a backend's paged search in a thread, one page ahead of the consumer, so the server
    prepares page N+1 while page N is converted. Errors of the search are raised by ``next()``;
    :meth:`close` stops it (the generator is closed in its own thread: an unfinished paged search
    is abandoned on the server)."""

    def __init__(self, make: Callable[[], Iterator[Any]], depth: int = 1) -> None:
        self._q: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._done = False
        self._thread = threading.Thread(target=self._run, args=(make,), name="dcapix-ldap-pages", daemon=True)
        self._thread.start()

    def _put(self, item: tuple[str, Any]) -> bool:
        while not self._stop.is_set():
            try:
                self._q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, make: Callable[[], Iterator[Any]]) -> None:
        gen: Any = None
        try:
            gen = make()
            for page in gen:
                if not self._put(("page", page)):
                    return
            self._put(("end", None))
        except BaseException as exc:
            self._put(("error", exc))
        finally:
            close = getattr(gen, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:
                    log.debug("closing the paged search failed", exc_info=True)

    def __iter__(self) -> PageFetcher:
        return self

    @property
    def done(self) -> bool:
        """Whether the search's end (or its error) was handed out."""
        return self._done

    def __next__(self) -> Any:
        if self._done:
            raise StopIteration
        kind, value = self._q.get()
        if kind == "page":
            return value
        self._done = True
        if kind == "error":
            raise value
        raise StopIteration

    def close(self) -> None:
        self._stop.set()
        while True:
            try:
                self._q.get_nowait()
            except queue.Empty:
                break
        self._thread.join(timeout=60)


def _bookmark_value(rk: str, value: Any) -> Any:
    if rk == "modifyTimestamp":
        if isinstance(value, _dt.datetime):
            return value
        text = str(value)
        if text[4:5] == "-":  # the JSON (ISO) form, not a GeneralizedTime such as 20240101120000-0500
            v = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
            return v if v.tzinfo else v.replace(tzinfo=_dt.timezone.utc)
        return parse_generalized_time(text)
    return str(value)


def _filter_value(rk: str, value: Any) -> str:
    text = format_generalized_time(value) if isinstance(value, _dt.datetime) else str(value)
    return re.sub(r"([*()\\\x00])", lambda m: f"\\{ord(m.group(1)):02x}", text)


def _drop_delivered(table: Any, bm: Any, rk: str) -> Any:
    """The rows of ``table`` not delivered before (the toolkit's boundary semantics, by DN)."""
    vals = table.column(rk).to_pylist()
    dns = table.column("dn").to_pylist()
    keep = [bm.is_new(v, (dn,)) for v, dn in zip(vals, dns, strict=True)]
    if all(keep):
        return table
    import pyarrow as pa

    return table.filter(pa.array(keep, pa.bool_()))


class _Top:
    """The bookmark's advance over a read, column-wise: the largest replication value below
    ``upper`` (the server's clock when the read began; later changes are left for the next run)
    among the delivered rows and the DNs at it, kept as Arrow arrays across batches and given to
    the bookmark once at the end (:meth:`finish`), in delivery order."""

    def __init__(self, rk: str, upper: Any) -> None:
        self.rk = rk
        self.upper = upper
        self.value: Any = None
        self.dns: list[Any] = []

    def add(self, table: Any) -> None:
        if table.num_rows == 0:
            return
        import pyarrow as pa

        from ._kernels import call

        col = table.column(self.rk)
        below = call("coalesce", call("less", col, pa.scalar(self.upper, type=col.type)), pa.scalar(False))
        top = call("max", call("filter", col, below))
        value = top.as_py()
        if value is None or (self.value is not None and value < self.value):
            return
        at = call("filter", table.column("dn"), call("and", below, call("equal", col, top)))
        if self.value is None or value > self.value:
            self.value, self.dns = value, [at]
        else:
            self.dns.append(at)

    def finish(self, bm: Any) -> None:
        if self.value is None or (bm.value is not None and self.value < bm.value):
            return
        bm.advance_to(self.value, [(dn,) for arr in self.dns for dn in arr.to_pylist()])


def _value_error(exc: ValueProblem, adapter: str, stream: str) -> SchemaError:
    """The one-line error of a value the schema does not allow (an attribute outside it, …)."""
    return SchemaError(
        f"adapter 'ldap', stream {stream!r}, field {exc.attribute!r}: {exc} (entry {exc.dn!r})",
        adapter=adapter,
        stream=stream,
    )
