"""Shared data for the file-adapter tests: one record per interesting value of every supported type."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

#: a JSON Schema covering every type convention of dc_api_x.arrow
SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "big": {"type": ["integer", "null"]},
        "amount": {"type": ["string", "null"], "format": "decimal", "x-precision": 38, "x-scale": 10},
        "score": {"type": ["number", "null"]},
        "ts": {"type": ["string", "null"], "format": "date-time"},
        "naive": {"type": ["string", "null"], "format": "date-time", "x-timezone": False},
        "day": {"type": ["string", "null"], "format": "date"},
        "flag": {"type": ["boolean", "null"]},
        "txt": {"type": ["string", "null"]},
        "doc": {"type": ["object", "array", "string", "number", "boolean", "null"], "x-json": True},
        "raw": {"type": ["string", "null"], "contentEncoding": "base64"},
        "nested": {
            "type": ["object", "null"],
            "properties": {
                "x": {"type": ["integer", "null"]},
                "tags": {"type": ["array", "null"], "items": {"type": ["string", "null"]}},
            },
        },
    },
}

UTC = dt.timezone.utc


def sample_records() -> list[dict]:
    """Native Python values (what a SQL source yields)."""
    return [
        {
            "id": 1,
            "big": 9223372036854775807,
            "amount": Decimal("1234567890123456789012345678.0123456789"),
            "score": 0.1,
            "ts": dt.datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=UTC),
            "naive": dt.datetime(1999, 12, 31, 23, 59, 59, 123456),
            "day": dt.date(2024, 2, 29),
            "flag": True,
            "txt": 'héllo ☃ 𝄞 "quoted", comma\nnewline',
            "doc": {"a": [1, 2, {"b": None}], "s": "ü"},
            "raw": b"\x00\xff\x10binary",
            "nested": {"x": 5, "tags": ["a", None, "c"]},
        },
        {
            "id": 2,
            "big": -9223372036854775808,
            "amount": Decimal("-0.0000000001"),
            "score": -1.5e300,
            "ts": dt.datetime(1970, 1, 1, tzinfo=UTC),
            "naive": dt.datetime(2038, 1, 19, 3, 14, 8),
            "day": dt.date(1, 1, 1),
            "flag": False,
            "txt": "",
            "doc": [1, "two", 3.5],
            "raw": b"",
            "nested": {"x": None, "tags": []},
        },
        {
            "id": 3,
            "big": None,
            "amount": None,
            "score": None,
            "ts": None,
            "naive": None,
            "day": None,
            "flag": None,
            "txt": None,
            "doc": None,
            "raw": None,
            "nested": None,
        },
    ]


@pytest.fixture
def records() -> list[dict]:
    return sample_records()
