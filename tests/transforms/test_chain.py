"""Chains, the registry route, third-party transforms, stream maps, and the import-time promise."""

from __future__ import annotations

import subprocess
import sys
import types
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from dc_api_x import Batch, ConfigError, UnknownPluginError, enable_plugins, list_transforms
from dc_api_x.ext.transforms import Transform, TransformChain, TransformOptions, build_transforms
from dc_api_x.transforms import stream_map_to_transforms

from .helpers import dict_batch, run_both

SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "email": {"type": ["string", "null"]},
        "amount": {"type": ["string", "null"]},
        "customer": {
            "type": ["object", "null"],
            "properties": {"name": {"type": ["string", "null"]}, "country": {"type": ["string", "null"]}},
        },
        "internal": {"type": ["string", "null"]},
    },
}
ROWS = [
    {
        "id": 1,
        "email": "ann@example.com",
        "amount": "12.50",
        "customer": {"name": "Ann", "country": "FR"},
        "internal": "x",
    },
    {
        "id": 2,
        "email": "bob@example.com",
        "amount": "3.00",
        "customer": {"name": "Bob", "country": "NO"},
        "internal": "y",
    },
    {"id": 3, "email": None, "amount": "99.99", "customer": None, "internal": None},
]


def test_builtins_are_registered(plugins: Any) -> None:
    assert set(list_transforms()) >= {
        "select",
        "rename",
        "cast",
        "flatten",
        "hash",
        "mask",
        "filter",
        "add_field",
    }
    assert plugins.transforms.plugin_of("cast") == "dc_api_x.transforms"


def test_chain_applies_in_order_and_reports_final_schema(plugins: Any) -> None:
    configs = [
        {"type": "flatten"},
        {"type": "cast", "fields": {"amount": "decimal(8,2)"}},
        {"type": "filter", "expression": "amount >= 10 or customer__country == 'NO'"},
        {"type": "rename", "fields": {"customer__name": "name"}},
        {"type": "hash", "fields": ["email"]},
        {"type": "select", "exclude": ["internal"]},
        {"type": "add_field", "name": "amount_x2", "expression": "amount * 2"},
    ]
    chain, out_d, out_a = run_both(configs, ROWS, SCHEMA)
    assert isinstance(chain, TransformChain) and len(chain) == 7
    assert [t.name for t in chain] == ["flatten", "cast", "filter", "rename", "hash", "select", "add_field"]
    assert list(chain.schema["properties"]) == [
        "id",
        "email",
        "amount",
        "name",
        "customer__country",
        "amount_x2",
    ]
    assert chain.schema["properties"]["amount"]["x-scale"] == 2
    assert [r["id"] for r in out_d.records] == [1, 2, 3]
    assert out_d.records[1]["name"] == "Bob"
    assert len(out_d.records[0]["email"]) == 64
    assert out_a.records[2]["amount_x2"] is not None
    assert chain.output_fields(["id", "internal", "customer"]) == ("id",)
    assert chain.input_schema == SCHEMA


def test_empty_chain_is_identity(plugins: Any) -> None:
    chain = build_transforms([], SCHEMA)
    batch = dict_batch(ROWS, SCHEMA, bookmark={"b": 1})
    assert chain(batch) is batch and chain.schema == SCHEMA


def test_unknown_transform_lists_known(plugins: Any) -> None:
    with pytest.raises(UnknownPluginError) as ei:
        build_transforms([{"type": "explode"}], SCHEMA)
    assert "unknown transform 'explode'" in str(ei.value) and "select" in str(ei.value)
    with pytest.raises(ConfigError, match="type"):
        build_transforms([{"fields": ["id"]}], SCHEMA)
    with pytest.raises(ConfigError, match=r"transforms\[0\]"):
        build_transforms([42], SCHEMA)  # type: ignore[list-item]


# --------------------------------------------------------------------------- third-party transform
class UpperOptions(TransformOptions):
    fields: list[str]


