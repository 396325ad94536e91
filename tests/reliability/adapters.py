"""Plugin module of the suite's deliberately wrong destination (the mutation check).

``lossy_jsonl`` is the real ``jsonl`` adapter except that it silently drops every row whose ``id``
is a multiple of 1000 (one row in a thousand) and reports success. The row oracle must fail on it;
if it does not, the oracle is broken.
"""

from __future__ import annotations

from typing import Any

from dc_api_x.adapters.files.jsonl import JSONLAdapter
from dc_api_x.types import Batch, StreamSpec, WriteResult

__all__ = ["LossyJSONL", "register_adapters"]


class LossyJSONL(JSONLAdapter):
    name = "lossy_jsonl"

    def write(self, stream: StreamSpec, batch: Batch) -> WriteResult:
        import pyarrow.compute as pc

        table = batch.to_arrow(self._writer(stream).arrow_schema)
        ids = pc.cast(table["id"], "int64")
        keep = pc.not_equal(pc.subtract(ids, pc.multiply(pc.divide(ids, 1000), 1000)), 0)  # id % 1000
        kept = table.filter(keep)
        return super().write(stream, Batch(arrow=kept, schema=batch.schema, bookmark=batch.bookmark))


def register_adapters(registry: Any) -> None:
    registry.register(LossyJSONL)
