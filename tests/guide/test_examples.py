"""The guide's remaining examples, each loaded the way a user would load it (from its entry point in
the examples' group, or as a module) and exercised."""

from __future__ import annotations

import importlib
import logging
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path
from typing import Any

import pytest

from dc_api_x import AdapterError, ApiClient, ConfigError, PluginWarning, create_adapter, enable_plugins

from .conftest import GUIDE_GROUP


def examples(**kwargs: Any) -> Any:
    kwargs.setdefault("blocked", ["custom_plugin"])
    return enable_plugins(entry_point_groups=[GUIDE_GROUP], **kwargs)


# --------------------------------------------------------------------- Plugin Lifecycle Management
def test_lifecycle_registers_a_bound_method_as_the_adapter_factory() -> None:
    ps = examples()
    factory_method = ps.adapters["managed_protocol"]
    assert factory_method.__name__ == "create_adapter" and factory_method.__self__.adapters == []
    adapter = create_adapter({"adapter": "managed_protocol", "url": "managed://db", "pool_size": 3})
    assert type(adapter).__name__ == "ManagedAdapter" and (adapter.url, adapter.pool_size) == (
        "managed://db",
        3,
    )
    assert factory_method.__self__.adapters == [adapter]
    with ApiClient(url="managed://api", adapter="managed_protocol") as api:
        assert api.get("x").data["data"] == {"url": "managed://api", "path": "x", "pool_size": 2}


