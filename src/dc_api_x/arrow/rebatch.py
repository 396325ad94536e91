"""Tables of a fixed number of rows from record batches of any sizes (a driver's or a file
reader's)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

__all__ = ["rebatch"]


def rebatch(
    batches: Iterable[pa.RecordBatch], size: int, schema: pa.Schema | None = None
) -> Iterator[pa.Table]:
    """Tables of exactly ``size`` rows (the last one shorter) from record batches of any sizes, such
    as a driver's or a file reader's. ``schema``: the schema of the last table (for readers whose
    batches may be empty)."""
    import pyarrow as pa

    pending: list[pa.RecordBatch] = []
    rows = 0
    for rb in batches:
        pending.append(rb)
        rows += rb.num_rows
        while rows >= size:
            table = pa.Table.from_batches(pending)
            yield table.slice(0, size)
            rest = table.slice(size)
            pending, rows = rest.to_batches(), rest.num_rows
    if rows:
        yield pa.Table.from_batches(pending, schema=schema)
