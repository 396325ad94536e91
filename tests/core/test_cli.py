"""``dcapix plugins`` through the installed console script (a real subprocess)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from dc_api_x import plugins as plugins_mod

from .conftest import TEST_GROUP

pytestmark = pytest.mark.usefixtures("plugin_dists")


def dcapix(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).parent / "dcapix"
    exe = str(script) if script.exists() else shutil.which("dcapix")
    assert exe, "the dcapix console script is not installed (pip install -e .)"
    base = {k: v for k, v in os.environ.items() if not k.startswith("DC_API_X_")}
    return subprocess.run(
        [exe, *args], capture_output=True, text=True, timeout=120, env={**base, **(env or {})}
    )


def test_plugins_json_lists_distribution_version_status_and_registrations() -> None:
    res = dcapix("plugins", "--json")
    assert res.returncode == 0, res.stderr
    assert res.stderr == ""  # only good plugins in the default group: no warning
    rows: list[dict[str, Any]] = json.loads(res.stdout)
    by_name = {r["name"]: r for r in rows}
    assert list(by_name)[: len(plugins_mod.DEFAULT_PLUGINS)] == list(plugins_mod.DEFAULT_PLUGINS)
    for mod in plugins_mod.DEFAULT_PLUGINS:
        r = by_name[mod]
        assert (r["distribution"], r["status"], r["builtin"]) == ("dc-api-x", "loaded", True)
        assert r["version"] == plugins_mod.core_version()
    ex = by_name["example"]
    assert ex == {
        "name": "example",
        "module": "dcapix_example_plugin",
        "distribution": "dcapix-example-plugin",
        "version": "1.0.0",
        "status": "loaded",
        "reason": "",
        "builtin": False,
        "group": "dc_api_x.plugins",
        "registers": {
            "adapters": ["example"],
            "transforms": ["example_upper"],
            "paginators": ["example_pages"],
        },
    }
    assert by_name["http"]["registers"] == {"hooks": ["example_trace"]}


def test_plugins_text_output_and_broken_plugins() -> None:
    res = dcapix("plugins", env={"DC_API_X_ENTRY_POINT_GROUPS": TEST_GROUP})
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    (ex_line,) = [ln for ln in lines if ln.startswith("example ")]
    assert "[dcapix-example-plugin 1.0.0]  loaded" in ex_line
    assert lines[lines.index(ex_line) + 1].split() == [
        "registers",
        "adapters:",
        "example;",
        "transforms:",
        "example_upper;",
        "paginators:",
        "example_pages",
    ]
    (bad,) = [ln for ln in lines if ln.startswith("broken_import ")]
    assert "[dcapix-broken-plugin 0.2.0]  failed (import failed: RuntimeError:" in bad
    (inc,) = [ln for ln in lines if ln.startswith("incompatible ")]
    assert f"incompatible (requires dc-api-x <0.0.1, found {plugins_mod.core_version()})" in inc
    warn_lines = res.stderr.splitlines()
    assert len(warn_lines) == 5
    assert all(ln.startswith("dcapix: warning: dc-api-x plugin '") for ln in warn_lines)


def test_plugins_group_flag_and_no_entry_points() -> None:
    res = dcapix("plugins", "--json", "--group", TEST_GROUP)
    names = {r["name"]: r["status"] for r in json.loads(res.stdout)}
    assert names["broken_hook"] == "failed" and names["future_core"] == "incompatible"
    res = dcapix("plugins", "--json", "--no-entry-points")
    assert res.returncode == 0
    assert [r["name"] for r in json.loads(res.stdout)] == list(plugins_mod.DEFAULT_PLUGINS)


def test_plugins_honours_blocked_env() -> None:
    res = dcapix("plugins", "--json", env={"DC_API_X_BLOCKED_PLUGINS": "dcapix-example-plugin"})
    rows = {r["name"]: r for r in json.loads(res.stdout)}
    assert rows["example"]["status"] == rows["http"]["status"] == "blocked"
    assert rows["example"]["registers"] == {}


def test_plugins_clash_fails_the_later_plugin_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A name registered twice fails the plugin loaded second (entry points load after the built-in
    modules): one warning line naming both, the table shows it failed, everything else works."""
    import types

    from dc_api_x import cli

    clash = types.ModuleType("dcapix_test_clash")
    clash.register_adapters = lambda registry: registry.register("example", object)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "dcapix_test_clash", clash)
    monkeypatch.setattr(plugins_mod, "DEFAULT_PLUGINS", (*plugins_mod.DEFAULT_PLUGINS, "dcapix_test_clash"))
    for var in ("DC_API_X_BLOCKED_PLUGINS", "DC_API_X_ENTRY_POINT_GROUPS"):
        monkeypatch.delenv(var, raising=False)
    assert cli.main(["plugins", "--json"]) == 0
    captured = capsys.readouterr()
    message = (
        "adapter 'example' is provided by both 'dcapix_test_clash' and 'example'; "
        "block one of them (DC_API_X_BLOCKED_PLUGINS=NAME or enable_plugins(blocked=[...]))"
    )
    assert captured.err.strip().splitlines() == [
        f"dcapix: warning: dc-api-x plugin 'example' failed: {message}"
    ]
    rows = {r["name"]: r for r in json.loads(captured.out)}
    assert (rows["example"]["status"], rows["example"]["reason"]) == ("failed", message)
    assert rows["dcapix_test_clash"]["registers"] == {"adapters": ["example"]}
    monkeypatch.setenv("DC_API_X_BLOCKED_PLUGINS", "dcapix_test_clash")
    assert cli.main(["plugins", "--json"]) == 0
    rows = {r["name"]: r["status"] for r in json.loads(capsys.readouterr().out)}
    assert rows["dcapix_test_clash"] == "blocked" and rows["example"] == "loaded"
