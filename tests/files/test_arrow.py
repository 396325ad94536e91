"""dc_api_x.arrow: JSON Schema ⇄ Arrow, records ⇄ Arrow (JSON forms, strictness, errors), cast_table."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pyarrow as pa
import pytest

from dc_api_x.arrow import (
    ConversionError,
    arrow_to_jsonschema,
    arrow_to_records,
    cast_table,
    jsonschema_to_arrow,
    records_to_arrow,
)

from .conftest import SCHEMA, UTC, sample_records


def one(prop: dict, values: list) -> list:
    schema = {"type": "object", "properties": {"v": prop}}
    return records_to_arrow([{"v": v} for v in values], schema).column("v").to_pylist()


def test_schema_round_trip():
    arrow = jsonschema_to_arrow(SCHEMA)
    assert arrow.field("amount").type == pa.decimal128(38, 10)
    assert arrow.field("ts").type == pa.timestamp("us", tz="UTC")
    assert arrow.field("naive").type == pa.timestamp("us")
    assert arrow.field("raw").type == pa.binary()
    back = arrow_to_jsonschema(arrow)["properties"]
    for name, prop in SCHEMA["properties"].items():
        for key in ("format", "x-precision", "x-scale", "x-timezone", "contentEncoding", "x-json"):
            assert back[name].get(key) == prop.get(key), (name, key)


def test_native_and_json_forms_give_the_same_table():
    native = records_to_arrow(sample_records(), SCHEMA)
    json_forms = []
    for r in sample_records():
        j = dict(r)
        for k in ("amount", "day"):
            j[k] = None if r[k] is None else str(r[k])
        j["ts"] = None if r["ts"] is None else r["ts"].isoformat().replace("+00:00", "Z")
        j["naive"] = None if r["naive"] is None else r["naive"].isoformat()
        j["raw"] = None if r["raw"] is None else __import__("base64").b64encode(r["raw"]).decode()
        json_forms.append(j)
    assert records_to_arrow(json_forms, SCHEMA).equals(native)
    assert arrow_to_records(native, SCHEMA) == sample_records()


def test_timestamp_conventions():
    tz = {"type": "string", "format": "date-time"}
    naive = {"type": "string", "format": "date-time", "x-timezone": False}
    assert one(tz, ["2024-01-01T02:00:00+02:00", "2024-01-01T00:00:00"]) == [
        dt.datetime(2024, 1, 1, tzinfo=UTC),
        dt.datetime(2024, 1, 1, tzinfo=UTC),
    ]  # zone-less = UTC
    assert one(naive, ["2024-01-01T02:00:00+02:00"]) == [dt.datetime(2024, 1, 1)]  # UTC wall time
    exact = dt.datetime(2024, 1, 1, 0, 0, 0, 123456, tzinfo=UTC)
    assert one(tz, ["2024-01-01T00:00:00.123456000Z"]) == [exact]
    with pytest.raises(ConversionError, match=r"field 'v'.*sub-microsecond"):
        one(tz, ["2024-01-01T00:00:00.1234567Z"])
    with pytest.raises(ConversionError, match="field 'v'"):
        one(tz, ["yesterday"])


def test_strict_numbers_and_decimals():
    assert one({"type": "integer"}, [1, 2.0, "3", None]) == [1, 2, 3, None]
    for bad in (2.5, "abc", True, 2**63):
        with pytest.raises(ConversionError) as ei:
            one({"type": "integer"}, [1, bad])
        assert ei.value.field == "v"
    dec = {"type": "string", "format": "decimal", "x-precision": 10, "x-scale": 2}
    assert one(dec, ["1.5", Decimal("2.25"), 3, None]) == [
        Decimal("1.50"),
        Decimal("2.25"),
        Decimal("3.00"),
        None,
    ]
    with pytest.raises(ConversionError, match="field 'v'"):
        one(dec, ["1.234"])  # would be rounded
    with pytest.raises(ConversionError, match="field 'v'"):
        one(dec, ["123456789012"])  # does not fit the precision
    assert one({"type": "number"}, [1, 2.5, None]) == [1.0, 2.5, None]
    assert one({"type": "boolean"}, [True, "false", 1, None]) == [True, False, True, None]
    with pytest.raises(ConversionError):
        one({"type": "boolean"}, [2])


def test_dates_times_binary_json():
    assert one({"type": "string", "format": "date"}, ["2024-02-29", "2024-03-01T00:00:00Z"]) == [
        dt.date(2024, 2, 29),
        dt.date(2024, 3, 1),
    ]
    with pytest.raises(ConversionError):
        one({"type": "string", "format": "date"}, ["2024-03-01T10:00:00"])  # would drop the time
    with pytest.raises(ConversionError):
        one({"type": "string", "format": "date"}, [dt.date(2024, 1, 1), dt.datetime(2024, 3, 1, 10)])
    assert one({"type": "string", "format": "date"}, [dt.datetime(2024, 3, 1)]) == [dt.date(2024, 3, 1)]
    assert one({"type": "string", "format": "time"}, ["12:34:56.5"]) == [dt.time(12, 34, 56, 500000)]
    assert one({"type": "string", "contentEncoding": "base64"}, ["AP8=", b"\x01"]) == [b"\x00\xff", b"\x01"]
    with pytest.raises(ConversionError):
        one({"type": "string", "contentEncoding": "base64"}, ["not base64!"])
    blob = {"type": ["object", "null"], "x-json": True}
    table = records_to_arrow(
        [{"v": {"a": Decimal("1.5")}}, {"v": "text"}, {"v": None}],
        {"type": "object", "properties": {"v": blob}},
    )
    assert table.column("v").to_pylist() == ['{"a":"1.5"}', '"text"', None]
    assert [r["v"] for r in arrow_to_records(table)] == [{"a": "1.5"}, "text", None]


def test_cast_table():
    target = jsonschema_to_arrow(SCHEMA)
    src = pa.table(
        {
            "id": pa.array([1, 2], pa.int32()),
            "doc": pa.array([{"a": 1}, None]),
            "ts": pa.array(["2024-01-01T00:00:00Z", None]),
        }
    )
    out = cast_table(src, target)
    assert out.schema.equals(target)
    assert out.column("doc").to_pylist() == ['{"a":1}', None]
    assert out.column("ts")[0].as_py() == dt.datetime(2024, 1, 1, tzinfo=UTC)
    assert out.column("amount").null_count == 2
    with pytest.raises(ConversionError, match="field 'id'"):
        cast_table(pa.table({"id": pa.array([1.5])}), target)
