"""Every built-in transform on dict batches and on Arrow batches (same result), with its output schema."""

from __future__ import annotations

import datetime as dt
import hashlib
from decimal import Decimal

import pyarrow as pa
import pytest

from dc_api_x import Batch, ConfigError, SchemaError
from dc_api_x.arrow import records_to_arrow
from dc_api_x.ext.transforms import build_transforms

from .helpers import arrow_batch, dict_batch, run_both

pytestmark = pytest.mark.usefixtures("plugins")

UTC = dt.timezone.utc

SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "name": {"type": ["string", "null"]},
        "amount": {"type": ["number", "null"]},
        "category": {"type": ["string", "null"]},
        "price": {"type": ["string", "null"], "format": "decimal", "x-precision": 10, "x-scale": 2},
        "created": {"type": ["string", "null"], "format": "date-time"},
        "active": {"type": ["boolean", "null"]},
    },
    "required": ["id", "name"],
}
ROWS = [
    {
        "id": 1,
        "name": "ann",
        "amount": 12.5,
        "category": "a",
        "price": Decimal("3.10"),
        "created": dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
        "active": True,
    },
    {
        "id": 2,
        "name": "bob",
        "amount": 5.0,
        "category": "b",
        "price": Decimal("0.99"),
        "created": dt.datetime(2024, 2, 1, tzinfo=UTC),
        "active": False,
    },
    {"id": 3, "name": None, "amount": None, "category": "a", "price": None, "created": None, "active": None},
    {
        "id": 4,
        "name": "dan",
        "amount": 40.0,
        "category": "c",
        "price": Decimal("100.00"),
        "created": dt.datetime(2023, 12, 31, 23, 59, tzinfo=UTC),
        "active": True,
    },
]


# ------------------------------------------------------------------------------------- select
def test_select_keeps_fields_in_order() -> None:
    chain, out_d, _ = run_both([{"type": "select", "fields": ["name", "id"]}], ROWS, SCHEMA)
    assert list(chain.schema["properties"]) == ["name", "id"]
    assert chain.schema["required"] == ["id", "name"]
    assert out_d.records[0] == {"name": "ann", "id": 1}
    assert len(out_d) == 4


def test_select_exclude() -> None:
    chain, out_d, out_a = run_both([{"type": "select", "exclude": ["price", "created"]}], ROWS, SCHEMA)
    assert "price" not in chain.schema["properties"] and "created" not in chain.schema["properties"]
    assert out_a.to_arrow().column_names == ["id", "name", "amount", "category", "active"]
    assert set(out_d.records[0]) == {"id", "name", "amount", "category", "active"}


def test_select_unknown_field_is_config_error_naming_it() -> None:
    with pytest.raises(ConfigError) as ei:
        build_transforms([{"type": "select", "fields": ["id", "nope"]}], SCHEMA, stream="orders")
    msg = str(ei.value)
    assert "transform 'select'" in msg and "stream 'orders'" in msg and "'nope'" in msg and "known: id" in msg
    assert ei.value.field == "nope"


def test_select_needs_fields_or_exclude() -> None:
    with pytest.raises(ConfigError, match="exactly one of"):
        build_transforms([{"type": "select"}], SCHEMA)
    with pytest.raises(ConfigError, match="exactly one of"):
        build_transforms([{"type": "select", "fields": ["id"], "exclude": ["name"]}], SCHEMA)


def test_unknown_option_is_config_error_naming_transform_and_option() -> None:
    with pytest.raises(ConfigError) as ei:
        build_transforms([{"type": "select", "fields": ["id"], "fieldz": ["x"]}], SCHEMA)
    assert "transform 'select'" in str(ei.value) and "'fieldz'" in str(ei.value)
    assert "unknown option" in str(ei.value)


# ------------------------------------------------------------------------------------- rename
def test_rename_keeps_order_values_and_metadata() -> None:
    chain, out_d, out_a = run_both(
        [{"type": "rename", "fields": {"name": "full_name", "price": "cost"}}], ROWS, SCHEMA
    )
    assert list(chain.schema["properties"]) == [
        "id",
        "full_name",
        "amount",
        "category",
        "cost",
        "created",
        "active",
    ]
    assert chain.schema["properties"]["cost"]["x-scale"] == 2
    assert chain.schema["required"] == ["id", "full_name"]
    assert out_d.records[0]["full_name"] == "ann" and out_d.records[0]["cost"] == Decimal("3.10")
    assert out_a.to_arrow().schema.field("cost").type == pa.decimal128(10, 2)
    assert chain.output_field("name") == "full_name" and chain.output_field("id") == "id"


