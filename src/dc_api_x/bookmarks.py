"""The incremental-read bookmark shared by the built-in adapters (layer 0: no heavy imports).

A bookmark is the JSON object::

    {"replication_key": "updated_at",
     "replication_key_value": "2024-01-01T07:00:00+00:00",
     "keys_at_value": [[4], [7]]}

On resume, rows whose replication value is *below* ``replication_key_value`` were delivered
before and are dropped; rows *at* the value are dropped only if their primary key is listed in
``keys_at_value`` (boundary deduplication: no loss, no duplicate); rows above it are new. When the
state lists no ``keys_at_value`` the adapter chooses what happens to rows at the value (``ties``:
``"keep"`` re-reads them, at-least-once; ``"drop"`` treats the value as exclusive). After each
delivered batch the tracker advances: the new value and the primary keys delivered at it.

:class:`BoundaryBookmark` holds that logic once; each adapter keeps its own specifics (SQL pushes
``>=`` into the query and tracks the last row of its sorted output with :meth:`advance_to`, HTTP
sends the bound as a request parameter, the files adapter holds the bookmark back unless its
files are ordered). Values are stored as the adapter reads them; :meth:`BoundaryBookmark.to_state`
renders them JSON-safe with :func:`json_value` (ISO date-times, decimal strings, base64 bytes).
``pyarrow`` is imported only inside the Arrow methods.
"""

from __future__ import annotations

import base64
import datetime as _dt
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

__all__ = ["BoundaryBookmark", "OrderError", "json_value"]

Ties = Literal["keep", "drop"]


