"""The stored plan of a partitioned stream and its partitions' bookmarks (see docs/scale.md).

When a stream is read in partitions (:mod:`dc_api_x.ext.partitions`), the state store holds, beside
the stream's own bookmark (partition ``""``):

* ``~plan``: the partitions the source returned (bounds, files …) and the bookmark they started
  from, stored **before** any partition is read;
* ``~pNNNN-of-MMMM``: each partition's committed bookmark and whether it finished, written in the
  same transaction as the merged stream bookmark, only after the destination's ``flush`` returned.

A rerun finds the plan and resumes it: finished partitions are skipped, the others continue from
their own bookmark, so nothing committed is read again and nothing uncommitted is skipped. When every
partition has finished, the merged bookmark is stored and the plan and partition entries are deleted
(in that order: a crash in between leaves a finished plan that the next run closes again).
The stream bookmark in partition ``""`` is always the merge of committed progress
(:meth:`ProtocolAdapter.merge_partition_bookmarks`), so it never runs ahead of committed data.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Mapping
from typing import Any

from ..ext.partitions import Partition
from ..types import StreamSpec

__all__ = ["PLAN_KEY", "PartitionPlan", "file_token"]

#: the state-store partition of a stream's partition plan.
PLAN_KEY = "~plan"


def file_token(plan_id: str, index: int, first: int, n: int = 0) -> str:
    """The name token of the files partition ``index`` of plan ``plan_id`` writes after its
    ``first + n``-th recorded checkpoint (``first``: the checkpoints recorded before this run of it,
    ``n``: those of this run), see :meth:`PartitionPlan.file_token`. A plain function, so a worker
    process can name its files from a ``functools.partial`` of it."""
    return f"{plan_id}-p{index:04d}-c{first + n:06d}"


class PartitionPlan:
    """The partitions of one stream in one run and their committed progress (thread-safe).

    Build it with :meth:`open`; workers report with :meth:`checkpoint` and :meth:`complete`; the
    driver ends it with :meth:`finish`. ``store`` may be ``None`` (``--no-state``): progress is then
    kept in memory only.
    """

    def __init__(
        self,
        store: Any,
        pipeline: str,
        spec: StreamSpec,
        source: Any,
        partitions: list[Partition],
        base: Mapping[str, Any] | None,
        *,
        run_id: str | None = None,
        resumed: bool = False,
        plan_id: str | None = None,
    ) -> None:
        self.store = store
        self.pipeline = pipeline
        self.spec = spec
        self.source = source
        self.partitions = partitions
        self.base = dict(base) if base is not None else None
        self.run_id = run_id
        self.resumed = resumed
        self.bookmarks: list[dict[str, Any] | None] = [None] * len(partitions)
        self.done: list[bool] = [False] * len(partitions)
        #: checkpoints recorded per partition (with :attr:`plan_id`, the names of its next files)
        self.checkpoints: list[int] = [0] * len(partitions)
        self.plan_id = plan_id or uuid.uuid4().hex[:12]
        self._lock = threading.Lock()

    # -- building ---------------------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        store: Any,
        pipeline: str,
        spec: StreamSpec,
        source: Any,
        *,
        state: Mapping[str, Any] | None,
        max_partitions: int,
        full_refresh: bool = False,
        run_id: str | None = None,
    ) -> PartitionPlan | None:
        """The stored plan of ``spec`` (resumed), else a new one from ``source.partitions()`` (stored
        before reading); ``None`` when the source does not split the stream."""
        name = spec.name
        if store is not None:
            if full_refresh:
                cls.clear(store, pipeline, name)
            else:
                stored = store.get(pipeline, name, partition=PLAN_KEY)
                if stored is not None:
                    parts = [Partition.from_dict(d) for d in stored.get("partitions") or []]
                    plan = cls(
                        store,
                        pipeline,
                        spec,
                        source,
                        parts,
                        stored.get("base"),
                        run_id=run_id,
                        resumed=True,
                        plan_id=stored.get("plan_id"),
                    )
                    for e in store.list(pipeline, name):
                        if e.partition.startswith("~p"):
                            for i, p in enumerate(parts):
                                if p.key == e.partition:
                                    plan.bookmarks[i] = e.value.get("bookmark")
                                    plan.done[i] = bool(e.value.get("done"))
                                    plan.checkpoints[i] = int(e.value.get("checkpoints") or 0)
                    return plan
        parts = source.partitions(spec, state=state, max_partitions=max_partitions)
        if not parts:
            return None
        plan = cls(store, pipeline, spec, source, list(parts), state, run_id=run_id)
        if store is not None:
            store.set(
                pipeline,
                name,
                {"partitions": [p.as_dict() for p in parts], "base": plan.base, "plan_id": plan.plan_id},
                partition=PLAN_KEY,
                run_id=run_id,
            )
        return plan

    @staticmethod
    def clear(store: Any, pipeline: str, stream: str) -> None:
        """Delete the stored plan of ``stream`` and its partitions' entries (not its bookmark)."""
        for e in store.list(pipeline, stream):
            if e.partition == PLAN_KEY or e.partition.startswith("~p"):
                store.delete(pipeline, stream, partition=e.partition)

    # -- progress ---------------------------------------------------------------------------------
    def pending(self) -> list[Partition]:
        """The partitions not finished yet (all of them on a first run)."""
        return [p for p, d in zip(self.partitions, self.done, strict=True) if not d]

    def start_state(self, part: Partition) -> dict[str, Any] | None:
        """Where ``part`` resumes: its committed bookmark, else the bookmark it started from."""
        bm = self.bookmarks[part.index]
        if bm is not None:
            return dict(bm)
        return dict(part.state) if part.state is not None else None

    def merged(self) -> dict[str, Any] | None:
        """The stream's bookmark covering only committed data."""
        return self.source.merge_partition_bookmarks(self.spec, self.base, self.bookmarks, self.done)

    def checkpoint(self, part: Partition, bookmark: Mapping[str, Any] | None, *, done: bool = False) -> None:
        """Record ``part``'s progress once the data up to ``bookmark`` is committed (one transaction
        with the merged stream bookmark)."""
        with self._lock:
            i = part.index
            if bookmark is not None:
                self.bookmarks[i] = dict(bookmark)
            self.done[i] = self.done[i] or done
            self.checkpoints[i] += 1
            if self.store is None:
                return
            value = {"bookmark": self.bookmarks[i], "done": self.done[i], "checkpoints": self.checkpoints[i]}
            items: list[tuple[str, str, Mapping[str, Any]]] = [(self.spec.name, part.key, value)]
            merged = self.merged()
            if merged is not None:
                items.append((self.spec.name, "", merged))
            self.store.set_many(self.pipeline, items, run_id=self.run_id)

    def complete(self, part: Partition, bookmark: Mapping[str, Any] | None) -> None:
        """``part`` is read to its end and committed."""
        self.checkpoint(part, bookmark, done=True)

    def file_token(self, part: Partition, checkpoint: int | None = None) -> str:
        """The name token of the files ``part`` writes after its ``checkpoint``-th recorded checkpoint
        (default: the next ones): the same on a rerun, so rewritten files replace unrecorded ones."""
        n = self.checkpoints[part.index] if checkpoint is None else checkpoint
        return file_token(self.plan_id, part.index, n)

    def stage_token(self, part: Partition) -> str:
        """The token of ``part``'s stage table when a single-writer destination is staged (the same
        on a rerun of the plan, so a rerun overwrites the stage a killed worker left)."""
        return f"{self.plan_id[:8]}_{part.index}"

    @property
    def finished(self) -> bool:
        return all(self.done)

    def finish(self, *, full_refresh: bool = False) -> dict[str, Any] | None:
        """Every partition finished: store the merged bookmark, then drop the plan. Returns it."""
        merged = self.merged()
        if self.store is None:
            return merged
        if merged is not None:
            self.store.set(self.pipeline, self.spec.name, merged, run_id=self.run_id)
        elif full_refresh:
            self.store.delete(self.pipeline, self.spec.name, partition="")
        self.clear(self.store, self.pipeline, self.spec.name)
        return merged
