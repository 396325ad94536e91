"""The lean path's wire layer (``adapters._http_wire``): page requests on ``http.client`` keep-alive
connections send the bytes httpx sends, and give the answers, errors and retries httpx's path gives
(content encodings, chunked bodies, a server closing a kept-alive connection, timeouts, refused
connections, redirects, cookies, HTTPS, threads)."""

from __future__ import annotations

import gzip
import json
import socket
import ssl
import threading
import zlib
from collections.abc import Callable
from typing import Any

import pytest

from dc_api_x.adapters._http_client import drop_credentials_leaving_origin
from dc_api_x.adapters._http_decode import read_body
from dc_api_x.adapters._http_lean import LeanSender
from dc_api_x.adapters._http_wire import WireConnections, WireStream, _readable, header_block, usable
from dc_api_x.adapters._httpx import httpx

from .conftest import items_adapter, make_rows, read_all

Answer = Callable[[bytes], tuple[bytes, bool]]


class RawServer:
    """A socket server on 127.0.0.1 that records each request's bytes as received and answers with
    the bytes ``answer(request)`` gives (``(bytes, close)``: close the connection after it)."""

    def __init__(self, answer: Answer, *, context: ssl.SSLContext | None = None) -> None:
        self.answer = answer
        self.requests: list[bytes] = []
        self.connections = 0
        self.context = context
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        scheme = "https" if self.context else "http"
        return f"{scheme}://127.0.0.1:{self._sock.getsockname()[1]}"

    def _serve(self) -> None:
        while not self._stop:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        try:
            if self.context is not None:
                conn = self.context.wrap_socket(conn, server_side=True)
            buf = b""
            while True:
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                head, buf = buf.split(b"\r\n\r\n", 1)
                request = head + b"\r\n\r\n"
                self.requests.append(request)
                out, close = self.answer(request)
                if out:
                    conn.sendall(out)
                if close:
                    return
        except (OSError, ssl.SSLError):
            return
        finally:
            conn.close()

    def close(self) -> None:
        self._stop = True
        self._sock.close()


def page_answer(
    rows: list[dict[str, Any]], *, encode: Callable[[bytes], tuple[bytes, bytes]] | None = None
) -> Answer:
    """An offset route's pages (``?offset=&limit=``), ``encode`` giving (body, extra header lines)."""

    def answer(request: bytes) -> tuple[bytes, bool]:
        target = request.split(b" ", 2)[1].decode()
        q = dict(p.split("=", 1) for p in target.split("?", 1)[1].split("&") if "=" in p)
        off, lim = int(q.get("offset", 0)), int(q.get("limit", 10))
        body = json.dumps({"records": rows[off : off + lim], "total": len(rows)}).encode()
        extra = b""
        if encode is not None:
            body, extra = encode(body)
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + extra
        if b"chunked" not in extra:
            head += b"Content-Length: %d\r\n" % len(body)
        return head + b"\r\n" + body, False

    return answer


@pytest.fixture
def raw_server() -> Any:
    made: list[RawServer] = []

    def make(answer: Answer, **kw: Any) -> RawServer:
        srv = RawServer(answer, **kw)
        made.append(srv)
        return srv

    yield make
    for srv in made:
        srv.close()


def _httpx_only(adapter: Any) -> None:
    adapter._lean = LeanSender(drop_credentials_leaving_origin)
    adapter._lean.parts = None  # httpx's own path for every request


def test_the_wire_sends_the_bytes_httpx_sends(raw_server):
    rows = make_rows(45)
    srv = raw_server(page_answer(rows))
    kw: dict[str, Any] = {
        "params": {"api": "k v", "q": "a b+c/d?e&f=g#h%2F%zz", "u": "café ☃"},
        "headers": {"X-Trace": "t", "accept": "application/json", "X-Empty": "", "X-Multi": "a,  b"},
    }
    a = items_adapter(srv.url, **kw)
    assert read_all(a) == rows
    assert a._lean._wire is not None and a._lean._wire.opened == 1 and a._lean.sent == 4
    wire = list(srv.requests)
    a.close()
    srv.requests.clear()
    b = items_adapter(srv.url, **kw)
    _httpx_only(b)
    assert read_all(b) == rows
    assert b._lean.sent == 0
    assert srv.requests == wire  # byte for byte: request line, header order, case and values
    b.close()
    srv.requests.clear()
    c = items_adapter(srv.url, **kw)  # the lean path on httpcore (no wire): the same bytes too
    c._lean = LeanSender(drop_credentials_leaving_origin)
    c._lean.use_wire = False
    assert read_all(c) == rows
    assert c._lean.sent == 4 and c._lean._wire is None
    assert srv.requests == wire
    c.close()


