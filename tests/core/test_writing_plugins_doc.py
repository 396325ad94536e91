"""Every ``python`` block of docs/writing_plugins.md runs and does what the page says."""

from __future__ import annotations

import json
import re
import shutil
import sys
import types
import warnings
from pathlib import Path
from typing import Any

import pytest
from logfire.testing import CaptureLogfire
from pydantic import BaseModel

from dc_api_x import PluginWarning, create_adapter, enable_plugins

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "writing_plugins.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)


def block(marker: str) -> str:
    (found,) = [b for b in BLOCKS if marker in b]
    return found


def module(code: str, name: str) -> types.ModuleType:
    mod = types.ModuleType(name)
    exec(compile(code, f"{DOC}:{name}", "exec"), mod.__dict__)
    return mod


def load(mod: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("error", PluginWarning)
        ps = enable_plugins(entry_points=False, plugins=[mod], lazy=False)
    assert ps.plugins[getattr(mod, "__name__", type(mod).__name__)].status == "loaded"
    return ps


def test_every_block_is_covered_below() -> None:
    markers = [
        "Available adapters",
        "# my_plugin/__init__.py",
        "# advanced_plugin/__init__.py",
        "class Pool",
        "DC_API_X_REQUIRES",
        'adapter_options={"key": "value"}',
        "class ConfigurableOptions",
        "import logfire",
        "class DotfileProvider",
        "get_adapter_test_class",
        "def add_commands(subparsers):",  # run by tests/core/test_cli_commands.py
    ]
    assert len(BLOCKS) == len(markers)
    for m in markers:
        block(m)


def test_discovering(capsys: pytest.CaptureFixture[str]) -> None:
    exec(block("Available adapters"), {})
    assert capsys.readouterr().out.startswith("Available adapters: ")


def test_simple_plugin_as_a_real_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = tmp_path / "docs_my_plugin"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(block("# my_plugin/__init__.py"))
    guide_adapter = (
        ROOT / "tests" / "guide" / "dists" / "dc-api-x-custom-plugin" / "my_plugin" / "custom_adapter.py"
    )
    shutil.copy(guide_adapter, pkg / "custom_adapter.py")
    monkeypatch.syspath_prepend(str(tmp_path))
    import docs_my_plugin

    ps = load(docs_my_plugin)
    assert ps.adapters["custom_protocol"].__module__ == "docs_my_plugin.custom_adapter"
    ps.close()
    sys.modules.pop("docs_my_plugin", None)
    sys.modules.pop("docs_my_plugin.custom_adapter", None)


def test_multiple_hooks_and_the_alias() -> None:
    ps = load(module(block("# advanced_plugin/__init__.py"), "docs_advanced"))
    assert ps.plugins["docs_advanced"].registers == {
        "adapters": ["custom_protocol"],
        "auth_providers": ["custom_auth"],
        "transforms": ["custom_transform"],
    }
    ps.close()


def test_lifecycle_factory_and_cleanup() -> None:
    ps = load(module(block("class Pool"), "docs_lifecycle"))
    adapter = create_adapter({"adapter": "pooled", "url": "pool://x", "size": 4}, plugins=ps)
    assert (adapter.url, adapter.size, adapter._closed) == ("pool://x", 4, False)
    ps.close()
    assert adapter._closed


def test_version_attribute() -> None:
    ps = load(module(block("DC_API_X_REQUIRES"), "docs_versioned"))
    assert "compatible_protocol" in ps.adapters
    ps.close()


def test_api_client_and_pydantic_blocks_run() -> None:
    exec(block('adapter_options={"key": "value"}'), {})
    exec(block("class ConfigurableOptions"), {})


def test_logfire_equivalent_of_the_guides_context(
    capfire: CaptureLogfire, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "docs_logging.py").write_text(block("import logfire"))  # a real file: logfire reads it
    monkeypatch.syspath_prepend(str(tmp_path))
    import docs_logging

    adapter = docs_logging.LoggingAdapter(name="billing")
    assert adapter.request("GET", "/invoices") == {"status": 200, "data": {"path": "/invoices"}}
    spans = capfire.exporter.exported_spans_as_dict()
    by_msg = {s["attributes"]["logfire.msg"]: s for s in spans}
    assert set(by_msg) == {
        "Initializing billing adapter",
        "request GET /invoices",
        "Making request",
        "Request successful",
    }
    req = by_msg["request GET /invoices"]
    attrs = req["attributes"]
    assert (attrs["adapter"], attrs["method"], attrs["path"], attrs["status"]) == (
        "billing",
        "GET",
        "/invoices",
        200,
    )
    for inside in ("Making request", "Request successful"):  # logged inside the span: its children
        assert by_msg[inside]["parent"]["span_id"] == req["context"]["span_id"]
    sys.modules.pop("docs_logging", None)


def test_config_provider(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dc_api_x.config import load_settings

    class Settings(BaseModel):
        name: str = "default"

    dotfile = tmp_path / "my.json"
    dotfile.write_text(json.dumps({"name": "from-dotfile"}))
    monkeypatch.setenv("MY_PLUGIN_DOTFILE", str(dotfile))
    monkeypatch.setenv("DCAPIX_NAME", "from-env")
    ps = load(module(block("class DotfileProvider"), "docs_config"))
    try:
        assert load_settings(Settings).name == "from-dotfile"
    finally:
        ps.close()


def test_testing_kit_block() -> None:
    ns: dict[str, Any] = {}
    exec(block("get_adapter_test_class"), ns)
    assert ns["TestSqlite"].adapter == "sql" and ns["TestSqlite"].expected_records == 25