def test_rename_errors() -> None:
    with pytest.raises(ConfigError, match="unknown field 'nope'"):
        build_transforms([{"type": "rename", "fields": {"nope": "x"}}], SCHEMA)
    with pytest.raises(ConfigError, match="a field with that name exists"):
        build_transforms([{"type": "rename", "fields": {"name": "id"}}], SCHEMA)
    with pytest.raises(ConfigError, match="two fields are renamed to 'x'"):
        build_transforms([{"type": "rename", "fields": {"name": "x", "category": "x"}}], SCHEMA)
    # swapping two names is fine
    chain = build_transforms([{"type": "rename", "fields": {"name": "category", "category": "name"}}], SCHEMA)
    assert list(chain.schema["properties"])[1:4] == ["category", "amount", "name"]


# --------------------------------------------------------------------------------------- cast
CAST_SCHEMA = {
    "type": "object",
    "properties": {
        "i": {"type": ["string", "null"]},
        "n": {"type": ["string", "null"]},
        "b": {"type": ["string", "null"]},
        "ts": {"type": ["string", "null"]},
        "d": {"type": ["string", "null"]},
        "dec": {"type": ["string", "null"]},
        "decu": {"type": ["string", "null"]},
        "num": {"type": ["number", "null"]},
        "int": {"type": ["integer", "null"]},
        "flag": {"type": ["boolean", "null"]},
    },
}
CAST_ROWS = [
    {
        "i": "12",
        "n": "1.5",
        "b": "true",
        "ts": "2024-01-02T03:04:05Z",
        "d": "2024-01-02",
        "dec": "12.34",
        "decu": "123.4500",
        "num": 3.0,
        "int": 7,
        "flag": True,
    },
    {
        "i": "-3",
        "n": "1e3",
        "b": "FALSE",
        "ts": "2024-01-02 05:04:05+02:00",
        "d": "2023-12-31",
        "dec": "-1",
        "decu": "-0.5",
        "num": 1e3,
        "int": -1,
        "flag": False,
    },
    {
        "i": " +5 ",
        "n": "2",
        "b": "yes",
        "ts": "2024-01-02T03:04:05",
        "d": "2024-03-01T00:00:00",
        "dec": "1e1",
        "decu": "7",
        "num": None,
        "int": None,
        "flag": None,
    },
    {
        "i": None,
        "n": None,
        "b": None,
        "ts": None,
        "d": None,
        "dec": None,
        "decu": None,
        "num": -2.0,
        "int": 0,
        "flag": True,
    },
]
CASTS = {
    "i": "integer",
    "n": "number",
    "b": "boolean",
    "ts": "date-time",
    "d": "date",
    "dec": "decimal(10,2)",
    "decu": "decimal",
    "num": "integer",
    "int": "string",
    "flag": "string",
}


def test_cast_every_type_dict_and_arrow_agree() -> None:
    chain, out_d, out_a = run_both([{"type": "cast", "fields": CASTS}], CAST_ROWS, CAST_SCHEMA)
    props = chain.schema["properties"]
    assert props["i"] == {"type": ["integer", "null"]}
    assert props["ts"] == {"type": ["string", "null"], "format": "date-time"}
    assert props["dec"] == {"type": ["string", "null"], "format": "decimal", "x-precision": 10, "x-scale": 2}
    assert props["decu"] == {"type": ["string", "null"], "format": "decimal"}
    r0, r1, r2, r3 = out_d.records
    assert (r0["i"], r1["i"], r2["i"], r3["i"]) == (12, -3, 5, None)
    assert (r0["n"], r1["n"], r2["n"]) == (1.5, 1000.0, 2.0)
    assert (r0["b"], r1["b"], r2["b"]) == (True, False, True)
    assert r0["ts"] == dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert r1["ts"] == dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)  # +02:00 converted to UTC
    assert r2["ts"] == dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)  # naive taken as UTC
    assert (r0["d"], r2["d"]) == (dt.date(2024, 1, 2), dt.date(2024, 3, 1))
    assert (r0["dec"], r1["dec"], r2["dec"]) == (Decimal("12.34"), Decimal("-1.00"), Decimal("10.00"))
    assert (r0["decu"], r2["decu"]) == ("123.4500", "7")  # unbounded decimals keep their text
    assert (r0["num"], r3["num"]) == (3, -2)
    assert (r0["int"], r1["int"], r3["int"]) == ("7", "-1", "0")
    assert (r0["flag"], r1["flag"]) == ("true", "false")
    table = out_a.to_arrow()
    assert table.schema.field("i").type == pa.int64()
    assert table.schema.field("ts").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("d").type == pa.date32()
    assert table.schema.field("dec").type == pa.decimal128(10, 2)
    assert table.column("dec").to_pylist()[:3] == [Decimal("12.34"), Decimal("-1.00"), Decimal("10.00")]


