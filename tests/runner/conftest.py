"""Fixtures of the runner tests: the built-in plugins plus the small SQLite test adapters."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml


@pytest.fixture
def rplugins() -> Iterator[Any]:
    """Built-ins + ``tests.runner.support`` adapters (``t_sqlite_src``, ``t_sqlite_dst``), made current."""
    from dc_api_x import enable_plugins
    from tests.runner import support

    ps = enable_plugins(entry_points=False, plugins=[support])
    yield ps
    ps.close()


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project directory, made the working directory."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write_config(directory: Path, pipelines: dict[str, Any], **top: Any) -> Path:
    path = directory / "dcapix.yml"
    path.write_text(yaml.safe_dump({**top, "pipelines": pipelines}, sort_keys=False))
    return path


def dcapix(*argv: str) -> int:
    from dc_api_x.cli import main

    return main(list(argv))
