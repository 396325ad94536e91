"""Fixtures of the dc-api-x-sqlalchemy tests: a fresh database on the real PostgreSQL at
127.0.0.1:5432 (created per session, dropped after; tests using it are marked ``postgres``), SQLite
files in temporary directories, and the project's console scripts."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

BIN = Path(sys.executable).parent
PG_ADMIN_URL = os.environ.get("DCAPIX_PG_ADMIN_URL", "postgresql://postgres:postgres@127.0.0.1:5432/postgres")

try:
    import dc_api_x_sqlalchemy  # noqa: F401
except ImportError:  # pragma: no cover - the plugin is not installed in this environment
    pytest.skip(
        "!!! dc-api-x-sqlalchemy is not installed: pip install -e ./plugins/sqlalchemy -- tests SKIPPED",
        allow_module_level=True,
    )


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """``postgresql://…/dcapix_sqla_<hex>``: a database of its own, dropped at the end."""
    try:
        import psycopg

        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)
    except Exception as exc:
        msg = f"!!! PostgreSQL at 127.0.0.1:5432 is not reachable ({exc}) -- PostgreSQL tests SKIPPED"
        warnings.warn(msg, stacklevel=1)
        pytest.skip(msg)
    name = f"dcapix_sqla_{uuid.uuid4().hex[:10]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_exec(pg_database: str) -> Any:
    """``pg_exec(sql, *params)`` → the rows (psycopg, autocommit) in the session's database."""
    import psycopg

    def run(sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(pg_database, autocommit=True) as conn:
            cur = conn.execute(sql, params or None)
            return cur.fetchall() if cur.description else []

    return run


@pytest.fixture
def cli() -> Any:
    """Run ``dcapix`` (or another console script) of this venv."""

    def run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        full = {k: v for k, v in os.environ.items() if k != "DC_API_X_BLOCKED_PLUGINS"}
        full.update(env or {})
        return subprocess.run(
            [str(BIN / args[0]), *args[1:]], cwd=cwd, env=full, capture_output=True, text=True, timeout=300
        )

    return run
