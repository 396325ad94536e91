"""Paginators against the real local HTTP server (through ApiClient.paginate and the adapter)."""

from __future__ import annotations

from typing import Any

import pytest

from dc_api_x import ApiClient, ConfigError, PaginationError, UnknownPluginError, create_plugin
from dc_api_x.ext.adapters import Response
from dc_api_x.ext.pagination import MISSING, PageRequest, Paginator, get_path
from dc_api_x.pagination import parse_link_header
from tests.http.conftest import cursor_route, make_rows, offset_route, token


def ids(records: list[dict[str, Any]]) -> list[int]:
    return [r["id"] for r in records]


def client(server, **kw: Any) -> ApiClient:
    return ApiClient(server.url, hooks=[], **kw)


# ---------------------------------------------------------------------------------- offset
def test_offset_with_total_reads_every_row_once(server):
    rows = make_rows(95)
    server.route("GET", "/items", offset_route(rows))
    with client(server) as api:
        got = list(
            api.paginate(
                "/items",
                records_path="records",
                paginator={
                    "type": "offset",
                    "offset_param": "offset",
                    "limit_param": "limit",
                    "limit": 10,
                    "total_path": "total",
                },
            )
        )
    assert ids(got) == list(range(95))
    offsets = [int(r.arg("offset")) for r in server.requests]
    assert offsets == list(range(0, 95, 10))  # stopped by total: no extra empty request
    assert all(r.arg("limit") == "10" for r in server.requests)


def test_offset_total_stops_exactly_at_a_page_boundary(server):
    server.route("GET", "/items", offset_route(make_rows(40)))
    with client(server) as api:
        got = list(
            api.paginate(
                "/items",
                records_path="records",
                paginator={"type": "offset", "limit": 10, "total_path": "total"},
            )
        )
    assert ids(got) == list(range(40))
    assert len(server.requests) == 4


def test_offset_short_page_stops_and_server_cap_loses_nothing(server):
    rows = make_rows(57)
    # the server caps pages at 5 records; with short-page stop disabled and the offset advanced by
    # the records received, every row still arrives once
    server.route("GET", "/items", offset_route(rows, total=False, max_limit=5))
    with client(server) as api:
        got = list(
            api.paginate(
                "/items",
                records_path="records",
                paginator={"type": "offset", "limit": 10, "stop_on_short_page": False},
            )
        )
        assert ids(got) == list(range(57))
        server.requests.clear()
        # default: a short page (fewer than limit) is the last one
        got = list(api.paginate("/items", records_path="records", paginator={"type": "offset", "limit": 10}))
        assert ids(got) == list(range(5))
        assert len(server.requests) == 1


def test_offset_known_total_beats_a_server_page_cap(server):
    # limit 10 asked, the server answers 4 per page; the total says there is more: keep going
    server.route("GET", "/items", offset_route(make_rows(18), max_limit=4))
    with client(server) as api:
        got = list(
            api.paginate(
                "/items",
                records_path="records",
                paginator={"type": "offset", "limit": 10, "total_path": "total"},
            )
        )
    assert ids(got) == list(range(18))
    assert [int(r.arg("offset")) for r in server.requests] == [0, 4, 8, 12, 16]


def test_offset_without_limit_param_ignores_page_size(server):
    rows = make_rows(23)
    server.route("GET", "/items", lambda req: (200, {}, rows[int(req.arg("offset", "0")) :][:7]))
    with client(server) as api:
        got = list(api.paginate("/items", paginator={"type": "offset", "limit_param": None}))
    assert ids(got) == list(range(23))
    assert all(r.arg("limit") is None for r in server.requests)
    assert [int(r.arg("offset")) for r in server.requests] == [0, 7, 14, 21, 23]


def test_offset_stops_on_empty_page_without_total(server):
    server.route("GET", "/items", offset_route(make_rows(30), total=False))
    with client(server) as api:
        got = list(api.paginate("/items", records_path="records", paginator={"type": "offset", "limit": 10}))
    assert ids(got) == list(range(30))
    assert [int(r.arg("offset")) for r in server.requests] == [0, 10, 20, 30]


def test_max_pages_and_max_items(server):
    server.route("GET", "/items", offset_route(make_rows(100)))
    with client(server) as api:
        got = list(
            api.paginate(
                "/items", records_path="records", paginator={"type": "offset", "limit": 10, "max_pages": 3}
            )
        )
        assert ids(got) == list(range(30))
        assert len(server.requests) == 3
        server.requests.clear()
        got = list(
            api.paginate(
                "/items", records_path="records", paginator={"type": "offset", "limit": 10, "max_items": 25}
            )
        )
        assert ids(got) == list(range(25))
        assert len(server.requests) == 3


