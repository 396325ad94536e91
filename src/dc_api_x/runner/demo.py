"""``dcapix demo``: a SQLite → Parquet pipeline on embedded defaults, no server needed.

Creates ``./demo/`` (or ``--dir``) holding ``shop.db`` (customers and orders), a ``dcapix.yml``
pipeline file, runs it through the runner (or ``tap-dcapix | target-dcapix`` with
``--via-singer``), prints the summary and where the Parquet files are.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_demo_command", "make_demo_project", "run_demo"]


def add_demo_command(subparsers: Any) -> None:
    """Register ``dcapix demo``."""
    p = subparsers.add_parser("demo", help="run a SQLite -> Parquet demo pipeline (no server needed)")
    p.add_argument("--dir", default="demo", help="where to put the demo (default ./demo)")
    p.add_argument("--rows", type=int, default=10_000, help="orders to generate (default 10000)")
    p.add_argument("--via-singer", action="store_true", help="run it as tap-dcapix | target-dcapix")
    p.add_argument("--json", action="store_true", help="metrics as JSON on stdout")
    p.set_defaults(func=_cmd_demo)


def make_demo_project(directory: str | Path, rows: int = 10_000) -> Path:
    """Create the demo database and ``dcapix.yml`` in ``directory``; returns the config path."""
    import datetime as dt  # (imported here: `dcapix --help` imports this module)
    import random
    import sqlite3

    d = Path(directory).resolve()
    d.mkdir(parents=True, exist_ok=True)
    db = d / "shop.db"
    if db.exists():
        db.unlink()
    rnd = random.Random(42)
    conn = sqlite3.connect(db)
    with conn:
        conn.execute(
            "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT, "
            "created_at TEXT NOT NULL)"
        )
        conn.execute(
            "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL, "
            "amount REAL NOT NULL, status TEXT NOT NULL, updated_at TEXT NOT NULL)"
        )
        base = dt.datetime(2026, 1, 1)
        ncust = max(rows // 10, 1)
        conn.executemany(
            "INSERT INTO customers VALUES (?, ?, ?, ?)",
            [
                (
                    i,
                    f"customer {i}",
                    f"c{i}@example.com" if i % 7 else None,
                    (base + dt.timedelta(hours=i)).isoformat(sep=" "),
                )
                for i in range(1, ncust + 1)
            ],
        )
        conn.executemany(
            "INSERT INTO orders VALUES (?, ?, ?, ?, ?)",
            [
                (
                    i,
                    rnd.randint(1, ncust),
                    round(rnd.uniform(1, 500), 2),
                    rnd.choice(["new", "paid", "shipped"]),
                    (base + dt.timedelta(minutes=i)).isoformat(sep=" "),
                )
                for i in range(1, rows + 1)
            ],
        )
    conn.close()
    out = d / "out"
    cfg = {
        "state_backend": "sqlite",
        "pipelines": {
            "demo": {
                "source": {"adapter": "sql", "url": f"sqlite:///{db}", "streams": ["customers", "orders"]},
                "destination": {"adapter": "parquet", "path": str(out), "load_method": "overwrite"},
            }
        },
    }
    path = d / "dcapix.yml"
    import yaml

    path.write_text(
        "# dcapix demo pipeline: SQLite -> Parquet (dcapix run -c this-file demo)\n"
        + yaml.safe_dump(cfg, sort_keys=False)
    )
    return path


def run_demo(
    directory: str | Path = "demo", rows: int = 10_000, *, via_singer: bool = False, json_out: bool = False
) -> int:
    """Create the demo project and run its pipeline (full refresh, SQLite state beside it) through
    the runner's API — in-process, or as ``tap-dcapix | target-dcapix`` with ``via_singer``; print
    the summary (``json_out``: the metrics as JSON on stdout) and where the Parquet files are.
    Returns the exit code; a failed run raises its error."""
    from .config import load_config
    from .pipeline import RunOptions, run_pipeline
    from .process import run_via_singer
    from .progress import Progress, RunMetrics, format_summary
    from .state import open_state_store

    cfg = make_demo_project(directory, rows)
    project = load_config(cfg)
    name, pipe = project.pipeline("demo")
    options = RunOptions(full_refresh=True)
    store = open_state_store(project.state_backend, project_dir=project.project_dir)
    try:
        with Progress(RunMetrics(name, mode="via-singer" if via_singer else "in-process")) as progress:
            if via_singer:
                metrics = run_via_singer(name, pipe, store, options, progress=progress)
            else:
                metrics = run_pipeline(name, pipe, store, options, progress=progress)
    finally:
        store.close()
    stream = sys.stderr if json_out else sys.stdout
    if json_out:
        print(json.dumps(metrics.as_dict(), default=str))
    print(format_summary(metrics), file=stream)
    out = cfg.parent / "out"
    files = sorted(p for p in out.rglob("*.parquet")) if out.exists() else []
    print(f"\nParquet files in {out}:" if files else f"\n(no Parquet files under {out})", file=stream)
    for f in files:
        print(f"  {f}", file=stream)
    print(f"pipeline file: {cfg}  (rerun: dcapix run -c {cfg} demo)", file=stream)
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    return run_demo(args.dir, args.rows, via_singer=args.via_singer, json_out=args.json)


if __name__ == "__main__":  # pragma: no cover
    print(json.dumps({"demo": str(make_demo_project("demo"))}))
