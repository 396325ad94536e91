"""Fresh virtualenvs for generated plugins, with the third-party dependencies cached.

A test venv is made new each time (``python -m venv --without-pip``) and the projects under test —
this checkout's dc-api-x core, dc-api-x-sdk-meltano and the generated plugins — are really
``pip install``-ed into it, dependencies resolved by pip. What is cached is a *layer*: one venv per
set of third-party requirements (keyed by the requirements and the Python version, under
``$DCAPIX_SDK_MELTANO_VENVS``, default ``~/.cache/dcapix-sdk-meltano-venvs``) whose site-packages
the fresh venv sees through a ``.pth`` file. pip runs from that layer with ``--no-index
--no-build-isolation``, so an install needs no network and fails (instead of downloading) when the
projects need something the layer lacks. Only building a layer needs PyPI; without it the tests
skip loudly. Layers are built under a file lock (parallel sessions share them) and used only once
complete (a ``.ok`` marker).

:func:`pypi_venv` is the uncached variant (the ``slow`` test): a venv with pip, everything from PyPI.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import warnings
from collections.abc import Sequence
from pathlib import Path

import pytest

CACHE = Path(
    os.environ.get("DCAPIX_SDK_MELTANO_VENVS") or Path.home() / ".cache" / "dcapix-sdk-meltano-venvs"
)

#: How long one pip install may take (a layer from PyPI on a loaded machine).
INSTALL_TIMEOUT = 1800


def _python() -> str:
    return getattr(sys, "_base_executable", None) or sys.executable


def _run(cmd: Sequence[str], *, what: str, timeout: float = INSTALL_TIMEOUT) -> None:
    res = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout)
    if res.returncode != 0:
        tail = " | ".join((res.stderr or res.stdout).strip().splitlines()[-6:])
        raise RuntimeError(f"{what} failed ({res.returncode}): {tail}")


def _site_packages(venv: Path) -> Path:
    rel = Path(sysconfig.get_path("purelib", vars={"base": ".", "platbase": "."}))
    return (venv / rel).resolve()


def layer(requirements: Sequence[str]) -> Path:
    """The cached venv holding ``requirements`` (built on first use; skips loudly when PyPI cannot
    be reached)."""
    reqs = sorted(set(requirements))
    key = hashlib.sha256(("\n".join(reqs) + f"\n{sys.version_info[0]}.{sys.version_info[1]}").encode())
    target = CACHE / f"layer-{key.hexdigest()[:12]}"
    if (target / ".ok").exists():
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(str(target) + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / ".ok").exists():
            return target
        shutil.rmtree(target, ignore_errors=True)
        try:
            _run([_python(), "-m", "venv", str(target)], what="python -m venv")
            pip = [str(target / "bin" / "python"), "-m", "pip", "install", "-q"]
            _run([*pip, "--upgrade", "pip"], what="pip install --upgrade pip")
            _run([*pip, *reqs], what=f"pip install {' '.join(reqs)}")
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            shutil.rmtree(target, ignore_errors=True)
            msg = f"!!! cannot build the dependency layer from PyPI ({exc}) -- generated-plugin tests SKIPPED"
            warnings.warn(msg, stacklevel=2)
            pytest.skip(msg)
        (target / ".ok").write_text("\n".join(reqs) + "\n")
    return target


def fresh_venv(path: Path, deps: Path, projects: Sequence[str]) -> Path:
    """A new venv at ``path`` seeing the layer ``deps``, with ``projects`` (paths, extras allowed:
    ``/src/plugin[test]``) pip-installed into it; returns its ``bin`` directory."""
    _run([_python(), "-m", "venv", "--without-pip", str(path)], what="python -m venv")
    (_site_packages(path) / "_dcapix_test_layer.pth").write_text(f"{_site_packages(deps)}\n")
    cmd = [str(path / "bin" / "python"), "-m", "pip", "install", "-q", "--no-index", "--no-build-isolation"]
    _run([*cmd, *projects], what=f"pip install {' '.join(projects)}")
    return path / "bin"


def pypi_venv(path: Path, projects: Sequence[str]) -> Path:
    """A new venv with pip and ``projects`` installed from PyPI as a user would (no cache)."""
    _run([_python(), "-m", "venv", str(path)], what="python -m venv")
    try:
        _run([str(path / "bin" / "python"), "-m", "pip", "install", "-q", *projects], what="pip install")
    except RuntimeError as exc:
        if re.search(r"(?i)connection|resolve|network|index", str(exc)):
            msg = f"!!! PyPI unreachable ({exc}) -- the uncached generated-plugin test SKIPPED"
            warnings.warn(msg, stacklevel=2)
            pytest.skip(msg)
        raise
    return path / "bin"