@pytest.mark.parametrize(
    ("field", "target", "bad"),
    [
        ("s", "integer", "12.5"),
        ("s", "integer", "abc"),
        ("s", "integer", "99999999999999999999"),
        ("f", "integer", 2.5),
        ("s", "number", "ten"),
        ("s", "boolean", "maybe"),
        ("s", "date-time", "yesterday"),
        ("s", "date", "2024-13-01"),
        ("s", "date", "2024-01-02T10:00:00"),
        ("s", "decimal(10,2)", "1.005"),
        ("s", "decimal(4,2)", "123.4"),
        ("s", "decimal", "1,5"),
        ("f", "decimal(10,2)", 0.125),
    ],
)
def test_cast_failure_names_stream_field_and_value(field: str, target: str, bad: object) -> None:
    schema = {
        "type": "object",
        "properties": {"s": {"type": ["string", "null"]}, "f": {"type": ["number", "null"]}},
    }
    good = {"s": None, "f": None}
    rows = [good, {**good, field: bad}]
    for make in (dict_batch, arrow_batch):
        chain = build_transforms([{"type": "cast", "fields": {field: target}}], schema, stream="orders")
        with pytest.raises(SchemaError) as ei:
            chain(make(rows, schema))
        msg = str(ei.value)
        assert "stream 'orders'" in msg and f"field {field!r}" in msg and repr(bad) in msg, msg
        assert ei.value.stream == "orders"


def test_cast_naive_timestamp_column_and_timestamp_to_date() -> None:
    schema = {
        "type": "object",
        "properties": {
            "ts": {"type": ["string", "null"], "format": "date-time", "x-timezone": False},
            "day": {"type": ["string", "null"], "format": "date-time"},
        },
    }
    rows = [{"ts": dt.datetime(2024, 5, 1, 12, 0), "day": dt.datetime(2024, 5, 1, tzinfo=UTC)}]
    _, out_d, _ = run_both([{"type": "cast", "fields": {"ts": "date-time", "day": "date"}}], rows, schema)
    assert out_d.records == [{"ts": dt.datetime(2024, 5, 1, 12, 0, tzinfo=UTC), "day": dt.date(2024, 5, 1)}]
    bad = [{"ts": None, "day": dt.datetime(2024, 5, 1, 6, tzinfo=UTC)}]
    for make in (dict_batch, arrow_batch):
        chain = build_transforms([{"type": "cast", "fields": {"day": "date"}}], schema)
        with pytest.raises(SchemaError, match="time of day"):
            chain(make(bad, schema))


def test_cast_unknown_type_and_field() -> None:
    with pytest.raises(ConfigError, match="unknown cast type 'int'"):
        build_transforms([{"type": "cast", "fields": {"id": "int"}}], SCHEMA)
    with pytest.raises(ConfigError, match="unknown field 'nope'"):
        build_transforms([{"type": "cast", "fields": {"nope": "integer"}}], SCHEMA)


