"""The base class of paginators (plugins registered by ``register_pagination_handlers``).

A paginator follows the singer-sdk *token* model: it holds the token of the next page
(:attr:`Paginator.current_value`), edits the next request for that token (:meth:`Paginator.prepare`)
and, once the page has been received, computes the following token (:meth:`Paginator.advance`).
When there is nothing more to read :attr:`Paginator.finished` becomes true. Every token the
paginator has used is remembered: a token seen twice raises :class:`PaginationError` naming the
URL and the token (an API that answers the same cursor forever would loop otherwise). Every page
is fingerprinted too (:func:`page_fingerprint`): a page whose records repeat an earlier page of
the read — a server that ignores ``offset`` and answers the same page for every offset — raises
:class:`PaginationError` naming both URLs before its records are used (``detect_repeated_pages``).

The driving loop (used by the HTTP adapter and :meth:`dc_api_x.client.ApiClient.paginate`)::

    paginator.reset()
    while not paginator.finished:
        request = PageRequest(method="GET", url="/items", params=dict(base_params))
        paginator.prepare(request)                 # sets offset/page/cursor/next URL
        response = send(request)                   # a dc_api_x.ext.adapters.Response
        records = paginator.clip(extract(response.data))
        ...                                        # use the records
        paginator.advance(response, records)

Stop conditions are options shared by every paginator: an empty page (``stop_on_empty``), a
``has_more_path`` in the body that is false, ``max_pages`` and ``max_items``; the built-ins add
their own (a total from the first page, a short page, no next cursor/link).

This module imports no HTTP library: the requests it edits are :class:`PageRequest` values and
the responses it reads are :class:`dc_api_x.ext.adapters.Response` objects.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, Field

from ..config import OptionsModel, merge_options, validate_options
from ..exceptions import PaginationError, ResponseDecodeError
from ..logs import redact

if TYPE_CHECKING:  # pragma: no cover
    from .adapters import Response

__all__ = [
    "FINGERPRINT_SAMPLE",
    "MISSING",
    "PageRequest",
    "Paginator",
    "PaginatorOptions",
    "canonical_json",
    "extract_records",
    "fingerprint_sample",
    "get_path",
    "page_fingerprint",
    "split_path",
]

T = TypeVar("T")


class _Missing:
    """Sentinel for "no value at this path" (distinct from a JSON ``null``)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


#: Returned by :func:`get_path` when the path does not exist.
MISSING: Any = _Missing()


@functools.lru_cache(maxsize=1024)
def split_path(path: str | None) -> tuple[str, ...]:
    """``"meta.next_cursor"`` → ``("meta", "next_cursor")``. A leading ``$`` / ``$.`` (JSONPath
    style) is ignored; an empty path (or ``"$"``) means the document itself."""
    if not path:
        return ()
    p = path.strip()
    if p.startswith("$"):
        p = p[1:]
    p = p.lstrip(".")
    return tuple(part for part in p.replace("[", ".").replace("]", "").split(".") if part)


def get_path(data: Any, path: str | Sequence[str] | None, default: Any = MISSING) -> Any:
    """The value at a dotted path (``"meta.next_cursor"``, ``"data.items"``, ``"items.0.id"``).

    Integer parts index lists. Returns ``default`` (:data:`MISSING` unless given) when a part is
    absent.
    """
    parts = split_path(path) if isinstance(path, str) or path is None else tuple(path)
    cur = data
    for part in parts:
        if isinstance(cur, Mapping):
            if part not in cur:
                return default
            cur = cur[part]
        elif isinstance(cur, list) and (part.isdigit() or (part.startswith("-") and part[1:].isdigit())):
            idx = int(part)
            if not -len(cur) <= idx < len(cur):
                return default
            cur = cur[idx]
        else:
            return default
    return cur


def extract_records(
    body: Any, records_path: str | Sequence[str] | None, *, where: str = ""
) -> list[dict[str, Any]]:
    """The list of records at ``records_path`` in a decoded body ('' = the body itself).

    A single object is one record; ``null`` is no record. A missing path or anything else raises
    :class:`ResponseDecodeError` naming ``where`` and the path.
    """
    data = get_path(body, records_path) if records_path else body
    if type(data) is list:
        records = data
    elif data is MISSING:
        keys = ", ".join(list(body)[:10]) if isinstance(body, dict) else type(body).__name__
        raise ResponseDecodeError(
            f"{where}: records_path {records_path!r} not found in the answer (keys: {keys})"
        )
    elif data is None:
        return []
    elif isinstance(data, dict):
        return [data]
    else:
        raise ResponseDecodeError(
            f"{where}: records_path {records_path or '(body)'!r} holds a "
            f"{type(data).__name__}, not a list of objects"
        )
    if records and set(map(type, records)) != _DICT_ONLY:  # one C-level pass in the normal case
        for i, rec in enumerate(records):
            if type(rec) is not dict:
                raise ResponseDecodeError(
                    f"{where}: record #{i} at {records_path or '(body)'!r} is a "
                    f"{type(rec).__name__}, not an object"
                )
    return records


_DICT_ONLY = {dict}

_MASK64 = (1 << 64) - 1

