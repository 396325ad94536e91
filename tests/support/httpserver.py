"""A real HTTP server on 127.0.0.1 in a thread (stdlib), routed to Python callables.

    with LocalHTTPServer() as srv:
        srv.route("GET", "/items", lambda req: (200, {"content-type": "application/json"}, b"[]"))
        url = srv.url + "/items"

A handler receives a :class:`Request` (method, path, query dict of lists, headers, body) and returns
``(status, headers, body)``; ``body`` may be ``bytes``, ``str`` or any JSON-serialisable object.
Every request is recorded in ``srv.requests``. A handler that sets its own ``content-length``
larger than its body sends a truncated answer (the server closes the connection after the body).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes = b""
    raw_path: str = ""

    def arg(self, name: str, default: str | None = None) -> str | None:
        return self.query.get(name, [default])[0]

    def json(self) -> Any:
        return json.loads(self.body or b"null")


Handler = Callable[[Request], tuple[int, dict[str, str], Any]]


@dataclass
class LocalHTTPServer:
    host: str = "127.0.0.1"
    routes: dict[tuple[str, str], Handler] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        outer = self

        class _H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _handle(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                req = Request(
                    self.command,
                    parts.path,
                    parse_qs(parts.query, keep_blank_values=True),
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                    self.path,
                )
                outer.requests.append(req)
                handler = outer.routes.get((self.command, parts.path)) or outer.routes.get(("*", parts.path))
                if handler is None:
                    status, headers = 404, {"content-type": "application/json"}
                    payload = {"error": "not found"}
                else:
                    status, headers, payload = handler(req)
                if isinstance(payload, (bytes, bytearray)):
                    data = bytes(payload)
                elif isinstance(payload, str):
                    data = payload.encode()
                else:
                    data = json.dumps(payload).encode()
                    headers = {"content-type": "application/json", **headers}
                # a handler may declare its own Content-Length: one larger than the body sends a
                # truncated answer (the connection is closed after the short body)
                declared = next((v for k, v in headers.items() if k.lower() == "content-length"), None)
                self.send_response(status)
                for k, v in headers.items():
                    if k.lower() != "content-length":
                        self.send_header(k, v)
                self.send_header("content-length", declared if declared is not None else str(len(data)))
                if declared is not None and int(declared) != len(data):
                    self.send_header("connection", "close")
                    self.close_connection = True
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle

        class _Server(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                import sys

                if not isinstance(sys.exc_info()[1], ConnectionError):  # a client that hung up
                    super().handle_error(request, client_address)

        self._server = _Server((self.host, 0), _H)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )  # a short poll: stop() returns fast

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def route(self, method: str, path: str, handler: Handler) -> None:
        self.routes[(method.upper(), path)] = handler

    def start(self) -> LocalHTTPServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> LocalHTTPServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def cursor_items_source(base_url: str) -> dict[str, Any]:
    """An ``http`` source config of one incremental stream ``items`` (``{"id", "name"}`` records)
    at ``GET /items?since=&cursor=``: answers ``{"data": [...], "next": cursor or null}``."""
    return {
        "adapter": "http",
        "base_url": base_url,
        "streams": [
            {
                "name": "items",
                "path": "/items",
                "records_path": "data",
                "primary_keys": ["id"],
                "replication_key": "id",
                "replication_param": "since",
                "is_sorted": True,
                "json_schema": {
                    "type": "object",
                    "properties": {"id": {"type": "integer"}, "name": {"type": "string"}},
                },
                "pagination": {"type": "cursor", "cursor_path": "next", "cursor_param": "cursor"},
            }
        ],
    }