# ------------------------------------------------------------------------------------ flatten
NESTED = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "addr": {
            "type": ["object", "null"],
            "properties": {
                "city": {"type": "string"},
                "geo": {
                    "type": ["object", "null"],
                    "properties": {"lat": {"type": "number"}, "lon": {"type": "number"}},
                },
            },
        },
        "tags": {"type": ["array", "null"], "items": {"type": "string"}},
        "meta": {"type": ["object", "null"]},
    },
}
NESTED_ROWS = [
    {
        "id": 1,
        "addr": {"city": "Paris", "geo": {"lat": 48.8, "lon": 2.3}},
        "tags": ["x", "y"],
        "meta": {"k": [1]},
    },
    {"id": 2, "addr": {"city": "Oslo", "geo": None}, "tags": [], "meta": None},
    {"id": 3, "addr": None, "tags": None, "meta": {"a": {"b": 1}}},
]


def test_flatten_all_levels() -> None:
    chain, out_d, out_a = run_both([{"type": "flatten"}], NESTED_ROWS, NESTED)
    assert list(chain.schema["properties"]) == [
        "id",
        "addr__city",
        "addr__geo__lat",
        "addr__geo__lon",
        "tags",
        "meta",
    ]
    assert chain.schema["properties"]["addr__city"]["type"] == ["string", "null"]
    assert chain.schema["properties"]["tags"] == NESTED["properties"]["tags"]
    assert out_d.records[0] == {
        "id": 1,
        "addr__city": "Paris",
        "addr__geo__lat": 48.8,
        "addr__geo__lon": 2.3,
        "tags": ["x", "y"],
        "meta": {"k": [1]},
    }
    assert out_d.records[2]["addr__geo__lat"] is None
    assert out_a.records[0]["meta"] == {"k": [1]}  # JSON objects are kept as JSON
    assert out_a.records[1]["tags"] == []


def test_flatten_max_depth_and_separator() -> None:
    chain, out_d, out_a = run_both(
        [{"type": "flatten", "max_depth": 1, "separator": "."}], NESTED_ROWS, NESTED
    )
    assert list(chain.schema["properties"]) == ["id", "addr.city", "addr.geo", "tags", "meta"]
    assert out_d.records[0]["addr.geo"] == {"lat": 48.8, "lon": 2.3}
    assert out_a.records[0]["addr.geo"] == {"lat": 48.8, "lon": 2.3}
    assert pa.types.is_struct(out_a.to_arrow().schema.field("addr.geo").type)


def test_flatten_name_clash_and_undeclared_keys() -> None:
    schema = {
        "type": "object",
        "properties": {
            "a": {"type": "object", "properties": {"b": {"type": "integer"}}},
            "a__b": {"type": "integer"},
        },
    }
    with pytest.raises(ConfigError, match="'a__b', which already exists"):
        build_transforms(["flatten"], schema)
    chain = build_transforms(["flatten"], NESTED, stream="s")
    with pytest.raises(SchemaError, match="undeclared key"):
        chain(dict_batch([{"id": 1, "addr": {"city": "x", "zip": "123"}}], NESTED))


def test_flatten_without_schema_flattens_dicts() -> None:
    out = build_transforms([{"type": "flatten", "max_depth": 1}], None)(
        Batch.from_records([{"a": {"b": {"c": 1}}, "x": 1}])
    )
    assert out.records == [{"a__b": {"c": 1}, "x": 1}]


# --------------------------------------------------------------------------------------- hash
def test_hash_is_sha256_of_salt_and_text_and_stable() -> None:
    chain, out_d, _ = run_both(
        [{"type": "hash", "fields": ["name", "id", "price", "created"], "salt": "pepper"}], ROWS, SCHEMA
    )
    assert chain.schema["properties"]["id"] == {"type": ["string", "null"]}
    r0 = out_d.records[0]
    assert r0["name"] == hashlib.sha256(b"pepperann").hexdigest()
    assert r0["id"] == hashlib.sha256(b"pepper1").hexdigest()
    assert r0["price"] == hashlib.sha256(b"pepper3.10").hexdigest()
    assert r0["created"] == hashlib.sha256(b"pepper2024-01-02T03:04:05+00:00").hexdigest()
    assert out_d.records[2]["name"] is None  # nulls stay null
    again = build_transforms([{"type": "hash", "fields": ["name"], "salt": "pepper"}], SCHEMA)(
        dict_batch(ROWS, SCHEMA)
    )
    assert again.records[0]["name"] == r0["name"]  # stable across runs
    unsalted = build_transforms([{"type": "hash", "fields": ["name"]}], SCHEMA)(arrow_batch(ROWS, SCHEMA))
    assert unsalted.records[0]["name"] == hashlib.sha256(b"ann").hexdigest() != r0["name"]


