"""``pip install`` of the distribution into a fresh venv that has the core but not this plugin:
listed by ``dcapix plugins``, then ``pip uninstall`` removes every file and the listing forgets it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import pytest

PLUGIN_DIR = Path(__file__).resolve().parents[1]


def _venv_without_the_plugin(tmp: Path) -> tuple[Path, Path]:
    """A venv seeing this environment's packages (symlinked), except dc-api-x-oracle-db."""
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = Path(
        subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    )
    mirror = tmp / "mirror"
    mirror.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if "dc_api_x_oracle_db" in entry.name.replace("-", "_").lower():
            continue
        if entry.suffix == ".pth":
            (site / entry.name).write_text(entry.read_text())  # the editable core
        else:
            (mirror / entry.name).symlink_to(entry)
    (site / "000-mirror.pth").write_text(f"{mirror}\n")
    return python, site


def _listed(python: Path, cwd: Path) -> dict[str, Any]:
    code = "import sys; from dc_api_x.cli import main; sys.exit(main(['plugins', '--json']))"
    res = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=120, cwd=cwd)
    assert res.returncode == 0, res.stderr
    return {r["name"]: r for r in json.loads(res.stdout)}


@pytest.mark.slow  # a pip build in a fresh venv: ~40 s on a loaded machine
def test_install_and_uninstall_in_a_fresh_venv(tmp_path: Path) -> None:
    python, site = _venv_without_the_plugin(tmp_path)
    assert "oracle_db" not in _listed(python, tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DC_API_X_", "PIP_"))}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    source = tmp_path / "dc-api-x-oracle-db"  # a copy: the build leaves nothing in the repository
    shutil.copytree(
        PLUGIN_DIR, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__", "tests")
    )
    pip = [str(python), "-m", "pip"]
    res = subprocess.run(
        [*pip, "install", "-q", "--no-deps", str(source)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    row = _listed(python, tmp_path)["oracle_db"]
    assert (row["status"], row["distribution"], row["registers"]) == (
        "loaded",
        "dc-api-x-oracle-db",
        {"adapters": ["oracle_db"]},
    )
    res = subprocess.run(
        [*pip, "uninstall", "-y", "dc-api-x-oracle-db"], capture_output=True, text=True, env=env
    )
    assert res.returncode == 0, res.stderr
    assert [p.name for p in site.iterdir() if "oracle_db" in p.name.replace("-", "_").lower()] == []
    assert "oracle_db" not in _listed(python, tmp_path)
