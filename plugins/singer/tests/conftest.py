"""Fixtures of the Singer bridge tests: the plugin set, connector venvs, PostgreSQL databases."""

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

sys.path.insert(0, os.path.dirname(__file__))

import singer_venvs

ROOT = Path(__file__).resolve().parents[3]
PG_ADMIN_URL = os.environ.get("DCAPIX_TEST_PG_URL", "postgresql://postgres:postgres@127.0.0.1:5432/postgres")


@pytest.fixture
def singer_plugins() -> Iterator[Any]:
    """Built-ins + the ``singer`` plugin (loaded as a module, not through its entry point), current."""
    import dc_api_x_singer

    from dc_api_x import enable_plugins

    ps = enable_plugins(entry_points=False, plugins=[dc_api_x_singer])
    yield ps
    ps.close()


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


# ------------------------------------------------------------------------------------ connectors
@pytest.fixture(scope="session")
def tap_jsonl() -> str:
    return singer_venvs.connector("tap-jsonl", singer_venvs.TAP_JSONL[1])


@pytest.fixture(scope="session")
def tap_postgres() -> str:
    return singer_venvs.connector("tap-postgres", singer_venvs.TAP_POSTGRES[1])


@pytest.fixture(scope="session")
def target_jsonl() -> str:
    return singer_venvs.connector("target-jsonl", singer_venvs.TARGET_JSONL[1])


@pytest.fixture(scope="session")
def target_postgres() -> str:
    return singer_venvs.connector("target-postgres", singer_venvs.TARGET_POSTGRES[1])


# ------------------------------------------------------------------------------------ PostgreSQL
def _connect(url: str) -> Any:
    import psycopg

    return psycopg.connect(url, autocommit=True, connect_timeout=3)


@pytest.fixture(scope="session")
def pg_admin() -> str:
    """The admin URL of the loopback PostgreSQL (started by ``.ci/start-postgres.sh`` if down)."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("!!! psycopg is not installed: PostgreSQL tests SKIPPED (pip install -e '.[dev]')")
    try:
        _connect(PG_ADMIN_URL).close()
    except Exception:
        res = subprocess.run(
            ["bash", str(ROOT / ".ci" / "start-postgres.sh")], capture_output=True, text=True, timeout=600
        )
        try:
            _connect(PG_ADMIN_URL).close()
        except Exception as exc:
            msg = (
                f"!!! PostgreSQL at {PG_ADMIN_URL.split('@')[-1]} is not reachable ({exc}); "
                f"start-postgres said: {res.stderr.strip()[-300:]} -- PostgreSQL tests SKIPPED"
            )
            warnings.warn(msg, stacklevel=1)
            pytest.skip(msg)
    return PG_ADMIN_URL


class PgDatabase:
    """A fresh database: ``url`` (libpq), ``name``, ``execute`` and ``rows`` helpers."""

    def __init__(self, admin: str) -> None:
        self.name = f"dcapix_singer_{uuid.uuid4().hex[:10]}"
        self.admin = admin
        with _connect(admin) as conn:
            conn.execute(f'CREATE DATABASE "{self.name}"')
        self.url = f"{admin.rsplit('/', 1)[0]}/{self.name}"

    def execute(self, sql: str, params: Any = None) -> None:
        with _connect(self.url) as conn:
            conn.execute(sql, params)

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        with _connect(self.url) as conn:
            return list(conn.execute(sql).fetchall())

    def tap_config(self) -> dict[str, Any]:
        """The connection settings the meltanolabs connectors take."""
        return {
            "host": "127.0.0.1",
            "port": 5432,
            "user": "postgres",
            "password": PG_ADMIN_URL.split(":")[2].split("@")[0],
            "database": self.name,
        }

    def drop(self) -> None:
        with _connect(self.admin) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


@pytest.fixture
def pg_db(pg_admin: str) -> Iterator[PgDatabase]:
    db = PgDatabase(pg_admin)
    yield db
    db.drop()
