"""A loopback HTTP API that misbehaves on a seeded schedule (stdlib ``ThreadingHTTPServer``).

Routes:

* ``POST /token`` — OAuth2 client credentials; checks ``client_secret``; tokens expire (401) after
  ``token_uses`` API requests (token expiry mid-run).
* ``GET /items?cursor=K&limit=L`` — the truth rows ``K … K+L-1`` as ``{"records": […], "next": K+L}``
  (``next`` null on the last page). Each request may get a fault instead: ``429`` with
  ``Retry-After`` (seconds or an HTTP-date), ``500/502/503/504``, a connection reset, a 200 whose
  body is cut (connection closed before ``Content-Length``), a 200 with a complete HTTP message but
  cut JSON, slow headers (below the client's read timeout) and a stall (above it). At most
  ``max_faults_per_page`` faults hit one page, so a client with 5 attempts can always finish.
* ``GET /loop?cursor=…`` — tokens cycle A → B → A; ``GET /repeat?cursor=N`` — the same records
  under a new token forever; ``GET /empty?cursor=N`` — ``next`` forever with no records;
  ``GET /down`` — ``503`` forever (retries exhausted).

Every request is logged (arrival time, page, fault, Retry-After deadline) so retry timing and the
attempts per page can be checked.
"""

from __future__ import annotations

import email.utils
import json
import random
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["FAULTS", "FaultServer", "Hit"]

FAULTS = (
    "429",
    "429-date",
    "500",
    "502",
    "503",
    "504",
    "reset",
    "truncate",
    "truncate-json",
    "slow",
    "stall",
)
#: relative weights of the fault kinds (a stall costs a client timeout, so it is rarer)
WEIGHTS = (3, 1, 2, 2, 2, 2, 3, 2, 2, 2, 1)


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # resets and stalls break the handler's own writes on purpose


@dataclass
class Hit:
    t: float  # arrival (monotonic)
    path: str
    page: str
    fault: str | None
    not_before: float | None = None  # Retry-After deadline given with this answer (monotonic)
    auth: str = ""


