"""The small-sync reference: a plain script, sqlite3 → pyarrow → one Parquet file per table.

    python plain_sqlite_to_parquet.py DB OUT_DIR TABLE [TABLE ...]

What a user would write by hand instead of a pipeline (no state, no types beyond what pyarrow infers
from the Python values): ``benchmarks/small.sh`` times ``dcapix run`` on the demo database against it.
Prints the number of rows written.
"""

from __future__ import annotations

import os
import sqlite3
import sys

import pyarrow as pa
import pyarrow.parquet as pq


def main(db: str, out: str, tables: list[str]) -> int:
    con = sqlite3.connect(db)
    total = 0
    for t in tables:
        cur = con.execute(f'SELECT * FROM "{t}"')
        names = [d[0] for d in cur.description]
        rows = cur.fetchall()
        cols = list(zip(*rows, strict=True)) if rows else [() for _ in names]
        table = pa.table({n: pa.array(list(c)) for n, c in zip(names, cols, strict=True)})
        os.makedirs(os.path.join(out, t), exist_ok=True)
        pq.write_table(table, os.path.join(out, t, "part-0.parquet"))
        total += table.num_rows
    con.close()
    print(total)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[3:]))
