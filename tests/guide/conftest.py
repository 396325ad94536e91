"""Fixtures of the plugin-guide tests: the guide's examples installed as real distributions.

* ``dc-api-x-custom-plugin`` — the guide's "Creating a Simple Plugin" (``my_plugin``) with the guide's
  ``pyproject.toml`` as written: entry point ``custom_plugin`` in the real group ``dc_api_x.plugins``.
* ``dcapix-guide-examples`` — every other example (``advanced_plugin``, ``lifecycle_plugin``, …) plus
  the helpers the guide leaves undefined, with entry points in the test-only group
  ``dc_api_x.guide_examples``: ``advanced_plugin`` registers ``custom_protocol`` too (the guide reuses
  the name), so tests switch that group on and block ``custom_plugin`` where they want it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.dists import install, install_or_fail
from tests.support.plugin_sets import no_current_plugin_set

HERE = Path(__file__).resolve().parent
DISTS = {
    "dc-api-x-custom-plugin": HERE / "dists" / "dc-api-x-custom-plugin",
    "dcapix-guide-examples": HERE / "dists" / "dcapix-guide-examples",
}
#: The entry-point group of the examples that ship no pyproject.toml in the guide.
GUIDE_GROUP = "dc_api_x.guide_examples"
#: The environment that makes a plain ``enable_plugins()`` load the guide's examples instead of the
#: installed ``my_plugin`` (both register ``custom_protocol``).
EXAMPLES_ENV = {"DC_API_X_ENTRY_POINT_GROUPS": GUIDE_GROUP, "DC_API_X_BLOCKED_PLUGINS": "custom_plugin"}


def pytest_configure(config: pytest.Config) -> None:
    """Install the guide's distributions before this directory's test modules are imported: the
    guide's ``tests/test_plugin.py`` imports ``testing_plugin`` at module level, which a fresh venv
    (a clean clone's first ``pytest`` run) does not have yet."""
    install(DISTS)


@pytest.fixture(scope="session")
def guide_dists() -> dict[str, Path]:
    """The two guide distributions, installed (and current) in this interpreter's environment."""
    return install_or_fail(DISTS, "the guide's example distributions")


@pytest.fixture(autouse=True)
def _guide_env(guide_dists: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Installed distributions, no plugin variables leaking in, no current plugin set before or after."""
    for var in ("DC_API_X_BLOCKED_PLUGINS", "DC_API_X_ALLOW_INCOMPATIBLE", "DC_API_X_ENTRY_POINT_GROUPS"):
        monkeypatch.delenv(var, raising=False)
    with no_current_plugin_set():
        yield


@pytest.fixture
def examples_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Switch the guide examples' group on and block ``my_plugin`` (for this test and its children)."""
    for key, value in EXAMPLES_ENV.items():
        monkeypatch.setenv(key, value)
    return {**os.environ, **EXAMPLES_ENV}
