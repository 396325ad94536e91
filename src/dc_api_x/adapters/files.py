"""Built-in plugin: the file adapters ``parquet``, ``csv`` and ``jsonl``.

This module is light (it imports nothing heavy): the adapters live in
:mod:`dc_api_x.adapters._files` (pyarrow, fsspec) and are registered by lazy string, imported on
first use through the registry (``create_adapter({"adapter": "parquet", "path": "/out"})``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from ..plugins import Registry

__all__ = ["register_adapters"]


def register_adapters(registry: Registry) -> None:
    """Register ``parquet``, ``csv`` and ``jsonl`` (lazily)."""
    registry.register("parquet", "dc_api_x.adapters._files:ParquetAdapter")
    registry.register("csv", "dc_api_x.adapters._files:CSVAdapter")
    registry.register("jsonl", "dc_api_x.adapters._files:JSONLAdapter")
