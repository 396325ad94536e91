"""The bookmark of a key stream (hash, json, string) read by a full ``SCAN``.

The shared format of :mod:`dc_api_x.bookmarks` (``replication_key``, ``replication_key_value``,
``keys_at_value``): rows below the bookmark value are skipped, rows at it only when their primary
key is listed (boundary semantics: no loss, no duplicate). The stored value is converted to the
column's Arrow type first, so that date-times, decimals and numbers compare as values, not text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from dc_api_x.bookmarks import BoundaryBookmark
from dc_api_x.exceptions import AdapterError
from dc_api_x.types import StreamSpec

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

__all__ = ["Incremental"]


class Incremental:
    """Boundary bookmark of a key stream read by a full scan (the shared format of
    :mod:`dc_api_x.bookmarks`): rows at or below the bookmark that were delivered are skipped."""

    def __init__(self, stream: StreamSpec, state: Mapping[str, Any] | None, arrow_schema: pa.Schema) -> None:
        from dc_api_x.arrow import records_to_arrow

        rk = stream.replication_key or ""
        field = arrow_schema.field(rk)
        self.start: Any = None

        def convert(value: Any) -> Any:
            table = records_to_arrow([{rk: value}], arrow_schema=_schema_of(field))
            self.start = table.column(0)[0]
            return self.start.as_py()

        try:
            self.core = BoundaryBookmark.from_state(
                state, rk, stream.key_properties, stream=stream.name, ties="keep", convert=convert
            )
        except ValueError as exc:
            raise AdapterError(
                f"adapter 'redis', stream {stream.name!r}: bookmark value does not fit {rk!r}: {exc}",
                adapter="redis",
                stream=stream.name,
            ) from None

    def filter(self, table: pa.Table) -> pa.Table:
        if self.start is None:
            return table
        return self.core.filter_arrow(table, self.start)

    def observe(self, table: pa.Table) -> None:
        self.core.advance_arrow(table)

    def state(self) -> dict[str, Any] | None:
        return self.core.to_state(sort_keys=True)


def _schema_of(field: pa.Field) -> pa.Schema:
    import pyarrow as pa

    return pa.schema([field])
