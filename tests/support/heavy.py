"""The libraries that only the code that needs them may import (``import dc_api_x`` stays fast)."""

from __future__ import annotations

__all__ = ["HEAVY"]

HEAVY = (
    "httpx",
    "httpcore",
    "h2",
    "sqlalchemy",
    "pyarrow",
    "singer_sdk",
    "psycopg",
    "psycopg2",
    "adbc_driver_manager",
    "adbc_driver_postgresql",
    "pandas",
    "fsspec",
)
