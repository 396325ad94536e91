"""Tables of a fixed number of rows from record batches of any sizes (a driver's or a file
reader's)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

__all__ = ["rebatch"]


def rebatch(
    batches: Iterable[pa.RecordBatch],
    size: int,
    schema: pa.Schema | None = None,
    max_bytes: int | None = None,
) -> Iterator[pa.Table]:
    """Tables of exactly ``size`` rows (the last one shorter) from record batches of any sizes, such
    as a driver's or a file reader's. ``schema``: the schema of the last table (for readers whose
    batches may be empty). ``max_bytes``: a table also ends (shorter) before a batch that would
    take it past that many bytes (Arrow buffer sizes; a batch is not split for it)."""
    import pyarrow as pa

    pending: list[pa.RecordBatch] = []
    rows = held = 0
    for rb in batches:
        if max_bytes is not None:
            nb = rb.nbytes
            if pending and held + nb > max_bytes:  # this batch would pass the limit: end the table
                yield pa.Table.from_batches(pending)
                pending, rows, held = [], 0, 0
            held += nb
        pending.append(rb)
        rows += rb.num_rows
        while rows >= size:
            table = pa.Table.from_batches(pending)
            yield table.slice(0, size)
            rest = table.slice(size)
            pending, rows = rest.to_batches(), rest.num_rows
            held = rest.nbytes if max_bytes is not None else 0
    if rows:
        yield pa.Table.from_batches(pending, schema=schema)
