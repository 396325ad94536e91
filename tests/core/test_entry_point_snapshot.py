"""The entry-point snapshot (dc_api_x.entry_points): a process that has not imported importlib.metadata
gets the plugin entry points and dc-api-x's version from ``$XDG_CACHE_HOME/dc-api-x/plugins`` while the
installed distributions keep their modification times (issue 15), and the same plugin set a real
scan gives."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

_SHOW = """
import json, sys
from dc_api_x import plugins
ps = plugins.enable_plugins(make_current=False, lazy=False)
rows = [[p.name, p.module, p.distribution, p.version, p.group, p.status] for p in ps.plugins.values()]
print(json.dumps({"plugins": rows, "version": plugins.core_version(),
                  "metadata": "importlib.metadata" in sys.modules, "packaging": "packaging" in sys.modules}))
"""


def _install(site: Path, name: str, requires: str = "") -> None:
    info = site / f"{name}-1.2.dist-info"
    info.mkdir()
    req = f"Requires-Dist: {requires}\n" if requires else ""
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.2\n{req}")
    (info / "entry_points.txt").write_text(f"[dc_api_x.plugins]\n{name} = {name}_mod\n")
    (site / f"{name}_mod.py").write_text("def register_transforms(registry):\n    pass\n")


def _age(site: Path) -> None:
    """Every modification time of ``site`` 10 s in the past (the snapshot ignores newer ones)."""
    past = time.time() - 10
    for p in [*site.rglob("*"), site]:
        os.utime(p, (past, past))


def _show(tmp_path: Path, site: Path, **env: str) -> dict:
    full = {k: v for k, v in os.environ.items() if not k.startswith("DC_API_X_")}
    full.update(PYTHONPATH=str(site), XDG_CACHE_HOME=str(tmp_path / "cache"), **env)
    res = subprocess.run(
        [sys.executable, "-c", _SHOW], capture_output=True, text=True, env=full, cwd=site, timeout=120
    )
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout.splitlines()[-1])


def test_snapshot_gives_what_the_scan_gives_and_follows_installs(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    _install(site, "snapplug")
    _age(site)
    first = _show(tmp_path, site)  # a real scan, written down
    assert first["metadata"]
    assert ["snapplug", "snapplug_mod", "snapplug", "1.2", "dc_api_x.plugins", "loaded"] in first["plugins"]
    assert list((tmp_path / "cache" / "dc-api-x" / "plugins").glob("entry-points-*.json"))
    again = _show(tmp_path, site)
    assert not again["metadata"]  # importlib.metadata not imported ...
    assert again["plugins"] == first["plugins"] and again["version"] == first["version"]  # ... same set
    off = _show(tmp_path, site, DC_API_X_ENTRY_POINT_CACHE="0")
    assert off["metadata"] and off["plugins"] == first["plugins"]

    _install(site, "otherplug")  # installed now: too recent to trust any snapshot
    recent = _show(tmp_path, site)
    assert recent["metadata"] and "otherplug" in [r[0] for r in recent["plugins"]]
    _age(site)
    added = _show(tmp_path, site)
    assert added["metadata"]  # the directories changed: scanned again
    assert [r[0] for r in added["plugins"]] == [r[0] for r in recent["plugins"]]
    assert _show(tmp_path, site)["plugins"] == added["plugins"]

    shutil.rmtree(site / "snapplug-1.2.dist-info")  # uninstalled
    _age(site)
    removed = _show(tmp_path, site)
    assert removed["metadata"] and "snapplug" not in [r[0] for r in removed["plugins"]]
    cached = _show(tmp_path, site)
    assert not cached["metadata"] and cached["plugins"] == removed["plugins"]


def test_edited_entry_points_file_is_seen(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    _install(site, "editplug")
    _age(site)
    _show(tmp_path, site)
    assert not _show(tmp_path, site)["metadata"]
    ep = site / "editplug-1.2.dist-info" / "entry_points.txt"
    ep.write_text("[dc_api_x.plugins]\nrenamed = editplug_mod\n")  # edited in place
    past = time.time() - 5
    os.utime(ep, (past, past))
    seen = _show(tmp_path, site)
    assert seen["metadata"] and "renamed" in [r[0] for r in seen["plugins"]]


def test_requirements_on_the_core_are_judged_once_and_kept_in_the_snapshot(tmp_path: Path) -> None:
    """A plugin's ``Requires-Dist: dc-api-x …`` is judged when the snapshot is written; a start from
    the snapshot gives the same verdicts (loaded / failed as incompatible) without importing
    ``packaging`` (~5 ms of every run)."""
    site = tmp_path / "site"
    site.mkdir()
    _install(site, "okplug", "dc-api-x>=0.0.1")
    _install(site, "oldplug", "dc-api-x<0.0.1")
    _install(site, "oddplug", "dc-api-x (>=0.0.1) ; python_version >= '3'")
    _age(site)
    first = _show(tmp_path, site)
    again = _show(tmp_path, site)
    assert first["metadata"] and not again["metadata"]
    assert again["plugins"] == first["plugins"]
    status = {row[0]: row[5] for row in again["plugins"]}
    assert (status["okplug"], status["oddplug"]) == ("loaded", "loaded")
    assert status["oldplug"] != "loaded"
    assert not again["packaging"]
