"""Staged partition writes for a single-writer SQL destination (``--executor dask`` with upsert).

Partitions written on other machines do not upsert into the target table themselves: each writes
its rows into a stage table of its own (``<table>__dcapix_<token>``, written with ``overwrite`` so
a retried task replaces it whole) and the driver merges it into the target in **one transaction**
— delete the target rows whose keys are staged, insert the staged rows, drop the stage — before it
records the partition in the state store. A crash between that commit and the state write only
repeats an idempotent merge on the rerun. Plain SQL through SQLAlchemy Core (a correlated
``DELETE … WHERE EXISTS`` and ``INSERT … SELECT``), so it works on every dialect.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa

if TYPE_CHECKING:  # pragma: no cover
    from ...types import StreamSpec
    from .adapter import SQLAdapter

__all__ = ["merge_stage", "stage_stream_name"]


def stage_stream_name(adapter: SQLAdapter, stream: StreamSpec, token: str) -> str:
    """The stream name a partition writes to instead of ``stream`` (its stage table's name)."""
    from .adapter import _short

    _, table = adapter._target_of(stream)
    return _short(table, f"__dcapix_{token}")


def merge_stage(adapter: SQLAdapter, stream: StreamSpec, stage: str) -> int:
    """Upsert the rows of stage table ``stage`` into ``stream``'s table and drop the stage, in one
    transaction; returns the rows merged."""
    schema, name = adapter._target_of(stream)
    stage_schema, _ = adapter._target_of(stream.with_(name=stage))
    keys = list(stream.key_properties)
    if not keys:
        raise adapter.error("a staged upsert needs key_properties", stream=stream.name)
    try:
        with adapter.engine.begin() as conn:
            target = sa.Table(name, sa.MetaData(), schema=schema, autoload_with=conn)
            st = sa.Table(stage, sa.MetaData(), schema=stage_schema, autoload_with=conn)
            cols = [c.name for c in st.columns if c.name in target.c]
            match = sa.and_(*[st.c[k] == target.c[k] for k in keys])
            conn.execute(target.delete().where(sa.exists().where(match)))
            res = conn.execute(target.insert().from_select(cols, sa.select(*[st.c[c] for c in cols])))
            conn.execute(sa.schema.DropTable(st))
    except sa.exc.SQLAlchemyError as exc:
        raise adapter.backend.db_error(
            exc, f"merging stage table {stage!r} into {name!r}", stream=stream.name
        ) from None
    return int(res.rowcount or 0)