#: :func:`page_fingerprint` hashes at most this many records of a page (evenly spaced; 64 cost a
#: fifth of orjson's decode of a 100-record page, 16 a twentieth).
FINGERPRINT_SAMPLE = 16


@functools.lru_cache(maxsize=256)
def fingerprint_sample(n: int) -> tuple[int, ...]:
    """The indexes of the records of an ``n``-record page that :func:`page_fingerprint` hashes: all of
    them up to :data:`FINGERPRINT_SAMPLE`, else that many evenly spaced, the first and the last
    included."""
    if n <= FINGERPRINT_SAMPLE:
        return tuple(range(n))
    step = (n - 1) / (FINGERPRINT_SAMPLE - 1)
    return tuple(round(i * step) for i in range(FINGERPRINT_SAMPLE))


def canonical_json(records: Sequence[Any]) -> bytes | None:
    """The canonical JSON text of ``records``: what a page fingerprint hashes, the same for the
    same records however they were written or decoded.

    It is ``orjson.dumps(records, option=OPT_SORT_KEYS)``: compact, the keys of every object in
    sorted order, every value as orjson writes it. So two records are the same when they hold the
    same keys with the same values — whatever the order of their keys, the escapes of their strings
    or the spelling of their numbers (``1.5``, ``1.50`` and ``15e-1`` are one float) — and differ
    when a value differs in type (``1`` and ``1.0``, ``1.5`` and ``"1.5"``) or a key is absent in one
    and ``null`` in the other. Values JSON has no type for keep their own: a ``Decimal`` (a JSON
    number a float64 does not hold, :class:`dc_api_x.values.JSONNumber`) or an integer beyond 64 bits
    is written as its digits with a mark no JSON text holds, never like a string or a float; other
    types as orjson writes them (a ``datetime`` in ISO 8601), keys that are no strings as strings.
    ``None`` when the records cannot be written."""
    import orjson

    try:
        return orjson.dumps(records, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # (orjson.JSONEncodeError) a type JSON has not, a key no string, a big integer
        pass
    try:
        return orjson.dumps(
            _exact(records), default=_canonical_default, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS
        )
    except (TypeError, ValueError, RecursionError):
        return None


def _canonical_default(value: Any) -> Any:
    import orjson

    if isinstance(value, Decimal):
        return orjson.Fragment(b"\x00n" + str(value).encode())  # a mark no JSON text holds
    return str(value)


def _exact(value: Any) -> Any:
    """``value`` with integers beyond 64 bits as marked digits (orjson writes no such integer)."""
    import orjson

    t = type(value)
    if t is dict:
        return {k: _exact(v) for k, v in value.items()}
    if t is list or t is tuple:
        return [_exact(v) for v in value]
    if t is int and not -(2**63) <= value < 2**64:
        return orjson.Fragment(b"\x00n" + str(value).encode())
    return value


def page_fingerprint(records: Sequence[Any]) -> bytes | None:
    """A 16-byte fingerprint of a page of records: a hash of the record count and of
    :func:`canonical_json` of up to :data:`FINGERPRINT_SAMPLE` evenly spaced records
    (:func:`fingerprint_sample`), so two pages with the same records have the same fingerprint
    however their JSON was written or decoded, and a fingerprint costs about as much as encoding 16
    records whatever the page size. ``None`` when the records cannot be written (no fingerprint).

    ``records`` is a sequence of records; one that holds them in another form (a page decoded into
    columns) gives the canonical text itself by a method ``canonical_json_at(indexes)`` returning
    exactly ``canonical_json([records[i] for i in indexes])`` of the records it stands for."""
    n = len(records)
    idx = fingerprint_sample(n)
    own = getattr(records, "canonical_json_at", None) if type(records) is not list else None
    blob = own(idx) if own is not None else canonical_json([records[i] for i in idx])
    if blob is None:
        return None
    # Python's hash of the text (SipHash, salted per process: fingerprints are compared within a
    # read) and its length: a quarter of a blake2b's cost
    return (hash((n, blob)) & _MASK64).to_bytes(8, "little") + len(blob).to_bytes(8, "little")


@dataclass
class PageRequest:
    """The next request of a paginated read; a paginator edits it in :meth:`Paginator.prepare`.

    ``url`` is a path relative to the adapter's ``base_url`` or an absolute URL (a *next* link).
    """

    method: str = "GET"
    url: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    json: Any = None


class PaginatorOptions(OptionsModel):
    """Options every paginator accepts (the ``type`` key is consumed by the registry)."""

    max_pages: int | None = Field(default=None, ge=1, description="stop after this many pages")
    max_items: int | None = Field(default=None, ge=1, description="stop after this many records")
    has_more_path: str | None = Field(
        default=None, description="dotted path of a boolean in the body; false means last page"
    )
    stop_on_empty: bool = Field(default=True, description="an empty page is the last page")
    detect_repeated_pages: bool = Field(
        default=True,
        description="stop with PaginationError when a page repeats an earlier page of the read "
        "(a server that ignores offset/page/cursor); false only for APIs whose pages legitimately repeat",
    )


class Paginator(Generic[T]):
    """Base class of paginators. Subclasses set :attr:`name` and :attr:`Options` and override
    :meth:`start_value`, :meth:`prepare` and :meth:`get_next` (and :meth:`has_more` for extra
    stop conditions).

    Instances are built from options like every plugin: ``OffsetPaginator({"limit": 50})`` or
    ``create_plugin("paginators", {"type": "offset", "limit": 50})``; a bad option raises
    :class:`~dc_api_x.exceptions.ConfigError` naming the paginator and the field.
    """

    #: The registry name (``pagination: {type: NAME}``).
    name: ClassVar[str] = ""
    #: The pydantic model of this paginator's options.
    Options: ClassVar[type[BaseModel]] = PaginatorOptions

    options: Any
    #: The token of the next page (``None`` for "the first page, as configured").
    current_value: T | None
    #: True when there is no further page.
    finished: bool
    #: Pages and records seen so far.
    pages: int
    items: int

    def __init__(self, options: Mapping[str, Any] | BaseModel | None = None, /, **kwargs: Any) -> None:
        merged = merge_options(options, kwargs)
        self.options = validate_options(self.Options, merged, plugin=f"paginator {self.name!r}")
        self.reset()

    # -- state -----------------------------------------------------------------------------------
    def reset(self) -> None:
        """Start again from the first page (forget every token seen)."""
        self.current_value = self.start_value()
        self.finished = False
        self.pages = 0
        self.items = 0
        self._seen: set[Any] = set()
        if self.current_value is not None:
            self._seen.add(self._token_key(self.current_value))
        #: fingerprint of each page read -> (page number, redacted URL)
        self._pages_seen: dict[bytes, tuple[int, str]] = {}

    def start_value(self) -> T | None:
        """The token of the first page (``None``: the request as configured)."""
        return None

    # -- request side ----------------------------------------------------------------------------
    def prepare(self, request: PageRequest) -> None:
        """Edit ``request`` (params, headers, url) so that it asks for the page of
        :attr:`current_value`. The default leaves it unchanged."""

    # -- response side ---------------------------------------------------------------------------
    def get_next(self, response: Response, records: Sequence[Any]) -> T | None:
        """The token of the page after ``response``, or ``None`` when it was the last one."""
        return None

    def has_more(self, response: Response, records: Sequence[Any]) -> bool:
        """Whether another page may follow, from the shared stop conditions. Subclasses extend it
        (``return super().has_more(response, records) and …``)."""
        opts = self.options
        if opts.max_pages is not None and self.pages >= opts.max_pages:
            return False
        if opts.max_items is not None and self.items >= opts.max_items:
            return False
        if opts.stop_on_empty and not records:
            return False
        if opts.has_more_path:
            flag = get_path(response.data, opts.has_more_path)
            if flag is not MISSING and not flag:
                return False
        return True

    def clip(self, records: list[Any]) -> list[Any]:
        """``records`` cut to what ``max_items`` still allows (call before :meth:`advance`)."""
        cap = self.options.max_items
        if cap is not None and self.items + len(records) > cap:
            return records[: max(0, cap - self.items)]
        return records

    def advance(self, response: Response, records: Sequence[Any]) -> None:
        """Record that the page of :attr:`current_value` was received as ``response`` holding
        ``records``, and move to the next token (or set :attr:`finished`).

        :raises PaginationError: when the next token was used before (a loop), naming the URL and
            the token; when ``records`` repeat an earlier page of this read (a server that ignores
            the pagination parameters), naming both pages' URLs — raised before the page's records
            are used, so nothing of the repeated page is delivered; or when called after the last
            page.
        """
        if self.finished:
            raise PaginationError(
                f"paginator {self.name!r}: advance() called after the last page ({response.url})"
            )
        self.pages += 1
        if records and self.options.detect_repeated_pages:
            self._check_repeated(response, records)
        self.items += len(records)
        if not self.has_more(response, records):
            self.finished = True
            return
        nxt = self.get_next(response, records)
        if nxt is None:
            self.finished = True
            return
        key = self._token_key(nxt)
        if key in self._seen:
            raise PaginationError(
                f"paginator {self.name!r}: the server returned token {redact(repr(nxt))} again after "
                f"{self.pages} page(s) at {response.url}: pagination loop"
            )
        self._seen.add(key)
        self.current_value = nxt

    def _check_repeated(self, response: Response, records: Sequence[Any]) -> None:
        fp = page_fingerprint(records)
        if fp is None:
            return
        earlier = self._pages_seen.get(fp)
        if earlier is not None:
            page, url = earlier
            raise PaginationError(
                f"paginator {self.name!r}: page {self.pages} at {response.url} repeats page {page} "
                f"({url}): the same {len(records)} record(s) again, the server ignores the pagination "
                f"parameters; stopped before delivering them (set detect_repeated_pages: false if "
                f"the API's pages legitimately repeat)"
            )
        self._pages_seen[fp] = (self.pages, response.url)

    @staticmethod
    def _token_key(token: Any) -> Any:
        try:
            hash(token)
        except TypeError:
            return repr(token)
        return token

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} token={self.current_value!r} finished={self.finished}>"
