"""The core's version is single-sourced: pyproject.toml → the installed metadata, which
``dc_api_x.__version__``, ``dcapix --version`` and the tap's and target's ``--about`` all read."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import tomllib

import dc_api_x

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def test_every_version_is_the_pyproject_version() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert declared == "0.2.0"
    assert metadata.version("dc-api-x") == dc_api_x.__version__ == declared
    out = subprocess.run([str(BIN / "dcapix"), "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == f"dc-api-x {declared}"
    for exe in ("tap-dcapix", "target-dcapix"):
        res = subprocess.run(
            [str(BIN / exe), "--about", "--format", "json"], capture_output=True, text=True, timeout=120
        )
        assert res.returncode == 0, res.stderr
        assert json.loads(res.stdout)["version"] == declared, exe
