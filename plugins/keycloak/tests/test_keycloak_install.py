"""``pip install`` / ``pip uninstall`` of the distribution in a fresh virtual environment, and a
missing HTTP library: the plugin is listed as failed with the reason, the others keep working.

The fresh venv sees this environment's packages (the core, pydantic, pyarrow …) through a ``.pth``
file pointing at a directory of links to them — every link except this plugin's own files, so the
venv starts without the plugin. The plugin is built into a wheel by ``pip wheel ./plugins/keycloak``
(what ``pip install ./plugins/keycloak`` does first; the fresh venv's ``.pth`` would leak this
environment's older setuptools into an isolated build) and installed there by ``pip install``, which
resolves its ``dc-api-x[http]`` requirement against the installed core.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import warnings
from pathlib import Path
from typing import Any

import pytest

PLUGIN_ROOT = Path(__file__).resolve().parents[1]


def _site_view(dest: Path, *, hide: tuple[str, ...]) -> Path:
    """A directory of symlinks to this environment's site-packages entries, minus ``hide``."""
    dest.mkdir()
    purelib = Path(sysconfig.get_paths()["purelib"])
    for entry in purelib.iterdir():
        low = entry.name.lower()
        if any(h in low for h in hide):
            continue
        (dest / entry.name).symlink_to(entry)
    return dest


def _venv(path: Path, view: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True, timeout=120)
    python = path / "bin" / "python"
    site_dir = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(site_dir, "_dcapix_dev_view.pth").write_text(f"import site; site.addsitedir({str(view)!r})\n")
    return python


def _pip(python: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    return subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )


def _plugins(python: Path, cwd: Path) -> tuple[list[dict[str, Any]], str]:
    res = subprocess.run(
        [
            str(python),
            "-c",
            "import sys; from dc_api_x.cli import main; sys.exit(main(['plugins', '--json']))",
        ],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout), res.stderr


def _csv_to_jsonl(python: Path, tmp: Path) -> subprocess.CompletedProcess[str]:
    """Another plugin (the built-in files adapters) moving data in the same environment."""
    (tmp / "in").mkdir(exist_ok=True)
    (tmp / "in" / "items.csv").write_text("id,name\n1,a\n2,b\n3,c\n")
    (tmp / "src.json").write_text(json.dumps({"adapter": "csv", "path": str(tmp / "in")}))
    (tmp / "dst.json").write_text(json.dumps({"adapter": "jsonl", "path": str(tmp / "out")}))
    code = "import sys; from dc_api_x.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run(
        [
            str(python),
            "-c",
            code,
            "run",
            "--source",
            "src.json",
            "--destination",
            "dst.json",
            "--no-state",
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        cwd=tmp,
        timeout=300,
    )


def test_install_list_missing_library_and_uninstall(tmp_path: Path) -> None:
    view = _site_view(tmp_path / "view", hide=("keycloak",))
    python = _venv(tmp_path / "venv", view)
    listed, _ = _plugins(python, tmp_path)
    assert "keycloak" not in {p["name"] for p in listed}

    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    # from a copy: pip builds in the source tree, and its build/ must not land in the checkout
    source = tmp_path / "dc-api-x-keycloak"
    shutil.copytree(
        PLUGIN_ROOT, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__", "tests")
    )
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "-w",
            str(tmp_path / "wheels"),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    if res.returncode != 0:
        msg = f"!!! pip wheel {PLUGIN_ROOT} failed (no setuptools>=77?): {res.stderr.strip()[-400:]}"
        warnings.warn(msg, stacklevel=1)
        pytest.skip(msg + " -- SKIPPED")
    (wheel,) = (tmp_path / "wheels").glob("dc_api_x_keycloak-*.whl")
    res = _pip(python, "install", str(wheel))
    assert res.returncode == 0, res.stderr[-2000:]
    assert "Successfully installed dc-api-x-keycloak-0.1.0" in res.stdout
    listed, _ = _plugins(python, tmp_path)
    with_httpx = listed
    info = next(p for p in listed if p["name"] == "keycloak")
    assert (info["status"], info["distribution"], info["version"]) == ("loaded", "dc-api-x-keycloak", "0.1.0")
    assert info["registers"] == {
        "adapters": ["keycloak"],
        "auth_providers": ["keycloak"],
        "paginators": ["keycloak"],
    }

    # httpx missing (a second view without it): the plugin fails with the reason, the rest works
    no_httpx = _site_view(tmp_path / "view-no-httpx", hide=("keycloak", "httpx"))
    site_dir = next((tmp_path / "venv" / "lib").glob("python*/site-packages"))
    pth = site_dir / "_dcapix_dev_view.pth"
    pth.write_text(f"import site; site.addsitedir({str(no_httpx)!r})\n")
    listed, stderr = _plugins(python, tmp_path)
    info = next(p for p in listed if p["name"] == "keycloak")
    assert info["status"] == "failed" and info["registers"] == {}
    assert "needs httpx" in info["reason"] and "pip install 'dc-api-x[http]'" in info["reason"]
    assert "dc-api-x-keycloak needs httpx" in stderr
    # every other plugin is as it was with httpx (the built-ins all loaded)
    others = {p["name"]: p["status"] for p in listed if p["name"] != "keycloak"}
    assert others == {p["name"]: p["status"] for p in with_httpx if p["name"] != "keycloak"}
    assert all(p["status"] == "loaded" for p in listed if p["distribution"] == "dc-api-x")
    run = _csv_to_jsonl(python, tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    rows = [json.loads(x) for f in (tmp_path / "out").rglob("*.jsonl") for x in f.read_text().splitlines()]
    assert sorted(r["id"] for r in rows) == [1, 2, 3]
    pth.write_text(f"import site; site.addsitedir({str(view)!r})\n")

    # uninstall: gone from the listing, and no file of it is left
    res = _pip(python, "uninstall", "-y", "dc-api-x-keycloak")
    assert res.returncode == 0, res.stderr
    listed, _ = _plugins(python, tmp_path)
    assert "keycloak" not in {p["name"] for p in listed}
    assert not [p for p in site_dir.iterdir() if "keycloak" in p.name.lower()]