def json_value(value: Any) -> Any:
    """The JSON form of a bookmark or key value: ISO strings for dates/times, ``format(d, "f")``
    for decimals, base64 for bytes, ``str`` for UUIDs; anything else unchanged."""
    if isinstance(value, _dt.datetime | _dt.date | _dt.time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _key_tuple(key: Any) -> tuple[Any, ...]:
    """A ``keys_at_value`` entry as a hashable tuple (a bare scalar is a one-column key)."""
    return tuple(key) if isinstance(key, list | tuple) else (key,)


class OrderError(ValueError):
    """A value below the tracked one arrived in a read declared sorted (``strict_order``)."""

    def __init__(self, value: Any, previous: Any) -> None:
        super().__init__(f"value {value!r} after {previous!r}")
        self.value = value
        self.previous = previous


class BoundaryBookmark:
    """Start bookmark (what to skip) and running bookmark (what was delivered) of one stream.

    * ``start_value`` / ``start_keys`` — the bookmark the read resumes from (filtering);
    * ``value`` / ``keys`` — the bookmark after the rows delivered so far (:meth:`to_state`).

    Keys are tuples of the primary-key values in JSON form (``()`` for a stream without primary
    key). ``ties``: what to do with rows at ``start_value`` when the state listed no
    ``keys_at_value`` (``"keep"``: deliver them again; ``"drop"``: skip them).
    """

    def __init__(self, replication_key: str, key_properties: Sequence[str] = (), value: Any = None,
                 keys: Iterable[Any] | None = None, *, ties: Ties = "keep") -> None:
        self.replication_key = replication_key
        self.key_properties = tuple(key_properties)
        self.ties: Ties = ties
        #: the resume point; ``None``: read everything
        self.start_value: Any = value
        #: ``None`` when the state listed no ``keys_at_value``
        self.start_keys: frozenset[tuple[Any, ...]] | None = (
            None if keys is None else frozenset(_key_tuple(k) for k in keys))
        self.inclusive = False
        self.value: Any = value
        self.keys: list[tuple[Any, ...]] = []
        self._key_set: set[tuple[Any, ...]] = set()
        for k in keys or ():
            self._add_key(_key_tuple(k))

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def from_state(cls, state: Mapping[str, Any] | None, replication_key: str,
                   key_properties: Sequence[str] = (), *, stream: str | None = None, ties: Ties = "keep",
                   convert: Callable[[Any], Any] | None = None) -> BoundaryBookmark:
        """The bookmark of ``state`` (a stream bookmark, or a whole Singer state with
        ``bookmarks[stream]`` when ``stream`` is given). A bookmark of another replication key or
        without a value means "read everything". ``convert`` maps the stored value to the form
        the adapter compares (it may raise; the adapter reports that)."""
        st: Mapping[str, Any] = state or {}
        if stream is not None and isinstance(st.get("bookmarks"), Mapping):
            st = st["bookmarks"].get(stream) or {}
        if st.get("replication_key") not in (None, replication_key):
            st = {}
        value = st.get("replication_key_value")
        if value is None:
            return cls(replication_key, key_properties, ties=ties)
        if convert is not None:
            value = convert(value)
        keys = st.get("keys_at_value") if "keys_at_value" in st else None
        return cls(replication_key, key_properties, value,
                   None if keys is None else list(keys or ()), ties=ties)

    def set_lower_bound(self, value: Any) -> None:
        """An inclusive lower bound (e.g. a configured start value) for a read without a bookmark:
        rows below it are skipped, rows at it kept; the running bookmark is not changed."""
        self.start_value, self.start_keys, self.inclusive = value, None, True

    # -- filtering ------------------------------------------------------------------------------
    @property
    def has_start(self) -> bool:
        """Whether the read resumes from a value (anything is to be skipped)."""
        return self.start_value is not None

    def drops_ties(self) -> bool:
        """Whether rows at ``start_value`` are all dropped regardless of their key."""
        return not self.inclusive and self.start_keys is None and self.ties == "drop"

    def keeps_ties(self) -> bool:
        """Whether rows at ``start_value`` are all kept regardless of their key."""
        if self.inclusive:
            return True
        return self.ties == "keep" if self.start_keys is None else not self.start_keys

    def is_new(self, value: Any, key: tuple[Any, ...] = (), *, keep_nulls: bool = True) -> bool:
        """Whether a row with replication ``value`` and primary ``key`` (JSON form) is to be
        delivered. A null value cannot be placed: kept with ``keep_nulls``, else dropped."""
        if value is None:
            return keep_nulls
        start = self.start_value
        if start is None:
            return True
        if value < start:
            return False
        if value == start:
            if self.keeps_ties():
                return True
            if self.drops_ties():
                return False
            assert self.start_keys is not None
            return key not in self.start_keys
        return True

    def key_of(self, record: Mapping[str, Any]) -> tuple[Any, ...]:
        """The primary key of a dict record in JSON form."""
        return tuple(json_value(record.get(k)) for k in self.key_properties)

    def filter_records(self, records: Iterable[Mapping[str, Any]], limit: int | None = None, *,
                       keep_nulls: bool = True, strict_order: bool = False) -> list[Any]:
        """The dict records not delivered before (at most ``limit``), advancing the running
        bookmark (max value, keys at it) with each one kept. ``strict_order``: a value below the
        running one raises :class:`OrderError`. Values that cannot be compared raise ``TypeError``."""
        out: list[Any] = []
        append = out.append
        rk = self.replication_key
        start = self.start_value
        keep_ties, drop_ties = self.keeps_ties(), self.drops_ties()
        start_keys = self.start_keys or frozenset()
        pks = self.key_properties
        with_keys = bool(pks)
        single = pks[0] if len(pks) == 1 else None
        key_of = self.key_of
        for rec in records:
            if limit is not None and len(out) >= limit:
                break
            v = rec.get(rk)
            if v is None:
                if keep_nulls:
                    append(rec)
                continue
            if start is not None:
                if v < start:
                    continue
                if v == start and not keep_ties and (drop_ties or key_of(rec) in start_keys):
                    continue
            m = self.value
            if m is None or v > m:
                self.value, self.keys, self._key_set = v, [], set()
            elif v != m:
                if strict_order:
                    raise OrderError(v, m)
                append(rec)
                continue
            if with_keys:
                key = (json_value(rec.get(single)),) if single is not None else key_of(rec)
                if key not in self._key_set:
                    self._key_set.add(key)
                    self.keys.append(key)
            append(rec)
        return out

    def filter_arrow(self, table: pa.Table, start: Any = None) -> pa.Table:
        """The rows of an Arrow ``table`` not delivered before. ``start``: the start value as an
        Arrow scalar of the column's type (default: built from ``start_value``). Rows with a null
        replication value are dropped when there is a start value."""
        if self.start_value is None or table.num_rows == 0:
            return table
        import pyarrow as pa
        import pyarrow.compute as pc

        col = table.column(self.replication_key)
        if start is None:
            start = pa.scalar(self.start_value, type=col.type)
        keep = pc.fill_null(pc.greater(col, start), False)
        at = pc.fill_null(pc.equal(col, start), False)
        if pc.any(at).as_py() and not self.drops_ties():
            if self.keeps_ties():
                keep = pc.or_(keep, at)
            else:
                idx = pc.indices_nonzero(at).to_pylist()
                rows = table.select(list(self.key_properties)).take(pa.array(idx)).to_pylist()
                mask = keep.to_pylist()
                for i, row in zip(idx, rows, strict=True):
                    if self.is_new(self.start_value, self.key_of(row)):
                        mask[i] = True
                keep = pa.array(mask, type=pa.bool_())
        return table.filter(keep)

    # -- advancing ------------------------------------------------------------------------------
    def _add_key(self, key: tuple[Any, ...]) -> None:
        if key not in self._key_set:
            self._key_set.add(key)
            self.keys.append(key)

    def advance(self, value: Any, key: tuple[Any, ...] = ()) -> bool:
        """Record one delivered row (max semantics): a larger value starts a new key list, an
        equal one adds ``key``. ``False`` if ``value`` is below the running value (unchanged)."""
        if value is None:
            return True
        current = self.value
        if current is None or value > current:
            self.value, self.keys, self._key_set = value, [], set()
        elif value != current:
            return False
        if self.key_properties:
            self._add_key(key)
        return True

    def advance_to(self, value: Any, keys: Iterable[tuple[Any, ...]]) -> None:
        """Record the last delivered value of a read *sorted* by value: ``keys`` were delivered at
        it (added to the list when it is the running value, else a new list). No comparison."""
        if value != self.value:
            self.value, self.keys, self._key_set = value, [], set()
        for k in keys:
            self._add_key(tuple(k))

    def advance_records(self, records: Iterable[Mapping[str, Any]]) -> None:
        """:meth:`advance` with each delivered dict record (null values are skipped)."""
        rk = self.replication_key
        for rec in records:
            v = rec.get(rk)
            if v is not None:
                self.advance(v, self.key_of(rec))

    def advance_arrow(self, table: pa.Table) -> tuple[Any, Any]:
        """:meth:`advance` with the delivered rows of an Arrow ``table``: the max value and the keys
        at it. Returns the ``(min, max)`` replication values of the table (Python objects)."""
        if table.num_rows == 0:
            return None, None
        import pyarrow as pa
        import pyarrow.compute as pc

        col = table.column(self.replication_key)
        mm = pc.min_max(col)
        lo, hi = mm["min"].as_py(), mm["max"].as_py()
        if hi is None:
            return lo, hi
        if self.value is None or hi > self.value:
            self.value, self.keys, self._key_set = hi, [], set()
        if hi == self.value and self.key_properties:
            at = pc.fill_null(pc.equal(col, pa.scalar(hi, type=col.type)), False)
            for row in table.filter(at).select(list(self.key_properties)).to_pylist():
                self._add_key(self.key_of(row))
        return lo, hi

    # -- output ---------------------------------------------------------------------------------
    def to_state(self, *, sort_keys: bool = False, with_keys: bool = True) -> dict[str, Any] | None:
        """The running bookmark as a JSON-safe dict (``None`` before any value). ``sort_keys``:
        ``keys_at_value`` in a stable order (by ``repr``) instead of delivery order;
        ``with_keys=False`` leaves ``keys_at_value`` out."""
        if self.value is None:
            return None
        state: dict[str, Any] = {"replication_key": self.replication_key,
                                 "replication_key_value": json_value(self.value)}
        if with_keys:
            keys = [[json_value(v) for v in k] for k in self.keys]
            state["keys_at_value"] = sorted(keys, key=repr) if sort_keys else keys
        return state
