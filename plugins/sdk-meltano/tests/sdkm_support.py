"""Helpers of the dc-api-x-sdk-meltano tests: generating plugins, copying the sources to install, the
fresh venv they are installed into."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PLUGIN = ROOT / "plugins" / "sdk-meltano"

#: The two plugins the end-to-end tests generate: with tap/target (a dashed name) and without.
SINGER_NAME = "acme-crm"
PLAIN_NAME = "notes"

_IGNORE = shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "dist", ".venv")


def require_test_kit() -> None:
    """Skip loudly when this checkout's core lacks the plugin test kit the generated tests use."""
    if not (ROOT / "src" / "dc_api_x" / "testing" / "__init__.py").is_file():
        msg = (
            "!!! this dc-api-x core has no plugin test kit (dc_api_x.testing, issue 9), which the "
            "generated tests use -- generated-plugin tests SKIPPED"
        )
        warnings.warn(msg, stacklevel=2)
        pytest.skip(msg)


def dcapix(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``dcapix`` of the interpreter running the tests."""
    script = Path(sys.executable).parent / "dcapix"
    exe = str(script) if script.exists() else shutil.which("dcapix")
    assert exe, "the dcapix console script is not installed (pip install -e .)"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DC_API_X_")}
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=300, cwd=cwd, env=env)


def _requirements(pyproject: Path, extras: tuple[str, ...] = ()) -> list[str]:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]

    project = tomllib.loads(pyproject.read_text())["project"]
    reqs = list(project.get("dependencies") or ())
    for extra in extras:
        reqs += project.get("optional-dependencies", {}).get(extra, [])
    return [r for r in reqs if not r.replace("_", "-").lower().startswith("dc-api-x")]


def layer_requirements() -> list[str]:
    """The third-party requirements of the core (with its singer extra), of this distribution and
    of the generated plugins' tests, plus the build backend."""
    return sorted(
        {
            *_requirements(ROOT / "pyproject.toml", ("singer",)),
            *_requirements(PLUGIN / "pyproject.toml", ("test",)),
            "pydantic>=2.6",
            "pytest>=8.0",
            "pyyaml>=6.0",
            "setuptools>=77",
        }
    )


def copy_core(dest: Path) -> Path:
    """The core's sources (what its wheel is built from) copied to ``dest``: pip's in-tree build
    leaves ``build/`` beside the sources, which must not land in the checkout."""
    dest.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, dest / name)
    for name in ("src", "taps", "targets"):
        shutil.copytree(ROOT / name, dest / name, ignore=_IGNORE)
    return dest


def copy_plugin(dest: Path) -> Path:
    """This distribution's sources (its own tests left out; the template's are part of it)."""

    def ignore(directory: str, names: list[str]) -> set[str]:
        top = {"tests"} if Path(directory) == PLUGIN else set()
        return set(_IGNORE(directory, names)) | (top & set(names))

    shutil.copytree(PLUGIN, dest, ignore=ignore)
    return dest


@dataclass
class Generated:
    """Two generated plugins installed into one fresh venv."""

    root: Path
    bin: Path
    singer: Path  # the project of SINGER_NAME
    plain: Path  # the project of PLAIN_NAME

    def run(
        self, *args: str, cwd: Path, timeout: float = 900, **env: str
    ) -> subprocess.CompletedProcess[str]:
        """A command of the fresh venv (``python``, ``dcapix``, ``tap-…``), environment cleaned."""
        base = {k: v for k, v in os.environ.items() if not k.startswith(("DC_API_X_", "SDK_", "PYTEST_"))}
        base["PATH"] = f"{self.bin}{os.pathsep}{base.get('PATH', '')}"
        base.update(env)
        cmd = [str(self.bin / args[0]), *args[1:]]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd, env=base)


def generate(root: Path) -> tuple[Path, Path]:
    singer, plain = root / "singer-plugin", root / "plain-plugin"
    for args in ((SINGER_NAME, str(singer)), (PLAIN_NAME, str(plain), "--no-singer")):
        res = dcapix("new-plugin", *args, "-d", "author_name=Test Author")
        assert res.returncode == 0, res.stderr
    return singer, plain
