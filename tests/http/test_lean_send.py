"""The lean send path of page requests (``adapters._http_lean``): the same requests on the wire and
the same records as httpx's ``build_request`` + ``send``, and httpx's own path whenever the client or
the request is not plain (auth, cookies, hooks, another transport, redirects)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from dc_api_x import create_adapter
from dc_api_x.adapters._http_client import drop_credentials_leaving_origin
from dc_api_x.adapters._http_lean import LeanSender
from dc_api_x.adapters._http_wire import header_block
from dc_api_x.adapters._httpx import httpx

from .conftest import cursor_route, items_adapter, make_rows, offset_route, read_all


def _adapter(server: Any, **kw: Any) -> Any:
    return items_adapter(server.url, **kw)


def _wire(server: Any) -> list[tuple[str, str, list[tuple[str, str]]]]:
    return [(r.method, r.raw_path, sorted(r.headers.items())) for r in server.requests]


def test_a_paged_read_sends_its_pages_the_lean_way_with_the_same_requests(server):
    rows = make_rows(95)
    server.route("GET", "/items", offset_route(rows))
    a = _adapter(server, params={"api": "k v"}, headers={"X-Trace": "t"})
    got = read_all(a)
    assert got == rows
    assert a._lean is not None and a._lean.sent == 9  # the first page came from discovery
    lean_wire = _wire(server)
    a.close()
    server.requests.clear()
    b = _adapter(server, params={"api": "k v"}, headers={"X-Trace": "t"})
    b._lean = LeanSender(drop_credentials_leaving_origin)
    b._lean.parts = None  # httpx's own path for every request
    assert read_all(b) == rows
    assert b._lean.sent == 0
    assert _wire(server) == lean_wire  # byte for byte the same request lines and headers
    b.close()


def test_cursor_pages_take_the_lean_path(server):
    rows = make_rows(45)
    server.route("GET", "/c", cursor_route(rows, size=10))
    a = create_adapter(
        {
            "adapter": "http",
            "base_url": server.url,
            "streams": [{"name": "c", "path": "/c", "records_path": "records", "params": {"limit": 10}}],
            "pagination": {"type": "cursor", "cursor_path": "next", "cursor_param": "cursor"},
        }
    )
    assert read_all(a) == rows
    assert a._lean.sent == 4
    a.close()


PARAMS: list[dict[str, Any]] = [
    {"offset": 0, "limit": 100},
    {"cursor": "b2Q6MTAw==", "limit": 100},
    {"q": "a b+c/d?e&f=g#h%2F%zz", "u": "café ☃", "empty": ""},
    {"flag": True, "off": False, "none": None, "f": 1.5, "big": 12345678901234567890},
    {"multi": ["x", "y z", 3], "t": ("p", "q")},
    {"api": "override"},  # replaces the client's parameter of that name
    {"p": "[]:@!$'()*,;"},
]


@pytest.mark.parametrize("params", PARAMS)
@pytest.mark.parametrize("path", ["/items", "items", "/a/b%20c/items", "/items?fixed=1&api=path"])
def test_the_lean_request_is_what_build_request_makes(params, path):
    client = httpx.Client(
        base_url="http://example.test/v1/",
        params={"api": "key=1&x", "z": "last"},
        headers={"X-Key": "v"},
        event_hooks={"response": [drop_credentials_leaving_origin]},
    )
    client._state = type(client._state).OPENED  # as after the first request
    sender = LeanSender(drop_credentials_leaving_origin)
    for headers in (None, {"Accept": "application/json", "X-Page": "2"}):
        kwargs: dict[str, Any] = {"params": params}
        if headers:
            kwargs["headers"] = headers
        for _ in range(2):  # the template's first (checked) and a later request
            lean = sender.request(client, "GET", path, kwargs)
            full = client.build_request("GET", path, **kwargs)
            client._set_timeout(full)
            assert lean is not None
            assert str(lean.url) == str(full.url)
            assert lean.url.raw_path == full.url.raw_path
            assert lean.headers.raw == full.headers.raw
            assert lean.extensions == full.extensions
            assert lean.method == full.method and lean.content == full.content
            assert _wire_bytes(lean) == _h11_bytes(full)  # the wire layer's bytes are h11's
    assert all(t.usable for t in sender._templates.values())
    client.close()


def _h11_bytes(request: httpx.Request) -> bytes:
    """What httpcore's h11 connection writes for ``request`` (no body)."""
    import h11

    conn = h11.Connection(h11.CLIENT)
    event = h11.Request(method=request.method, target=request.url.raw_path, headers=request.headers.raw)
    return conn.send(event) or b""


