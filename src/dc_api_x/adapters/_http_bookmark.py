"""Incremental-read bookkeeping of the HTTP adapter on the shared
:class:`~dc_api_x.bookmarks.BoundaryBookmark` (what :meth:`HttpAdapter.read` filters and which
bookmark its batches carry). Imports no HTTP library."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..bookmarks import BoundaryBookmark, OrderError
from ..exceptions import AdapterError
from ..ext.pagination import MISSING
from ..types import Record

__all__ = ["HttpBookmark"]


class HttpBookmark:
    """Incremental-read bookkeeping of the HTTP adapter on the shared
    :class:`~dc_api_x.bookmarks.BoundaryBookmark`: records with a null replication value are kept,
    a state without ``keys_at_value`` drops every record at its value (keyless streams: keeps
    them; their ``keys_at_value`` are row hashes), ``replication_start`` is an inclusive lower
    bound, ``is_sorted`` streams must not go backwards."""

    def __init__(self, rk: str, pks: tuple[str, ...], where: str, is_sorted: bool) -> None:
        self.rk = rk
        self.pks = pks
        self.where = where
        self.sorted = is_sorted
        self.lower: Any = MISSING  # value sent to the server / lower bound
        self.core = BoundaryBookmark(rk, pks, ties="drop")

    def start(self, state: Mapping[str, Any] | None, replication_start: Any) -> None:
        # without primary keys the keys are row hashes; a keyless state without them (written
        # before row hashes) re-delivers the records at its value (at-least-once, never a loss)
        self.core = BoundaryBookmark.from_state(state, self.rk, self.pks, ties="drop")
        if self.core.has_start:
            self.lower = self.core.start_value
        elif replication_start is not None:
            self.lower = replication_start
            self.core.set_lower_bound(replication_start)

    def filter(self, records: list[Record], limit: int | None = None) -> list[Record]:
        """The records not delivered before (at most ``limit``), tracking the max value."""
        try:
            return self.core.filter_records(records, limit, keep_nulls=True, strict_order=self.sorted)
        except OrderError as exc:
            raise AdapterError(
                f"{self.where}, field {self.rk!r}: records are not sorted (value {exc.value!r} after "
                f"{exc.previous!r}) but the stream is declared is_sorted; set is_sorted: false"
            ) from None
        except TypeError as exc:
            raise AdapterError(
                f"{self.where}, field {self.rk!r}: replication values cannot be compared: {exc}"
            ) from None

    def bookmark(self) -> dict[str, Any] | None:
        return self.core.to_state()
