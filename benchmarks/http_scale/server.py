#!/usr/bin/env python3
"""The http_scale test server: offset/limit pages of generated records with a fixed added latency
per request (stdlib ThreadingHTTPServer on 127.0.0.1; one thread per connection). Pages are
rendered once (those of 100 records before READY), so the server's own CPU stays out of the way of
the client being measured on the shared cores.

    python server.py PORT ROWS LATENCY_MS     # prints "READY <port>" on stderr

GET /items?offset=N&limit=L -> {"data": [...], "total": ROWS}
"""

from __future__ import annotations

import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

PORT, ROWS, LATENCY = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]) / 1000.0
PAGES: dict[tuple[int, int], bytes] = {}


def record(i: int) -> dict[str, object]:
    return {"id": i, "name": f"item-{i}", "price": f"{i % 1000}.{i % 100:02d}", "active": i % 3 == 0}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        time.sleep(LATENCY)
        q = parse_qs(urlsplit(self.path).query)
        start, size = int(q.get("offset", ["0"])[0]), int(q.get("limit", ["100"])[0])
        data = PAGES.get((start, size))
        if data is None:  # rendered once: the server should cost next to nothing (the client is measured)
            body = {"data": [record(i) for i in range(start, min(start + size, ROWS))], "total": ROWS}
            data = PAGES[(start, size)] = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


if __name__ == "__main__":
    for offset in range(0, ROWS, 100):  # the benchmark's pages, rendered before READY
        PAGES[(offset, 100)] = json.dumps(
            {"data": [record(i) for i in range(offset, min(offset + 100, ROWS))], "total": ROWS}
        ).encode()
    srv = Server(("127.0.0.1", PORT), Handler)
    print(f"READY {srv.server_address[1]}", file=sys.stderr, flush=True)
    srv.serve_forever()
