"""The wire layer of the lean send path (:mod:`._http_lean`): page requests sent on the standard
library's ``http.client`` keep-alive connections instead of httpcore's pool and h11.

A W4 page request costs about 100-140 us of CPU on ``http.client`` against 330+ us through httpcore +
h11 (the largest cost left of a one-worker paged read). What stays httpx's:

* the request: its bytes on the wire are what h11 writes for the same ``httpx.Request`` — the
  request line with the URL's ``raw_path`` and the request's raw headers in their order and case
  (``putrequest`` with ``skip_host`` / ``skip_accept_encoding``, one ``putheader`` each);
* the answer: an ``httpx.Response`` made from the raw status and headers (their bytes as sent) with a
  byte stream of the body, so ``Response.read`` / :func:`read_response` decode it with httpx's own
  content decoders (gzip, deflate, br, zstd) and charset rules;
* TLS: the ``SSLContext`` the client's transport built (``verify``, ``cert``, ``trust_env``), ALPN
  ``http/1.1`` as httpcore sets it, the URL's host as SNI and for the certificate check;
* timeouts: the request's ``timeout`` extension (``connect`` for the TCP connect and the TLS
  handshake, ``write`` for sending, ``read`` for the answer);
* errors: httpx's exception for what went wrong where, as httpcore maps it — ``ConnectError`` /
  ``ConnectTimeout`` (connect, TLS), ``WriteError`` / ``WriteTimeout``, ``ReadError`` /
  ``ReadTimeout``, ``RemoteProtocolError`` (a malformed answer, a server that closed the connection
  without an answer or before the end of the body) — with the request attached; the messages are
  the socket's or the protocol's, never the URL's;
* keep-alive: idle connections per (scheme, host, port), at most the pool's
  ``max_keepalive_connections`` kept, each for ``keepalive_expiry`` seconds; an idle connection the
  server closed (readable while idle) is dropped before use; a *reused* connection that fails before
  any answer (the server closed it meanwhile) is replaced and a ``GET`` sent once more on a new
  one, as httpcore's pool does.

Connections are taken by one thread at a time (under a lock, as the adapter's partition workers
share one client); the connection goes back when its answer was read to its end, else it is closed.
Only a client whose transport pool is httpcore's own plain ``ConnectionPool`` takes it (HTTP/1.1
only, no proxy, no ``uds`` / ``local_address`` / socket options / connect retries, its default
network backend), and only a request without extensions but ``timeout`` (see :func:`usable`).
"""

from __future__ import annotations

import datetime
import http.client
import re
import select
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

from ._httpx import httpx

__all__ = ["WireConnections", "WireStream", "header_block", "read_response", "usable"]

_RESEND_METHODS = frozenset({"GET"})
#: errors of a reused connection, before any answer, that mean the server closed it meanwhile
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


def usable(pool: Any) -> bool:
    """Whether ``pool`` (an ``HTTPTransport``'s ``_pool``) is httpcore's plain connection pool that
    this layer reproduces."""
    try:
        import httpcore
    except ImportError:  # pragma: no cover - httpx always has it
        return False
    return (
        type(pool) is httpcore.ConnectionPool
        and getattr(pool, "_http1", False) is True
        and getattr(pool, "_http2", True) is False
        and getattr(pool, "_retries", 1) == 0
        and getattr(pool, "_local_address", 1) is None
        and getattr(pool, "_uds", 1) is None
        and getattr(pool, "_socket_options", 1) is None
        and getattr(pool, "_proxy", 1) is None
        and type(getattr(pool, "_network_backend", None)) is httpcore.SyncBackend
    )


def _readable(sock: Any) -> bool:
    """An idle socket with something to read (the server closed it, or sent what it should not)."""
    try:
        if hasattr(select, "poll"):
            p = select.poll()
            p.register(sock, select.POLLIN)
            return bool(p.poll(0))
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return True


