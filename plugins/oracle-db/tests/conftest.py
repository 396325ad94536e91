"""Fixtures of the dc-api-x-oracle-db tests.

No Oracle Database can be installed on these machines, so nothing here starts one and nothing
pretends to be one: the tests check what runs without a server (the SQL the dialect compiles, the
type mapping, the ref-cursor call, the pool, the configuration, discovery as a plugin, the parts of
the standard adapter suite that need no server, and the one-line error when the server cannot be
reached). The README lists what has never run against a live server.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

BIN = Path(sys.executable).parent

try:
    import dc_api_x_oracle_db  # noqa: F401
except ImportError:  # pragma: no cover - the plugin is not installed in this environment
    pytest.skip(
        "!!! dc-api-x-oracle-db is not installed: pip install -e ./plugins/oracle-db -- Oracle plugin "
        "tests SKIPPED",
        allow_module_level=True,
    )

#: A URL no server answers (port 1 refuses at once): creating adapters never connects.
URL = "oracle+oracledb://scott:s3cret-tiger@127.0.0.1:1/?service_name=FREEPDB1"


@pytest.fixture
def plugins() -> Iterator[Any]:
    """Built-ins plus this plugin (passed directly), made current for the test."""
    import dc_api_x_oracle_db

    from dc_api_x import enable_plugins

    ps = enable_plugins(entry_points=False, plugins=[dc_api_x_oracle_db])
    yield ps
    ps.close()


@pytest.fixture
def make_adapter(plugins: Any) -> Iterator[Callable[..., Any]]:
    """``make(**options)``: an ``oracle_db`` adapter (``url`` defaults to :data:`URL`), closed after."""
    from dc_api_x import create_adapter

    made: list[Any] = []

    def make(**options: Any) -> Any:
        adapter = create_adapter({"adapter": "oracle_db", "url": URL, **options})
        made.append(adapter)
        return adapter

    yield make
    for a in made:
        a.close()


def run_cli(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, input: str | None = None
) -> Any:
    """Run one of the project's console scripts of this venv."""
    full_env = {k: v for k, v in os.environ.items() if k != "DC_API_X_BLOCKED_PLUGINS"}
    full_env.update(env or {})
    return subprocess.run(
        [str(BIN / args[0]), *args[1:]],
        cwd=cwd,
        env=full_env,
        input=input,
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.fixture
def cli() -> Callable[..., Any]:
    return run_cli
