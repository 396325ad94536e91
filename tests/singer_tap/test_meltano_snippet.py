"""``dcapix meltano-snippet`` prints a plugin definition that parses and matches the adapter config,
and the project's meltano.yml declares what Meltano needs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dc_api_x.cli import main
from dc_api_x.exceptions import ConfigError
from dc_api_x.meltano import TAP_CAPABILITIES, plugin_definition

ROOT = Path(__file__).resolve().parents[2]


def _snippet(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    assert main(["meltano-snippet", *args]) == 0
    return yaml.safe_load(capsys.readouterr().out)


def test_extractor_snippet_parses_and_matches(capsys: pytest.CaptureFixture[str], plugins) -> None:
    doc = _snippet(
        capsys,
        "--adapter",
        "sql",
        "--url",
        "sqlite:////data/shop.sqlite",
        "--set",
        'streams=["customers", "orders"]',
        "--set",
        "batch_size=5000",
        "--pip-url",
        "-e .",
    )
    (plugin,) = doc["plugins"]["extractors"]
    assert plugin["name"] == "tap-dcapix"
    assert plugin["namespace"] == "tap_dcapix"
    assert plugin["executable"] == "tap-dcapix"
    assert plugin["pip_url"] == "-e ."
    assert set(plugin["capabilities"]) == set(TAP_CAPABILITIES)
    assert {"catalog", "discover", "state"} <= set(plugin["capabilities"])
    assert plugin["config"] == {
        "adapter": "sql",
        "url": "sqlite:////data/shop.sqlite",
        "streams": ["customers", "orders"],
        "batch_size": 5000,
    }
    settings = {s["name"]: s for s in plugin["settings"]}
    cls = plugins.adapters.get("sql")
    for fname, finfo in cls.Options.model_fields.items():
        assert (finfo.alias or fname) in settings
    assert settings["url"]["sensitive"] is True
    assert settings["batch_size"]["kind"] == "integer"
    assert settings["streams"]["kind"] in ("array", "object")
    for s in plugin["settings"]:
        assert s["kind"] in {"string", "integer", "decimal", "boolean", "object", "array", "date_iso8601"}


def test_secret_values_stay_out(capsys: pytest.CaptureFixture[str], plugins) -> None:
    doc = _snippet(
        capsys, "--adapter", "sql", "--url", "postgresql://app:s3cr3t-pw@db.internal/shop", "--format", "ref"
    )
    assert doc["namespace"] == "tap_dcapix"
    assert "url" not in doc["config"]
    assert "s3cr3t-pw" not in yaml.safe_dump(doc)


def test_loader_snippet(capsys: pytest.CaptureFixture[str], plugins, tmp_path: Path) -> None:
    doc = _snippet(
        capsys, "--loader", "--adapter", "parquet", "--path", str(tmp_path), "--name", "parquet-out"
    )
    (plugin,) = doc["plugins"]["loaders"]
    assert plugin["name"] == "parquet-out"
    assert plugin["namespace"] == "target_dcapix" and plugin["executable"] == "target-dcapix"
    assert plugin["config"] == {"adapter": "parquet", "path": str(tmp_path)}
    assert "state" not in plugin["capabilities"]


def test_bad_option_is_one_error(plugins) -> None:
    with pytest.raises(ConfigError, match="bogus"):
        plugin_definition({"adapter": "sql", "url": "sqlite:///x.db", "bogus": 1})
    with pytest.raises(ConfigError, match="adapter"):
        plugin_definition({"url": "sqlite:///x.db"})


def test_project_meltano_yml() -> None:
    doc = yaml.safe_load((ROOT / "meltano.yml").read_text(encoding="utf-8"))
    assert doc["default_environment"] in {e["name"] for e in doc["environments"]}
    assert doc["send_anonymous_usage_stats"] is False
    tap = next(p for p in doc["plugins"]["extractors"] if p["name"] == "tap-dcapix")
    tgt = next(p for p in doc["plugins"]["loaders"] if p["name"] == "target-dcapix")
    for p in (tap, tgt):
        assert p["namespace"] and p["pip_url"].startswith("-e .") and p["executable"] == p["name"]
        for s in p["settings"]:
            assert {"name", "kind"} <= set(s)
    assert {"catalog", "discover", "state", "about", "stream-maps"} <= set(tap["capabilities"])
    assert any(s.get("sensitive") for s in tap["settings"])
    assert doc["schedules"] and doc["schedules"][0]["job"] in {j["name"] for j in doc["jobs"]}


def test_the_tap_and_target_declare_the_capability_lists_of_dc_api_x_meltano() -> None:
    """One home for the capability lists: the classes declare exactly what the snippets print."""
    from tap_dcapix.tap import TapDcApiX
    from target_dcapix.target import TargetDcApiX

    from dc_api_x.meltano import TARGET_CAPABILITIES

    assert [c.value for c in TapDcApiX.capabilities] == list(TAP_CAPABILITIES)
    assert [c.value for c in TargetDcApiX.capabilities] == list(TARGET_CAPABILITIES)
    with pytest.raises(ValueError, match="no capability 'telepathy'"):
        __import__("dc_api_x.meltano").meltano.sdk_capabilities(["telepathy"])
