"""Helpers of the transform tests: run a chain on the dict view and on the Arrow view of the same data."""

from __future__ import annotations

from typing import Any

from dc_api_x import Batch
from dc_api_x.arrow import jsonschema_to_arrow, records_to_arrow
from dc_api_x.ext.transforms import TransformChain, build_transforms


def dict_batch(records: list[dict[str, Any]], schema: dict[str, Any], bookmark: Any = None) -> Batch:
    batch = Batch.from_records([dict(r) for r in records], schema=schema, bookmark=bookmark)
    assert not batch.has_arrow
    return batch


def arrow_batch(records: list[dict[str, Any]], schema: dict[str, Any], bookmark: Any = None) -> Batch:
    table = records_to_arrow(records, schema)
    batch = Batch.from_arrow(table, schema=schema, bookmark=bookmark)
    assert batch.has_arrow and not batch.has_records
    return batch


def run_both(
    configs: list[Any], records: list[dict[str, Any]], schema: dict[str, Any]
) -> tuple[TransformChain, Batch, Batch]:
    """Apply ``configs`` to a dict batch and to an Arrow batch of ``records``; check both paths give
    the same rows (compared as Arrow tables typed by the output schema) and that the Arrow path stayed
    columnar (no dict view was made)."""
    chain_d = build_transforms(configs, schema, stream="s")
    chain_a = build_transforms(configs, schema, stream="s")
    assert chain_d.schema == chain_a.schema
    out_d = chain_d(dict_batch(records, schema, bookmark={"k": 1}))
    out_a = chain_a(arrow_batch(records, schema, bookmark={"k": 1}))
    assert out_d.bookmark == {"k": 1} and out_a.bookmark == {"k": 1}
    assert not out_d.has_arrow
    assert out_a.has_arrow and not out_a.has_records
    assert out_d.schema == chain_d.schema and out_a.schema == chain_a.schema
    target = jsonschema_to_arrow(chain_d.schema)
    left = out_d.to_arrow(target)
    right = out_a.to_arrow(target)
    assert left.column_names == right.column_names == list(chain_d.schema["properties"])
    assert left.to_pylist() == right.to_pylist()
    return chain_d, out_d, out_a
