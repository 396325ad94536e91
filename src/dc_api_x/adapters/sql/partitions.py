"""Partitions of a SQL stream (see :mod:`dc_api_x.ext.partitions`): ranges of the replication key
(incremental streams) or of a single numeric primary key (full-table streams), with bounds from one
``SELECT min(col), max(col) … WHERE col >= bookmark`` and split points spread evenly between them
(integers, numbers, dates and timestamps; any other key type is one partition).

Partition ``i`` of ``n`` reads ``b[i-1] < col <= b[i]``: the first has no lower bound (it starts at
the stream's bookmark, with the same inclusive ``>=`` and delivered-keys rule as a serial read), the
last has no upper bound (rows added during the run land in it, as in a serial read); on a first
run the rows whose key is NULL (a serial read returns them last) are one more partition. Each range reads in
``(replication key, primary key)`` order, so its bookmarks resume it exactly.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ...ext.partitions import Partition
from ...ext.sql import SQLSource
from ...values import json_form
from .typemap import typed_value

if TYPE_CHECKING:  # pragma: no cover
    from ...types import StreamSpec
    from .adapter import SQLAdapter

__all__ = ["RangeSource", "partition_column", "sql_partitions"]

#: the ``StreamSpec.options`` key carrying a partition's range to ``SQLAdapter._source_of``.
RANGE_OPTION = "x-dcapix-range"


@dataclass
class RangeSource(SQLSource):
    """A :class:`SQLSource` restricted to ``gt < column <= le`` (either bound may be absent), or to
    ``column IS NULL`` (``with_nulls``)."""

    column: str = ""
    gt: Any = None
    le: Any = None
    with_nulls: bool = False
    prop: Mapping[str, Any] | None = None
    backend: Any = None

    @classmethod
    def of(
        cls, base: SQLSource, rng: Mapping[str, Any], prop: Mapping[str, Any], backend: Any
    ) -> RangeSource:
        return cls(
            name=base.name,
            table=base.table,
            schema=base.schema,
            query=base.query,
            columns=base.columns,
            primary_keys=base.primary_keys,
            replication_key=base.replication_key,
            column=str(rng["column"]),
            gt=rng.get("gt"),
            le=rng.get("le"),
            with_nulls=bool(rng.get("nulls")),
            prop=prop,
            backend=backend,
        )

    @property
    def label(self) -> str:
        return f"{super().label} [{self.column} in ({self.gt}, {self.le}]]"

    def _param(self, value: Any) -> Any:
        backend = self.backend
        if backend is not None and backend.dialect.name == "sqlite":
            return sa.bindparam(None, value)  # SQLite compares the stored text as it is
        prop = dict(self.prop or {})
        typ = backend.column_type(prop) if backend is not None else None
        return sa.bindparam(None, typed_value(value, prop), type_=typ)

    def clause(self, names: Any) -> Any:
        names = list(names)
        if self.column not in names:
            names.append(self.column)
        frm = super().clause(names)
        col = frm.c[self.column]
        conds = []
        if self.gt is not None:
            conds.append(col > self._param(self.gt))
        if self.le is not None:
            conds.append(col <= self._param(self.le))
        cond: Any = sa.and_(*conds) if conds else None
        if self.with_nulls:
            cond = col.is_(None)
        stmt = sa.select(*[frm.c[n] for n in names]).select_from(frm)
        if cond is not None:
            stmt = stmt.where(cond)
        return stmt.subquery("p")


def _kind(prop: Mapping[str, Any]) -> str | None:
    types = prop.get("type")
    types = {types} if isinstance(types, str) else set(types or ())
    types.discard("null")
    if types == {"integer"}:
        return "integer"
    if types == {"number"}:
        return "number"
    if types == {"string"} and prop.get("format") in ("date-time", "date"):
        return str(prop["format"])
    return None


def partition_column(spec: StreamSpec) -> str | None:
    """The column a stream is split on: its replication key, else its only primary key when that
    is numeric or temporal; ``None`` when it cannot be split."""
    props = spec.properties
    if spec.replication_key:
        col = spec.replication_key
    elif len(spec.key_properties) == 1:
        col = spec.key_properties[0]
    else:
        return None
    return col if col in props and _kind(props[col]) else None


def _split(lo: Any, hi: Any, n: int, kind: str) -> list[Any]:
    """``n - 1`` ascending split points strictly between ``lo`` and ``hi`` (fewer when the range is
    too narrow), as Python values of the key's type."""
    points: list[Any] = []
    for i in range(1, n):
        if kind == "integer":
            p: Any = int(lo) + (int(hi) - int(lo)) * i // n
        elif kind == "number":
            p = (
                (Decimal(lo) + (Decimal(hi) - Decimal(lo)) * i / n)
                if isinstance(lo, Decimal)
                else lo + (hi - lo) * i / n
            )
        elif kind == "date":
            p = lo + _dt.timedelta(days=((hi - lo).days * i) // n)
        else:
            p = lo + (hi - lo) * i / n
        if p >= hi or p < lo or (points and p <= points[-1]):
            continue
        points.append(p)
    return points


def sql_partitions(
    adapter: SQLAdapter, stream: StreamSpec, state: Mapping[str, Any] | None, max_partitions: int
) -> list[Partition] | None:
    """The partitions of ``stream`` (module docstring); ``None`` when it is not splittable."""
    if max_partitions < 2:
        return None
    spec = adapter._resolve_read(stream)
    col = partition_column(spec)
    if col is None:
        return None
    prop = spec.properties[col]
    kind = _kind(prop)
    assert kind is not None
    src = adapter._source_of(spec)
    start = None
    if spec.replication_key == col and state:
        start, _ = adapter._start_bookmark(spec, col, state)
    frm = src.clause([col])
    c = frm.c[col]
    q = sa.select(sa.func.min(c), sa.func.max(c), sa.func.count() - sa.func.count(c)).select_from(frm)
    if start is not None:
        q = q.where(c >= RangeSource.of(src, {"column": col}, prop, adapter.backend)._param(start))
    try:
        with adapter.engine.connect() as conn:
            lo, hi, nulls = conn.execute(q).one()
    except sa.exc.SQLAlchemyError as exc:
        raise adapter.backend.db_error(exc, f"finding the bounds of {col!r}", stream=spec.name) from None
    if lo is None or hi is None:
        return None
    lo, hi = typed_value(json_form(lo), prop), typed_value(json_form(hi), prop)
    try:
        points = _split(lo, hi, max_partitions, kind)
    except TypeError:  # mixed types (a text column holding timestamps in SQLite)
        return None
    if not points:
        return None
    bounds = [json_form(p) for p in points]
    ranges: list[dict[str, Any]] = []
    if nulls and start is None and spec.replication_key == col:
        # a serial first read returns the rows without a replication key too (last); they are a
        # partition of their own, read without bookmarks (committed when it finishes)
        ranges.append({"column": col, "nulls": True})
    for i in range(len(bounds) + 1):
        ranges.append(
            {
                "column": col,
                "gt": bounds[i - 1] if i > 0 else None,
                "le": bounds[i] if i < len(bounds) else None,
            }
        )
    n = len(ranges)
    parts = []
    for i, rng in enumerate(ranges):
        first = i == (1 if ranges[0].get("nulls") else 0)
        first_state = dict(state) if (first and state and spec.replication_key) else None
        if rng.get("nulls"):
            label = f"{col} IS NULL"
        else:
            gt, le = rng["gt"], rng["le"]
            label = f"{col} in ({'…' if gt is None else gt}, {'…' if le is None else le}]"
        parts.append(Partition(i, n, {"range": rng}, first_state, label=label))
    return parts


def partition_spec(stream: StreamSpec, partition: Partition) -> StreamSpec:
    """``stream`` restricted to ``partition`` (read by ``SQLAdapter.read``); the rows without a
    replication key are read without one (no bookmark)."""
    if partition.options["range"].get("nulls"):
        stream = stream.with_(replication_key=None)
    return stream.with_(
        options={**dict(stream.options or {}), RANGE_OPTION: dict(partition.options["range"])}
    )