class WireConnections:
    """The idle keep-alive connections of one client (see the module docstring)."""

    def __init__(self, pool: Any) -> None:
        self.ssl_context = pool._ssl_context
        self.max_idle: int | None = pool._max_keepalive_connections
        self.expiry: float | None = pool._keepalive_expiry
        most = pool._max_connections
        #: requests in flight at most (the pool's ``max_connections``): a slot is taken for each
        #: request until its answer is closed, waiting at most the ``pool`` timeout
        self._slots = threading.BoundedSemaphore(most) if most is not None else None
        self._idle: dict[tuple[bytes, str, int], list[tuple[http.client.HTTPConnection, float]]] = {}
        self._lock = threading.Lock()
        self.closed = False
        self._alpn = False
        #: connections opened, and requests sent again on a new connection: for tests
        self.opened = 0
        self.resent = 0

    # -- connections -------------------------------------------------------------------------------
    def _take(self, key: tuple[bytes, str, int]) -> Any:
        now = time.monotonic()
        while True:
            with self._lock:
                idle = self._idle.get(key)
                if not idle:
                    return None
                sock, since = idle.pop()
            if (self.expiry is not None and now - since > self.expiry) or _readable(sock):
                sock.close()
                continue
            return sock

    def give_back(self, key: tuple[bytes, str, int], sock: Any) -> None:
        """An idle connection whose last answer was read to its end."""
        with self._lock:
            if not self.closed:
                idle = self._idle.setdefault(key, [])
                if self.max_idle is None or sum(map(len, self._idle.values())) < self.max_idle:
                    idle.append((sock, time.monotonic()))
                    return
        sock.close()

    def _open(self, key: tuple[bytes, str, int], timeout: Any) -> Any:
        """A new connection, as ``http.client.HTTPConnection.connect`` / ``HTTPSConnection.connect``
        and httpcore make it: TCP_NODELAY, then TLS with the client's context."""
        scheme, host, port = key
        sock = socket.create_connection((host, port), timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if scheme == b"https":
                ctx = self.ssl_context
                if not self._alpn:  # what httpcore sets on the same context before each handshake
                    ctx.set_alpn_protocols(["http/1.1"])
                    self._alpn = True
                sock = ctx.wrap_socket(sock, server_hostname=host)
        except BaseException:
            sock.close()
            raise
        self.opened += 1
        return sock

    def close(self) -> None:
        """Close the idle connections; those in use close when their answer is done."""
        with self._lock:
            self.closed = True
            idle, self._idle = self._idle, {}
        for socks in idle.values():
            for sock, _ in socks:
                sock.close()

    # -- one request -------------------------------------------------------------------------------
    def send(self, request: httpx.Request, head: bytes | None = None) -> httpx.Response | None:
        """Send ``request`` (no body) and give its ``httpx.Response``, its body not read yet (a
        :class:`WireStream`); ``None`` when its headers are not what ``http.client`` would send
        (httpx's path gives its error). ``head``: the request's header lines as
        :func:`header_block` gives them (the lean path's template keeps them)."""
        if head is None:
            head = header_block(request.headers.raw)
            if head is None:
                return None
        url = request.url
        scheme = url.raw_scheme
        port = url.port or (443 if scheme == b"https" else 80)
        key = (scheme, url.raw_host.decode("ascii"), port)
        timeout = request.extensions.get("timeout") or {}
        data = b"%s %s HTTP/1.1\r\n%s\r\n" % (request.method.encode("ascii"), url.raw_path, head)
        start = time.perf_counter()
        slots = self._slots
        if slots is not None and not slots.acquire(timeout=timeout.get("pool")):
            raise httpx.PoolTimeout("timed out waiting for a free connection", request=request)
        try:
            sock, answer = self._exchange(request, key, timeout, data)
        except BaseException:
            if slots is not None:
                slots.release()
            raise
        reason = answer.reason
        stream = WireStream(self, key, sock, answer, request, start)
        response = httpx.Response(
            status_code=answer.status,
            headers=_raw_headers(answer.msg),
            stream=stream,
            extensions={
                "http_version": b"HTTP/1.1" if answer.version == 11 else b"HTTP/1.0",
                "reason_phrase": reason.encode("iso-8859-1") if reason else b"",
            },
        )
        stream._response = response
        response.request = request
        return response

    def _exchange(
        self, request: httpx.Request, key: tuple[bytes, str, int], timeout: Any, data: bytes
    ) -> Any:
        """Send ``data`` on a kept-alive or new connection and read the answer's status line and
        headers: ``(socket, http.client.HTTPResponse)``."""
        method = request.method
        fresh = False  # after a reused connection failed: a new one
        while True:
            sock = None if fresh else self._take(key)
            reused = sock is not None
            if sock is None:
                try:
                    sock = self._open(key, timeout.get("connect"))
                except TimeoutError as exc:
                    raise httpx.ConnectTimeout(str(exc) or "timed out", request=request) from None
                except OSError as exc:
                    raise httpx.ConnectError(str(exc), request=request) from None
            writing = True
            try:
                # (settimeout is a system call, which releases the GIL: only when it changes)
                if sock.gettimeout() != (t := timeout.get("write")):
                    sock.settimeout(t)
                sock.sendall(data)
                writing = False
                if sock.gettimeout() != (t := timeout.get("read")):
                    sock.settimeout(t)
                reader: Any = _Reader(sock)
                answer = http.client.HTTPResponse(reader, method=method)
                answer.begin()
                while 100 < answer.status < 200 and answer.status != 101:
                    # an informational answer (103 Early Hints): skipped, as h11 skips it
                    # (http.client skips only 100); the next one is read from the same buffer
                    answer.fp = None  # type: ignore[assignment]
                    answer = http.client.HTTPResponse(reader, method=method)
                    answer.begin()
                return sock, answer
            except BaseException as exc:
                sock.close()
                if isinstance(exc, _STALE) and reused and method in _RESEND_METHODS:
                    self.resent += 1
                    fresh = True
                    continue  # the server closed the kept-alive connection: once more on a new one
                if isinstance(exc, Exception):
                    raise _mapped(exc, request, writing) from None
                raise


class _Reader:
    """What ``http.client.HTTPResponse`` reads the answer from: the socket's buffered reader with a
    buffer of 64 KiB instead of 8 KiB (a W4 page of 29 KB in one ``recv`` where it has arrived,
    not three: each is a system call that gives the GIL away)."""

    __slots__ = ("file", "sock")

    def __init__(self, sock: Any) -> None:
        self.sock = sock
        self.file: Any = None

    def makefile(self, mode: str) -> Any:
        if self.file is None:  # one per exchange: the answers after an informational one share it
            self.file = self.sock.makefile(mode, buffering=_BUFFER)
        return self.file


_BUFFER = 65536


def _h11_checks() -> tuple[Any, Any] | None:
    """h11's own checks of a header name and value (what it refuses to write)."""
    try:
        from h11._abnf import field_name, field_value
    except ImportError:  # pragma: no cover - another h11 layout: httpx's path
        return None
    return re.compile(field_name.encode("ascii")).fullmatch, re.compile(field_value.encode("ascii")).fullmatch


_CHECKS = _h11_checks()
#: headers h11 rewrites or checks beyond their syntax: such a request takes httpx's path
_REWRITTEN = frozenset({b"content-length", b"transfer-encoding"})


def header_block(raw: list[tuple[bytes, bytes]]) -> bytes | None:
    """The request's header lines as h11 writes them (``Name: value\\r\\n`` in their case, the
    ``Host`` line first, the others in their order), or ``None`` when h11 would refuse or rewrite
    them (httpx's path then sends them or gives its ``LocalProtocolError``)."""
    if _CHECKS is None:
        return None
    name_ok, value_ok = _CHECKS
    hosts: list[bytes] = []
    lines: list[bytes] = []
    for name, value in raw:
        if name_ok(name) is None or value_ok(value) is None:
            return None
        low = name.lower()
        if low in _REWRITTEN:
            return None
        (hosts if low == b"host" else lines).append(b"%s: %s\r\n" % (name, value))
    if len(hosts) != 1:  # h11: a mandatory Host, only one
        return None
    return hosts[0] + b"".join(lines)


def _raw_headers(msg: Any) -> list[tuple[bytes, bytes]]:
    """The answer's header lines as their bytes (``http.client`` decodes them as ISO-8859-1), the
    values without surrounding whitespace and a folded value on one line, as h11 gives them."""
    out = []
    for name, value in msg._headers:
        if "\n" in value:
            value = " ".join(part.strip(" \t") for part in value.splitlines())
        out.append((name.encode("iso-8859-1"), value.strip(" \t").encode("iso-8859-1")))
    return out


def _mapped(exc: Exception, request: httpx.Request, writing: bool) -> Exception:
    """httpx's exception for ``exc`` raised while sending the request (``writing``) or reading the
    answer's status line and headers, as httpcore maps them."""
    if isinstance(exc, (socket.timeout, TimeoutError)):
        kind: Any = httpx.WriteTimeout if writing else httpx.ReadTimeout
        return kind(str(exc) or "timed out", request=request)
    if isinstance(exc, http.client.HTTPException):
        return httpx.RemoteProtocolError(_protocol_message(exc), request=request)
    if isinstance(exc, OSError):
        kind = httpx.WriteError if writing else httpx.ReadError
        return kind(str(exc), request=request)
    return exc


def _protocol_message(exc: http.client.HTTPException) -> str:
    if isinstance(exc, http.client.IncompleteRead):
        got = len(exc.partial)
        if exc.expected is None:
            return f"peer closed connection without sending complete message body: received {got} bytes"
        return (
            "peer closed connection without sending complete message body: "
            f"received {got} bytes, expected {got + exc.expected}"
        )
    if isinstance(exc, http.client.RemoteDisconnected):
        return "Server disconnected without sending a response."
    return f"malformed answer: {type(exc).__name__}: {str(exc)[:200]}"


class WireStream(httpx.SyncByteStream):
    """The body of one answer on a wire connection; closing it gives the connection back (the body
    read to its end, keep-alive) or closes it."""

    def __init__(
        self,
        wire: WireConnections,
        key: tuple[bytes, str, int],
        sock: Any,
        answer: http.client.HTTPResponse,
        request: httpx.Request,
        start: float,
    ) -> None:
        self._wire = wire
        self._key = key
        self._sock: Any = sock
        self._answer = answer
        self._request = request
        self._response: Any = None  # set once the response is made
        self._start = start

    def read_all(self) -> bytes:
        """The whole body as sent (before content decoding); httpx's exception when it fails."""
        try:
            return self._answer.read()
        except TimeoutError as exc:
            raise httpx.ReadTimeout(str(exc) or "timed out", request=self._request) from None
        except http.client.IncompleteRead as exc:
            self._response._num_bytes_downloaded += len(exc.partial)
            raise httpx.RemoteProtocolError(_protocol_message(exc), request=self._request) from None
        except http.client.HTTPException as exc:
            raise httpx.RemoteProtocolError(_protocol_message(exc), request=self._request) from None
        except OSError as exc:
            raise httpx.ReadError(str(exc), request=self._request) from None

    def __iter__(self) -> Iterator[bytes]:
        data = self.read_all()
        if data:
            yield data

    def close(self) -> None:
        sock = self._sock
        if sock is None:
            return
        self._sock = None
        answer = self._answer
        wire = self._wire
        if answer.isclosed() and not answer.will_close:
            wire.give_back(self._key, sock)
        else:
            answer.close()
            sock.close()
        if wire._slots is not None:
            wire._slots.release()
        self._response.elapsed = datetime.timedelta(seconds=time.perf_counter() - self._start)


def read_response(response: httpx.Response) -> bytes:
    """``response.read()`` for an answer whose stream is a :class:`WireStream`: the body read at
    once and decoded by httpx's content decoder of the response, as ``Response.read`` decodes it;
    the response is closed (its connection given back)."""
    from httpx._exceptions import request_context

    stream: Any = response.stream
    try:
        with request_context(request=response._request):
            raw = stream.read_all()
            response._num_bytes_downloaded += len(raw)
            decoder = response._get_content_decoder()
            content = decoder.decode(raw) + decoder.flush() if raw else decoder.flush()
    except BaseException:
        response.close()
        raise
    response._content = content
    response.is_stream_consumed = True
    response.close()
    return content
