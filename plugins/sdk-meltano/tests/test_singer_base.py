"""``AdapterTap`` / ``AdapterTarget``: singer-sdk classes bound to one adapter (here the built-in
``jsonl`` adapter), their settings, config handling and Meltano definition."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from dc_api_x_sdk_meltano.singer import AdapterTap, AdapterTarget, meltano_definition

from dc_api_x.exceptions import ConfigError
from dc_api_x.singer_settings import adapter_options_schema


class TapJ(AdapterTap):
    name = "tap-j"
    package_name = "dc-api-x"
    adapter_name = "jsonl"


class TargetJ(AdapterTarget):
    name = "target-j"
    package_name = "dc-api-x"
    adapter_name = "jsonl"


class TapNothing(AdapterTap):
    name = "tap-nothing"


@pytest.fixture
def source(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    (src / "items.jsonl").write_text('{"id": 1, "name": "a"}\n{"id": 2, "name": "b"}\n')
    return src


def test_the_settings_are_the_adapters_options() -> None:
    tap = TapJ.config_jsonschema
    options = adapter_options_schema("jsonl")
    assert set(tap["properties"]) == {*options["properties"], "transforms"}
    assert "adapter" not in tap["properties"] and "required" not in tap
    target = TargetJ.config_jsonschema["properties"]
    assert {"path", "load_method", "batch_size_rows", "validate_records"} <= set(target)
    assert "adapter" not in target
    assert target["load_method"]["enum"] == ["append", "overwrite", "append-only"]  # what jsonl writes
    assert all("default" not in target[k] for k in options["properties"])  # the adapter applies its own


def test_the_tap_reads_through_its_adapter(source: Path) -> None:
    tap = TapJ(config={"path": str(source / "items.jsonl")})
    assert tap.config["adapter"] == "jsonl"
    [stream] = tap.discover_streams()
    assert [r["id"] for r in stream.get_records(None)] == [1, 2]
    tap.close()


def test_a_config_naming_another_adapter_is_one_line(source: Path) -> None:
    with pytest.raises(ConfigError) as err:
        TapJ(config={"adapter": "sql", "path": str(source)})
    assert str(err.value) == (
        "tap-j: setting 'adapter' is 'sql', but tap-j serves adapter 'jsonl' only (leave the setting out)"
    )
    TapJ(config={"adapter": "jsonl", "path": str(source)}).close()  # naming its own adapter is fine


def test_a_class_without_adapter_name_is_refused() -> None:
    with pytest.raises(ConfigError, match="sets no adapter_name"):
        TapNothing(config={})


def test_config_files_and_environment_variables(source: Path, tmp_path: Path, monkeypatch: Any) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"path": str(source)}))
    tap = TapJ(config=str(path))  # singer-sdk's (deprecated) file form
    assert dict(tap.config)["path"] == str(source)
    tap.close()
    monkeypatch.setenv("TAP_J_PATH", str(source))
    tap = TapJ(config={}, parse_env_config=True)  # --config ENV: the settings are the adapter's options
    assert dict(tap.config)["path"] == str(source)
    tap.close()


def test_about_lists_the_adapter_options() -> None:
    res = CliRunner().invoke(TapJ.cli, ["--about", "--format=json"])
    assert res.exit_code == 0, res.output
    about = json.loads(res.output)
    assert about["name"] == "tap-j" and "path" in about["settings"]["properties"]
    assert "adapter" not in about["settings"]["properties"]
    assert {"catalog", "discover", "state"} <= set(about["capabilities"])


def test_the_target_writes_through_its_adapter(tmp_path: Path) -> None:
    out = tmp_path / "out"
    target = TargetJ(config={"path": str(out)})
    assert target.config["adapter"] == "jsonl" and target.adapter.name == "jsonl"
    lines = [
        {
            "type": "SCHEMA",
            "stream": "items",
            "schema": {"properties": {"id": {"type": "integer"}}},
            "key_properties": [],
        },
        {"type": "RECORD", "stream": "items", "record": {"id": 7}},
        {"type": "STATE", "value": {"bookmarks": {"items": {"n": 1}}}},
    ]
    target.listen(io.StringIO("".join(json.dumps(m) + "\n" for m in lines)))
    written = [json.loads(line) for p in out.rglob("*.jsonl") for line in p.read_text().splitlines()]
    assert written == [{"id": 7}]


def test_meltano_definition() -> None:
    definition = meltano_definition(TapJ, pip_url="-e .")
    assert {k: definition[k] for k in ("name", "namespace", "pip_url", "executable")} == {
        "name": "tap-j",
        "namespace": "tap_j",
        "pip_url": "-e .",
        "executable": "tap-j",
    }
    assert {"catalog", "discover", "state", "about"} <= set(definition["capabilities"])
    names = [s["name"] for s in definition["settings"]]
    assert "path" in names and "transforms" in names and "adapter" not in names
    assert meltano_definition(TargetJ)["pip_url"] == "dc-api-x"  # default: the distribution
