"""Peak memory of SQL → Parquet through the adapters' read()/write(), at growing row counts.

For each size (default 100k and 1M rows) and each backend (SQLite, and PostgreSQL with ``--pg URL``)
the table is generated inside the database (a recursive CTE / ``generate_series``: the generator
uses no Python memory), then a *child process* moves it with ``create_adapter({"adapter": "sql"})``
→ ``read()`` → ``create_adapter({"adapter": "parquet"}).write()``. The parent reads the child's peak
RSS with ``os.wait4`` (so each number is one clean process), counts the rows in the Parquet files it
wrote, and prints a table. Flat peak RSS across sizes = bounded memory.

    .venv/bin/python benchmarks/memory_sql_to_parquet.py [--sizes 100000,1000000]
        [--pg postgresql://postgres:postgres@127.0.0.1:5432/postgres] [--keep DIR]
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
from typing import Any

COLUMNS = "id, account_id, name, email, amount, score, active, created_at, updated_at, birthday, payload"

SQLITE_DDL = """CREATE TABLE events (
    id INTEGER PRIMARY KEY, account_id BIGINT, name TEXT, email TEXT, amount DECIMAL_TEXT(18,2),
    score REAL, active BOOLEAN, created_at TIMESTAMPTZ, updated_at TIMESTAMP, birthday DATE, payload JSON)"""

SQLITE_FILL = """WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < {n})
INSERT INTO events SELECT
    i, i % 1000, 'customer ' || i || ' ü', 'user' || i || '@example.com',
    printf('%d.%02d', i % 100000, i % 100), i * 0.5, i % 2,
    strftime('%Y-%m-%dT%H:%M:%f+00:00', 1700000000 + i, 'unixepoch'),
    strftime('%Y-%m-%dT%H:%M:%S', 1700000000 + i, 'unixepoch'),
    date(0 + (i % 20000), 'unixepoch'),
    json_object('k', i % 7, 'tags', json_array('a', 'b'))
FROM c"""

PG_DDL = """CREATE TABLE "{schema}".events (
    id BIGINT PRIMARY KEY, account_id BIGINT, name TEXT, email TEXT, amount NUMERIC(18,2),
    score DOUBLE PRECISION, active BOOLEAN, created_at TIMESTAMPTZ, updated_at TIMESTAMP, birthday DATE,
    payload JSONB)"""

PG_FILL = """INSERT INTO "{schema}".events SELECT
    i, i % 1000, 'customer ' || i || ' ü', 'user' || i || '@example.com',
    ((i % 100000) || '.' || lpad((i % 100)::text, 2, '0'))::numeric, i * 0.5, i % 2 = 1,
    to_timestamp(1700000000 + i), to_timestamp(1700000000 + i) AT TIME ZONE 'UTC',
    date '1970-01-01' + (i % 20000), jsonb_build_object('k', i % 7, 'tags', jsonb_build_array('a', 'b'))