def test_lifecycle_cleanup_runs_at_interpreter_exit(tmp_path: Path) -> None:
    marker = tmp_path / "cleanup.txt"
    code = textwrap.dedent(f"""
        import os
        os.environ["GUIDE_LIFECYCLE_MARKER"] = {str(marker)!r}
        import dc_api_x
        dc_api_x.enable_plugins(entry_point_groups=[{GUIDE_GROUP!r}], blocked=["custom_plugin"])
        dc_api_x.create_adapter({{"adapter": "managed_protocol", "url": "managed://a"}})
        dc_api_x.create_adapter({{"adapter": "managed_protocol", "url": "managed://b"}})
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert marker.read_text() == "cleaned 2\n"


# -------------------------------------------------------------------- Conditional Plugin Registration
def test_conditional_registration(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.delenv("ENABLE_EXPERIMENTAL_ADAPTER", raising=False)
    assert "experimental" not in examples(make_current=False).adapters  # feature flag off
    monkeypatch.setenv("ENABLE_EXPERIMENTAL_ADAPTER", "1")
    monkeypatch.setitem(sys.modules, "some_optional_package", None)  # the optional dependency missing
    with caplog.at_level(logging.WARNING):
        ps = examples(make_current=False)
        assert "experimental" not in ps.adapters
    assert "Optional dependency 'some_optional_package' not found" in caplog.text
    assert ps.plugins["conditional_plugin"].status == "loaded"
    monkeypatch.delitem(sys.modules, "some_optional_package")
    ps = examples()
    assert ps.adapters["experimental"].__name__ == "ExperimentalAdapter"
    with ApiClient(url="x://", adapter="experimental") as api:
        assert api.get("p").data == {"success": True, "data": {"experimental": True, "path": "p"}}


# ---------------------------------------------------------------------------- Version Compatibility
def test_version_check_of_the_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # dc-api-x is 0.2.0: no warning at all
        ps = examples(make_current=False)
        assert "compatible_protocol" in ps.adapters
    real = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version", lambda d: "0.1.0" if d == "dc-api-x" else real(d))
    ps = examples(make_current=False)
    with pytest.warns(UserWarning, match=r"Plugin requires dc-api-x>=0.2.0, but found 0.1.0"):
        assert "compatible_protocol" in ps.adapters  # warned, registered anyway (the guide's choice)


# ------------------------------------------------------------------------- Integration with Pydantic
def test_configurable_adapter_validates_with_its_own_model(http_server: Any) -> None:
    http_server.route("GET", "/ping", lambda req: (200, {}, {"pong": True}))
    examples()
    adapter = create_adapter(
        {"adapter": "configurable", "host": "127.0.0.1", "port": http_server.port, "use_ssl": False}
    )
    assert adapter.config.timeout == 30 and str(adapter.client.base_url) == f"{http_server.url}"
    assert adapter.client.get("/ping").json() == {"pong": True}  # the client it built is real
    adapter.client.close()
    with pytest.raises(ConfigError) as ei:
        create_adapter({"adapter": "configurable", "port": 1})
    assert str(ei.value) == "adapter 'configurable': option 'host': required option is missing"
    with pytest.raises(
        ConfigError, match=r"adapter 'configurable': option 'port': Input should be a valid integer"
    ):
        create_adapter({"adapter": "configurable", "host": "h", "port": "eighty"})


# -------------------------------------------------------------------------- Integration with Logging
def test_logging_adapter_as_written_meets_a_logfire_without_context(capfire: Any) -> None:
    """The guide's LoggingAdapter logs its initialisation with logfire.info, then calls
    ``logfire.context``, which logfire does not have (docs/writing_plugins.md shows the working
    equivalent, tested in test_writing_plugins_doc.py)."""
    examples()
    adapter = create_adapter({"adapter": "logging_adapter", "name": "billing"})
    spans = capfire.exporter.exported_spans_as_dict()
    assert [s["attributes"]["logfire.msg"] for s in spans] == ["Initializing billing adapter"]
    assert spans[0]["attributes"]["name"] == "billing"
    with pytest.raises(AttributeError, match="has no attribute 'context'"):
        adapter.request("GET", "/invoices")


# ------------------------------------------------------------------------------- Best practices
def test_lazy_loading_good_and_avoid(tmp_path: Path) -> None:
    """The guide's "Good": enable_plugins() imports neither the heavy module nor its library until
    the adapter is used; "Avoid": importing the plugin imports them."""
    code = textwrap.dedent(f"""
        import sys, dc_api_x
        dc_api_x.enable_plugins(entry_point_groups=[{GUIDE_GROUP!r}], blocked=["custom_plugin"])
        out = ["lazy_good.heavy_adapter" in sys.modules, "sqlalchemy" in sys.modules]
        dc_api_x.list_paginators(); dc_api_x.list_transforms(); dc_api_x.list_hooks()
        out += ["lazy_good.heavy_adapter" in sys.modules, "sqlalchemy" in sys.modules]
        dc_api_x.get_adapter("heavy")
        out += ["lazy_good.heavy_adapter" in sys.modules, "sqlalchemy" in sys.modules]
        import lazy_avoid
        out.append("lazy_avoid.heavy_adapter" in sys.modules)
        print(out)
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[False, False, False, False, True, True, True]"


def test_error_handling_keeps_the_core_working(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    ps = examples(make_current=False)
    assert ps.adapters["custom"].__module__ == "error_handling_plugin.adapter"
    monkeypatch.setitem(sys.modules, "error_handling_plugin.adapter", None)  # the import fails
    with caplog.at_level(logging.WARNING):
        ps = examples(make_current=False)
        assert "custom" not in ps.adapters and "sql" in ps.adapters
    assert "Could not register custom adapter: " in caplog.text
    assert ps.plugins["error_handling_plugin"].status == "loaded"


def test_documented_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    import xyz_plugin

    assert "XYZ_API_KEY: Required API key" in (xyz_plugin.__doc__ or "")
    assert "Register the XYZ protocol adapter." in (xyz_plugin.register_adapters.__doc__ or "")
    examples()
    monkeypatch.delenv("XYZ_API_KEY", raising=False)
    with pytest.raises(AdapterError, match=r"^adapter 'xyz' could not be created: KeyError: 'XYZ_API_KEY'$"):
        create_adapter({"adapter": "xyz", "url": "xyz://h"})
    monkeypatch.setenv("XYZ_API_KEY", "xyz-key-123456")
    monkeypatch.setenv("XYZ_TIMEOUT", "7")
    with ApiClient(url="xyz://h", adapter="xyz") as api:
        assert api.get("a").data == {"success": True, "data": {"path": "a", "timeout": 7}}


def test_plugin_configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from plugin_config import get_plugin_config

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("CUSTOM_TIMEOUT", raising=False)
    assert get_plugin_config() == {"timeout": 30, "max_connections": 10, "retry": True}
    cfg = tmp_path / ".config" / "dcapix" / "plugins" / "custom.json"
    cfg.parent.mkdir(parents=True)
    cfg.write_text('{"max_connections": 3, "retry": false}')
    monkeypatch.setenv("CUSTOM_TIMEOUT", "12")
    assert get_plugin_config() == {"timeout": 12, "max_connections": 3, "retry": False}


def test_testable_adapter_with_its_real_client(http_server: Any) -> None:
    """The guide's TestableAdapter without a mock: its RealClient talks to a real server."""
    http_server.route("GET", "/test", lambda req: (200, {}, {"hello": req.arg("who")}))
    examples()
    with ApiClient(url=http_server.url, adapter="testable") as api:
        res = api.get("/test", params={"who": "world"})
    assert res.data == {"success": True, "status": 200, "data": {"hello": "world"}}
    assert isinstance(create_adapter({"adapter": "testable", "client": "injected"}).client, str)


def test_no_plugin_warning_from_the_examples() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", PluginWarning)
        examples(make_current=False, lazy=False)
