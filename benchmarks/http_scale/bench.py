#!/usr/bin/env python3
"""http_scale: `dcapix run` HTTP (offset pages, 20 ms added latency per request) -> Parquet, serially
and with 4 and 8 partition workers (`--workers N`), in one invocation; rows compared.

    python benchmarks/http_scale/bench.py [--rows 40000] [--page 100] [--latency-ms 20] [--runs 1]

Prints a markdown table: wall time, the stream's rows/s (from `dcapix run --json`, without process
start-up), the ratio to the serial rate, and whether the rows equal the serial run's. The server is
a separate process (server.py), started and stopped by this script (by its PID).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DCAPIX = Path(sys.executable).parent / "dcapix"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rows_of(path: Path) -> list[tuple[object, ...]]:
    import pyarrow.dataset as ds

    t = ds.dataset(str(path), format="parquet").to_table()
    return sorted(tuple(r.values()) for r in t.to_pylist())


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=40_000)
    ap.add_argument("--page", type=int, default=100)
    ap.add_argument("--latency-ms", type=float, default=20.0)
    ap.add_argument("--runs", type=int, default=3, help="runs per worker count (the median is shown)")
    ap.add_argument("--workers", default="1,4,8")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dcapix-http-scale-"))
    port = free_port()
    srv = subprocess.Popen(
        [sys.executable, str(HERE / "server.py"), str(port), str(args.rows), str(args.latency_ms)],
        stderr=subprocess.PIPE,
    )
    try:
        assert srv.stderr is not None
        if b"READY" not in srv.stderr.readline():
            print("server did not start", file=sys.stderr)
            return 1
        src = {
            "adapter": "http",
            "base_url": f"http://127.0.0.1:{port}",
            "streams": [
                {
                    "name": "items",
                    "path": "/items",
                    "records_path": "data",
                    "primary_keys": ["id"],
                    "schema": {
                        "type": "object",
                        "properties": {
                            "id": {"type": "integer"},
                            "name": {"type": "string"},
                            "price": {"type": "string"},
                            "active": {"type": "boolean"},
                        },
                    },
                    "pagination": {"type": "offset", "limit": args.page, "total_path": "total"},
                }
            ],
        }
        (work / "src.json").write_text(json.dumps(src))
        results = []
        serial_rows = None
        for w in [int(x) for x in args.workers.split(",")]:
            for _ in range(args.runs):
                out = work / f"w{w}"
                shutil.rmtree(out, ignore_errors=True)
                (work / f"dst{w}.json").write_text(json.dumps({"adapter": "parquet", "path": str(out)}))
                cmd = [
                    str(DCAPIX),
                    "run",
                    "--no-progress",
                    "--no-state",
                    "--json",
                    "--source",
                    str(work / "src.json"),
                    "--destination",
                    str(work / f"dst{w}.json"),
                ]
                if w > 1:
                    cmd += ["--workers", str(w)]
                t0 = time.perf_counter()
                res = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "NO_COLOR": "1"})
                wall = time.perf_counter() - t0
                if res.returncode != 0:
                    print(res.stderr, file=sys.stderr)
                    return 1
                metrics = json.loads(res.stdout)
                stream = (
                    metrics["streams"][0]
                    if isinstance(metrics["streams"], list)
                    else metrics["streams"]["items"]
                )
                got = rows_of(out / "items")
                if serial_rows is None:
                    serial_rows = got
                results.append((w, wall, stream["rows"], stream["seconds"], got == serial_rows))
        if args.runs > 1:  # the median run (by stream time) of each worker count
            import statistics

            med = []
            for w in dict.fromkeys(r[0] for r in results):
                rs = sorted((r for r in results if r[0] == w), key=lambda r: r[3])
                m = rs[len(rs) // 2]
                med.append((*m[:4], all(r[4] for r in rs)))
                secs = [round(r[3], 2) for r in rs]
                print(f"workers {w}: stream s {secs} (median {statistics.median(r[3] for r in rs):.2f})")
            results = med
        base = next(r for r in results if r[0] == 1)
        base_rate = base[2] / base[3]
        print(
            f"### http_scale (rows={args.rows}, page={args.page}, latency={args.latency_ms:g} ms, "
            f"requests={-(-args.rows // args.page)}, cores={os.cpu_count()}, load={os.getloadavg()[0]:.1f})\n"
        )
        print("| workers | wall s | stream s | rows/s | x serial | rows identical |")
        print("| ---: | ---: | ---: | ---: | ---: | --- |")
        for w, wall, n, secs, same in results:
            rate = n / secs
            ok = "yes" if same else "NO"
            print(f"| {w} | {wall:.2f} | {secs:.2f} | {rate:,.0f} | {rate / base_rate:.2f} | {ok} |")
        return 0 if all(r[4] for r in results) else 1
    finally:
        srv.terminate()
        srv.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