class UpperTransform(Transform):
    """A third-party transform: upper-case string fields (columnar on Arrow)."""

    name = "upper"
    Options = UpperOptions

    def transform_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        self.require_fields(schema, self.options.fields)
        return dict(schema)

    def apply_records(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = [dict(r) for r in records]
        for r in out:
            for f in self.options.fields:
                if r.get(f) is not None:
                    r[f] = r[f].upper()
        return out

    def apply_arrow(self, table: pa.Table) -> pa.Table:
        for f in self.options.fields:
            table = table.set_column(table.column_names.index(f), f, pc.utf8_upper(table.column(f)))
        return table


class DictOnlyTransform(Transform):
    """A transform with only a dict implementation still works on Arrow batches."""

    name = "reverse_id"

    def apply_records(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{**r, "id": -r["id"]} for r in records]


def test_third_party_transform_through_the_registry() -> None:
    plugin = types.ModuleType("my_transforms")

    def register_transform_providers(registry: Any) -> None:
        registry.register("upper", UpperTransform)
        registry.register("reverse_id", DictOnlyTransform)

    plugin.register_transform_providers = register_transform_providers  # type: ignore[attr-defined]
    ps = enable_plugins(entry_points=False, plugins=[plugin])
    try:
        configs = [{"type": "upper", "fields": ["email"]}, "reverse_id"]
        _, out_d, out_a = run_both(configs, ROWS, SCHEMA)
        assert out_d.records[0]["email"] == "ANN@EXAMPLE.COM" and out_d.records[0]["id"] == -1
        assert out_a.to_arrow().column("email").to_pylist()[1] == "BOB@EXAMPLE.COM"
        with pytest.raises(ConfigError, match=r"transform 'upper'.*unknown field 'nope'"):
            build_transforms([{"type": "upper", "fields": ["nope"]}], SCHEMA)
        with pytest.raises(ConfigError, match=r"transform 'upper'.*'extra'"):
            build_transforms([{"type": "upper", "fields": ["email"], "extra": 1}], SCHEMA)
    finally:
        ps.close()


def test_transform_without_schema_binds_from_batch(plugins: Any) -> None:
    chain = build_transforms([{"type": "rename", "fields": {"a": "b"}}], None)
    out = chain(Batch.from_records([{"a": 1, "c": 2}]))
    assert out.records == [{"b": 1, "c": 2}]
    table = pa.table({"a": [1, 2], "c": ["x", "y"]})
    out = build_transforms([{"type": "rename", "fields": {"a": "b"}}], None)(Batch.from_arrow(table))
    assert out.to_arrow().column_names == ["b", "c"]
    assert out.schema is not None and list(out.schema["properties"]) == ["b", "c"]


def test_arrow_path_stays_columnar_for_large_batches(plugins: Any) -> None:
    n = 50_000
    schema = {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "v": {"type": ["string", "null"]},
            "x": {"type": ["number", "null"]},
        },
    }
    table = pa.table(
        {
            "id": pa.array(range(n), pa.int64()),
            "v": pa.array([str(i) for i in range(n)]),
            "x": pa.array([i * 0.5 for i in range(n)]),
        }
    )
    chain = build_transforms(
        [
            {"type": "cast", "fields": {"v": "integer"}},
            {"type": "filter", "expression": "x >= 100 and v < 40000"},
            {"type": "add_field", "name": "y", "expression": "x * 2 + v"},
            {"type": "rename", "fields": {"x": "half"}},
            {"type": "mask", "fields": ["id"], "keep_last": 2},
        ],
        schema,
    )
    out = chain(Batch.from_arrow(table, schema=schema, bookmark={"pos": n}))
    assert out.has_arrow and not out.has_records and out.bookmark == {"pos": n}
    t = out.to_arrow()
    assert t.num_rows == 40000 - 200
    assert t.column("y").to_pylist()[:2] == [400.0, 402.0]
    assert t.column("id").to_pylist()[0] == "*00"


# ------------------------------------------------------------------------------------ stream maps
def test_stream_map_conversion(plugins: Any) -> None:
    smap = {"email": None, "total": "amount", "__filter__": "id > 1", "id": "id", "internal": None}
    configs = stream_map_to_transforms(smap)
    assert configs == [
        {"type": "filter", "expression": "id > 1"},
        {"type": "add_field", "name": "total", "expression": "amount", "overwrite": True},
        {"type": "select", "exclude": ["email", "internal"]},
    ]
    _, out_d, _ = run_both(configs, ROWS, SCHEMA)
    assert out_d.records[0] == {
        "id": 2,
        "amount": "3.00",
        "customer": {"name": "Bob", "country": "NO"},
        "total": "3.00",
    }


