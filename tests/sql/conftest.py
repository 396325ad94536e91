"""Helpers of the SQL adapter tests: real SQLite files and the real PostgreSQL of ``tests/conftest.py``."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest


def plain_pg(url: str) -> str:
    """A libpq URL (for psycopg) from the SQLAlchemy URL of the ``pg_url`` fixture."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@pytest.fixture
def pg_exec(pg_url: str) -> Callable[..., list[tuple[Any, ...]]]:
    """Run SQL on the test database (autocommit); returns the rows of the last statement, if any."""
    import psycopg

    def run(sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        with psycopg.connect(plain_pg(pg_url), autocommit=True) as conn:
            cur = conn.execute(sql, params)
            return cur.fetchall() if cur.description else []

    return run


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[tuple[str, Callable[..., list[tuple[Any, ...]]]]]:
    """``(sqlalchemy_url, run_sql)`` of a fresh SQLite file."""
    path = tmp_path / "test.sqlite"

    def run(sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
        con = sqlite3.connect(path)
        try:
            if isinstance(params, list):
                con.executemany(sql, params)
                rows: list[tuple[Any, ...]] = []
            else:
                rows = con.execute(sql, params).fetchall()
            con.commit()
            return rows
        finally:
            con.close()

    yield f"sqlite:///{path}", run


def read_all(adapter: Any, spec: Any, **kw: Any) -> tuple[list[dict[str, Any]], list[Any]]:
    """All records of a read, and the batches."""
    batches = list(adapter.read(spec, **kw))
    return [r for b in batches for r in b.records], batches
