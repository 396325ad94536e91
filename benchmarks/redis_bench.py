"""dc-api-x-redis speed: 1M records as hashes, ``dcapix run`` next to the Redis tools, one invocation.

Goals (issue 11): write 1,000,000 records as hashes via ``dcapix run`` at >= 0.5x the rate of
``redis-cli --pipe`` loading the same data, and read them back at >= 0.5x a pipelined redis-py
HGETALL loop. Every system runs as its own process against one throwaway redis-server (no
persistence) on a free 127.0.0.1 port, started here and killed at the end; each timed write starts
from an empty server; runs alternate between the systems.

* **write, limit**: ``redis-cli --pipe < hset.resp`` — the RESP file holds one ``HSET bench:<id> id …
  name … email … amount … active … created_at …`` per record, the same bytes dcapix stores (checked:
  a sample of hashes is compared after both loads). Generating the file is not timed.
* **write, dcapix**: ``dcapix run`` Parquet file -> ``{"adapter": "redis", "key": "bench:{id}"}``
  (the whole process: start-up, Parquet read, typed text forms, pipelined HSET, replies).
* **read, limit**: a Python process running ``scan_iter(match="bench:*", count=1000)`` and a
  redis-py pipeline of 10,000 ``HGETALL`` per ``execute()``, counting the hashes.
* **read, dcapix**: ``dcapix run`` ``{"adapter": "redis"}`` (the stream found in the catalog the
  write left, values typed back: integers, decimals, booleans, timestamps) -> Parquet files.

Row counts are checked (``status ok``). The CPU columns are the process's own CPU time and the
redis-server's (``INFO cpu``) during the run: they show where the time goes.

    .venv/bin/python benchmarks/redis_bench.py [--rows 1000000] [--runs 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent

READ_LOOP = """
import sys, time, redis
r = redis.Redis(port=int(sys.argv[1]))
n = 0
batch = []
def drain(keys):
    p = r.pipeline(transaction=False)
    for k in keys:
        p.hgetall(k)
    return sum(1 for h in p.execute() if h)
for k in r.scan_iter(match="bench:*", count=1000):
    batch.append(k)
    if len(batch) == 10000:
        n += drain(batch); batch = []
if batch:
    n += drain(batch)
print(n)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_data(work: Path, rows: int) -> tuple[Path, Path]:
    """The Parquet source of dcapix and the RESP file of redis-cli, holding the same records."""
    import datetime as dt
    from decimal import Decimal

    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    ids = pa.array(range(rows), type=pa.int64())
    text_ids = pc.cast(ids, pa.string())
    table = pa.table(
        {
            "id": ids,
            "name": pc.binary_join_element_wise("customer ", text_ids, " ü", ""),
            "email": pc.binary_join_element_wise("user", text_ids, "@example.com", ""),
            "amount": pa.array([Decimal(i % 100000).scaleb(-2) for i in range(rows)], pa.decimal128(12, 2)),
            "active": pc.equal(pc.bit_wise_and(ids, 1), 1),
            "created_at": pc.cast(
                pc.add(pc.multiply(ids, 1_000_001), 1_700_000_000_000_000), pa.timestamp("us", tz="UTC")
            ),
        }
    )
    parquet = work / "src" / "bench.parquet"
    parquet.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, parquet)
    resp = work / "hset.resp"
    utc = dt.timezone.utc
    with resp.open("wb") as fh:
        for start in range(0, rows, 100_000):
            part = table.slice(start, 100_000).to_pylist()
            out = []
            for r in part:
                args = [
                    b"HSET",
                    b"bench:%d" % r["id"],
                    b"id",
                    b"%d" % r["id"],
                    b"name",
                    r["name"].encode(),
                    b"email",
                    r["email"].encode(),
                    b"amount",
                    format(r["amount"], "f").encode(),
                    b"active",
                    b"true" if r["active"] else b"false",
                    b"created_at",
                    r["created_at"]
                    .astimezone(utc)
                    .replace(tzinfo=None)
                    .isoformat(timespec="microseconds")
                    .encode()
                    + b"+00:00",
                ]
                out.append(b"*%d\r\n" % len(args))
                out.extend(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)
            fh.write(b"".join(out))
    return parquet, resp


class Server:
    def __init__(self, work: Path) -> None:
        self.port = free_port()
        self.dir = work / "redis"
        self.dir.mkdir(exist_ok=True)
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir),
                "--logfile",
                str(self.dir / "redis.log"),
            ],
        )
        import redis

        self.client = redis.Redis(port=self.port)
        for _ in range(100):
            try:
                self.client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def cpu(self) -> float:
        info = self.client.info("cpu")
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])

    def close(self) -> None:
        self.client.close()
        self.proc.kill()
        self.proc.wait(10)


def timed(server: Server, fn: Callable[[], int]) -> dict[str, Any]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    scpu = server.cpu()
    t0 = time.perf_counter()
    rows = fn()
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "rows": rows,
        "seconds": wall,
        "cpu": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
        "server_cpu": server.cpu() - scpu,
    }


