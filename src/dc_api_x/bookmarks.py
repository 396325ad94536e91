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

Streams **without** primary key list *row hashes* instead (as dlt does): the boundary key of a row
is ``[row_hash(row)]``, a one-element key holding the hex digest of the row's content (all its
fields, canonical JSON: sorted names, UTC ISO date-times, decimal strings, base64 bytes; see
:func:`row_hash`). Hashes are computed only for the rows at the boundary value. A hash is listed
once per delivered row, so identical rows at the same value count as a multiset: on resume as many
of them are dropped as were delivered, the others are delivered (identical rows cannot be told
apart, so *which* copy is re-delivered does not matter). A keyless state written before row hashes
(``keys_at_value: [[]]`` or none) re-delivers every row at its value: at-least-once, never a loss.

:class:`BoundaryBookmark` holds that logic once; each adapter keeps its own specifics (SQL pushes
``>=`` into the query and tracks the last row of its sorted output with :meth:`advance_to`, HTTP
sends the bound as a request parameter, the files adapter holds the bookmark back unless its
files are ordered). Values are stored as the adapter reads them; :meth:`BoundaryBookmark.to_state`
renders them JSON-safe with :func:`dc_api_x.values.json_form` (ISO date-times, decimal strings,
base64 bytes).
``pyarrow`` is imported only inside the Arrow methods.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import orjson

from .values import json_form

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

__all__ = ["BoundaryBookmark", "OrderError", "SortedBoundary", "json_value", "row_hash"]

#: The JSON form of a bookmark or key value (public here since 0.1; the one owner is
#: :func:`dc_api_x.values.json_form`).
json_value = json_form

Ties = Literal["keep", "drop"]

#: the types :func:`json_form` returns unchanged that JSON holds as they are
_JSON_SCALARS = frozenset({str, int, float, bool, type(None)})


def _hash_default(value: Any) -> Any:
    """The canonical JSON form of a non-JSON value in a row hash (aware date-times in UTC)."""
    if isinstance(value, _dt.datetime) and value.tzinfo is not None:
        return value.astimezone(_dt.timezone.utc).isoformat()
    if isinstance(value, set | frozenset):
        return sorted(map(repr, value))
    out = json_form(value)
    return str(out) if out is value else out


