"""Fixtures of the dc-api-x-sdk-meltano tests: generated plugins installed into a fresh venv."""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

import sdkm_venvs
from sdkm_support import Generated, copy_core, copy_plugin, generate, layer_requirements, require_test_kit


@pytest.fixture(scope="session")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Generated:
    """``dcapix new-plugin`` twice, then a fresh venv with this checkout's core, this distribution
    and both generated plugins pip-installed (third-party dependencies from the cached layer)."""
    require_test_kit()
    root = tmp_path_factory.mktemp("sdk-meltano")
    singer, plain = generate(root)
    deps = sdkm_venvs.layer(layer_requirements())
    bin_dir = sdkm_venvs.fresh_venv(
        root / "venv",
        deps,
        [
            str(copy_core(root / "src-core")),
            str(copy_plugin(root / "src-sdk-meltano")),
            f"{singer}[test]",
            f"{plain}[test]",
        ],
    )
    return Generated(root=root, bin=bin_dir, singer=singer, plain=plain)