@dataclass
class FaultServer:
    rows: list[dict[str, Any]]
    seed: int = 0
    fault_rate: float = 0.3
    max_faults_per_page: int = 3
    secret: str = "s3cret"
    token_prefix: str = "tok"
    token_uses: int = 40
    retry_after_long: float = 1.0
    stall_seconds: float = 2.5
    kinds: tuple[str, ...] = FAULTS  # the fault kinds drawn from
    hits: list[Hit] = field(default_factory=list)
    tokens_issued: int = 0
    expired_401s: int = 0  # requests with a token that was issued and has expired

    def __post_init__(self) -> None:
        self._rnd = random.Random(self.seed)
        self._lock = threading.Lock()
        self._faults_on_page: dict[str, int] = {}
        self._token_left: dict[str, int] = {}
        outer = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: Any) -> None:
                pass

            def do_POST(self) -> None:
                outer._post(self)

            def do_GET(self) -> None:
                outer._get(self)

        self._srv = _QuietServer(("127.0.0.1", 0), H)
        self._srv.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._srv.server_address[1]}"
        self._thread = threading.Thread(target=self._srv.serve_forever, daemon=True)

    def __enter__(self) -> FaultServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._srv.shutdown()
        self._srv.server_close()

    @property
    def faults(self) -> list[Hit]:
        return [h for h in self.hits if h.fault]

    # -- responses -------------------------------------------------------------------------------
    @staticmethod
    def _send(
        h: BaseHTTPRequestHandler, status: int, body: Any, headers: dict[str, str] | None = None
    ) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        h.send_response(status)
        h.send_header("content-type", "application/json")
        h.send_header("content-length", str(len(data)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)

    def _post(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("content-length") or 0)
        form = parse_qs(h.rfile.read(length).decode())
        if urlsplit(h.path).path != "/token" or form.get("client_secret", [""])[0] != self.secret:
            self._send(h, 401, {"error": "invalid_client"})
            return
        with self._lock:
            self.tokens_issued += 1
            token = f"{self.token_prefix}-{self.tokens_issued}"
            self._token_left[token] = self.token_uses
        self._send(h, 200, {"access_token": token, "token_type": "Bearer", "expires_in": 3600})

    def _choose(self, page: str) -> str | None:
        with self._lock:
            if self._faults_on_page.get(page, 0) >= self.max_faults_per_page:
                return None
            if self._rnd.random() >= self.fault_rate:
                return None
            self._faults_on_page[page] = self._faults_on_page.get(page, 0) + 1
            weights = [w for k, w in zip(FAULTS, WEIGHTS, strict=True) if k in self.kinds]
            return self._rnd.choices([k for k in FAULTS if k in self.kinds], weights)[0]

    def _get(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        q = parse_qs(parts.query)
        cursor = q.get("cursor", ["0"])[0]
        auth = h.headers.get("authorization", "")
        hit = Hit(time.monotonic(), parts.path, f"{parts.path}:{cursor}", None, auth=auth)
        with self._lock:
            self.hits.append(hit)
        token = auth.removeprefix("Bearer ")
        with self._lock:
            left = self._token_left.get(token, 0)
            if left > 0:
                self._token_left[token] = left - 1
            elif token in self._token_left:
                self.expired_401s += 1
        if left <= 0:  # unknown or expired token: the body echoes the header (a leak test)
            self._send(h, 401, {"error": "invalid_token", "echo": auth})
            return
        if parts.path == "/down":
            hit.fault = "503"
            self._send(h, 503, {"error": "down"})
            return
        if parts.path == "/loop":  # tokens cycle; each page has records
            nxt = {"0": "A", "A": "B", "B": "A"}[cursor]
            self._send(h, 200, {"records": self.rows[:2], "next": nxt})
            return
        if parts.path == "/repeat":  # the same page again and again under new tokens
            self._send(h, 200, {"records": self.rows[:2], "next": str(int(cursor) + 1)})
            return
        if parts.path == "/empty":
            self._send(h, 200, {"records": [], "next": str(int(cursor) + 1)})
            return
        if parts.path != "/items":
            self._send(h, 404, {"error": "not found"})
            return
        fault = self._choose(hit.page)
        hit.fault = fault
        start, limit = int(cursor), int(q.get("limit", ["20"])[0])
        page = self.rows[start : start + limit]
        body = json.dumps(
            {"records": page, "next": str(start + limit) if start + limit < len(self.rows) else None}
        ).encode()
        if fault is None or fault == "slow":
            if fault == "slow":
                time.sleep(0.3)
            self._send(h, 200, body)
        elif fault in ("429", "429-date"):
            wait = self.retry_after_long if self._rnd.random() < 0.25 else 0.0
            if fault == "429-date":  # an HTTP-date has whole seconds: at least 1 s, at most 2 s ahead
                at = time.time() + 1.0
                value = email.utils.formatdate(int(at) + 1, usegmt=True)
                wait = int(at) + 1 - time.time()
            else:
                value = str(int(wait))
            hit.not_before = time.monotonic() + max(wait, 0.0) - 0.05  # clock granularity
            self._send(h, 429, {"error": "slow down"}, {"retry-after": value})
        elif fault in ("500", "502", "503", "504"):
            self._send(h, int(fault), {"error": fault})
        elif fault == "reset":
            h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST
            h.close_connection = True
            h.connection.close()
        elif fault == "truncate":  # Content-Length promises more than is sent, then the socket closes
            h.send_response(200)
            h.send_header("content-type", "application/json")
            h.send_header("content-length", str(len(body)))
            h.end_headers()
            h.wfile.write(body[: int(len(body) * 0.6)])
            h.wfile.flush()
            h.close_connection = True
            h.connection.shutdown(socket.SHUT_RDWR)
        elif fault == "truncate-json":  # a complete HTTP message whose JSON is cut
            self._send(h, 200, body[: int(len(body) * 0.6)], {"connection": "close"})
            h.close_connection = True
        elif fault == "stall":
            time.sleep(self.stall_seconds)
            h.close_connection = True
