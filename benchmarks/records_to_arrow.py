"""Micro-benchmark of :func:`dc_api_x.arrow.records_to_arrow` on JSON-form records.

The records look like what a Singer target receives (ISO strings for timestamps and dates, decimal
strings, plain ints/floats/bools/strings, a JSON object): 11 columns. Prints rows/s for the
conversion alone, and for the reverse :func:`arrow_to_records`.

    .venv/bin/python benchmarks/records_to_arrow.py [--rows 200000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import time

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


def make_records(n: int) -> list[dict]:
    return [
        {
            "id": i,
            "account_id": i % 1000 if i % 10 else None,
            "name": f"customer {i} ü",
            "email": f"user{i}@example.com",
            "amount": f"{i % 100000}.{i % 100:02d}",
            "score": i * 0.5,
            "active": bool(i % 2),
            "created_at": f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:{i % 60:02d}.{i % 1000000:06d}+00:00",
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
    best = float("inf")
    table = None
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        table = records_to_arrow(records, SCHEMA)
        best = min(best, time.perf_counter() - t0)
    assert table is not None and table.num_rows == args.rows
    print(f"records_to_arrow: {args.rows} rows x {table.num_columns} columns: "
          f"{args.rows / best:,.0f} rows/s (best of {args.repeat})")
    best = float("inf")
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        out = arrow_to_records(table, SCHEMA)
        best = min(best, time.perf_counter() - t0)
    assert len(out) == args.rows
    print(f"arrow_to_records: {args.rows / best:,.0f} rows/s (best of {args.repeat})")


if __name__ == "__main__":
    main()