FROM generate_series(1, {n}) AS i"""


# ------------------------------------------------------------------------------------------ child
def child(args: argparse.Namespace) -> None:
    """Move one stream SQL → Parquet through read()/write() and print rows and seconds as JSON."""
    from dc_api_x import create_adapter

    src_cfg: dict[str, Any] = {"adapter": "sql", "url": args.url}
    if args.schema:
        src_cfg["schema"] = args.schema
    t0 = time.perf_counter()
    rows = 0
    with create_adapter(src_cfg) as src, create_adapter({"adapter": "parquet", "path": args.out}) as dst:
        spec = next(s for s in src.discover() if s.name.endswith("events"))
        dst.start_write(spec, load_method="overwrite")
        for batch in src.read(spec):
            dst.write(spec, batch)
            rows += len(batch)
        dst.finish_write(spec)
    print(json.dumps({"rows": rows, "seconds": time.perf_counter() - t0}))


def run_child(url: str, schema: str | None, out: str) -> tuple[dict[str, Any], float]:
    """Run :func:`child` in a fresh process; return its JSON result and its peak RSS in MiB."""
    cmd = [sys.executable, __file__, "--child", "--url", url, "--out", out]
    if schema:
        cmd += ["--schema", schema]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    stdout = proc.stdout.read()
    stderr = proc.stderr.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"child failed ({proc.returncode}): {stderr.strip()[-2000:]}")
    return json.loads(stdout.strip().splitlines()[-1]), usage.ru_maxrss / 1024  # KiB → MiB on Linux


def parquet_rows(out: str) -> int:
    import pyarrow.parquet as pq

    return sum(
        pq.ParquetFile(p).metadata.num_rows
        for p in Path(out).rglob("*.parquet")
        if "events" in p.relative_to(out).as_posix()
    )


# ----------------------------------------------------------------------------------------- setup
def make_sqlite(path: Path, n: int) -> str:
    import sqlite3

    if path.exists():
        path.unlink()
    con = sqlite3.connect(path)
    try:
        con.execute(SQLITE_DDL)
        if n:
            con.execute(SQLITE_FILL.format(n=n))
        con.commit()
    finally:
        con.close()
    return f"sqlite:///{path}"


def make_pg(admin_url: str, n: int) -> tuple[str, str, Any]:
    import psycopg

    plain = admin_url.replace("postgresql+psycopg://", "postgresql://", 1)
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    con = psycopg.connect(plain, autocommit=True)
    con.execute(f'CREATE SCHEMA "{schema}"')
    con.execute(PG_DDL.format(schema=schema))
    if n:
        con.execute(PG_FILL.format(schema=schema, n=n))
    con.execute(f'ANALYZE "{schema}".events')
    return plain.replace("postgresql://", "postgresql+psycopg://", 1), schema, con


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="100000,1000000", help="comma-separated row counts")
    ap.add_argument("--pg", default=None, help="PostgreSQL URL (also run against PostgreSQL)")
    ap.add_argument("--keep", default=None, help="work directory to keep (default: a temp dir, removed)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    ap.add_argument("--schema", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return

    sizes = [int(x) for x in args.sizes.split(",") if x.strip()]
    work = Path(args.keep or tempfile.mkdtemp(prefix="dcapix-mem-"))
    work.mkdir(parents=True, exist_ok=True)
    results = []
    try:
        backends = ["sqlite"] + (["postgresql"] if args.pg else [])
        for backend in backends:
            # baseline: the same child on an empty table (interpreter + imports + adapters)
            for n in [0, *sizes]:
                out = str(work / f"out-{backend}-{n}")
                shutil.rmtree(out, ignore_errors=True)
                con = None
                if backend == "sqlite":
                    url, schema = make_sqlite(work / f"src-{n}.db", n), None
                else:
                    url, schema, con = make_pg(args.pg, n)
                try:
                    res, rss = run_child(url, schema, out)
                finally:
                    if con is not None:
                        con.execute(f'DROP SCHEMA "{schema}" CASCADE')
                        con.close()
                counted = parquet_rows(out)
                assert res["rows"] == n == counted, (res, n, counted)
                rate = n / res["seconds"] if n else 0.0
                results.append((backend, n, res["seconds"], rate, rss))
                print(
                    f"{backend:10s} {n:>9,d} rows  {res['seconds']:7.2f} s  {rate:>9,.0f} rows/s  "
                    f"peak RSS {rss:7.1f} MiB",
                    flush=True,
                )
                if backend == "sqlite":
                    (work / f"src-{n}.db").unlink(missing_ok=True)
                shutil.rmtree(out, ignore_errors=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print()
    print("| backend | rows | seconds | rows/s | peak RSS (MiB) |")
    print("|---|---:|---:|---:|---:|")
    for backend, n, secs, rate, rss in results:
        print(f"| {backend} | {n:,} | {secs:.2f} | {rate:,.0f} | {rss:.1f} |")


if __name__ == "__main__":
    main()
