"""An in-memory adapter: reads ``rows`` numbered records, writes into a list."""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pydantic import Field

from dc_api_x.ext.adapters import AdapterOptions, ProtocolAdapter
from dc_api_x.types import Batch, StreamSpec, WriteResult

#: Adapters not closed yet (the plugin's cleanup closes them when the plugin set closes).
OPEN_ADAPTERS: weakref.WeakSet[ExampleAdapter] = weakref.WeakSet()

SCHEMA = {
    "type": "object",
    "properties": {"n": {"type": "integer"}, "label": {"type": ["string", "null"]}},
}


class ExampleOptions(AdapterOptions):
    rows: int = Field(3, ge=0, description="how many records the 'numbers' stream has")
    batch_size: int = Field(2, ge=1, description="records per batch")


class ExampleAdapter(ProtocolAdapter):
    name = "example"
    Options = ExampleOptions
    load_methods = ("append",)

    def __init__(self, options: Any = None, /, **kwargs: Any) -> None:
        super().__init__(options, **kwargs)
        self.written: dict[str, list[dict[str, Any]]] = {}
        OPEN_ADAPTERS.add(self)

    def discover(self) -> list[StreamSpec]:
        return [
            StreamSpec(
                "numbers", schema=SCHEMA, key_properties=("n",), replication_key="n", replication_keys=("n",)
            )
        ]

    def read(
        self,
        stream: StreamSpec,
        *,
        state: Mapping[str, Any] | None = None,
        columns: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> Iterator[Batch]:
        after = int((state or {}).get("n", 0))
        last = self.options.rows if limit is None else min(self.options.rows, after + limit)
        n = after
        while n < last:
            chunk = range(n + 1, min(n + self.options.batch_size, last) + 1)
            records = [{"n": i, "label": f"row {i}"} for i in chunk]
            if columns is not None:
                records = [{k: r[k] for k in columns} for r in records]
            n = chunk[-1]
            yield Batch.from_records(records, schema=SCHEMA, bookmark={"n": n})

    def start_write(self, stream: StreamSpec, *, load_method: str | None = None) -> None:
        super().start_write(stream, load_method=load_method)
        self.written.setdefault(stream.name, [])

    def write(self, stream: StreamSpec, batch: Batch) -> WriteResult:
        if stream.name not in self.written:
            raise self.error("write() before start_write()", stream=stream.name)
        rows = list(batch.records)
        self.written[stream.name].extend(rows)
        return WriteResult(rows=len(rows))

    def close(self) -> None:
        OPEN_ADAPTERS.discard(self)
        super().close()
