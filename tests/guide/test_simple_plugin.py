"""The guide's "Creating a Simple Plugin" + "Registering a Plugin": ``my_plugin`` installed through the
guide's own ``pyproject.toml`` (entry point ``custom_plugin`` in ``dc_api_x.plugins``), loaded by a
plain ``enable_plugins()`` and used through ``ApiClient``."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from importlib import metadata
from pathlib import Path

import pytest

import dc_api_x
from dc_api_x import ApiClient, PluginWarning, enable_plugins
from dc_api_x.ext.adapters import Response

DCAPIX = Path(sys.executable).parent / "dcapix"


def test_installed_through_the_guides_pyproject_and_found_by_its_entry_point() -> None:
    dist = metadata.distribution("dc-api-x-custom-plugin")
    assert dist.version == "0.1.0" and dist.requires == ["dc-api-x>=0.2.0"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", PluginWarning)
        ps = enable_plugins(make_current=False)
    info = ps.plugins["custom_plugin"]
    assert (info.status, info.distribution, info.module, info.group) == (
        "loaded",
        "dc-api-x-custom-plugin",
        "my_plugin",
        "dc_api_x.plugins",
    )
    adapter_cls = ps.adapters["custom_protocol"]
    assert adapter_cls.__module__ == "my_plugin.custom_adapter" and adapter_cls.__name__ == "CustomAdapter"
    assert info.registers["adapters"] == ["custom_protocol"]


def test_the_custom_adapter_through_api_client() -> None:
    enable_plugins()
    with ApiClient(url="protocol://example.com", adapter="custom_protocol") as client:
        assert client.adapter.connection_string == "protocol://example.com"  # the guide's shape
        response = client.get("resource")
    assert isinstance(response, Response) and response.ok
    assert response.data == {"success": True, "data": {"sample": "data"}}
    snap = client.hook("metrics").snapshot()
    assert (snap["requests"], snap["responses"], snap["errors"]) == (1, 1, 0)


def test_dcapix_plugins_lists_it() -> None:
    res = subprocess.run([str(DCAPIX), "plugins", "--json"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    row = next(r for r in json.loads(res.stdout) if r["name"] == "custom_plugin")
    assert row["distribution"] == "dc-api-x-custom-plugin" and row["version"] == "0.1.0"
    assert row["registers"] == {"adapters": ["custom_protocol"]} and row["status"] == "loaded"


def test_an_older_core_than_the_plugin_requires_refuses_it_with_the_versions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The guide's plugin requires dc-api-x>=0.2.0 (the core is 0.2.0, so it loads); a core below
    that is refused before the plugin is imported, the warning naming both versions."""
    assert dc_api_x.__version__ == "0.2.0"
    monkeypatch.setattr(dc_api_x.plugins, "core_version", lambda: "0.1.9")
    with pytest.warns(PluginWarning, match=r"requires dc-api-x >=0.2.0, found 0.1.9; skipped"):
        ps = enable_plugins(make_current=False)
    assert ps.plugins["custom_plugin"].status == "incompatible"
    assert "custom_protocol" not in ps.adapters