def test_a_header_h11_would_refuse_takes_httpx_path_and_its_error(raw_server):
    assert header_block([(b"X-A", b"v"), (b"HOST", b"h")]) == b"HOST: h\r\nX-A: v\r\n"  # Host first
    assert header_block([(b"Host", b"h"), (b"X-A", b"v\x01")]) == b"Host: h\r\nX-A: v\x01\r\n"
    assert header_block([(b"X-A", b"v")]) is None  # no Host
    assert header_block([(b"Host", b"h"), (b"host", b"h")]) is None
    assert header_block([(b"Host", b"h"), (b"X-A", b" v")]) is None
    assert header_block([(b"Host", b"h"), (b"X-A", b"v\x0bw")]) is None
    assert header_block([(b"Host", b"h"), (b"X A", b"v")]) is None
    assert header_block([(b"Host", b"h"), (b"Transfer-Encoding", b"Chunked")]) is None
    srv = raw_server(page_answer(make_rows(5)))
    client = httpx.Client(base_url=srv.url, event_hooks={"response": [drop_credentials_leaving_origin]})
    client.get("/items", params={"offset": 0})  # opened
    sender = LeanSender(drop_credentials_leaving_origin)
    req = sender.request(client, "GET", "/items", {"params": {"offset": 0}, "headers": {"X-Bad": "a\x0cb"}})
    assert req is not None
    with pytest.raises(httpx.LocalProtocolError):
        sender.send(client, req)
    assert sender._wire.opened == 0
    sender.close()
    client.close()


def _gzip(body: bytes) -> tuple[bytes, bytes]:
    return gzip.compress(body), b"Content-Encoding: gzip\r\n"


def _deflate(body: bytes) -> tuple[bytes, bytes]:
    return zlib.compress(body), b"Content-Encoding: deflate\r\n"


def _chunked(body: bytes) -> tuple[bytes, bytes]:
    parts = [body[i : i + 97] for i in range(0, len(body), 97)]
    out = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
    return out, b"Transfer-Encoding: chunked\r\n"


def _gzip_chunked(body: bytes) -> tuple[bytes, bytes]:
    out, head = _chunked(gzip.compress(body))
    return out, head + b"Content-Encoding: gzip\r\n"


@pytest.mark.parametrize("encode", [_gzip, _deflate, _chunked, _gzip_chunked])
def test_encoded_and_chunked_answers_decode_as_httpx_decodes_them(raw_server, encode):
    rows = make_rows(35)
    srv = raw_server(page_answer(rows, encode=encode))
    a = items_adapter(srv.url)
    assert read_all(a) == rows
    assert a._lean._wire.opened == 1 and a._lean.sent == 3  # one kept-alive connection
    a.close()


def test_a_wire_response_is_httpx_response(raw_server):
    srv = raw_server(page_answer(make_rows(30), encode=_gzip))
    client = httpx.Client(base_url=srv.url, event_hooks={"response": [drop_credentials_leaving_origin]})
    full = client.get("/items", params={"offset": 10})
    sender = LeanSender(drop_credentials_leaving_origin)
    req = sender.request(client, "GET", "/items", {"params": {"offset": 10}})
    resp = sender.send(client, req)
    assert type(resp.stream) is WireStream
    assert read_body(resp) == full.content
    assert resp.headers.raw == full.headers.raw
    assert (resp.status_code, resp.reason_phrase, resp.http_version) == (200, "OK", "HTTP/1.1")
    assert resp.num_bytes_downloaded == full.num_bytes_downloaded
    assert resp.request is req and resp.is_closed and resp.elapsed.total_seconds() >= 0
    assert resp.json() == full.json()
    # the generic read (Response.read / iter_bytes) decodes the same
    resp2 = sender.send(client, sender.request(client, "GET", "/items", {"params": {"offset": 10}}))
    assert resp2.read() == full.content
    assert sender._wire.opened == 1
    sender.close()
    client.close()