def test_hash_salt_is_registered_as_secret() -> None:
    from dc_api_x.logs import redact

    build_transforms([{"type": "hash", "fields": ["name"], "salt": "s3cr3t-salt-value"}], SCHEMA)
    assert "s3cr3t-salt-value" not in redact("salt is s3cr3t-salt-value")


# --------------------------------------------------------------------------------------- mask
def test_mask_constant_and_keep_last() -> None:
    schema = {
        "type": "object",
        "properties": {
            "card": {"type": ["string", "null"]},
            "pin": {"type": ["integer", "null"]},
            "email": {"type": ["string", "null"]},
        },
    }
    rows = [
        {"card": "4111111111111111", "pin": 123456, "email": "a@b.c"},
        {"card": "12", "pin": None, "email": None},
        {"card": None, "pin": 7, "email": "x"},
    ]
    chain, out_d, _ = run_both(
        [
            {"type": "mask", "fields": ["card", "pin"], "keep_last": 4},
            {"type": "mask", "fields": ["email"], "value": "<hidden>"},
        ],
        rows,
        schema,
    )
    assert [r["card"] for r in out_d.records] == ["************1111", "**", None]
    assert [r["pin"] for r in out_d.records] == ["**3456", None, "*"]
    assert [r["email"] for r in out_d.records] == ["<hidden>", None, "<hidden>"]
    assert chain.schema["properties"]["pin"] == {"type": ["string", "null"]}


def test_mask_unicode_keep_last() -> None:
    schema = {"type": "object", "properties": {"s": {"type": "string"}}}
    _, out_d, _ = run_both(
        [{"type": "mask", "fields": ["s"], "keep_last": 2, "mask_char": "#"}], [{"s": "héllo wörld"}], schema
    )
    assert out_d.records == [{"s": "#########ld"}]


# ------------------------------------------------------------------------------------- filter
@pytest.mark.parametrize(
    ("expr", "ids"),
    [
        ("amount > 10 and category == 'a'", [1]),
        ("amount > 10 or category == 'a'", [1, 3, 4]),
        ("not (amount > 10)", [2]),  # the null row is unknown, not kept
        ("category in ['a', 'c']", [1, 3, 4]),
        ("category not in ('a',)", [2, 4]),
        ("name is None", [3]),
        ("name is not None and active", [1, 4]),
        ("active == False", [2]),
        ("10 <= amount <= 40", [1, 4]),
        ("price >= 1", [1, 4]),
        ("price < 1.5", [2]),
        ("created >= '2024-01-01T00:00:00Z'", [1, 2]),
        ("created < '2024-01-01'", [4]),
        ("amount != 5", [1, 4]),
        ("amount > -1", [1, 2, 4]),
        ("True", [1, 2, 3, 4]),
    ],
)
def test_filter_expressions(expr: str, ids: list[int]) -> None:
    chain, out_d, out_a = run_both([{"type": "filter", "expression": expr}], ROWS, SCHEMA)
    assert [r["id"] for r in out_d.records] == ids
    assert out_a.to_arrow().column("id").to_pylist() == ids
    assert chain.schema == SCHEMA


def test_filter_unknown_field_and_type_mismatch() -> None:
    with pytest.raises(ConfigError, match="unknown field 'amt'"):
        build_transforms([{"type": "filter", "expression": "amt > 1"}], SCHEMA)
    with pytest.raises(ConfigError, match="cannot compare a number value with a string value"):
        build_transforms([{"type": "filter", "expression": "amount > '10'"}], SCHEMA)
    with pytest.raises(ConfigError, match="must be boolean"):
        build_transforms([{"type": "filter", "expression": "amount"}], SCHEMA)
    with pytest.raises(ConfigError, match="'and' needs boolean operands"):
        build_transforms([{"type": "filter", "expression": "amount and active"}], SCHEMA)
    with pytest.raises(ConfigError, match="not an ISO date-time"):
        build_transforms([{"type": "filter", "expression": "created > 'soon'"}], SCHEMA)