def _wire_bytes(request: httpx.Request) -> bytes:
    """What the lean path's wire layer (``_http_wire``) writes for ``request``."""
    head = header_block(request.headers.raw)
    assert head is not None
    return b"%s %s HTTP/1.1\r\n%s\r\n" % (request.method.encode(), request.url.raw_path, head)


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Key": "v"},
        {"host": "other.test:8080", "X-A": "1"},  # a Host of the caller's, not first: h11 puts it first
        {"X-Obs": b"caf\xe9", "X-Tab": "a\tb", "X-Empty": "", "ACCEPT": "*/*"},
    ],
)
def test_the_wire_bytes_are_h11_bytes(headers):
    client = httpx.Client(base_url="http://example.test/", headers=headers)
    request = client.build_request("GET", "/p", params={"q": "a b", "n": 1})
    assert _wire_bytes(request) == _h11_bytes(request)
    client.close()


def test_a_client_changed_after_the_template_gets_a_new_one():
    client = httpx.Client(base_url="http://example.test/", event_hooks={"response": []})
    client._state = type(client._state).OPENED
    sender = LeanSender(drop_credentials_leaving_origin)
    kwargs = {"params": {"offset": 10}}
    assert "x-late" not in sender.request(client, "GET", "/items", kwargs).headers
    client.headers["X-Late"] = "1"  # in place
    assert sender.request(client, "GET", "/items", kwargs).headers["x-late"] == "1"
    client.params = {"k": "v"}
    assert sender.request(client, "GET", "/items", kwargs).url.params["k"] == "v"
    client.timeout = 3.0
    assert sender.request(client, "GET", "/items", kwargs).extensions["timeout"]["read"] == 3.0
    client.base_url = "http://other.test/api/"
    assert (
        str(sender.request(client, "GET", "/items", kwargs).url)
        == "http://other.test/api/items?k=v&offset=10"
    )
    client.close()


def _plain_client() -> httpx.Client:
    client = httpx.Client(
        base_url="http://example.test/", event_hooks={"response": [drop_credentials_leaving_origin]}
    )
    client._state = type(client._state).OPENED
    return client