def test_a_kept_alive_connection_the_server_closed_is_replaced_and_the_page_sent_again(raw_server):
    rows = make_rows(40)
    inner = page_answer(rows)
    served = {"n": 0}

    def answer(request: bytes) -> tuple[bytes, bool]:
        served["n"] += 1
        if b"offset=20" in request and served.setdefault("dropped", 0) == 0:
            served["dropped"] = 1
            return b"", True  # closes the kept-alive connection without an answer
        return inner(request)

    srv = raw_server(answer)
    a = items_adapter(srv.url)
    assert read_all(a) == rows
    assert a._lean._wire.resent == 1
    assert a.retry_counters.snapshot()["retries"] == 0  # not a retry: the same send, once more
    a.close()


def test_an_idle_connection_the_server_closed_is_not_used(raw_server):
    rows = make_rows(20)
    inner = page_answer(rows)

    def answer(request: bytes) -> tuple[bytes, bool]:
        out, _ = inner(request)
        return out, True  # answers, then closes (no Connection: close header)

    srv = raw_server(answer)
    client = httpx.Client(base_url=srv.url, event_hooks={"response": [drop_credentials_leaving_origin]})
    client.get("/items", params={"offset": 0})
    sender = LeanSender(drop_credentials_leaving_origin)
    for off in (0, 10, 0):
        resp = sender.send(client, sender.request(client, "GET", "/items", {"params": {"offset": off}}))
        assert json.loads(read_body(resp))["records"] == rows[off : off + 10]
        for _ in range(200):  # until the server's close arrived on the idle connection
            idle = [sock for socks in sender._wire._idle.values() for sock, _ in socks]
            if not idle or _readable(idle[0]):
                break
            threading.Event().wait(0.01)
    assert sender._wire.opened == 3 and sender._wire.resent == 0  # dropped before use, not resent
    sender.close()
    client.close()


def test_a_delete_on_a_reused_connection_is_not_sent_again(raw_server):
    def answer(request: bytes) -> tuple[bytes, bool]:
        if request.startswith(b"DELETE"):
            return b"", True
        return b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", False

    srv = raw_server(answer)
    client = httpx.Client(base_url=srv.url, event_hooks={"response": [drop_credentials_leaving_origin]})
    client.get("/x")
    sender = LeanSender(drop_credentials_leaving_origin)
    read_body(sender.send(client, sender.request(client, "GET", "/x", {"params": {"a": 1}})))
    req = sender.request(client, "DELETE", "/x", {"params": {"a": 1}})  # (a POST has a body: httpx's path)
    with pytest.raises(httpx.RemoteProtocolError, match="Server disconnected") as info:
        sender.send(client, req)
    assert info.value.request is req
    assert sender._wire.resent == 0
    sender.close()
    client.close()


def test_a_read_timeout_is_httpx_read_timeout_and_retried(raw_server):
    rows = make_rows(20)
    inner = page_answer(rows)
    state = {"stalled": False}

    def answer(request: bytes) -> tuple[bytes, bool]:
        if b"offset=10" in request and not state["stalled"]:
            state["stalled"] = True
            threading.Event().wait(0.5)  # longer than the read timeout
        return inner(request)

    srv = raw_server(answer)
    a = items_adapter(srv.url, timeout=0.2, retries={"backoff_factor": 0, "max_attempts": 3})
    a.sleep = lambda s: None
    assert read_all(a) == rows
    snap = a.retry_counters.snapshot()
    assert snap["retries"] == 1 and "transport" in json.dumps(snap)
    a.close()


