"""The destinations of the crash-and-rerun tests: the same pipeline into Parquet files or into a
PostgreSQL table by upsert, and the rows each one holds (sorted), to compare runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["RunDestinations", "parquet_rows", "pg_rows"]


def parquet_rows(path: Path) -> list[tuple[Any, ...]]:
    """The rows of a Parquet dataset directory, sorted."""
    import pyarrow.dataset as ds

    t = ds.dataset(str(path), format="parquet").to_table()
    return sorted(tuple(r.values()) for r in t.to_pylist())


def pg_rows(url: str, schema: str, table: str = "items") -> list[tuple[Any, ...]]:
    """``id, updated_at, amount, name`` of a PostgreSQL table (a SQLAlchemy or plain URL), sorted."""
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://", 1)) as conn:
        return sorted(
            conn.execute(f'SELECT id, updated_at, amount, name FROM "{schema}"."{table}"').fetchall()
        )


class RunDestinations:
    """``kind`` ``parquet`` (a directory per pipeline under ``project``) or ``postgres-upsert`` (a
    table ``{name}_items`` per pipeline in ``pg_schema``, loaded by upsert)."""

    def __init__(self, kind: str, project: Path, pg_url: str, pg_schema: str) -> None:
        self.kind, self.project, self.pg_url, self.pg_schema = kind, project, pg_url, pg_schema

    def config(self, name: str) -> dict[str, Any]:
        """The destination config of pipeline ``name``."""
        if self.kind == "parquet":
            return {"adapter": "parquet", "path": str(self.project / name)}
        return {
            "adapter": "sql",
            "url": self.pg_url,
            "schema": self.pg_schema,
            "load_method": "upsert",
            "streams": [{"name": "items", "table": f"{name}_items"}],
        }

    def rows(self, name: str) -> list[tuple[Any, ...]]:
        """The rows pipeline ``name`` wrote, sorted."""
        if self.kind == "parquet":
            return parquet_rows(self.project / name / "items")
        return pg_rows(self.pg_url, self.pg_schema, f"{name}_items")
