"""AsyncApiClient demo: the local paged JSON API of ``api_client_demo.py`` read with asyncio.

Run it with ``python examples/async_client_demo.py``; it needs nothing but dc-api-x[http] and exits 0.

Two paginated reads (cursor and offset) run as concurrent tasks over one connection pool, with
``async for`` over ``paginate``; then the pages of one read with their responses (``pages``).
"""

from __future__ import annotations

import asyncio
import threading
from http.server import ThreadingHTTPServer
from typing import Any

from api_client_demo import RECORDS, TOKEN, Handler  # the demo API (this folder)

from dc_api_x import AsyncApiClient


async def read_all(api: AsyncApiClient, path: str, paginator: dict[str, Any], records_path: str) -> list[Any]:
    return [r async for r in api.paginate(path, paginator=paginator, records_path=records_path)]


async def run(base: str) -> None:
    async with AsyncApiClient(base, auth={"type": "bearer", "token": TOKEN}) as api:
        cursor, offset = await asyncio.gather(
            read_all(api, "/items", {"type": "cursor", "cursor_path": "next"}, "data"),
            read_all(api, "/offset-items", {"type": "offset", "limit": 50, "total_path": "total"}, "items"),
        )
        print(f"cursor pagination: {len(cursor)} records; offset pagination: {len(offset)} records")
        async for page in api.pages("/items", paginator="cursor", records_path="data", params={"limit": 100}):
            print(f"  page {page.number}: {len(page.records)} records over {page.response.http_version}")
        print("metrics:", api.hook("metrics").snapshot())  # type: ignore[attr-defined]
        assert cursor == offset == RECORDS


def main() -> int:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        asyncio.run(run(f"http://127.0.0.1:{server.server_address[1]}"))
    finally:
        server.shutdown()
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