def test_timeouts_and_errors_are_httpx_exceptions_with_the_request(raw_server, monkeypatch):
    srv = raw_server(lambda r: (b"", True))
    client = httpx.Client(base_url=srv.url, timeout=httpx.Timeout(5, read=0.2))
    wire = WireConnections(client._transport._pool)
    req = client.build_request("GET", "/x?token=s3cret")
    client._set_timeout(req)
    with pytest.raises(httpx.RemoteProtocolError, match="Server disconnected") as info:
        wire.send(req)  # a new connection closed without an answer: not sent again
    assert info.value.request is req and wire.resent == 0

    def slow(request: bytes) -> tuple[bytes, bool]:
        threading.Event().wait(1)
        return b"", True

    srv.answer = slow
    with pytest.raises(httpx.ReadTimeout) as rt:
        wire.send(req)
    assert rt.value.request is req and "s3cret" not in str(rt.value)

    def refuse(*a: Any, **k: Any) -> Any:
        raise TimeoutError("timed out")

    monkeypatch.setattr(socket, "create_connection", refuse)
    with pytest.raises(httpx.ConnectTimeout) as ct:
        wire.send(req)
    assert ct.value.request is req
    monkeypatch.undo()
    srv.answer = lambda r: (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345", True)
    resp = wire.send(req)
    with pytest.raises(httpx.RemoteProtocolError, match="received 5 bytes, expected 10"):
        resp.read()
    srv.answer = lambda r: (b"NOT HTTP\r\n\r\n", True)
    with pytest.raises(httpx.RemoteProtocolError):
        wire.send(req)
    wire.close()
    client.close()


def test_a_refused_connection_is_a_connect_error_retried_as_before():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens on it once closed
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}")
    wire = WireConnections(client._transport._pool)
    req = client.build_request("GET", "/items?key=s3cret")
    client._set_timeout(req)
    with pytest.raises(httpx.ConnectError) as info:
        wire.send(req)
    assert info.value.request is req and "s3cret" not in str(info.value)
    client.close()


def test_redirects_and_cookies_on_the_wire_are_handed_back(raw_server):
    rows = make_rows(40)
    inner = page_answer(rows)

    def answer(request: bytes) -> tuple[bytes, bool]:
        target = request.split(b" ", 2)[1]
        if target == b"/items?offset=20&limit=10":
            return (
                b"HTTP/1.1 307 Temporary Redirect\r\nLocation: /items?offset=20&limit=10&moved=1\r\n"
                b"Content-Length: 0\r\n\r\n",
                False,
            )
        out, close = inner(request)
        if b"offset=10&" in target:
            out = out.replace(b"\r\n\r\n", b"\r\nSet-Cookie: session=abc; Path=/\r\n\r\n", 1)
        return out, close

    srv = raw_server(answer)
    a = items_adapter(srv.url)
    assert read_all(a) == rows
    assert a._lean.handed_back == 0  # the cookie: httpx's path from page 3 on (it sends it)
    assert a.client.cookies["session"] == "abc"
    targets = [r.split(b" ", 2)[1] for r in srv.requests]
    assert b"/items?offset=20&limit=10&moved=1" in targets
    assert all(b"Cookie: session=abc" in r for r in srv.requests if b"offset=30" in r)
    a.close()
    srv.requests.clear()
    srv.answer = lambda r: (
        answer(r)[0].replace(b"\r\nSet-Cookie: session=abc; Path=/", b""),
        False,
    )
    b = items_adapter(srv.url)
    assert read_all(b) == rows
    assert b._lean.handed_back == 1 and b._lean._wire.opened == 1
    b.close()


def test_threads_sharing_one_client_each_get_their_answer(raw_server):
    rows = make_rows(400)
    srv = raw_server(page_answer(rows))
    client = httpx.Client(base_url=srv.url, event_hooks={"response": [drop_credentials_leaving_origin]})
    client.get("/items", params={"offset": 0})
    sender = LeanSender(drop_credentials_leaving_origin)
    errors: list[BaseException] = []

    def work(start: int) -> None:
        try:
            for off in range(start, 400, 40):
                resp = sender.send(
                    client, sender.request(client, "GET", "/items", {"params": {"offset": off}})
                )
                assert json.loads(read_body(resp))["records"] == rows[off : off + 10]
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i * 10,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sender.sent == 40 and sender._wire.opened <= 4
    sender.close()
    client.close()


