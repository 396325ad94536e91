#!/usr/bin/env python3
"""PostgreSQL -> Parquet, one invocation: serial, ``--executor local`` (2 worker threads, then 2
worker processes: ``--worker-pool processes``) and ``--executor dask`` on a 2-worker
``distributed.LocalCluster`` (started here, outside the timed runs), with rows and state compared;
prints a markdown table with the overheads against local threads.

    python benchmarks/scale_pg_parquet.py [--rows 200000] [--partitions 4] [--url postgresql://…]

Creates a schema ``bench_scale_<random>`` in the given database and drops it at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import yaml

DCAPIX = Path(sys.executable).parent / "dcapix"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--url", default="postgresql://postgres:postgres@127.0.0.1:5432/postgres")
    args = ap.parse_args()
    import psycopg
    import pyarrow.dataset as ds
    from distributed import LocalCluster

    schema = f"bench_scale_{uuid.uuid4().hex[:8]}"
    work = Path(tempfile.mkdtemp(prefix="dcapix-scale-"))
    with psycopg.connect(args.url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        conn.execute(
            f'CREATE TABLE "{schema}".items AS SELECT i AS id, '
            "timestamptz '2024-01-01' + i * interval '1 second' AS updated_at, "
            "(i % 1000)::numeric(12,2) AS amount, md5(i::text) AS name "
            f"FROM generate_series(1, {args.rows}) i"
        )
        conn.execute(f'ALTER TABLE "{schema}".items ADD PRIMARY KEY (id)')
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    try:
        src = {
            "adapter": "sql",
            "url": args.url,
            "schema": schema,
            "streams": [{"table": "items", "replication_key": "updated_at"}],
        }
        names = ["serial", "local", "processes", "dask"]
        pipes = {
            n: {"source": src, "destination": {"adapter": "parquet", "path": str(work / n)}} for n in names
        }
        (work / "dcapix.yml").write_text(yaml.safe_dump({"pipelines": pipes}))
        flags = {
            "serial": [],
            "local": ["--workers", "2", "--partitions", str(args.partitions)],
            "processes": [
                *("--workers", "2", "--partitions", str(args.partitions)),
                *("--worker-pool", "processes"),
            ],
            "dask": [
                "--executor",
                "dask",
                "--scheduler",
                cluster.scheduler_address,
                "--partitions",
                str(args.partitions),
            ],
        }
        out = []
        for n in names:
            t0 = time.perf_counter()
            res = subprocess.run(
                [str(DCAPIX), "run", n, "--no-progress", "--json", *flags[n]],
                cwd=work,
                capture_output=True,
                text=True,
            )
            wall = time.perf_counter() - t0
            if res.returncode:
                print(res.stderr, file=sys.stderr)
                return 1
            m = json.loads(res.stdout)
            s = m["streams"][0] if isinstance(m["streams"], list) else m["streams"]["items"]
            t = ds.dataset(str(work / n / "items"), format="parquet").to_table().sort_by("id")
            state = subprocess.run(
                [str(DCAPIX), "state", "show", "-p", n, "-s", "items"],
                cwd=work,
                capture_output=True,
                text=True,
            ).stdout
            out.append((n, wall, s["seconds"], s["rows"], t, json.loads(state)[0]["value"]))
        base = out[1]
        print(
            f"### PostgreSQL -> Parquet, {args.rows} rows, {args.partitions} partitions "
            f"(cores={os.cpu_count()}, load={os.getloadavg()[0]:.1f})\n"
        )
        print("| run | wall s | stream s | rows/s | vs local (stream) | rows = serial | state = serial |")
        print("| --- | ---: | ---: | ---: | ---: | --- | --- |")
        for n, wall, secs, rows, t, st in out:
            same = t.equals(out[0][4])
            print(
                f"| {n} | {wall:.2f} | {secs:.2f} | {rows / secs:,.0f} | {secs / base[2]:.2f}x | "
                f"{'yes' if same else 'NO'} | {'yes' if st == out[0][5] else 'NO'} |"
            )
        return 0
    finally:
        cluster.close()
        shutil.rmtree(work, ignore_errors=True)
        with psycopg.connect(args.url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


if __name__ == "__main__":
    sys.exit(main())
