"""Shared fixtures: a fresh plugin set, a real local HTTP server, a real PostgreSQL database.

The suite runs serially or under pytest-xdist (``.ci/run``: ``-n 2 --dist loadgroup``; see
docs/testing.md): every resource a test makes is its own (``tmp_path``, uuid-named databases and
schemas, free ports, one slapd/redis/OIDC server per worker session). What workers must not do at
the same time is done here once, before they start (the test plugin distributions), or kept on one
worker (:data:`XDIST_GROUPS`).
"""

from __future__ import annotations

import os
import subprocess
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.dists import TEST_PLUGIN_DISTS, install
from tests.support.httpserver import LocalHTTPServer

ROOT = Path(__file__).resolve().parents[1]
PG_ADMIN_URL = os.environ.get("DCAPIX_TEST_PG_URL", "postgresql://postgres:postgres@127.0.0.1:5432/postgres")


@pytest.fixture
def plugins():
    """A fresh plugin set with the built-ins only (no entry points), made current for the test."""
    from dc_api_x import enable_plugins

    ps = enable_plugins(entry_points=False)
    yield ps
    ps.close()


@pytest.fixture
def http_server() -> Iterator[LocalHTTPServer]:
    """A real HTTP server on 127.0.0.1 (add routes with ``http_server.route(method, path, fn)``)."""
    with LocalHTTPServer() as srv:
        yield srv


def _pg_connect(url: str):
    import psycopg

    return psycopg.connect(url, autocommit=True, connect_timeout=3)


#: The fixtures that reach the PostgreSQL server: a test using one must be marked ``postgres``.
PG_FIXTURES = frozenset({"pg_admin_url", "pg_url", "pg_schema", "pg_exec"})


def _unmarked_message(nodeid: str) -> str:
    return (
        f"{nodeid} uses PostgreSQL but is not marked @pytest.mark.postgres "
        "(-m 'not postgres' must leave out every test that needs the server)"
    )


#: Session fixtures too costly to build once per pytest-xdist worker -> the ``xdist_group`` of every
#: test using them (``--dist loadgroup`` runs a group on one worker; without xdist it changes nothing).
XDIST_GROUPS = {
    # plugins/sdk-meltano: ``dcapix new-plugin`` twice + a fresh venv with four pip installs (~1 min)
    "generated": "sdk_meltano_generated",
}
#: Modules whose tests run real per-second schedules against the wall clock -> one ``xdist_group``:
#: their tests then never run two schedulers of their own at once (one per worker), which on a
#: loaded 2-core machine is what eats their seconds of tolerance.
XDIST_GROUP_MODULES = {
    "tests/runner/test_schedule.py": "wall_clock_scheduler",
}


def pytest_configure(config: pytest.Config) -> None:
    """Install the test plugin distributions now (once, in the controller before pytest-xdist starts
    its workers): a ``pip install --force-reinstall`` into the shared venv while the other worker's
    tests read the entry points would race."""
    try:
        install(TEST_PLUGIN_DISTS)
    except RuntimeError as exc:  # reported by the tests that need them (core's ``plugin_dists``)
        warnings.warn(f"!!! could not install the test plugin distributions: {exc}", stacklevel=1)
    # caches of dc-api-x (the pipeline files' parses of the tests' temporary projects, --about
    # answers: docs/runner.md) go to a directory of this session, not the user's ~/.cache
    import shutil
    import tempfile

    cache = tempfile.mkdtemp(prefix="dcapix-test-cache-")
    os.environ["XDG_CACHE_HOME"] = cache
    config.add_cleanup(lambda: shutil.rmtree(cache, ignore_errors=True))


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own hook reads the xdist_group markers
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test that uses a PostgreSQL fixture carries the ``postgres`` marker (checked at
    collection; a fixture reached through ``request.getfixturevalue`` is checked when it is set up).
    Tests using a fixture of :data:`XDIST_GROUPS` or in a module of :data:`XDIST_GROUP_MODULES` get its
    ``xdist_group`` marker."""
    for item in items:
        for fixture in set(getattr(item, "fixturenames", ())) & XDIST_GROUPS.keys():
            item.add_marker(pytest.mark.xdist_group(XDIST_GROUPS[fixture]))
        module_group = XDIST_GROUP_MODULES.get(item.nodeid.split("::", 1)[0])
        if module_group:
            item.add_marker(pytest.mark.xdist_group(module_group))
    unmarked = [
        item.nodeid
        for item in items
        if PG_FIXTURES & set(getattr(item, "fixturenames", ()))
        and item.get_closest_marker("postgres") is None
    ]
    if unmarked:
        raise pytest.UsageError("\n".join(_unmarked_message(n) for n in unmarked))


def _require_postgres_marker(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("postgres") is None:
        pytest.fail(_unmarked_message(request.node.nodeid), pytrace=False)


@pytest.fixture(scope="session")
def _pg_server() -> str:
    """The admin URL of a real PostgreSQL on 127.0.0.1, started by ``.ci/start-postgres.sh`` if down."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg is not installed: PostgreSQL tests SKIPPED (pip install -e '.[dev]')")
    try:
        _pg_connect(PG_ADMIN_URL).close()
    except Exception:
        script = ROOT / ".ci" / "start-postgres.sh"
        res = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=600)
        try:
            _pg_connect(PG_ADMIN_URL).close()
        except Exception as exc:
            msg = (
                f"!!! PostgreSQL at {PG_ADMIN_URL.split('@')[-1]} is not reachable and could not be "
                f"started ({exc}); start-postgres said: {res.stderr.strip()[-300:]} "
                "-- PostgreSQL tests SKIPPED"
            )
            warnings.warn(msg, stacklevel=1)
            pytest.skip(msg)
    return PG_ADMIN_URL


@pytest.fixture(scope="session")
def _pg_database(_pg_server: str) -> Iterator[str]:
    """A fresh database for the session, dropped at its end."""
    name = f"dcapix_test_{uuid.uuid4().hex[:10]}"
    with _pg_connect(_pg_server) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = _pg_server.rsplit("/", 1)[0]
    yield f"{base}/{name}".replace("postgresql://", "postgresql+psycopg://", 1)
    with _pg_connect(_pg_server) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_admin_url(request: pytest.FixtureRequest) -> str:
    """The admin URL of the real PostgreSQL (the test must be marked ``postgres``)."""
    _require_postgres_marker(request)
    return str(request.getfixturevalue("_pg_server"))


@pytest.fixture
def pg_url(request: pytest.FixtureRequest) -> str:
    """A SQLAlchemy URL (psycopg 3) of the session's database (the test must be marked ``postgres``)."""
    _require_postgres_marker(request)
    return str(request.getfixturevalue("_pg_database"))


@pytest.fixture
def pg_schema(pg_url: str) -> Iterator[str]:
    """A fresh schema in the session database, dropped after the test."""
    name = f"t_{uuid.uuid4().hex[:10]}"
    plain = pg_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with _pg_connect(plain) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    yield name
    with _pg_connect(plain) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
