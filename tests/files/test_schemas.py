"""Schema providers (infer, arrow, jsonschema_file, sql_reflection) and schema overrides."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from dc_api_x import ConfigError, StreamSpec, create_adapter, create_plugin, list_schema_providers
from dc_api_x.ext.schemas import SchemaProvider
from dc_api_x.schemas import apply_schema_override, infer_schema

from .conftest import UTC


def test_builtin_providers_are_registered(plugins):
    assert {"arrow", "infer", "jsonschema_file", "sql_reflection"} <= set(list_schema_providers())
    for name in ("arrow", "infer", "jsonschema_file"):
        assert issubclass(plugins.schema_providers.get(name), SchemaProvider)


def test_infer_types_formats_nesting_and_nullability():
    records = [
        {
            "i": 1,
            "n": 1,
            "b": True,
            "ts": "2024-01-01T00:00:00Z",
            "naive": "2024-01-01 10:00:00",
            "d": "2024-01-01",
            "s": "x",
            "o": {"a": 1, "b": "2024-01-01"},
            "l": [1, 2],
            "mixed": 1,
            "dec": Decimal("12.345"),
            "nat": dt.datetime(2024, 1, 1, tzinfo=UTC),
            "raw": b"\x00",
        },
        {
            "i": 2,
            "n": 2.5,
            "b": None,
            "ts": "2024-01-02T00:00:00+02:00",
            "naive": "2024-01-02T10:00:00",
            "d": "2024-01-02",
            "s": "2024-01-01",
            "o": {"a": 2, "c": None},
            "l": [],
            "mixed": "one",
            "dec": Decimal("-1.5"),
            "nat": None,
            "raw": None,
        },
    ]
    p = infer_schema(records)["properties"]
    assert p["i"] == {"type": ["integer"]}
    assert p["n"] == {"type": ["number"]}  # integers widen to number
    assert p["b"] == {"type": ["boolean", "null"]}
    assert p["ts"] == {"type": ["string"], "format": "date-time"}
    assert p["naive"] == {"type": ["string"], "format": "date-time", "x-timezone": False}
    assert p["d"] == {"type": ["string"], "format": "date"}
    assert p["s"] == {"type": ["string"]}  # a format only when every value has it
    assert p["o"]["properties"]["a"] == {"type": ["integer"]}
    assert p["o"]["properties"]["b"] == {"type": ["string", "null"], "format": "date"}  # missing → nullable
    assert p["o"]["properties"]["c"] == {"type": ["string", "null"]}
    assert p["l"] == {"type": ["array"], "items": {"type": ["integer"]}}
    assert p["mixed"]["x-json"] is True
    assert p["dec"] == {"type": ["string"], "format": "decimal", "x-precision": 5, "x-scale": 3}
    assert p["nat"] == {"type": ["string", "null"], "format": "date-time"}
    assert p["raw"] == {"type": ["string", "null"], "contentEncoding": "base64"}


def test_infer_provider_options(plugins):
    prov = create_plugin("schema_providers", {"type": "infer", "sample_size": 1, "detect_formats": False})
    schema = prov.schema(records=[{"a": "2024-01-01"}, {"a": None, "b": 1}])
    assert schema == {"type": "object", "properties": {"a": {"type": ["string"]}}}
    with pytest.raises(ConfigError, match="schema provider 'infer': 'records' is required"):
        prov.schema()
    with pytest.raises(ConfigError, match="option 'sample_sise': unknown option"):
        create_plugin("schema_providers", {"type": "infer", "sample_sise": 1})


def test_arrow_provider(tmp_path, plugins):
    table = pa.table(
        {
            "id": pa.array([1], pa.int64()),
            "at": pa.array([dt.datetime(2024, 1, 1)], pa.timestamp("ms", tz="Europe/Paris")),
            "amount": pa.array([Decimal("1.10")], pa.decimal128(9, 2)),
        }
    )
    pq.write_table(table, tmp_path / "t.parquet")
    prov = create_plugin("schema_providers", {"type": "arrow", "path": str(tmp_path / "t.parquet")})
    p = prov.schema()["properties"]
    assert p["at"] == {"type": ["string", "null"], "format": "date-time"}
    assert p["amount"] == {"type": ["string", "null"], "format": "decimal", "x-precision": 9, "x-scale": 2}
    assert create_plugin("schema_providers", "arrow").schema(arrow_schema=table.schema)["properties"] == p
    (tmp_path / "bad.parquet").write_text("nope")
    with pytest.raises(ConfigError, match=r"bad\.parquet.*not a readable Parquet file"):
        create_plugin("schema_providers", "arrow").schema(path=str(tmp_path / "bad.parquet"))


def test_jsonschema_file_provider(tmp_path, plugins):
    schema = {"type": "object", "properties": {"id": {"type": "integer"}}}
    (tmp_path / "s.json").write_text(json.dumps(schema))
    (tmp_path / "catalog.json").write_text(
        json.dumps(
            {
                "streams": [
                    {
                        "tap_stream_id": "a",
                        "schema": {"type": "object", "properties": {"x": {"type": "string"}}},
                    },
                    {"tap_stream_id": "b", "schema": schema},
                ]
            }
        )
    )
    (tmp_path / "map.yaml").write_text("b:\n  type: object\n  properties:\n    id: {type: integer}\n")
    assert (
        create_plugin(
            "schema_providers", {"type": "jsonschema_file", "path": str(tmp_path / "s.json")}
        ).schema()
        == schema
    )
    for f in ("catalog.json", "map.yaml"):
        prov = create_plugin("schema_providers", {"type": "jsonschema_file", "path": str(tmp_path / f)})
        assert prov.schema(stream="b") == schema
    with pytest.raises(ConfigError, match="no stream 'zz'"):
        create_plugin(
            "schema_providers", {"type": "jsonschema_file", "path": str(tmp_path / "catalog.json")}
        ).schema(stream="zz")
    with pytest.raises(ConfigError, match=r"missing\.json"):
        create_plugin(
            "schema_providers", {"type": "jsonschema_file", "path": str(tmp_path / "missing.json")}
        ).schema()


def test_sql_reflection_provider(tmp_path, plugins):
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, amount DECIMAL_TEXT(10,2), at TIMESTAMPTZ)"
        )
    engine.dispose()
    prov = create_plugin("schema_providers", {"type": "sql_reflection", "url": url})
    p = prov.schema(table="t")["properties"]
    assert p["amount"]["format"] == "decimal" and p["amount"]["x-scale"] == 2
    assert p["at"]["format"] == "date-time"


def test_apply_schema_override(tmp_path):
    spec = StreamSpec(
        "s", schema={"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}}
    )
    merged = apply_schema_override(
        spec, {"a": {"type": "string", "format": "date"}, "c": {"type": "boolean"}}
    )
    assert merged.properties == {
        "a": {"type": "string", "format": "date"},
        "b": {"type": "integer"},
        "c": {"type": "boolean"},
    }
    assert spec.properties["a"] == {"type": "string"}  # the original is untouched
    replaced = apply_schema_override(spec, {"x-replace": True, "properties": {"z": {"type": "number"}}})
    assert replaced.properties == {"z": {"type": "number"}}
    (tmp_path / "o.json").write_text(json.dumps({"s": {"properties": {"b": {"type": "number"}}}}))
    assert apply_schema_override(spec, str(tmp_path / "o.json")).properties["b"] == {"type": "number"}
    assert apply_schema_override(spec, None) is spec
    with pytest.raises(ConfigError, match="stream 's'"):
        apply_schema_override(spec, {"properties": {"a": "integer"}})


def test_schema_override_in_adapter_config(tmp_path, plugins):
    (tmp_path / "people.jsonl").write_text('{"id": 1, "amount": "10.50", "born": "1980-05-06"}\n')
    (tmp_path / "override.json").write_text(
        json.dumps(
            {
                "properties": {
                    "amount": {"type": "string", "format": "decimal", "x-precision": 8, "x-scale": 2}
                }
            }
        )
    )
    cfg = {
        "adapter": "jsonl",
        "path": str(tmp_path / "people.jsonl"),
        "schema": str(tmp_path / "override.json"),
    }
    with create_adapter(cfg) as a:
        (spec,) = a.discover()
        rows = [r for b in a.read(spec) for r in b.records]
    assert rows == [{"id": 1, "amount": Decimal("10.50"), "born": dt.date(1980, 5, 6)}]
    with pytest.raises(ConfigError, match="schema"):
        create_adapter({**cfg, "schema": str(tmp_path / "nope.json")}).discover()