def test_stream_map_else_none_keeps_only_mapped(plugins: Any) -> None:
    configs = stream_map_to_transforms({"id": "id", "big": "id * 100", "__else__": None})
    assert configs[-1] == {"type": "select", "fields": ["id", "big"]}
    _, out_d, _ = run_both(configs, ROWS, SCHEMA)
    assert out_d.records == [{"id": 1, "big": 100}, {"id": 2, "big": 200}, {"id": 3, "big": 300}]


@pytest.mark.parametrize(
    ("smap", "where"),
    [
        ({"h": "md5(email)"}, "'h'"),
        ({"x": "record['id']"}, "'x'"),
        ({"__alias__": "other"}, "__alias__"),
        ({"__key_properties__": ["id"]}, "__key_properties__"),
        ({"__else__": "x"}, "__else__"),
        ({"x": 3}, "'x'"),
        ({"__filter__": "__import__('os')"}, "__filter__"),
    ],
)
def test_stream_map_unsupported_is_config_error(smap: dict[str, Any], where: str) -> None:
    with pytest.raises(ConfigError) as ei:
        stream_map_to_transforms(smap)
    assert where in str(ei.value)


def test_stream_map_none_stream() -> None:
    with pytest.raises(ConfigError, match="stream selection"):
        stream_map_to_transforms(None)  # type: ignore[arg-type]


# -------------------------------------------------------------------------------- import promise
def test_transform_modules_import_nothing_heavy() -> None:
    code = (
        "import sys, dc_api_x\n"
        "from dc_api_x import enable_plugins\n"
        "from dc_api_x.ext.transforms import build_transforms\n"
        "enable_plugins(entry_points=False)\n"
        "import dc_api_x.transforms, dc_api_x.config_providers, dc_api_x.ext.config\n"
        "c = build_transforms([{'type': 'select', 'fields': ['a']}, 'flatten'], "
        "{'type': 'object', 'properties': {'a': {'type': 'integer'}}})\n"
        "out = c(dc_api_x.Batch.from_records([{'a': 1}]))\n"
        "assert out.records == [{'a': 1}], out.records\n"
        "heavy = ('pyarrow', 'httpx', 'sqlalchemy', 'psycopg', 'singer_sdk', 'adbc_driver_manager')\n"
        "bad = [m for m in heavy if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "", f"heavy modules imported: {res.stdout}"


def test_the_example_in_docs_transforms_md_runs() -> None:
    """The third-party transform of docs/transforms.md is real code: run it (it asserts its results)."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "transforms.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 1, "transforms.md should have exactly one runnable python block"
    mod = types.ModuleType("dcapix_docs_transform_example")
    sys.modules[mod.__name__] = mod
    try:
        exec(compile(blocks[0], "docs/transforms.md", "exec"), mod.__dict__)
    finally:
        del sys.modules[mod.__name__]
    assert mod.chain.schema["properties"] == {"name": {"type": ["string", "null"]}}


def test_streamspec_default_schema_is_an_unknown_shape(plugins: Any) -> None:
    """A stream without declared properties (StreamSpec's default schema) is transformed by the columns
    of each batch instead of failing with 'unknown field'."""
    from dc_api_x import StreamSpec

    spec = StreamSpec("events")
    chain = build_transforms(
        [{"type": "rename", "fields": {"a": "b"}}, {"type": "filter", "expression": "b > 1"}],
        spec.schema,
        stream=spec.name,
    )
    out = chain(Batch.from_records([{"a": 1, "c": "x"}, {"a": 2, "c": "y"}], schema=spec.schema))
    assert out.records == [{"b": 2, "c": "y"}]
    out = chain(Batch.from_arrow(pa.table({"a": [5, 0]}), schema=spec.schema))
    assert out.to_arrow().to_pylist() == [{"b": 5}]


def test_unknown_shape_rebinds_every_batch(plugins: Any) -> None:
    chain = build_transforms([{"type": "flatten"}], None)
    first = chain(Batch.from_arrow(pa.table({"a": [{"x": 1}]})))
    second = chain(Batch.from_arrow(pa.table({"b": [{"y": "z"}], "c": [1]})))
    assert first.to_arrow().column_names == ["a__x"]
    assert second.to_arrow().column_names == ["b__y", "c"]
    assert second.schema is not None and list(second.schema["properties"]) == ["b__y", "c"]
