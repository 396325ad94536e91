"""Built-in plugin: the paginators ``single_page``, ``offset``, ``page_number``, ``cursor`` and
``link_header``.

Config examples (the ``type`` key selects the paginator, the rest are its options)::

    {"type": "offset", "offset_param": "offset", "limit_param": "limit", "limit": 100, "total_path": "total"}
    {"type": "page_number", "page_param": "page", "start_page": 1, "total_pages_path": "meta.pages"}
    {"type": "cursor", "cursor_path": "next", "cursor_param": "cursor"}
    {"type": "cursor", "cursor_header": "X-Next-Cursor", "cursor_request_header": "X-Cursor"}
    {"type": "link_header"}

Every paginator also takes ``max_pages``, ``max_items``, ``has_more_path`` and ``stop_on_empty``
(see :class:`dc_api_x.ext.pagination.PaginatorOptions`). This module imports no HTTP library.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

from pydantic import Field, model_validator

from .ext.pagination import MISSING, PageRequest, Paginator, PaginatorOptions, get_path

if TYPE_CHECKING:  # pragma: no cover
    from .ext.adapters import Response
    from .plugins import Registry

__all__ = [
    "CursorPaginator",
    "LinkHeaderPaginator",
    "OffsetPaginator",
    "PageNumberPaginator",
    "SinglePagePaginator",
    "parse_link_header",
    "register_pagination_handlers",
]


def _int_at(response: Response, path: str | None) -> int | None:
    if not path:
        return None
    value = get_path(response.data, path)
    if value is MISSING or value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _real_url(response: Response) -> str:
    """The unredacted URL of the request behind ``response`` (to resolve relative links), falling
    back to the redacted ``response.url``."""
    request = getattr(getattr(response, "raw", None), "request", None)
    url = getattr(request, "url", None)
    return str(url) if url is not None else response.url


class SinglePagePaginator(Paginator[Any]):
    """One request, no pagination."""

    name = "single_page"

    def has_more(self, response: Response, records: Sequence[Any]) -> bool:
        return False


class OffsetOptions(PaginatorOptions):
    offset_param: str = Field(default="offset", min_length=1)
    limit_param: str | None = Field(default="limit", description="None: do not send the page size")
    limit: int = Field(default=100, ge=1, description="page size")
    start: int = Field(default=0, ge=0, description="offset of the first page")
    total_path: str | None = Field(default=None, description="dotted path of the total record count")
    stop_on_short_page: bool = Field(default=True, description="a page under `limit` is the last")


class OffsetPaginator(Paginator[int]):
    """``?offset=N&limit=L``; the next offset is the current one plus the records received (so a
    server that caps the page size loses nothing). Stops on an empty page, at the ``total_path``
    total when there is one (else on a page shorter than ``limit``), or when ``has_more_path`` is
    false."""

    name = "offset"
    Options = OffsetOptions

    def reset(self) -> None:
        super().reset()
        self.total: int | None = None

    def start_value(self) -> int:
        return int(self.options.start)

    def prepare(self, request: PageRequest) -> None:
        request.params[self.options.offset_param] = self.current_value
        if self.options.limit_param:
            request.params[self.options.limit_param] = self.options.limit

    def has_more(self, response: Response, records: Sequence[Any]) -> bool:
        if not super().has_more(response, records):
            return False
        total = _int_at(response, self.options.total_path)
        if total is not None:
            self.total = total
        if self.total is not None:
            # a known total decides (a server that caps the page size below `limit` loses nothing)
            return int(self.current_value or 0) + len(records) < self.total
        opts = self.options
        # without a limit param the server picks the page size: a "short" page means nothing
        return not (opts.stop_on_short_page and opts.limit_param and len(records) < opts.limit)

    def get_next(self, response: Response, records: Sequence[Any]) -> int:
        return int(self.current_value or 0) + len(records)


class PageNumberOptions(PaginatorOptions):
    page_param: str = Field(default="page", min_length=1)
    start_page: int = Field(default=1, ge=0)
    page_size_param: str | None = Field(default=None, description="query param receiving page_size")
    page_size: int | None = Field(default=None, ge=1, description="page size (short pages stop)")
    total_pages_path: str | None = Field(default=None, description="dotted path of the page count")
    total_path: str | None = Field(default=None, description="dotted path of the total record count")


class PageNumberPaginator(Paginator[int]):
    """``?page=N`` from ``start_page``. Stops on an empty page, a short page (when ``page_size`` is
    set), at ``total_pages_path`` / ``total_path``, or when ``has_more_path`` is false."""

    name = "page_number"
    Options = PageNumberOptions

    def reset(self) -> None:
        super().reset()
        self.total_pages: int | None = None

    def start_value(self) -> int:
        return int(self.options.start_page)

    def prepare(self, request: PageRequest) -> None:
        request.params[self.options.page_param] = self.current_value
        if self.options.page_size_param and self.options.page_size:
            request.params[self.options.page_size_param] = self.options.page_size

    def has_more(self, response: Response, records: Sequence[Any]) -> bool:
        if not super().has_more(response, records):
            return False
        opts = self.options
        pages = _int_at(response, opts.total_pages_path)
        if pages is not None:
            self.total_pages = pages
        if self.total_pages is not None:
            # pages are numbered from start_page; the last is start_page + total_pages - 1
            last = opts.start_page + self.total_pages - 1
            if int(self.current_value or 0) >= last:
                return False
        total = _int_at(response, opts.total_path)
        if total is not None:
            return self.items < total
        if self.total_pages is not None:
            return True
        return not (opts.page_size and len(records) < opts.page_size)

    def get_next(self, response: Response, records: Sequence[Any]) -> int:
        return int(self.current_value or 0) + 1


class CursorOptions(PaginatorOptions):
    cursor_path: str | None = Field(default="next", description="dotted path of the next token in the body")
    cursor_header: str | None = Field(default=None, description="response header holding the next token")
    cursor_param: str | None = Field(default="cursor", description="query param receiving the token")
    cursor_request_header: str | None = Field(default=None, description="request header receiving the token")
    cursor_is_url: bool | None = Field(
        default=None,
        description="the token is the next URL (default: when it starts with http:// or https://)",
    )

    @model_validator(mode="after")
    def _check(self) -> CursorOptions:
        if not self.cursor_path and not self.cursor_header:
            raise ValueError("set cursor_path or cursor_header")
        return self


class CursorPaginator(Paginator[Any]):
    """A token read from the body (``cursor_path``, e.g. ``next`` or ``meta.next_cursor``) or from
    a response header (``cursor_header``), sent as a query param (``cursor_param``) or a request
    header (``cursor_request_header``). A token that is a URL is followed as the next URL. An empty
    / null / missing token ends the pagination; a token seen before raises ``PaginationError``."""

    name = "cursor"
    Options = CursorOptions

    def _is_url(self, token: Any) -> bool:
        if self.options.cursor_is_url is not None:
            return bool(self.options.cursor_is_url)
        return isinstance(token, str) and token.startswith(("http://", "https://"))

    def prepare(self, request: PageRequest) -> None:
        token = self.current_value
        if token is None:
            return
        if self._is_url(token):
            request.url = urljoin(self._base, str(token)) if self._base else str(token)
            request.params = {}
        elif self.options.cursor_request_header:
            request.headers[self.options.cursor_request_header] = str(token)
        elif self.options.cursor_param:
            request.params[self.options.cursor_param] = token

    def reset(self) -> None:
        super().reset()
        self._base = ""

    def get_next(self, response: Response, records: Sequence[Any]) -> Any:
        if self.options.cursor_header:
            token: Any = response.headers.get(self.options.cursor_header)
        else:
            token = get_path(response.data, self.options.cursor_path)
        if token is MISSING or token is None or token == "" or token is False:
            return None
        self._base = _real_url(response)
        return token


_LINK = re.compile(r"<(?P<url>[^>]*)>\s*(?P<params>(?:;\s*[^;,<]+)*)")


def parse_link_header(value: str) -> dict[str, str]:
    """RFC 5988/8288 ``Link`` header → ``{rel: url}`` (several rels per link are split)."""
    links: dict[str, str] = {}
    for m in _LINK.finditer(value or ""):
        url = m["url"].strip()
        for param in m["params"].split(";"):
            key, _, val = param.strip().partition("=")
            if key.strip().lower() == "rel":
                for rel in val.strip().strip('"').split():
                    links.setdefault(rel.lower(), url)
    return links


class LinkHeaderOptions(PaginatorOptions):
    rel: str = Field(default="next", min_length=1, description="the link relation to follow")
    header: str = Field(default="link", min_length=1, description="the response header")


class LinkHeaderPaginator(Paginator[str]):
    """Follows ``Link: <url>; rel="next"`` (RFC 5988) until there is no such link. Relative links
    are resolved against the URL of the page that carried them."""

    name = "link_header"
    Options = LinkHeaderOptions

    def prepare(self, request: PageRequest) -> None:
        if self.current_value is not None:
            request.url = self.current_value
            request.params = {}

    def get_next(self, response: Response, records: Sequence[Any]) -> str | None:
        links = parse_link_header(response.headers.get(self.options.header) or "")
        nxt = links.get(self.options.rel.lower())
        if not nxt:
            return None
        base = _real_url(response)
        return urljoin(base, nxt) if base else nxt


def register_pagination_handlers(registry: Registry) -> None:
    """Register the built-in paginators."""
    for cls in (
        SinglePagePaginator,
        OffsetPaginator,
        PageNumberPaginator,
        CursorPaginator,
        LinkHeaderPaginator,
    ):
        registry.register(cls.name, cls)
