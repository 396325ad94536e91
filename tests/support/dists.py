"""Install real plugin distributions (directories with a ``pyproject.toml``) into this interpreter's
environment, for tests that load plugins through entry points.

Each directory is built into a wheel by the stdlib-only backend ``tests/plugins_dist/_build_backend.py``
(called directly, so a ``pyproject.toml`` copied from the plugin guide — which has no
``[build-system]`` table — builds as it is) and installed with ``pip install --no-deps --no-index``.
Nothing is reinstalled while the installed copy's ``SOURCE_HASH`` matches the sources. Installs are
serialised with a file lock: parallel pytest sessions share the dev venv.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib
import importlib.util
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from importlib import metadata
from pathlib import Path
from types import ModuleType

__all__ = ["BACKEND", "TEST_PLUGIN_DISTS", "install", "install_or_fail"]

BACKEND = Path(__file__).resolve().parents[1] / "plugins_dist" / "_build_backend.py"
#: The third-party test plugins of ``tests/plugins_dist/`` (distribution name -> source directory).
#: ``tests/conftest.py`` installs them before any test runs (before pytest-xdist's workers start), so
#: no test sees them appear half-way through the session; ``plugin_dists`` then finds them current.
TEST_PLUGIN_DISTS = {
    name: BACKEND.parent / name
    for name in ("dcapix-example-plugin", "dcapix-incompatible-plugin", "dcapix-broken-plugin")
}


def _backend() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_dcapix_test_build_backend", BACKEND)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _stale(backend: ModuleType, dists: Mapping[str, Path]) -> list[str]:
    out = []
    for name, src in dists.items():
        try:
            dist = metadata.distribution(name)
            current = (dist.read_text("SOURCE_HASH") or "").strip() == backend.source_hash(src)
        except metadata.PackageNotFoundError:
            current = False
        if not current:
            out.append(name)
    return out


@contextlib.contextmanager
def _install_lock() -> Iterator[None]:
    key = hashlib.sha256(sys.prefix.encode()).hexdigest()[:12]
    path = Path(tempfile.gettempdir()) / f"dcapix-plugin-dists-{key}.lock"
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _build(src: Path, out: Path) -> Path:
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('_b', {str(BACKEND)!r})\n"
        "mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)\n"
        "print(mod.build_wheel(sys.argv[1]))\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code, str(out)], cwd=src, capture_output=True, text=True, timeout=120
    )
    if res.returncode != 0:
        raise RuntimeError(f"building {src.name} failed: {res.stderr.strip()[-2000:]}")
    return out / res.stdout.strip().splitlines()[-1]


def install(dists: Mapping[str, Path]) -> None:
    """Make every distribution of ``dists`` (name → source directory) installed and current.

    :raises RuntimeError: a build or the pip install failed (with its output).
    """
    backend = _backend()
    if not _stale(backend, dists):
        return
    with _install_lock():
        importlib.invalidate_caches()
        stale = _stale(backend, dists)
        if stale:
            with tempfile.TemporaryDirectory(prefix="dcapix-wheels-") as tmp:
                wheels = [str(_build(dists[n], Path(tmp))) for n in stale]
                cmd = [
                    sys.executable,
                    "-m",
                    "pip",
                    "install",
                    "--no-deps",
                    "--no-index",
                    "--force-reinstall",
                    "--disable-pip-version-check",
                    "-q",
                    *wheels,
                ]
                res = subprocess.run(
                    cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "PIP_NO_INPUT": "1"}
                )
                if res.returncode != 0:
                    raise RuntimeError(
                        f"could not install {stale}: {(res.stderr or res.stdout).strip()[-2000:]}"
                    )
    importlib.invalidate_caches()
    still = _stale(backend, dists)
    if still:
        raise RuntimeError(f"installed but not visible to importlib.metadata: {still}")


def install_or_fail(dists: Mapping[str, Path], what: str) -> dict[str, Path]:
    """:func:`install` for a session fixture: a failure fails the test that needs them, naming ``what``."""
    import pytest

    try:
        install(dists)
    except RuntimeError as exc:
        pytest.fail(f"could not install {what}: {exc}")
    return dict(dists)