def test_a_client_that_is_not_plain_takes_httpx_path():
    sender = LeanSender(drop_credentials_leaving_origin)
    kwargs = {"params": {"offset": 10}}
    c = _plain_client()
    assert sender.request(c, "GET", "/items", kwargs) is not None
    assert sender.request(c, "GET", "/items", {}) is None  # no parameters
    assert sender.request(c, "GET", "/items", {**kwargs, "json": {"a": 1}}) is None  # a body
    assert sender.request(c, "GET", "/items", {**kwargs, "timeout": 1}) is None
    c.event_hooks = {"request": [lambda r: None], "response": [drop_credentials_leaving_origin]}
    assert sender.request(c, "GET", "/items", kwargs) is None
    c.event_hooks = {"response": [drop_credentials_leaving_origin, lambda r: None]}
    assert sender.request(c, "GET", "/items", kwargs) is None
    c = _plain_client()
    c.auth = ("u", "p")
    assert sender.request(c, "GET", "/items", kwargs) is None
    c = _plain_client()
    c.cookies.set("s", "1", domain="example.test")
    assert sender.request(c, "GET", "/items", kwargs) is None
    c = _plain_client()
    c._transport = httpx.MockTransport(lambda r: httpx.Response(200))
    assert sender.request(c, "GET", "/items", kwargs) is None
    c = httpx.Client(
        base_url="http://example.test/",
        mounts={"http://": httpx.HTTPTransport()},
        event_hooks={"response": [drop_credentials_leaving_origin]},
    )
    c._state = type(c._state).OPENED
    assert sender.request(c, "GET", "/items", kwargs) is None  # a mounted transport
    c = _plain_client()
    c.close()
    assert sender.request(c, "GET", "/items", kwargs) is None
    c = httpx.Client(base_url="http://u:p@example.test/", event_hooks={"response": []})
    c._state = type(c._state).OPENED
    assert sender.request(c, "GET", "/items", kwargs) is None  # user info in the URL
    c = _plain_client()
    log = logging.getLogger("httpx")
    old = log.level
    log.setLevel(logging.INFO)  # httpx logs each request: its path does
    try:
        assert sender.request(c, "GET", "/items", kwargs) is None
    finally:
        log.setLevel(old)


def test_an_auth_provider_keeps_httpx_auth_flow(server):
    rows = make_rows(30)
    seen: list[str | None] = []

    def handler(req: Any) -> Any:
        seen.append(req.headers.get("authorization"))
        return offset_route(rows)(req)

    server.route("GET", "/items", handler)
    a = _adapter(server, auth={"type": "bearer", "token": "tok-123"})
    assert read_all(a) == rows
    assert a._lean is None or a._lean.sent == 0
    assert seen and all(h == "Bearer tok-123" for h in seen)
    a.close()


def test_a_redirect_on_the_lean_path_is_followed_by_httpx(server):
    rows = make_rows(40)
    inner = offset_route(rows)

    def handler(req: Any) -> Any:
        if req.arg("offset") == "20" and not req.arg("moved"):
            return 307, {"location": "/items?offset=20&limit=10&moved=1"}, b""
        return inner(req)

    server.route("GET", "/items", handler)
    a = _adapter(server)
    assert read_all(a) == rows
    assert a._lean.handed_back == 1
    paths = [r.raw_path for r in server.requests]
    # the redirected page was asked twice (lean, then httpx's path that follows the redirect)
    assert paths.count("/items?offset=20&limit=10") == 2
    assert "/items?offset=20&limit=10&moved=1" in paths
    a.close()


def test_a_cookie_set_on_a_lean_page_is_sent_with_the_next_pages(server):
    rows = make_rows(40)
    inner = offset_route(rows)

    def handler(req: Any) -> Any:
        status, headers, body = inner(req)
        if req.arg("offset") == "10":
            headers = {**headers, "set-cookie": "session=abc; Path=/"}
        return status, headers, body

    server.route("GET", "/items", handler)
    a = _adapter(server)
    assert read_all(a) == rows
    cookies = {r.arg("offset"): r.headers.get("cookie") for r in server.requests}
    assert cookies["10"] is None and cookies["20"] == "session=abc" and cookies["30"] == "session=abc"
    assert a.client.cookies["session"] == "abc"
    a.close()


def test_a_dropped_connection_on_the_lean_path_is_retried(server):
    rows = make_rows(30)
    inner = offset_route(rows)
    calls = {"n": 0}

    def handler(req: Any) -> Any:
        if req.arg("offset") == "10":
            calls["n"] += 1
            if calls["n"] == 1:  # a body cut short: Content-Length larger than the body
                return 200, {"content-type": "application/json", "content-length": "500"}, b'{"rec'
        return inner(req)

    server.route("GET", "/items", handler)
    a = _adapter(server, retries={"backoff_factor": 0, "max_attempts": 3})
    a.sleep = lambda s: None
    assert read_all(a) == rows
    assert calls["n"] == 2
    assert a.retry_counters.snapshot()["retries"] == 1
    a.close()