def test_has_more_path_stops(server):
    rows = make_rows(50)

    def handler(req):
        off = int(req.arg("offset", "0"))
        return 200, {}, {"items": rows[off : off + 10], "meta": {"has_more": off + 10 < 23}}

    server.route("GET", "/items", handler)
    with client(server) as api:
        got = list(
            api.paginate(
                "/items",
                records_path="items",
                paginator={"type": "offset", "limit": 10, "has_more_path": "meta.has_more"},
            )
        )
    assert ids(got) == list(range(30))  # pages at 0, 10, 20; the third says has_more=false


# ---------------------------------------------------------------------------------- page number
def test_page_number_with_total_pages(server):
    rows = make_rows(45)

    def handler(req):
        page = int(req.arg("page", "1"))
        size = int(req.arg("per_page", "10"))
        return 200, {}, {"data": rows[(page - 1) * size : page * size], "meta": {"pages": 5}}

    server.route("GET", "/p", handler)
    with client(server) as api:
        got = list(
            api.paginate(
                "/p",
                records_path="data",
                paginator={
                    "type": "page_number",
                    "page_param": "page",
                    "start_page": 1,
                    "page_size_param": "per_page",
                    "page_size": 10,
                    "total_pages_path": "meta.pages",
                },
            )
        )
    assert ids(got) == list(range(45))
    assert [r.arg("page") for r in server.requests] == ["1", "2", "3", "4", "5"]


def test_page_number_zero_based_stops_on_empty(server):
    rows = make_rows(20)
    server.route(
        "GET", "/p", lambda req: (200, {}, rows[int(req.arg("pg")) * 8 : int(req.arg("pg")) * 8 + 8])
    )
    with client(server) as api:
        got = list(api.paginate("/p", paginator={"type": "page_number", "page_param": "pg", "start_page": 0}))
    assert ids(got) == list(range(20))
    assert [r.arg("pg") for r in server.requests] == ["0", "1", "2", "3"]


# ---------------------------------------------------------------------------------- cursor
def test_cursor_from_body_as_written_in_the_benchmark(server):
    rows = make_rows(33)
    server.route("GET", "/c", cursor_route(rows, size=10))
    with client(server) as api:
        pag = {"type": "cursor", "cursor_path": "next", "cursor_param": "cursor"}
        got = list(api.paginate("/c", records_path="records", params={"limit": 10}, paginator=pag))
    assert ids(got) == list(range(33))
    assert [r.arg("cursor") for r in server.requests] == [None, token(10), token(20), token(30)]
    assert all(r.arg("limit") == "10" for r in server.requests)


def test_cursor_nested_path(server):
    server.route("GET", "/c", cursor_route(make_rows(25), size=10, nested=True))
    with client(server) as api:
        got = list(
            api.paginate(
                "/c", records_path="data", paginator={"type": "cursor", "cursor_path": "meta.next_cursor"}
            )
        )
    assert ids(got) == list(range(25))


def test_cursor_from_header_sent_as_header(server):
    rows = make_rows(12)

    def handler(req):
        off = int(req.headers.get("x-cursor", "0"))
        headers = {"x-next-cursor": str(off + 5)} if off + 5 < len(rows) else {}
        return 200, headers, rows[off : off + 5]

    server.route("GET", "/h", handler)
    with client(server) as api:
        got = list(
            api.paginate(
                "/h",
                paginator={
                    "type": "cursor",
                    "cursor_header": "X-Next-Cursor",
                    "cursor_request_header": "X-Cursor",
                },
            )
        )
    assert ids(got) == list(range(12))
    assert [r.headers.get("x-cursor") for r in server.requests] == [None, "5", "10"]


def test_cursor_next_url_is_followed(server):
    rows = make_rows(9)

    def handler(req):
        off = int(req.arg("start", "0"))
        nxt = f"{server.url}/u?start={off + 4}" if off + 4 < len(rows) else None
        return 200, {}, {"results": rows[off : off + 4], "next": nxt}

    server.route("GET", "/u", handler)
    with client(server) as api:
        got = list(api.paginate("/u", records_path="results", paginator="cursor"))
    assert ids(got) == list(range(9))


def test_cursor_loop_is_detected_naming_url_and_token(server):
    calls = []

    def handler(req):
        calls.append(req.arg("cursor"))
        # a buggy API: page 3 hands back the token of page 2 again
        nxt = {None: "AAA", "AAA": "BBB", "BBB": "AAA"}[req.arg("cursor")]
        return 200, {}, {"records": [{"id": len(calls)}], "next": nxt}

    server.route("GET", "/loop", handler)
    with client(server) as api, pytest.raises(PaginationError) as ei:
        list(api.paginate("/loop", records_path="records", paginator={"type": "cursor"}))
    msg = str(ei.value)
    assert "'AAA'" in msg and "/loop" in msg and "cursor" in msg
    assert calls == [None, "AAA", "BBB"]


