"""Helpers for the HTTP tests: paged JSON routes on the real local server fixture."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest

from tests.support.httpserver import LocalHTTPServer, Request

Route = Callable[[Request], tuple[int, dict[str, str], Any]]


#: offset/limit pagination of :func:`offset_route`'s pages (10 rows, the total in ``total``)
OFFSET: dict[str, Any] = {
    "type": "offset",
    "offset_param": "offset",
    "limit_param": "limit",
    "limit": 10,
    "total_path": "total",
}


#: the schema of the page-column tests (test_page_columns, test_page_scan): every kind a page plan takes
PAGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": ["integer", "null"]},
        "name": {"type": ["string", "null"]},
        "amount": {"type": ["number", "null"]},
        "ok": {"type": ["boolean", "null"]},
        "at": {"type": ["string", "null"], "format": "date-time"},
        "day": {"type": ["string", "null"], "format": "date"},
        "attrs": {"type": ["object", "null"], "x-json": True},
    },
}


def items_adapter(url: str, **kw: Any) -> Any:
    """An ``http`` adapter of one ``items`` stream at ``url`` paged by :data:`OFFSET` (``kw``: more
    options)."""
    from dc_api_x import create_adapter

    cfg: dict[str, Any] = {
        "base_url": url,
        "streams": [{"name": "items", "path": "/items", "records_path": "records", "primary_key": ["id"]}],
        "pagination": OFFSET,
    }
    cfg.update(kw)
    return create_adapter({"adapter": "http", **cfg})


def read_all(adapter: Any) -> list[dict[str, Any]]:
    """Every record of the adapter's first discovered stream."""
    spec = adapter.discover()[0]
    return [r for b in adapter.read(spec) for r in b.records]


def make_rows(n: int, *, start: int = 0) -> list[dict[str, Any]]:
    """``n`` records with an id, a name, a minute-resolution ``updated_at`` and a float."""
    return [
        {
            "id": i,
            "name": f"row-{i}",
            "updated_at": f"2024-01-01T{(i // 60) % 24:02d}:{i % 60:02d}:00Z",
            "score": i * 0.5,
        }
        for i in range(start, start + n)
    ]


def offset_route(rows: list[dict[str, Any]], *, total: bool = True, max_limit: int | None = None) -> Route:
    def handler(req: Request) -> tuple[int, dict[str, str], Any]:
        off = int(req.arg("offset", "0") or 0)
        lim = int(req.arg("limit", "10") or 10)
        if max_limit:
            lim = min(lim, max_limit)
        body: dict[str, Any] = {"records": rows[off : off + lim]}
        if total:
            body["total"] = len(rows)
        return 200, {}, body

    return handler


def token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode()


def untoken(tok: str) -> int:
    return int(base64.urlsafe_b64decode(tok.encode()).decode().split(":", 1)[1])


def cursor_route(rows: list[dict[str, Any]], *, size: int = 10, nested: bool = False) -> Route:
    """``{"records": [...], "next": TOKEN|null}`` (or ``{"data": ..., "meta": {"next_cursor": ...}}``)."""

    def handler(req: Request) -> tuple[int, dict[str, str], Any]:
        tok = req.arg("cursor")
        off = untoken(tok) if tok else 0
        nxt = token(off + size) if off + size < len(rows) else None
        if nested:
            return 200, {}, {"data": rows[off : off + size], "meta": {"next_cursor": nxt}}
        return 200, {}, {"records": rows[off : off + size], "next": nxt}

    return handler


@pytest.fixture
def server(http_server: LocalHTTPServer, plugins) -> LocalHTTPServer:
    """The real local HTTP server with a fresh plugin set made current."""
    return http_server
