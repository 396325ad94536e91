"""Fixtures of the plugin-system tests.

``plugin_dists`` installs the real third-party test distributions of ``tests/plugins_dist/`` into the
running interpreter's environment (``tests/support/dists.py``: built by their stdlib-only backend,
``pip install --no-deps --no-index``) unless the installed copy is current. See
``tests/plugins_dist/README.md`` for the design.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.dists import TEST_PLUGIN_DISTS, install_or_fail
from tests.support.plugin_sets import no_current_plugin_set

#: distribution name -> source directory
DISTS = TEST_PLUGIN_DISTS
#: The entry-point group of the misbehaving test plugins (switched on by the tests that want them).
TEST_GROUP = "dc_api_x.test_plugins"


@pytest.fixture(scope="session")
def plugin_dists() -> dict[str, Path]:
    """The test plugin distributions, installed (and current) in this interpreter's environment."""
    return install_or_fail(DISTS, "the test plugin distributions")


@pytest.fixture(autouse=True)
def _no_current_plugin_set() -> Iterator[None]:
    """Each test starts and ends without a current plugin set (a fresh one is built on demand)."""
    with no_current_plugin_set():
        yield


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No plugin-related environment variables leak in from the outside."""
    for var in ("DC_API_X_BLOCKED_PLUGINS", "DC_API_X_ALLOW_INCOMPATIBLE", "DC_API_X_ENTRY_POINT_GROUPS"):
        monkeypatch.delenv(var, raising=False)
    return monkeypatch
