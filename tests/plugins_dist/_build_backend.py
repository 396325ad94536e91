"""A tiny, stdlib-only PEP 517 build backend for the test plugin distributions.

Why not setuptools: the test suite installs these distributions with
``pip install --no-deps --no-build-isolation`` (no network, nothing else installed), and a fresh venv
has neither ``wheel`` nor, on newer Pythons, ``setuptools``. This backend reads ``[project]`` from
``pyproject.toml`` (name, version, dependencies, entry-points) and writes a real wheel: the packages
found beside ``pyproject.toml`` plus a ``.dist-info`` with ``METADATA``, ``entry_points.txt`` and
``RECORD``. ``build_editable`` writes a ``.pth`` pointing at the source directory instead.

Each distribution directory holds a symlink ``_build_backend.py`` to this file (PEP 517
``backend-path`` must lie inside the source tree).
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import zipfile
from pathlib import Path
from typing import Any

import tomllib

__all__ = [
    "build_editable",
    "build_wheel",
    "get_requires_for_build_editable",
    "get_requires_for_build_wheel",
    "source_hash",
]

_TAG = "py3-none-any"


def _project() -> dict[str, Any]:
    with open("pyproject.toml", "rb") as fh:
        return dict(tomllib.load(fh)["project"])


def _dist_name(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def _metadata(project: dict[str, Any]) -> str:
    lines = ["Metadata-Version: 2.1", f"Name: {project['name']}", f"Version: {project['version']}"]
    if project.get("description"):
        lines.append(f"Summary: {project['description']}")
    if project.get("requires-python"):
        lines.append(f"Requires-Python: {project['requires-python']}")
    lines += [f"Requires-Dist: {dep}" for dep in project.get("dependencies", [])]
    return "\n".join(lines) + "\n"


def _entry_points(project: dict[str, Any]) -> str:
    out = []
    for group, eps in project.get("entry-points", {}).items():
        out.append(f"[{group}]")
        out += [f"{name} = {value}" for name, value in eps.items()]
        out.append("")
    return "\n".join(out)


def _packages(root: Path = Path(".")) -> list[Path]:
    return sorted(p.parent for p in root.glob("*/__init__.py"))


def source_hash(root: str | os.PathLike[str] = ".") -> str:
    """SHA-256 of ``pyproject.toml`` and every package ``.py`` file: written into the wheel's
    ``.dist-info/SOURCE_HASH`` so the test fixture can tell a stale install from a current one."""
    base = Path(root)
    h = hashlib.sha256((base / "pyproject.toml").read_bytes())
    for pkg in _packages(base):
        for path in sorted(pkg.rglob("*.py")):
            h.update(path.relative_to(base).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def _write_wheel(wheel_directory: str, files: dict[str, bytes]) -> str:
    project = _project()
    base = f"{_dist_name(project['name'])}-{project['version']}"
    info = f"{base}.dist-info"
    files = dict(files)
    files[f"{info}/METADATA"] = _metadata(project).encode()
    files[f"{info}/WHEEL"] = (
        f"Wheel-Version: 1.0\nGenerator: dcapix-test-backend\nRoot-Is-Purelib: true\nTag: {_TAG}\n"
    ).encode()
    files[f"{info}/entry_points.txt"] = _entry_points(project).encode()
    files[f"{info}/SOURCE_HASH"] = (source_hash() + "\n").encode()
    record = []
    for arcname, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{arcname},sha256={digest},{len(data)}")
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    filename = f"{base}-{_TAG}.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, filename), "w", zipfile.ZIP_DEFLATED) as zf:
        for arcname, data in files.items():
            zf.writestr(arcname, data)
    return filename


def get_requires_for_build_wheel(config_settings: Any = None) -> list[str]:
    return []


def get_requires_for_build_editable(config_settings: Any = None) -> list[str]:
    return []


def build_wheel(wheel_directory: str, config_settings: Any = None, metadata_directory: Any = None) -> str:
    """A wheel with the packages' ``.py`` files."""
    files: dict[str, bytes] = {}
    for pkg in _packages():
        for path in sorted(pkg.rglob("*.py")):
            files[path.as_posix()] = path.read_bytes()
    return _write_wheel(wheel_directory, files)


def build_editable(wheel_directory: str, config_settings: Any = None, metadata_directory: Any = None) -> str:
    """A wheel whose ``.pth`` file puts this source directory on ``sys.path``."""
    name = _dist_name(_project()["name"])
    return _write_wheel(wheel_directory, {f"_{name}.pth": (os.path.abspath(".") + "\n").encode()})
