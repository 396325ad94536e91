"""Fixtures of the scale-out tests: a PostgreSQL source table and pipeline helpers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project directory, made the working directory."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


T0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)


def fill_items(url: str, schema: str, start: int, stop: int, *, create: bool = False) -> None:
    """Rows ``start..stop-1`` of ``schema.items``: every 7 rows share an ``updated_at`` (bookmarks
    with several keys at one value); on creation three rows have no ``updated_at``."""
    import psycopg

    with psycopg.connect(plain(url), autocommit=True) as conn:
        if create:
            conn.execute(
                f'CREATE TABLE "{schema}".items (id integer PRIMARY KEY, updated_at timestamptz, '
                "amount numeric(12,2), name text)"
            )
            conn.execute(
                f"INSERT INTO \"{schema}\".items VALUES (-1, NULL, 1.5, 'n1'), (-2, NULL, 2.5, 'n2'), "
                "(-3, NULL, NULL, NULL)"
            )
        with conn.cursor().copy(f'COPY "{schema}".items (id, updated_at, amount, name) FROM STDIN') as cp:
            for i in range(start, stop):
                cp.write_row(
                    (i, T0 + dt.timedelta(seconds=(i // 7) * 13), f"{i % 1000}.{i % 100:02d}", f"n{i}")
                )


def write_config(directory: Path, pipelines: dict[str, Any], **top: Any) -> Path:
    path = directory / "dcapix.yml"
    path.write_text(yaml.safe_dump({**top, "pipelines": pipelines}, sort_keys=False))
    return path


@pytest.fixture
def builtin_plugins() -> Iterator[Any]:
    from dc_api_x import enable_plugins

    ps = enable_plugins(entry_points=False)
    yield ps
    ps.close()
