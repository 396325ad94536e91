"""Fixtures of the plugin-system tests.

``plugin_dists`` installs the real third-party test distributions of ``tests/plugins_dist/`` into the
running interpreter's environment (``pip install --no-deps --no-build-isolation --no-index``; their
stdlib-only build backend needs nothing else) unless the installed copy is current. See
``tests/plugins_dist/README.md`` for the design.
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
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from types import ModuleType

import pytest

DIST_ROOT = Path(__file__).resolve().parents[1] / "plugins_dist"
#: distribution name -> source directory
DISTS = {
    "dcapix-example-plugin": DIST_ROOT / "dcapix-example-plugin",
    "dcapix-incompatible-plugin": DIST_ROOT / "dcapix-incompatible-plugin",
    "dcapix-broken-plugin": DIST_ROOT / "dcapix-broken-plugin",
}
#: The entry-point group of the misbehaving test plugins (switched on by the tests that want them).
TEST_GROUP = "dc_api_x.test_plugins"


def _backend() -> ModuleType:
    path = DIST_ROOT / "_build_backend.py"
    spec = importlib.util.spec_from_file_location("_dcapix_test_build_backend", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _stale(backend: ModuleType) -> list[str]:
    out = []
    for name, src in DISTS.items():
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
    """Serialise installs into one environment (parallel pytest sessions share the dev venv)."""
    key = hashlib.sha256(sys.prefix.encode()).hexdigest()[:12]
    path = Path(tempfile.gettempdir()) / f"dcapix-plugin-dists-{key}.lock"
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def plugin_dists() -> dict[str, Path]:
    """The test plugin distributions, installed (and current) in this interpreter's environment."""
    backend = _backend()
    if _stale(backend):
        with _install_lock():
            importlib.invalidate_caches()
            stale = _stale(backend)
            if stale:
                cmd = [
                    sys.executable,
                    "-m",
                    "pip",
                    "install",
                    "--no-deps",
                    "--no-build-isolation",
                    "--no-index",
                    "--force-reinstall",
                    "--disable-pip-version-check",
                    "-q",
                    *(str(DISTS[n]) for n in stale),
                ]
                res = subprocess.run(
                    cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "PIP_NO_INPUT": "1"}
                )
                if res.returncode != 0:
                    pytest.fail(
                        f"could not install the test plugin distributions {stale}: "
                        f"{(res.stderr or res.stdout).strip()[-2000:]}"
                    )
        importlib.invalidate_caches()
        still = _stale(backend)
        assert not still, f"installed but not visible to importlib.metadata: {still}"
    return dict(DISTS)


@pytest.fixture(autouse=True)
def _no_current_plugin_set() -> Iterator[None]:
    """Each test starts and ends without a current plugin set (a fresh one is built on demand)."""
    from dc_api_x import plugins

    with plugins._lock:
        plugins._current = None
    yield
    with plugins._lock:
        current, plugins._current = plugins._current, None
    if current is not None:
        current.close()


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No plugin-related environment variables leak in from the outside."""
    for var in ("DC_API_X_BLOCKED_PLUGINS", "DC_API_X_ALLOW_INCOMPATIBLE", "DC_API_X_ENTRY_POINT_GROUPS"):
        monkeypatch.delenv(var, raising=False)
    return monkeypatch
