"""ApiClient demo: a local paged JSON API (stdlib, in a thread) read with ``ApiClient.paginate``.

Run it with ``python examples/api_client_demo.py``; it needs nothing but dc-api-x[http] and exits 0.

The server serves 250 records, 20 per page, with a cursor (``next`` token) and a bearer token check.
The client follows the cursor, counts the records and prints a few of them, then shows the same
API read with offset pagination and the request metrics collected by the ``metrics`` hook.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from dc_api_x import ApiClient

TOKEN = "demo-token-1234"
RECORDS = [{"id": i, "name": f"item {i}", "price": round(i * 1.25, 2)} for i in range(250)]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, *args: Any) -> None:  # keep the demo output clean
        pass

    def _send(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.headers.get("authorization") != f"Bearer {TOKEN}":
            return self._send(401, {"error": "unauthorized"})
        url = urlsplit(self.path)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        limit = int(q.get("limit", 20))
        if url.path == "/items":  # cursor pagination
            start = int(q.get("cursor", 0))
            nxt = start + limit if start + limit < len(RECORDS) else None
            return self._send(200, {"data": RECORDS[start : start + limit], "next": nxt and str(nxt)})
        if url.path == "/offset-items":  # offset pagination with a total
            off = int(q.get("offset", 0))
            return self._send(200, {"items": RECORDS[off : off + limit], "total": len(RECORDS)})
        return self._send(404, {"error": "not found"})


def main() -> int:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with ApiClient(base, auth={"type": "bearer", "token": TOKEN}) as api:
            records = list(
                api.paginate(
                    "/items",
                    paginator={"type": "cursor", "cursor_path": "next", "cursor_param": "cursor"},
                    records_path="data",
                    params={"limit": 20},
                )
            )
            print(f"cursor pagination: {len(records)} records")
            for rec in records[:3]:
                print("  ", rec)

            offset = list(
                api.paginate(
                    "/offset-items",
                    paginator={
                        "type": "offset",
                        "offset_param": "offset",
                        "limit_param": "limit",
                        "limit": 50,
                        "total_path": "total",
                    },
                    records_path="items",
                )
            )
            print(f"offset pagination: {len(offset)} records, last: {offset[-1]}")
            print("metrics:", api.hook("metrics").snapshot())  # type: ignore[attr-defined]
            assert records == offset == RECORDS
    finally:
        server.shutdown()
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
