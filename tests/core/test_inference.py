"""Schema inference from sample records (:mod:`dc_api_x.inference`), shared by the ``infer``
schema provider and the HTTP adapter."""

from __future__ import annotations

from decimal import Decimal

from dc_api_x import schemas
from dc_api_x.inference import infer_schema

ROWS = [
    {
        "id": 1,
        "at": "2024-01-01T00:00:00Z",
        "meta": {"a": 1},
        "tags": ["x"],
        "opt": None,
        "d": Decimal("1.25"),
    },
    {
        "id": 2,
        "at": "2024-01-02T00:00:00+02:00",
        "meta": {"a": 2},
        "tags": [],
        "opt": "y",
        "d": Decimal("10.5"),
    },
]


def test_default_is_nested_and_nullable_only_when_seen():
    props = infer_schema(ROWS)["properties"]
    assert props["id"] == {"type": ["integer"]}
    assert props["at"] == {"type": ["string"], "format": "date-time"}
    assert props["meta"] == {"type": ["object"], "properties": {"a": {"type": ["integer"]}}}
    assert props["tags"] == {"type": ["array"], "items": {"type": ["string"]}}
    assert props["opt"] == {"type": ["string", "null"]}
    assert props["d"] == {"type": ["string"], "format": "decimal", "x-precision": 4, "x-scale": 2}
    assert schemas.infer_schema is infer_schema  # the provider module re-exports the core one


def test_flat_all_nullable_flavour():
    props = infer_schema(ROWS, nested=False, all_nullable=True)["properties"]
    assert props["id"] == {"type": ["integer", "null"]}
    assert props["meta"] == {"type": ["object", "null"], "x-json": True}
    assert props["tags"] == {"type": ["array", "null"], "x-json": True}
    assert props["at"] == {"type": ["string", "null"], "format": "date-time"}
    mixed = infer_schema([{"v": 1}, {"v": "a"}], nested=False, all_nullable=True)["properties"]["v"]
    assert mixed == {"type": ["integer", "string", "null"], "x-json": True}
    # zone and no zone in one column: a plain string (nothing shifted)
    tz = infer_schema(
        [{"t": "2024-01-01T00:00:00Z"}, {"t": "2024-01-01T00:00:00"}], nested=False, all_nullable=True
    )["properties"]["t"]
    assert tz == {"type": ["string", "null"]}


def test_sample_size():
    rows = [{"a": 1}, {"a": 2}, {"a": "x"}]
    assert infer_schema(rows, sample_size=2)["properties"]["a"] == {"type": ["integer"]}
    assert infer_schema(rows)["properties"]["a"]["x-json"] is True