def test_filter_can_remove_every_row_and_keeps_bookmark() -> None:
    chain = build_transforms([{"type": "filter", "expression": "amount > 1000"}], SCHEMA)
    for make in (dict_batch, arrow_batch):
        out = chain(make(ROWS, SCHEMA, bookmark={"updated": "x"}))
        assert len(out) == 0 and out.bookmark == {"updated": "x"}


# ---------------------------------------------------------------------------------- add_field
def test_add_field_constant_and_expressions() -> None:
    configs = [
        {"type": "add_field", "name": "source", "value": "crm"},
        {"type": "add_field", "name": "double", "expression": "amount * 2"},
        {"type": "add_field", "name": "next_id", "expression": "id + 1"},
        {"type": "add_field", "name": "label", "expression": "name + '/' + category"},
        {"type": "add_field", "name": "ratio", "expression": "id / 2"},
        {"type": "add_field", "name": "big", "expression": "amount > 10"},
        {"type": "add_field", "name": "neg", "expression": "-id"},
        {"type": "add_field", "name": "total", "expression": "price * 2"},
        {"type": "add_field", "name": "ver", "value": 3},
        {"type": "add_field", "name": "id_text", "expression": "id", "cast": "string"},
    ]
    chain, out_d, out_a = run_both(configs, ROWS, SCHEMA)
    p = chain.schema["properties"]
    assert p["source"] == {"type": ["string", "null"]} and p["ver"] == {"type": ["integer", "null"]}
    assert p["double"] == {"type": ["number", "null"]} and p["next_id"] == {"type": ["integer", "null"]}
    assert p["label"] == {"type": ["string", "null"]} and p["ratio"] == {"type": ["number", "null"]}
    assert p["big"] == {"type": ["boolean", "null"]} and p["total"]["format"] == "decimal"
    r0, _, r2, _ = out_d.records
    assert (r0["source"], r0["double"], r0["next_id"], r0["label"], r0["ratio"], r0["big"], r0["neg"]) == (
        "crm",
        25.0,
        2,
        "ann/a",
        0.5,
        True,
        -1,
    )
    assert r0["id_text"] == "1" and r0["ver"] == 3
    assert Decimal(r0["total"]) == Decimal("6.20")
    assert (r2["double"], r2["label"], r2["big"]) == (None, None, None)  # nulls propagate
    a0 = out_a.records[0]
    assert a0["label"] == "ann/a" and a0["next_id"] == 2 and a0["neg"] == -1


def test_add_field_errors() -> None:
    with pytest.raises(ConfigError, match="exists already"):
        build_transforms([{"type": "add_field", "name": "id", "value": 1}], SCHEMA)
    chain = build_transforms(
        [{"type": "add_field", "name": "id", "expression": "id * 10", "overwrite": True}], SCHEMA
    )
    assert [r["id"] for r in chain(dict_batch(ROWS, SCHEMA)).records] == [10, 20, 30, 40]
    with pytest.raises(ConfigError, match="give 'value'"):
        build_transforms([{"type": "add_field", "name": "x"}], SCHEMA)
    with pytest.raises(ConfigError, match="cannot add a string value and a integer value"):
        build_transforms([{"type": "add_field", "name": "x", "expression": "name + id"}], SCHEMA)
    with pytest.raises(ConfigError, match="needs numbers"):
        build_transforms([{"type": "add_field", "name": "x", "expression": "name * 2"}], SCHEMA)
    schema = {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}}
    for make in (dict_batch, arrow_batch):
        chain = build_transforms(
            [{"type": "add_field", "name": "q", "expression": "a / b"}], schema, stream="t"
        )
        with pytest.raises(SchemaError, match=r"division by zero|divide by zero"):
            chain(make([{"a": 1, "b": 0}], schema))
        chain = build_transforms(
            [{"type": "add_field", "name": "q", "expression": "a * b"}], schema, stream="t"
        )
        with pytest.raises(SchemaError, match="overflow"):
            chain(make([{"a": 2**62, "b": 4}], schema))


