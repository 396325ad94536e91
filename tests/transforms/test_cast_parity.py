"""Differential test: ``cast`` on dicts and on Arrow agrees value by value (same result or both refuse)."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal
from typing import Any

import pytest

from dc_api_x import SchemaError
from dc_api_x.ext.transforms import build_transforms

from .helpers import arrow_batch, dict_batch

pytestmark = pytest.mark.usefixtures("plugins")

TEXT = [
    "0",
    "12",
    "-3",
    "+5",
    " 7 ",
    "007",
    "1.0",
    "1.5",
    "-0.25",
    "1e3",
    "1E-2",
    ".5",
    "5.",
    "abc",
    "",
    " ",
    "nan",
    "inf",
    "-inf",
    "1_000",
    "0x10",
    "9223372036854775807",
    "9223372036854775808",
    "true",
    "FALSE",
    "yes",
    "No",
    "t",
    "2024-01-02",
    "2024-01-02T03:04:05",
    "2024-01-02T03:04:05Z",
    "2024-01-02 03:04:05+02:00",
    "2024-01-02T03:04:05.123456+00:00",
    "2024-02-30",
    "2024-01-02T00:00:00",
    "12.345",
    "99999999.99",
    "123456789.1",
    "1,5",
    "--1",
    "1e400",
]
FLOATS = [0.0, 1.0, -2.0, 2.5, 0.1, 1e16, 2.0**53, 2.0**63, float("nan"), 0.125, -1e-7]
INTS = [0, 1, -1, 2**31, 2**53, 2**53 + 1, -(2**63), 2**63 - 1]
TARGETS = ["integer", "number", "string", "boolean", "date-time", "date", "decimal", "decimal(10,2)"]


def outcome(make: Any, schema: dict[str, Any], target: str, value: Any) -> Any:
    chain = build_transforms([{"type": "cast", "fields": {"v": target}}], schema, stream="p")
    try:
        out = chain(make([{"v": value}], schema))
    except SchemaError as exc:
        assert "field 'v'" in str(exc) and "stream 'p'" in str(exc)
        return "error"
    got = out.to_arrow().column("v").to_pylist()[0] if make is arrow_batch else out.records[0]["v"]
    if isinstance(got, float) and got != got:
        return "nan"
    if isinstance(got, dt.datetime):
        return got.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return got


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize(
    ("prop", "pool"),
    [
        ({"type": ["string", "null"]}, TEXT),
        ({"type": ["number", "null"]}, FLOATS),
        ({"type": ["integer", "null"]}, INTS),
        ({"type": ["boolean", "null"]}, [True, False]),
        (
            {"type": ["string", "null"], "format": "decimal", "x-precision": 20, "x-scale": 4},
            [Decimal("1.5000"), Decimal("-0.0001"), Decimal("12345678.9000"), Decimal("3")],
        ),
        (
            {"type": ["string", "null"], "format": "date-time"},
            [
                dt.datetime(2024, 1, 2, tzinfo=dt.timezone.utc),
                dt.datetime(2024, 1, 2, 5, 6, tzinfo=dt.timezone.utc),
            ],
        ),
        ({"type": ["string", "null"], "format": "date"}, [dt.date(2024, 1, 2)]),
    ],
    ids=["text", "float", "int", "bool", "decimal", "datetime", "date"],
)
def test_dict_and_arrow_cast_agree(target: str, prop: dict[str, Any], pool: list[Any]) -> None:
    schema = {"type": "object", "properties": {"v": prop}}
    for value in pool:
        left = outcome(dict_batch, schema, target, value)
        right = outcome(arrow_batch, schema, target, value)
        assert left == right, f"cast {value!r} ({prop}) to {target}: dicts {left!r}, arrow {right!r}"


def test_random_decimal_text_round_trips() -> None:
    rng = random.Random(7)
    schema = {"type": "object", "properties": {"v": {"type": ["string", "null"]}}}
    values = [f"{rng.randint(-(10**8), 10**8)}.{rng.randint(0, 99):02d}" for _ in range(2000)]
    chain = build_transforms([{"type": "cast", "fields": {"v": "decimal(12,2)"}}], schema)
    a = chain(arrow_batch([{"v": v} for v in values], schema)).to_arrow().column("v").to_pylist()
    d = [r["v"] for r in chain(dict_batch([{"v": v} for v in values], schema)).records]
    assert a == d == [Decimal(v) for v in values]


@pytest.mark.parametrize(
    "config",
    [
        {"type": "hash", "fields": ["v"], "salt": "x"},
        {"type": "mask", "fields": ["v"], "keep_last": 2},
        {"type": "mask", "fields": ["v"]},
    ],
)
def test_hash_and_mask_agree_on_every_type(config: dict[str, Any]) -> None:
    pools = [
        ({"type": ["string", "null"]}, ["", "a", "héllo", None]),
        ({"type": ["number", "null"]}, FLOATS[:-3]),
        ({"type": ["integer", "null"]}, INTS),
        ({"type": ["boolean", "null"]}, [True, False]),
        (
            {"type": ["string", "null"], "format": "decimal", "x-precision": 20, "x-scale": 4},
            [Decimal("1.5"), Decimal("-0.0001"), Decimal("3")],
        ),
        (
            {"type": ["string", "null"], "format": "date-time"},
            [dt.datetime(2024, 1, 2, 5, tzinfo=dt.timezone.utc)],
        ),
        ({"type": ["string", "null"], "format": "date"}, [dt.date(2024, 1, 2)]),
        ({"type": ["string", "null"], "contentEncoding": "base64"}, [b"\x00\x01abc"]),
    ]
    for prop, pool in pools:
        schema = {"type": "object", "properties": {"v": prop}}
        chain = build_transforms([config], schema)
        rows = [{"v": v} for v in pool]
        d = [r["v"] for r in chain(dict_batch(rows, schema)).records]
        a = chain(arrow_batch(rows, schema)).to_arrow().column("v").to_pylist()
        assert d == a, (prop, config)
