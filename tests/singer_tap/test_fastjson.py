"""The Arrow fast path emits the same values as the dict path (exact decimals, instants, JSON)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import orjson
from tap_dcapix.fastjson import arrow_json_records
from tap_dcapix.writer import json_default

from dc_api_x.arrow import arrow_to_records, records_to_arrow

SCHEMA = {"type": "object", "properties": {
    "id": {"type": ["integer"]},
    "ts": {"type": ["string", "null"], "format": "date-time"},
    "naive": {"type": ["string", "null"], "format": "date-time", "x-timezone": False},
    "day": {"type": ["string", "null"], "format": "date"},
    "amount": {"type": ["string", "null"], "format": "decimal", "x-precision": 38, "x-scale": 9},
    "doc": {"type": ["object", "null"], "x-json": True},
    "raw": {"type": ["string", "null"], "contentEncoding": "base64"},
    "ratio": {"type": ["number", "null"]},
    "flag": {"type": ["boolean", "null"]},
    "name": {"type": ["string", "null"]},
}}


def _norm(rec: dict) -> dict:
    out = dict(rec)
    for k in ("ts", "naive"):
        if out[k] is not None:
            out[k] = dt.datetime.fromisoformat(out[k])
    if out["amount"] is not None:
        out["amount"] = Decimal(out["amount"])
    return out


def test_arrow_path_equals_dict_path() -> None:
    berlin = dt.timezone(dt.timedelta(hours=1))
    recs = [
        {"id": 1, "ts": dt.datetime(2024, 3, 1, 12, 0, 0, 123456, tzinfo=dt.timezone.utc),
         "naive": dt.datetime(1999, 12, 31, 23, 59, 59), "day": dt.date(2024, 2, 29),
         "amount": Decimal("12345678901234567890.123456789"), "doc": {"a": [1, "x", None], "b": {"c": 1.5}},
         "raw": b"\x00\xffbin", "ratio": 0.1, "flag": True, "name": "ünïcode \"q\""},
        {"id": 2, "ts": dt.datetime(2024, 3, 1, 13, 0, tzinfo=berlin), "naive": None, "day": None,
         "amount": Decimal("-0.000000001"), "doc": "just a string", "raw": None, "ratio": None,
         "flag": False, "name": None},
        {k: None for k in SCHEMA["properties"]} | {"id": 3},
    ]
    table = records_to_arrow(recs, SCHEMA)
    fast = orjson.loads(orjson.dumps(arrow_json_records(table, SCHEMA)))
    slow = orjson.loads(orjson.dumps(arrow_to_records(table, SCHEMA), default=json_default))
    assert [_norm(r) for r in fast] == [_norm(r) for r in slow]
    assert fast[0]["amount"] == "12345678901234567890.123456789"
    assert fast[1]["ts"].endswith("+00:00") and fast[1]["ts"].startswith("2024-03-01T12:00:00")
    assert fast[1]["doc"] == "just a string"
