"""Micro-benchmark of :func:`dc_api_x.arrow.records_to_arrow` on JSON-form records.

The records look like what a Singer target receives (ISO strings for timestamps and dates, decimal
strings, plain ints/floats/bools/strings, a JSON object): 11 columns. Prints rows/s for the
conversion alone, and for the reverse :func:`arrow_to_records`.

    .venv/bin/python benchmarks/records_to_arrow.py [--rows 200000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from dc_api_x.arrow import arrow_to_records, records_to_arrow

SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "account_id": {"type": ["integer", "null"]},
        "name": {"type": ["string", "null"]},
        "email": {"type": ["string", "null"]},
        "amount": {"type": ["string", "null"], "format": "decimal", "x-precision": 18, "x-scale": 2},
        "score": {"type": ["number", "null"]},
        "active": {"type": ["boolean", "null"]},
        "created_at": {"type": ["string", "null"], "format": "date-time"},
        "updated_at": {"type": ["string", "null"], "format": "date-time"},
        "birthday": {"type": ["string", "null"], "format": "date"},
        "tags": {"type": ["object", "null"], "x-json": True},
    },
}


def make_records(n: int) -> list[dict[str, Any]]:
    return [
        {
            "id": i,
            "account_id": i % 1000 if i % 10 else None,
            "name": f"customer {i} ü",
            "email": f"user{i}@example.com",
            "amount": f"{i % 100000}.{i % 100:02d}",
            "score": i * 0.5,
            "active": bool(i % 2),
            "created_at": (
                f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:"
                f"{i % 60:02d}.{i % 1000000:06d}+00:00"
            ),
            "updated_at": f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}T{i % 24:02d}:00:00Z",
            "birthday": f"19{50 + i % 50}-{1 + i % 12:02d}-{1 + i % 28:02d}",
            "tags": {"k": i % 7, "v": ["a", "b"]} if i % 3 else None,
        }
        for i in range(n)
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    records = make_records(args.rows)
    records_to_arrow(records[:1000], SCHEMA)  # warm up (imports)
    table = records_to_arrow(records, SCHEMA)
    assert table.num_rows == args.rows
    wall, cpu = _best(lambda: records_to_arrow(records, SCHEMA), args.repeat)
    print(
        f"records_to_arrow: {args.rows} rows x {table.num_columns} columns: {args.rows / wall:,.0f} rows/s "
        f"wall, {args.rows / cpu:,.0f} rows/s CPU (best of {args.repeat})"
    )
    wall, cpu = _best(lambda: arrow_to_records(table, SCHEMA), args.repeat)
    print(f"arrow_to_records: {args.rows / wall:,.0f} rows/s wall, {args.rows / cpu:,.0f} rows/s CPU")
    for fmt, batch in (("parquet", "arrow"), ("parquet", "records"), ("jsonl", "arrow")):
        wall, cpu = _best(lambda fmt=fmt, batch=batch: write_files(fmt, table, records, batch), args.repeat)
        print(
            f"{fmt} adapter write ({batch} batches of 50k): {args.rows / wall:,.0f} rows/s wall, "
            f"{args.rows / cpu:,.0f} rows/s CPU"
        )
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        for fmt in ("parquet", "jsonl", "csv"):
            write_files(fmt, table, records, "arrow", out=f"{tmp}/{fmt}")
            wall, cpu = _best(lambda fmt=fmt: read_files(fmt, f"{tmp}/{fmt}"), args.repeat)
            print(
                f"{fmt} adapter read: {args.rows / wall:,.0f} rows/s wall, {args.rows / cpu:,.0f} rows/s CPU"
            )


def read_files(fmt: str, path: str) -> int:
    from dc_api_x import create_adapter

    with create_adapter({"adapter": fmt, "path": path}) as a:
        return sum(len(b) for b in a.read(a.get_stream("bench")))


def write_files(
    fmt: str, table: Any, records: list[dict[str, Any]], kind: str, out: str | None = None
) -> None:
    """The file adapter's write path: start_write, write 50k-row batches, finish_write (fsync, rename)."""
    import contextlib
    import tempfile

    from dc_api_x import Batch, StreamSpec, create_adapter

    spec = StreamSpec("bench", schema=SCHEMA)
    with contextlib.ExitStack() as stack:
        if out is None:
            out = stack.enter_context(tempfile.TemporaryDirectory())
        a = stack.enter_context(create_adapter({"adapter": fmt, "path": out}))
        a.start_write(spec)
        for i in range(0, table.num_rows, 50_000):
            if kind == "arrow":
                a.write(spec, Batch.from_arrow(table.slice(i, 50_000), schema=SCHEMA))
            else:
                a.write(spec, Batch.from_records(records[i : i + 50_000], schema=SCHEMA))
        a.finish_write(spec)


def _best(fn: Callable[[], Any], repeat: int) -> tuple[float, float]:
    """Best wall-clock and best CPU (process) time of ``repeat`` runs; CPU time is what to compare on
    a loaded machine."""
    wall = cpu = float("inf")
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall = min(wall, time.perf_counter() - t0)
        cpu = min(cpu, time.process_time() - c0)
    return wall, cpu


if __name__ == "__main__":
    main()
