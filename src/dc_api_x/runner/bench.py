"""``dcapix bench``: a self-contained measurement of the runner (SQLite → Parquet).

Generates an SQLite table of ``rows`` rows (11 columns like the shared benchmark data), runs
``dcapix run --source … --destination …`` as a child process, and reports wall time, rows/s, peak
RSS of the child (``wait4``) and the row count found in the written Parquet files.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["make_sqlite", "run_micro_bench"]


def make_sqlite(path: str | Path, rows: int, *, seed: int = 7) -> None:
    """Create ``bench_rows`` with ``rows`` seeded rows in an SQLite file."""
    rnd = random.Random(seed)
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE IF EXISTS bench_rows")
    conn.execute(
        "CREATE TABLE bench_rows (id INTEGER PRIMARY KEY, name TEXT NOT NULL, category TEXT, "
        "amount REAL, quantity INTEGER, active INTEGER, created_at TEXT, updated_at TEXT NOT NULL, "
        "day TEXT, note TEXT, payload TEXT)"
    )
    base = dt.datetime(2025, 1, 1)
    chunk = 50_000
    for start in range(0, rows, chunk):
        batch = []
        for i in range(start + 1, min(rows, start + chunk) + 1):
            ts = base + dt.timedelta(seconds=i)
            batch.append(
                (
                    i,
                    f"name-{i}",
                    rnd.choice("abcdef"),
                    round(rnd.random() * 1000, 4),
                    rnd.randint(0, 1000),
                    i % 2,
                    ts.isoformat(sep=" "),
                    ts.isoformat(sep=" "),
                    ts.date().isoformat(),
                    None if i % 5 else f"note {i}",
                    json.dumps({"k": i % 10, "tags": ["x", "y"]}),
                )
            )
        conn.executemany("INSERT INTO bench_rows VALUES (?,?,?,?,?,?,?,?,?,?,?)", batch)
        conn.commit()
    conn.close()


def _parquet_rows(directory: Path) -> int:
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(p).metadata.num_rows for p in directory.rglob("*.parquet"))


def run_micro_bench(rows: int = 200_000, *, workdir: str | None = None) -> dict[str, Any]:
    """Run the measurement; returns ``rows``, ``seconds``, ``rows_per_second``, ``peak_rss_mib``,
    ``rows_written``."""
    tmp = None
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="dcapix-bench-")
        workdir = tmp.name
    try:
        d = Path(workdir)
        d.mkdir(parents=True, exist_ok=True)
        db = d / f"bench_{rows}.sqlite"
        if not db.exists():
            make_sqlite(db, rows)
        out = d / "out"
        if out.exists():
            import shutil

            shutil.rmtree(out)
        (d / "src.json").write_text(
            json.dumps({"adapter": "sql", "url": f"sqlite:///{db}", "streams": ["bench_rows"]})
        )
        (d / "dst.json").write_text(json.dumps({"adapter": "parquet", "path": str(out)}))
        cmd = [
            sys.executable,
            "-m",
            "dc_api_x.cli",
            "run",
            "--source",
            str(d / "src.json"),
            "--destination",
            str(d / "dst.json"),
            "--no-state",
            "--no-progress",
            "--json",
        ]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=d)
        _, status, usage = os.wait4(proc.pid, 0)
        secs = time.perf_counter() - t0
        stdout = proc.stdout.read() if proc.stdout else b""
        stderr = proc.stderr.read() if proc.stderr else b""
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise RuntimeError(f"dcapix run failed ({proc.returncode}): {stderr.decode()[-2000:]}")
        written = _parquet_rows(out)
        return {
            "rows": rows,
            "seconds": secs,
            "rows_per_second": rows / secs,
            "peak_rss_mib": usage.ru_maxrss / 1024,
            "rows_written": written,
            "metrics": json.loads(stdout or b"{}"),
        }
    finally:
        if tmp is not None:
            tmp.cleanup()