def _canonical_json(record: Mapping[str, Any]) -> bytes:
    try:
        return orjson.dumps(
            record,
            default=_hash_default,
            option=orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_NON_STR_KEYS,
        )
    except TypeError:  # e.g. an integer beyond 64 bits: the slower stdlib form
        return json.dumps(
            record, default=_hash_default, sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()


def row_hash(record: Mapping[str, Any]) -> str:
    """A stable hash of a row's content: the hex BLAKE2b-128 digest of its canonical JSON (field
    names sorted, aware date-times as UTC ISO strings, other date/times ISO, decimals as
    ``format(d, "f")``, bytes base64, UUIDs as strings). The boundary key of a row of a stream
    without primary key. Rows with equal content have equal hashes."""
    return hashlib.blake2b(_canonical_json(record), digest_size=16).hexdigest()


def _key_tuple(key: Any) -> tuple[Any, ...]:
    """A ``keys_at_value`` entry as a hashable tuple (a bare scalar is a one-column key)."""
    return tuple(key) if isinstance(key, list | tuple) else (key,)


def _is_hash_key(key: tuple[Any, ...]) -> bool:
    """Whether a ``keys_at_value`` entry of a keyless stream is a row hash (``[hex]``)."""
    return len(key) == 1 and isinstance(key[0], str)


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

    Keys are tuples of the primary-key values in JSON form. A stream without primary key
    (``hashed``) uses ``(row_hash(row),)`` instead, listed once per delivered row (a multiset:
    identical rows at the value are dropped on resume as often as they were delivered). ``ties``:
    what to do with rows at ``start_value`` when the state listed no ``keys_at_value``
    (``"keep"``: deliver them again; ``"drop"``: skip them); a keyless stream always keeps them
    then, as it does for a state listing no row hash (a state written before row hashes).
    """

    def __init__(
        self,
        replication_key: str,
        key_properties: Sequence[str] = (),
        value: Any = None,
        keys: Iterable[Any] | None = None,
        *,
        ties: Ties = "keep",
    ) -> None:
        self.replication_key = replication_key
        self.key_properties = tuple(key_properties)
        #: no primary key: boundary keys are row hashes
        self.hashed = not self.key_properties
        self.ties: Ties = ties
        #: the resume point; ``None``: read everything
        self.start_value: Any = value
        start = None if keys is None else [_key_tuple(k) for k in keys]
        if start is not None and self.hashed:
            # only row hashes identify keyless rows: a legacy ``[[]]`` lists nothing (re-deliver)
            start = [k for k in start if _is_hash_key(k)]
        #: ``None`` when the state listed no ``keys_at_value``
        self.start_keys: frozenset[tuple[Any, ...]] | None = None if start is None else frozenset(start)
        # keyless: how many rows of each hash are still to be dropped at the start value
        self._start_counts: Counter[tuple[Any, ...]] | None = (
            Counter(start) if start is not None and self.hashed else None
        )
        self.inclusive = False
        self.value: Any = value
        self.keys: list[tuple[Any, ...]] = []
        self._key_set: set[tuple[Any, ...]] = set()
        for k in start or ():
            self._add_key(k)

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def from_state(
        cls,
        state: Mapping[str, Any] | None,
        replication_key: str,
        key_properties: Sequence[str] = (),
        *,
        stream: str | None = None,
        ties: Ties = "keep",
        convert: Callable[[Any], Any] | None = None,
    ) -> BoundaryBookmark:
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
        return cls(
            replication_key, key_properties, value, None if keys is None else list(keys or ()), ties=ties
        )

    def set_lower_bound(self, value: Any) -> None:
        """An inclusive lower bound (e.g. a configured start value) for a read without a bookmark:
        rows below it are skipped, rows at it kept; the running bookmark is not changed."""
        self.start_value, self.start_keys, self.inclusive = value, None, True
        self._start_counts = None

    # -- filtering ------------------------------------------------------------------------------
    @property
    def has_start(self) -> bool:
        """Whether the read resumes from a value (anything is to be skipped)."""
        return self.start_value is not None

    def drops_ties(self) -> bool:
        """Whether rows at ``start_value`` are all dropped regardless of their key."""
        return not self.inclusive and self.start_keys is None and self.ties == "drop" and not self.hashed

    def keeps_ties(self) -> bool:
        """Whether rows at ``start_value`` are all kept regardless of their key."""
        if self.inclusive:
            return True
        if self.start_keys is None:
            return self.hashed or self.ties == "keep"
        return not self.start_keys

    def _listed(self, key: tuple[Any, ...]) -> bool:
        """Whether a row at ``start_value`` with ``key`` was delivered before (a keyless row
        consumes one listed occurrence of its hash)."""
        counts = self._start_counts
        if counts is not None:
            n = counts.get(key, 0)
            if n:
                counts[key] = n - 1
                return True
            return False
        return self.start_keys is not None and key in self.start_keys

    def is_new(self, value: Any, key: tuple[Any, ...] = (), *, keep_nulls: bool = True) -> bool:
        """Whether a row with replication ``value`` and primary ``key`` (JSON form; for a keyless
        stream ``(row_hash(row),)``) is to be delivered. A null value cannot be placed: kept with
        ``keep_nulls``, else dropped. For a keyless stream a row at the start value whose hash is
        listed consumes that listing (call it once per row)."""
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
            return not self._listed(key)
        return True

    def key_of(self, record: Mapping[str, Any]) -> tuple[Any, ...]:
        """The boundary key of a dict record: its primary key in JSON form, or
        ``(row_hash(record),)`` for a stream without primary key."""
        if self.hashed:
            return (row_hash(record),)
        return tuple(json_form(record.get(k)) for k in self.key_properties)

    def filter_records(
        self,
        records: Iterable[Mapping[str, Any]],
        limit: int | None = None,
        *,
        keep_nulls: bool = True,
        strict_order: bool = False,
    ) -> list[Any]:
        """The dict records not delivered before (at most ``limit``), advancing the running
        bookmark (max value, keys at it) with each one kept. ``strict_order``: a value below the
        running one raises :class:`OrderError`. Values that cannot be compared raise ``TypeError``.
        Keyless streams hash only the rows at the start value and at the final running value."""
        out: list[Any] = []
        append = out.append
        rk = self.replication_key
        start = self.start_value
        keep_ties, drop_ties = self.keeps_ties(), self.drops_ties()
        pks = self.key_properties
        with_keys = bool(pks)
        single = pks[0] if len(pks) == 1 else None
        key_of, listed = self.key_of, self._listed
        pending: list[Mapping[str, Any]] = []  # keyless: the rows delivered at the running value
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
                if v == start and not keep_ties and (drop_ties or listed(key_of(rec))):
                    continue
            m = self.value
            if m is None or v > m:
                self.value, self.keys, self._key_set = v, [], set()
                pending = []
            elif v != m:
                if strict_order:
                    raise OrderError(v, m)
                append(rec)
                continue
            if with_keys:
                key = (json_form(rec.get(single)),) if single is not None else key_of(rec)
                if key not in self._key_set:
                    self._key_set.add(key)
                    self.keys.append(key)
            else:
                pending.append(rec)
            append(rec)
        for rec in pending:  # hashed once per call: only the rows at the running value
            self.keys.append((row_hash(rec),))
        return out

    def filter_arrow(self, table: pa.Table, start: Any = None) -> pa.Table:
        """The rows of an Arrow ``table`` not delivered before. ``start``: the start value as an
        Arrow scalar of the column's type (default: built from ``start_value``). Rows with a null
        replication value are dropped when there is a start value. Keyless streams hash only the
        rows at the start value."""
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
                at_rows = table if self.hashed else table.select(list(self.key_properties))
                rows = at_rows.take(pa.array(idx, pa.int64())).to_pylist()
                mask = keep.to_pylist()
                for i, row in zip(idx, rows, strict=True):
                    if self.is_new(self.start_value, self.key_of(row)):
                        mask[i] = True
                keep = pa.array(mask, type=pa.bool_())
        return table.filter(keep)

    # -- advancing ------------------------------------------------------------------------------
    def _add_key(self, key: tuple[Any, ...]) -> None:
        if self.hashed:  # a multiset: one entry per delivered row
            self.keys.append(key)
        elif key not in self._key_set:
            self._key_set.add(key)
            self.keys.append(key)

    def advance(self, value: Any, key: tuple[Any, ...] = ()) -> bool:
        """Record one delivered row (max semantics): a larger value starts a new key list, an
        equal one adds ``key`` (for a keyless stream: its ``(row_hash(row),)``, if given).
        ``False`` if ``value`` is below the running value (unchanged)."""
        if value is None:
            return True
        current = self.value
        if current is None or value > current:
            self.value, self.keys, self._key_set = value, [], set()
        elif value != current:
            return False
        if self.key_properties or key:
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
        """:meth:`advance` with each delivered dict record (null values are skipped); keyless
        streams hash only the records at the final running value."""
        rk = self.replication_key
        if not self.hashed:
            for rec in records:
                v = rec.get(rk)
                if v is not None:
                    self.advance(v, self.key_of(rec))
            return
        pending: list[Mapping[str, Any]] = []
        for rec in records:
            v = rec.get(rk)
            if v is None:
                continue
            current = self.value
            if current is None or v > current:
                self.value, self.keys, self._key_set = v, [], set()
                pending = [rec]
            elif v == current:
                pending.append(rec)
        for rec in pending:
            self.keys.append((row_hash(rec),))

    def advance_arrow(self, table: pa.Table) -> tuple[Any, Any]:
        """:meth:`advance` with the delivered rows of an Arrow ``table``: the max value and the keys
        at it (keyless streams: the hashes of the rows at it only). Returns the ``(min, max)``
        replication values of the table (Python objects)."""
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
        if hi == self.value:
            at = pc.fill_null(pc.equal(col, pa.scalar(hi, type=col.type)), False)
            at_rows = table.filter(at)
            if self.hashed:
                for row in at_rows.to_pylist():
                    self.keys.append((row_hash(row),))
            else:
                for row in at_rows.select(list(self.key_properties)).to_pylist():
                    self._add_key(self.key_of(row))
        return lo, hi

    # -- output ---------------------------------------------------------------------------------
    def to_state(self, *, sort_keys: bool = False, with_keys: bool = True) -> dict[str, Any] | None:
        """The running bookmark as a JSON-safe dict (``None`` before any value). ``sort_keys``:
        ``keys_at_value`` in a stable order (by ``repr``) instead of delivery order;
        ``with_keys=False`` leaves ``keys_at_value`` out."""
        if self.value is None:
            return None
        state: dict[str, Any] = {
            "replication_key": self.replication_key,
            "replication_key_value": json_form(self.value),
        }
        if with_keys:
            # a key of JSON values (str, int, float, bool, None: most keys) is copied as it is,
            # without a json_form call per value (an LDAP read ends with thousands of DNs at its
            # last second)
            keys: list[list[Any]] = []
            for k in self.keys:
                for v in k:
                    if type(v) not in _JSON_SCALARS:
                        keys.append([json_form(x) for x in k])
                        break
                else:
                    keys.append(list(k))
            state["keys_at_value"] = sorted(keys, key=repr) if sort_keys else keys
        return state


class SortedBoundary:
    """Incremental-read bookkeeping of a read sorted by ``(replication key, primary key)`` on a
    :class:`BoundaryBookmark` (the SQL adapter's reads): the query already applies ``>=`` the
    bookmark value, so only the leading rows *at* that value are checked against
    ``keys_at_value``; after each batch the bookmark is the last delivered value and the keys
    delivered at it (``replication_key_value`` + ``keys_at_value``). Without primary key the key
    of a row is ``(row_hash(row),)``, computed only for the rows at the start value and at the
    last delivered value (the order among rows of equal value does not matter then)."""

    def __init__(self, rk: str, pks: Sequence[str], value: Any, keys: Sequence[Sequence[Any]]) -> None:
        self.rk = rk
        self.pks = list(pks)
        self.core = BoundaryBookmark(rk, pks, value, [list(k) for k in keys], ties="keep")
        self.at_start = value is not None

    @property
    def value(self) -> Any:
        """The bookmark value (before the first batch: the value the read resumes from)."""
        return self.core.value

    @property
    def keys(self) -> list[tuple[Any, ...]]:
        """The primary keys delivered at :attr:`value`."""
        return self.core.keys

    def state(self) -> dict[str, Any] | None:
        """The bookmark after the rows delivered so far (:meth:`BoundaryBookmark.to_state`)."""
        return self.core.to_state()

    def process(
        self, n: int, rk: Callable[[int], Any], pk: Callable[[int], tuple[Any, ...]], limit: int | None
    ) -> list[int] | None:
        """The indices of the next ``n`` sorted rows to deliver (``None``: all of them), at most
        ``limit``; advances the bookmark. ``rk(i)`` / ``pk(i)``: row ``i``'s replication value and
        primary key, in JSON form."""
        drop: set[int] = set()
        if self.at_start:
            start, is_new = self.core.start_value, self.core.is_new
            i = 0
            while i < n and rk(i) == start:
                if not is_new(start, pk(i)):
                    drop.add(i)
                i += 1
            if i < n:
                self.at_start = False
        keep: list[int] | None = None
        if drop or (limit is not None and n - len(drop) > limit):
            keep = [i for i in range(n) if i not in drop]
            if limit is not None:
                keep = keep[:limit]
        last_idx = (keep[-1] if keep else -1) if keep is not None else n - 1
        if last_idx < 0:
            return keep
        # walk back from the last delivered row to its first row with the same value
        j = last_idx
        while j >= 0 and rk(j) is None:
            j -= 1
        if j < 0:
            return keep
        last = rk(j)
        fresh: list[tuple[Any, ...]] = []
        while j >= 0 and rk(j) == last:
            if j not in drop:
                fresh.append(pk(j))
            j -= 1
        fresh.reverse()
        self.core.advance_to(last, fresh)
        return keep
