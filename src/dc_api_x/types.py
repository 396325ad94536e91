"""Value types shared by every layer: stream descriptions, record batches, write results.

Nothing here does I/O and nothing here imports a heavy library at module import time: the Arrow
view of a :class:`Batch` imports :mod:`pyarrow` on first use only.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

__all__ = ["Batch", "JSONSchema", "Record", "StreamSpec", "WriteResult"]

#: One record: a mapping of field name to a Python value (``Decimal``, ``datetime``, ``bytes`` … are allowed).
Record = dict[str, Any]
#: A JSON Schema document (the Singer schema format), as a plain dict.
JSONSchema = dict[str, Any]


@dataclass(frozen=True)
class StreamSpec:
    """The description of one stream, as ``ProtocolAdapter.discover()`` returns it.

    :param name: the stream name (``tap_stream_id`` in Singer).
    :param schema: JSON Schema of one record (``{"type": "object", "properties": {...}}``).
    :param key_properties: primary-key field names (may be empty).
    :param replication_key: the field that orders incremental reads, or ``None`` for full table.
    :param replication_keys: candidate replication keys the adapter can offer.
    :param options: adapter-specific settings (table name, path, query, …) the adapter needs to read it.
    """

    name: str
    schema: JSONSchema = field(default_factory=lambda: {"type": "object", "properties": {}})
    key_properties: tuple[str, ...] = ()
    replication_key: str | None = None
    replication_keys: tuple[str, ...] = ()
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def replication_method(self) -> str:
        return "INCREMENTAL" if self.replication_key else "FULL_TABLE"

    @property
    def properties(self) -> dict[str, JSONSchema]:
        return dict(self.schema.get("properties") or {})

    def with_(self, **changes: Any) -> StreamSpec:
        """A copy with some fields changed (``spec.with_(replication_key="updated_at")``)."""
        if "key_properties" in changes:
            changes["key_properties"] = tuple(changes["key_properties"] or ())
        return replace(self, **changes)


class Batch:
    """A batch of records with two views, converted lazily: Python dicts and an Arrow table.

    Build it from either side; the other view is made on first use and kept::

        Batch.from_records([{"id": 1}], schema=spec.schema)
        Batch.from_arrow(record_batch_or_table)

    ``bookmark`` is the stream state *after* this batch (adapters that read incrementally set it); a
    consumer stores it only once the batch is committed downstream.
    """

    __slots__ = ("_arrow", "_records", "bookmark", "schema")

    def __init__(
        self,
        *,
        records: list[Record] | None = None,
        arrow: pa.Table | None = None,
        schema: JSONSchema | None = None,
        bookmark: dict[str, Any] | None = None,
    ) -> None:
        if records is None and arrow is None:
            records = []
        self._records = records
        self._arrow = arrow
        self.schema = schema
        self.bookmark = bookmark

    # -- constructors -------------------------------------------------------------------------
    @classmethod
    def from_records(
        cls,
        records: Iterable[Record],
        *,
        schema: JSONSchema | None = None,
        bookmark: dict[str, Any] | None = None,
    ) -> Batch:
        return cls(records=list(records), schema=schema, bookmark=bookmark)

    @classmethod
    def from_arrow(
        cls,
        data: pa.Table | pa.RecordBatch,
        *,
        schema: JSONSchema | None = None,
        bookmark: dict[str, Any] | None = None,
    ) -> Batch:
        import pyarrow as pa

        table = pa.Table.from_batches([data]) if isinstance(data, pa.RecordBatch) else data
        return cls(arrow=table, schema=schema, bookmark=bookmark)

    # -- views ---------------------------------------------------------------------------------
    @property
    def has_records(self) -> bool:
        """True when the dict view exists already (no conversion needed)."""
        return self._records is not None

    @property
    def has_arrow(self) -> bool:
        """True when the Arrow view exists already (no conversion needed)."""
        return self._arrow is not None

    @property
    def records(self) -> list[Record]:
        """The records as dicts (converted from Arrow on first use)."""
        if self._records is None:
            from .arrow import arrow_to_records

            assert self._arrow is not None
            self._records = arrow_to_records(self._arrow, self.schema)
        return self._records

    def to_arrow(self, schema: pa.Schema | None = None) -> pa.Table:
        """The records as a :class:`pyarrow.Table` (converted from dicts on first use).

        :param schema: an Arrow schema to build or cast to; by default it is derived from the
            batch's JSON Schema (or inferred when there is none).
        """
        if self._arrow is None:
            from .arrow import records_to_arrow

            self._arrow = records_to_arrow(self._records or [], self.schema, arrow_schema=schema)
        elif schema is not None and not self._arrow.schema.equals(schema):
            from .arrow import cast_table

            return cast_table(self._arrow, schema)
        return self._arrow

    def __len__(self) -> int:
        if self._arrow is not None:
            return int(self._arrow.num_rows)
        return len(self._records or [])

    @property
    def num_rows(self) -> int:
        return len(self)

    @property
    def column_names(self) -> list[str]:
        if self._arrow is not None:
            return list(self._arrow.column_names)
        if self.schema and self.schema.get("properties"):
            return list(self.schema["properties"])
        names: dict[str, None] = {}
        for rec in self._records or []:
            names.update(dict.fromkeys(rec))
        return list(names)

    def __iter__(self) -> Iterator[Record]:
        return iter(self.records)

    def with_records(self, records: Sequence[Record], schema: JSONSchema | None = None) -> Batch:
        """A new batch holding ``records`` with this batch's bookmark."""
        return Batch(records=list(records), schema=schema or self.schema, bookmark=self.bookmark)

    def with_arrow(self, table: pa.Table, schema: JSONSchema | None = None) -> Batch:
        """A new batch holding ``table`` with this batch's bookmark."""
        return Batch(arrow=table, schema=schema or self.schema, bookmark=self.bookmark)

    def __repr__(self) -> str:
        view = "arrow" if self._arrow is not None else "records"
        return f"<Batch rows={len(self)} view={view} bookmark={self.bookmark!r}>"


@dataclass
class WriteResult:
    """What a ``write()`` did. ``committed`` rows are durable; state may follow them."""

    rows: int = 0
    committed: bool = True
    inserted: int | None = None
    updated: int | None = None
    details: dict[str, Any] = field(default_factory=dict)