def test_arrow_input_with_other_integer_width_is_kept() -> None:
    """An Arrow batch from a Parquet file may use int32; untouched columns pass through as they are."""
    table = pa.table({"id": pa.array([1, 2], pa.int32()), "v": pa.array(["a", "b"])})
    schema = {"type": "object", "properties": {"id": {"type": "integer"}, "v": {"type": "string"}}}
    out = build_transforms([{"type": "add_field", "name": "w", "expression": "id * 2"}], schema)(
        Batch.from_arrow(table, schema=schema)
    )
    assert out.to_arrow().schema.field("id").type == pa.int32()
    assert out.to_arrow().column("w").to_pylist() == [2, 4]
    assert out.to_arrow().schema.field("w").type == pa.int64()
    assert records_to_arrow(out.records, out.schema).num_rows == 2


def test_wide_decimals_are_exact() -> None:
    """38-digit decimals: no rounding to Python's default 28-digit context, on both paths."""
    schema = {
        "type": "object",
        "properties": {
            "s": {"type": ["string", "null"]},
            "d": {"type": ["string", "null"], "format": "decimal", "x-precision": 38, "x-scale": 10},
        },
    }
    big = "1234567890123456789012345678.0123456789"  # 38 digits
    rows = [{"s": big, "d": Decimal(big)}]
    chain, out_d, out_a = run_both(
        [
            {"type": "cast", "fields": {"s": "decimal(38,10)"}},
            {"type": "add_field", "name": "twice", "expression": "d + d"},
            {"type": "add_field", "name": "diff", "expression": "d - s"},
        ],
        rows,
        schema,
    )
    r = out_d.records[0]
    assert r["s"] == Decimal(big)
    assert str(Decimal(r["twice"])) == "2469135780246913578024691356.0246913578"
    assert Decimal(r["diff"]) == 0
    assert out_a.records[0]["twice"] == Decimal("2469135780246913578024691356.0246913578")
    twice = chain.schema["properties"]["twice"]
    assert (twice["format"], twice["x-precision"], twice["x-scale"]) == ("decimal", 39, 10)
    assert out_a.to_arrow().schema.field("twice").type == pa.decimal256(39, 10)
    with pytest.raises(SchemaError, match="does not fit decimal"):
        build_transforms([{"type": "cast", "fields": {"s": "decimal(20,10)"}}], schema)(
            dict_batch(rows, schema)
        )


def test_arithmetic_on_decimal_text_needs_a_cast() -> None:
    schema = {"type": "object", "properties": {"d": {"type": ["string", "null"], "format": "decimal"}}}
    with pytest.raises(ConfigError, match=r"decimal without precision.*cast it to decimal\(p,s\)"):
        build_transforms([{"type": "add_field", "name": "x", "expression": "d + d"}], schema)
    with pytest.raises(ConfigError, match=r"cast it to decimal\(p,s\) first"):
        build_transforms([{"type": "filter", "expression": "d > 1"}], schema)
    rows = [{"d": "1.50"}, {"d": "-2"}]
    _, out_d, _ = run_both(
        [
            {"type": "cast", "fields": {"d": "decimal(10,2)"}},
            {"type": "add_field", "name": "x", "expression": "d * 3"},
            {"type": "add_field", "name": "copy", "expression": "d"},
        ],
        rows,
        schema,
    )
    assert [r["x"] for r in out_d.records] == [Decimal("4.50"), Decimal("-6.00")]


def test_json_columns_cast_hash_and_mask_like_dicts() -> None:
    schema = {
        "type": "object",
        "properties": {
            "j": {"type": ["object", "null"]},
            "k": {"type": ["object", "null"]},
            "m": {"type": ["object", "null"]},
        },
    }
    rows = [
        {"j": {"b": 1, "a": [1, 2]}, "k": {"z": 1, "y": 2}, "m": {"q": "w"}},
        {"j": None, "k": None, "m": None},
    ]
    _, out_d, out_a = run_both(
        [
            {"type": "cast", "fields": {"j": "string"}},
            {"type": "hash", "fields": ["k"]},
            {"type": "mask", "fields": ["m"], "keep_last": 3},
        ],
        rows,
        schema,
    )
    assert out_d.records[0]["j"] == '{"a":[1,2],"b":1}'  # canonical: sorted keys
    assert out_d.records[0]["k"] == hashlib.sha256(b'{"y":2,"z":1}').hexdigest()
    assert out_d.records[0]["m"] == '******w"}'
    assert out_a.records[0] == out_d.records[0]
