"""AsyncApiClient against ApiClient: N JSON GETs to an API with a fixed server-side latency.

The server is Hypercorn (HTTP/1.1 and HTTP/2 over TLS, a throwaway trustme CA) on 127.0.0.1, in
its own process; each answer waits ``--latency`` ms on the server (asyncio, so the server is not
the bottleneck) — a remote API's round trip. Modes, interleaved in one invocation, ``--runs``
rounds, median wall time reported with the ratio to the sequential sync client:

* ``sync``: ApiClient, one request after the other;
* ``sync-threads``: ApiClient shared by ``--concurrency`` threads;
* ``async-h1``: AsyncApiClient, ``--concurrency`` tasks, HTTP/1.1 (a pool of that many connections);
* ``async-h2``: AsyncApiClient, ``--concurrency`` tasks, ``http2=True`` (one multiplexed connection).

    python benchmarks/async_client.py --requests 400 --latency 20 --concurrency 16 --runs 3

Needs the dev extra (hypercorn, trustme) and dc-api-x[http2].
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import socket
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

BODY = b'{"id": 1, "name": "row", "tags": ["a", "b", "c"], "score": 12.5}'


def serve(fd: int, certfile: str, latency: float) -> None:
    from hypercorn.asyncio import serve as hserve
    from hypercorn.config import Config

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await asyncio.sleep(latency)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": BODY})

    config = Config()
    config.bind = [f"fd://{fd}"]
    config.certfile = config.keyfile = certfile
    config.accesslog = config.errorlog = None
    config.backlog = 1024
    asyncio.run(hserve(app, config))  # type: ignore[arg-type]


def run_sync(url: str, ca: str, n: int) -> None:
    from dc_api_x import ApiClient

    with ApiClient(url, verify=ca, hooks=[]) as api:
        for _ in range(n):
            api.get("/x").raise_for_status()


def run_sync_threads(url: str, ca: str, n: int, concurrency: int) -> None:
    from dc_api_x import ApiClient

    limits = {"max_connections": concurrency}
    with ApiClient(url, verify=ca, hooks=[], limits=limits) as api, ThreadPoolExecutor(concurrency) as pool:
        for r in pool.map(lambda _: api.get("/x"), range(n)):
            r.raise_for_status()


def run_async(url: str, ca: str, n: int, concurrency: int, http2: bool) -> None:
    from dc_api_x import AsyncApiClient

    async def main() -> None:
        async with AsyncApiClient(
            url, verify=ca, hooks=[], http2=http2, limits={"max_connections": concurrency}
        ) as api:
            gate = asyncio.Semaphore(concurrency)

            async def one() -> None:
                async with gate:
                    (await api.get("/x")).raise_for_status()

            await asyncio.gather(*(one() for _ in range(n)))

    asyncio.run(main())


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--latency", type=float, default=20.0, help="server-side ms per answer")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    import trustme

    with tempfile.TemporaryDirectory() as tmp:
        ca = trustme.CA()
        ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(f"{tmp}/server.pem")
        ca.cert_pem.write_to_path(f"{tmp}/ca.pem")
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        os.set_inheritable(sock.fileno(), True)
        proc = multiprocessing.get_context("fork").Process(
            target=serve, args=(sock.fileno(), f"{tmp}/server.pem", args.latency / 1000), daemon=True
        )
        proc.start()
        url, cafile = f"https://127.0.0.1:{port}", f"{tmp}/ca.pem"
        n, c = args.requests, args.concurrency
        modes = {
            "sync": lambda: run_sync(url, cafile, n),
            "sync-threads": lambda: run_sync_threads(url, cafile, n, c),
            "async-h1": lambda: run_async(url, cafile, n, c, http2=False),
            "async-h2": lambda: run_async(url, cafile, n, c, http2=True),
        }
        for _ in range(100):  # wait until the server accepts
            try:
                run_sync(url, cafile, 1)
                break
            except Exception:
                time.sleep(0.05)
        times: dict[str, list[float]] = {m: [] for m in modes}
        try:
            for _ in range(args.runs):
                for mode, fn in modes.items():
                    t0 = time.perf_counter()
                    fn()
                    times[mode].append(time.perf_counter() - t0)
        finally:
            proc.terminate()
            proc.join(5)
            sock.close()
    base = statistics.median(times["sync"])
    print(
        f"{n} GETs, {args.latency:g} ms server latency, concurrency {c}, {args.runs} runs, "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    for mode, ts in times.items():
        med = statistics.median(ts)
        print(f"  {mode:13s} {med * 1000:8.0f} ms  {n / med:8.0f} req/s  x{base / med:5.1f} vs sync")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