def run(cmd: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if res.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed ({res.returncode}): {res.stderr[-2000:]}")
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--keep", help="work directory to keep (default: a temporary one, removed)")
    args = ap.parse_args()
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        raise SystemExit("redis-server / redis-cli not found: bash .ci/start-redis.sh installs them")
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="dcapix-redis-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    n = args.rows
    load = os.getloadavg()
    t = time.perf_counter()
    parquet, resp = make_data(work, n)
    print(
        f"data: {n:,} records ({time.perf_counter() - t:.1f} s to generate); "
        f"load average {load[0]:.2f} {load[1]:.2f}",
        file=sys.stderr,
    )
    server = Server(work)
    src_cfg = work / "parquet.json"
    src_cfg.write_text(json.dumps({"adapter": "parquet", "path": str(parquet)}))
    dst_cfg = work / "redis-dst.json"
    dst_cfg.write_text(json.dumps({"adapter": "redis", "url": server.url, "key": "bench:{id}"}))
    rsrc_cfg = work / "redis-src.json"
    rsrc_cfg.write_text(json.dumps({"adapter": "redis", "url": server.url}))
    out_cfg = work / "parquet-out.json"
    results: dict[str, list[dict[str, Any]]] = {}
    names = {
        "w_limit": "write LIMIT redis-cli --pipe (RESP file)",
        "w_dcapix": "write dcapix run parquet -> redis hashes",
        "r_limit": "read LIMIT redis-py SCAN + pipelined HGETALL",
        "r_dcapix": "read dcapix run redis hashes -> parquet",
    }
    dcapix = [str(BIN / "dcapix"), "run", "--no-state", "--json", "--no-progress"]
    sample = [b"bench:0", b"bench:%d" % (n // 2), b"bench:%d" % (n - 1)]
    try:
        for i in range(args.runs):
            server.client.flushall()

            def cli_pipe() -> int:
                with resp.open("rb") as fh:
                    res = subprocess.run(
                        ["redis-cli", "-p", str(server.port), "--pipe"],
                        stdin=fh,
                        capture_output=True,
                        text=True,
                    )
                if res.returncode != 0 or "errors: 0" not in res.stdout:
                    raise SystemExit(f"redis-cli --pipe: {res.stdout[-500:]} {res.stderr[-500:]}")
                return int(server.client.dbsize())

            results.setdefault("w_limit", []).append(timed(server, cli_pipe))
            expected = [server.client.hgetall(k) for k in sample]
            server.client.flushall()

            def dcapix_write() -> int:
                res = run([*dcapix, "--source", str(src_cfg), "--destination", str(dst_cfg)], cwd=work)
                assert json.loads(res.stdout)["rows"] == n
                return int(server.client.dbsize()) - 1  # the catalog hash

            results.setdefault("w_dcapix", []).append(timed(server, dcapix_write))
            got = [server.client.hgetall(k) for k in sample]
            if got != expected:
                raise SystemExit(f"dcapix stored other bytes than the RESP file: {got[0]} != {expected[0]}")

            def loop_read() -> int:
                return int(run([sys.executable, "-c", READ_LOOP, str(server.port)]).stdout.strip())

            results.setdefault("r_limit", []).append(timed(server, loop_read))
            out_dir = work / f"out-{i}"
            out_cfg.write_text(json.dumps({"adapter": "parquet", "path": str(out_dir)}))

            def dcapix_read(out_dir: Path = out_dir) -> int:
                res = run([*dcapix, "--source", str(rsrc_cfg), "--destination", str(out_cfg)], cwd=work)
                import pyarrow.dataset as ds

                rows = ds.dataset(str(out_dir / "bench"), format="parquet").count_rows()
                assert json.loads(res.stdout)["rows"] == rows
                return int(rows)

            results.setdefault("r_dcapix", []).append(timed(server, dcapix_read))
            shutil.rmtree(out_dir, ignore_errors=True)
            print(f"run {i + 1}/{args.runs} done", file=sys.stderr)
    finally:
        server.close()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    load_after = os.getloadavg()
    med = {k: statistics.median(r["seconds"] for r in v) for k, v in results.items()}
    print(
        f"\n### Redis, {n:,} hashes, runs={args.runs} (median wall; load average {load[0]:.2f} before, "
        f"{load_after[0]:.2f} after)\n"
    )
    print(
        "| system | rows/s | median s | min-max s | process cpu s | redis-server cpu s | x limit | status |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for key in ("w_limit", "w_dcapix", "r_limit", "r_dcapix"):
        rs = results[key]
        secs = [r["seconds"] for r in rs]
        limit = med["w_limit" if key.startswith("w") else "r_limit"]
        status = "ok" if all(r["rows"] == n for r in rs) else f"ROWS {[r['rows'] for r in rs]}"
        cpu = statistics.median(r["cpu"] for r in rs)
        server_cpu = statistics.median(r["server_cpu"] for r in rs)
        print(
            f"| {names[key]} | {n / med[key]:,.0f} | {med[key]:.2f} | {min(secs):.2f}-{max(secs):.2f} | "
            f"{cpu:.2f} | {server_cpu:.2f} | {med[key] / limit:.2f} | {status} |"
        )
    print(
        f"\nratios (rate dcapix / rate limit): write {med['w_limit'] / med['w_dcapix']:.2f} (goal >= 0.5), "
        f"read {med['r_limit'] / med['r_dcapix']:.2f} (goal >= 0.5)"
    )


if __name__ == "__main__":
    main()