def test_cursor_same_token_twice_in_a_row_is_a_loop(server):
    server.route("GET", "/same", lambda req: (200, {}, {"records": [{"id": 1}], "next": "XYZ"}))
    with client(server) as api, pytest.raises(PaginationError, match="XYZ"):
        list(api.paginate("/same", records_path="records", paginator={"type": "cursor"}))
    assert len(server.requests) == 2


# ---------------------------------------------------------------------------------- link header
def test_link_header_follows_rel_next(server):
    rows = make_rows(23)

    def handler(req):
        page = int(req.arg("page", "1"))
        links = [f'<{server.url}/l?page=1>; rel="first"']
        if page * 10 < len(rows):
            links.append(f'</l?page={page + 1}&per_page=10>; rel="next"')  # relative link
        return 200, {"Link": ", ".join(links)}, rows[(page - 1) * 10 : page * 10]

    server.route("GET", "/l", handler)
    with client(server) as api:
        got = list(api.paginate("/l", paginator={"type": "link_header"}, params={"per_page": 10}))
    assert ids(got) == list(range(23))
    assert [r.arg("page") for r in server.requests] == [None, "2", "3"]


def test_parse_link_header():
    value = (
        '<https://api.example.com/x?page=2>; rel="next", <https://api.example.com/x?page=9>; '
        'rel="last", <https://api.example.com/x?page=1>; rel="first prev"'
    )
    links = parse_link_header(value)
    assert links["next"] == "https://api.example.com/x?page=2"
    assert links["last"] == "https://api.example.com/x?page=9"
    assert links["first"] == links["prev"] == "https://api.example.com/x?page=1"
    assert parse_link_header("") == {}


def test_single_page(server):
    server.route("GET", "/one", lambda req: (200, {}, {"records": [{"id": 1}, {"id": 2}], "next": "x"}))
    with client(server) as api:
        assert ids(list(api.paginate("/one", records_path="records"))) == [1, 2]
    assert len(server.requests) == 1


# ---------------------------------------------------------------------------------- errors, unit
def test_unknown_paginator_lists_known_names(plugins):
    with pytest.raises(UnknownPluginError) as ei:
        create_plugin("paginators", {"type": "offsett"})
    msg = str(ei.value)
    for name in ("cursor", "link_header", "offset", "page_number", "single_page"):
        assert name in msg


def test_invalid_paginator_option_names_the_field(plugins):
    with pytest.raises(ConfigError) as ei:
        create_plugin("paginators", {"type": "offset", "limit": 0})
    assert "limit" in str(ei.value) and "offset" in str(ei.value)
    with pytest.raises(ConfigError, match="offset_parm"):
        create_plugin("paginators", {"type": "offset", "offset_parm": "o"})
    with pytest.raises(ConfigError, match="cursor_path"):
        create_plugin("paginators", {"type": "cursor", "cursor_path": None})


def test_records_path_missing_is_an_error_naming_the_url(server):
    server.route("GET", "/x", lambda req: (200, {}, {"items": []}))
    with client(server) as api, pytest.raises(Exception) as ei:
        list(api.paginate("/x", records_path="records"))
    assert "records" in str(ei.value) and "/x" in str(ei.value)


def test_custom_paginator_subclass_token_model():
    class Doubling(Paginator[int]):
        name = "doubling"

        def start_value(self) -> int:
            return 1

        def prepare(self, request: PageRequest) -> None:
            request.params["n"] = self.current_value

        def get_next(self, response: Response, records: Any) -> int:
            return int(self.current_value or 0) * 2

    p = Doubling({"max_pages": 4})
    seen = []
    while not p.finished:
        req = PageRequest(url="/x")
        p.prepare(req)
        seen.append(req.params["n"])
        p.advance(Response(status_code=200, url="http://h/x", data={}), [{"a": req.params["n"]}])
    assert seen == [1, 2, 4, 8]
    with pytest.raises(PaginationError):
        p.advance(Response(status_code=200, url="http://h/x", data={}), [])
    p.reset()
    assert p.current_value == 1 and not p.finished


def test_get_path():
    doc = {"a": {"b": [{"c": 1}, {"c": 2}]}, "n": None}
    assert get_path(doc, "a.b.1.c") == 2
    assert get_path(doc, "$.a.b[0].c") == 1
    assert get_path(doc, "n") is None
    assert get_path(doc, "a.x") is MISSING
    assert get_path(doc, "") is doc
