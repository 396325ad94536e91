"""The partitioning contract: how an adapter splits one stream into parts read concurrently.

An adapter that can split a stream overrides two methods of
:class:`~dc_api_x.ext.adapters.ProtocolAdapter`::

    def partitions(self, stream, *, state=None, max_partitions=4) -> list[Partition] | None:
        ...  # None (the default): the stream is read by one reader, as before

    def read_partition(self, stream, partition, *, state=None, columns=None, limit=None):
        ...  # yield the partition's batches; Batch.bookmark is the partition's own bookmark

and, when its bookmarks are not ordered ranges, :meth:`ProtocolAdapter.merge_partition_bookmarks`.

The rules every implementation keeps (the runner relies on them for exact state):

* ``partitions()`` is cheap (at most one query / listing) and **deterministic for the data it saw**:
  the runner stores the returned plan (:meth:`Partition.as_dict`) before reading and, after a crash,
  resumes *that* plan, so a partition's ``options`` must be JSON values that mean the same thing on
  the next run (bounds, file paths, page numbers — never cursors or handles);
* the partitions are **disjoint** and together they cover exactly what ``read(stream, state=state)``
  would read: no row in two partitions, none in no partition;
* ``Partition.state`` is the bookmark a partition starts from (the stream's ``state`` for the
  first range, ``None`` for the others); ``read_partition`` resumes after ``state`` exactly as
  ``read`` does (no gap, no duplicate), so a partition interrupted after a checkpoint continues where
  its committed data ends;
* ``merge_partition_bookmarks(stream, base, bookmarks)`` gives the stream's bookmark from the
  partitions' committed bookmarks (``None`` for a partition with nothing committed yet, ``done``
  tells which finished). It never returns a bookmark ahead of a partition that is not finished.
  The default suits ordered ranges (SQL replication-key ranges, page windows): the bookmark of the
  longest finished prefix, extended by the next partition's own progress.

A :class:`Partition` is a small frozen value (picklable, JSON-able) so it can travel to a thread,
a process or a dask.distributed worker.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Partition", "merge_ordered_bookmarks", "merge_unordered_bookmarks"]


@dataclass(frozen=True)
class Partition:
    """One independently readable part of a stream.

    :param index: position in the plan (0-based; ordered ranges are in ascending order).
    :param count: number of partitions in the plan.
    :param options: adapter-specific, JSON values only (bounds, a file path, pages …).
    :param state: the bookmark this partition starts from (``None``: from its beginning).
    :param label: a short human description for logs and ``--dry-run``.
    """

    index: int
    count: int
    options: Mapping[str, Any] = field(default_factory=dict)
    state: Mapping[str, Any] | None = None
    label: str = ""

    @property
    def key(self) -> str:
        """The state-store partition name of this partition's bookmark (``~p0003-of-0004``)."""
        return f"~p{self.index:04d}-of-{self.count:04d}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "count": self.count,
            "options": dict(self.options),
            "state": dict(self.state) if self.state is not None else None,
            "label": self.label,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Partition:
        return cls(
            index=int(data["index"]),
            count=int(data["count"]),
            options=dict(data.get("options") or {}),
            state=dict(data["state"]) if data.get("state") is not None else None,
            label=str(data.get("label") or ""),
        )


def merge_ordered_bookmarks(
    base: Mapping[str, Any] | None,
    bookmarks: Sequence[Mapping[str, Any] | None],
    done: Sequence[bool],
) -> dict[str, Any] | None:
    """The stream bookmark of ordered range partitions: walk the partitions in order, taking each
    one's committed bookmark, and stop after the first one that is not finished (its progress counts,
    the partitions after it do not: their data lies beyond a gap)."""
    out = dict(base) if base is not None else None
    for bm, finished in zip(bookmarks, done, strict=True):
        if bm is not None:
            out = dict(bm)
        if not finished:
            break
    return out


def merge_unordered_bookmarks(
    base: Mapping[str, Any] | None,
    bookmarks: Sequence[Mapping[str, Any] | None],
    done: Sequence[bool],
    key: str = "replication_key_value",
) -> dict[str, Any] | None:
    """The stream bookmark of partitions whose ranges overlap (files read one per partition, HTTP
    request sets): the base until every partition finished, then the bookmark with the greatest
    ``key`` value, its ``keys_at_value`` those of the base and of every partition at that value."""
    if not all(done):
        return dict(base) if base is not None else None
    best = dict(base) if base is not None else None
    for bm in bookmarks:
        if bm is None or bm.get(key) is None:
            continue
        if best is None or best.get(key) is None or _gt(bm[key], best[key]):
            best = dict(bm)
    if best is None:
        return None
    value = best.get(key)
    keys: list[Any] = []
    for bm in [base, *bookmarks]:
        if bm is not None and bm.get(key) == value:
            keys.extend(k for k in bm.get("keys_at_value") or [] if k not in keys)
    if keys or "keys_at_value" in best:
        try:
            best["keys_at_value"] = sorted(keys)
        except TypeError:
            best["keys_at_value"] = sorted(keys, key=repr)
    return best


def _gt(a: Any, b: Any) -> bool:
    try:
        return bool(a > b)
    except TypeError:
        return str(a) > str(b)