def test_closing_the_adapter_closes_the_wire_connections(raw_server):
    srv = raw_server(page_answer(make_rows(25)))
    a = items_adapter(srv.url)
    read_all(a)
    wire = a._lean._wire
    assert sum(map(len, wire._idle.values())) == 1
    a.close()
    assert wire.closed and not wire._idle


def test_only_httpcore_plain_pool_takes_the_wire():
    assert usable(httpx.HTTPTransport()._pool)
    assert usable(httpx.HTTPTransport(verify=False, limits=httpx.Limits(max_keepalive_connections=3))._pool)
    assert not usable(httpx.HTTPTransport(retries=2)._pool)
    assert not usable(httpx.HTTPTransport(local_address="0.0.0.0")._pool)
    assert not usable(httpx.HTTPTransport(socket_options=[(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)])._pool)
    assert not usable(httpx.HTTPTransport(proxy="http://127.0.0.1:1")._pool)
    assert not usable(httpx.HTTPTransport(uds="/tmp/none.sock")._pool)
    assert not usable(httpx.HTTPTransport(http1=False, http2=True)._pool)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: Any) -> Any:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    d = tmp_path_factory.mktemp("tls")
    cert = ca.issue_cert("127.0.0.1")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    ca.cert_pem.write_to_path(str(d / "ca.pem"))
    return server_ctx, str(d / "ca.pem")


def test_https_takes_the_wire_with_the_client_tls_settings(raw_server, tls):
    server_ctx, ca = tls
    rows = make_rows(30)
    srv = raw_server(page_answer(rows), context=server_ctx)
    a = items_adapter(srv.url, verify=ca)
    assert read_all(a) == rows
    assert a._lean._wire is not None and a._lean._wire.opened == 1 and a._lean.sent == 2
    a.close()
    b = items_adapter(srv.url)  # the system CAs: the test CA is not trusted
    with pytest.raises(Exception, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
        read_all(b)
    b.close()


def test_the_pool_max_connections_bounds_the_requests_in_flight(raw_server):
    srv = raw_server(page_answer(make_rows(30)))
    client = httpx.Client(
        base_url=srv.url,
        limits=httpx.Limits(max_connections=1),
        timeout=httpx.Timeout(5, pool=0.1),
        event_hooks={"response": [drop_credentials_leaving_origin]},
    )
    client.get("/items", params={"offset": 0})
    sender = LeanSender(drop_credentials_leaving_origin)

    def send(off: int) -> Any:
        return sender.send(client, sender.request(client, "GET", "/items", {"params": {"offset": off}}))

    held = send(0)  # its answer not read yet: the one slot is taken
    with pytest.raises(httpx.PoolTimeout) as info:
        send(10)
    assert info.value.request is not None
    assert json.loads(read_body(held))["records"][0]["id"] == 0  # read and closed: the slot is free
    assert json.loads(read_body(send(10)))["records"][0]["id"] == 10
    assert sender._wire.opened == 1
    sender.close()
    client.close()


def test_an_informational_answer_before_the_page_is_skipped_as_h11_skips_it(raw_server):
    rows = make_rows(30)
    inner = page_answer(rows)

    def answer(request: bytes) -> tuple[bytes, bool]:
        out, close = inner(request)
        return b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n" + out, close

    srv = raw_server(answer)
    a = items_adapter(srv.url)
    assert read_all(a) == rows
    assert a._lean._wire.opened == 1 and a._lean.sent == 2  # the same connection after each
    a.close()


def test_an_answer_is_read_while_another_thread_imports_the_wire_module(monkeypatch):
    """A partition worker reads an answer while another worker's first request imports
    ``_http_wire`` (in ``sys.modules``, its classes not defined yet): the answer is read, no
    "partially initialized module" error (seen with 4 workers on W4)."""
    import sys
    import types

    import httpx

    monkeypatch.setitem(
        sys.modules, "dc_api_x.adapters._http_wire", types.ModuleType("dc_api_x.adapters._http_wire")
    )
    resp = httpx.Response(200, stream=httpx.ByteStream(b'{"records": []}'))
    assert read_body(resp) == b'{"records": []}'
