"""Built-in plugin: the file adapters ``parquet``, ``csv`` and ``jsonl``.

This module is light (it imports nothing heavy): each adapter lives in its own module of this
package — :mod:`.parquet`, :mod:`.csv`, :mod:`.jsonl`, on the shared :mod:`.base` (options,
discovery, incremental reads), :mod:`.writers` (atomic parts) and :mod:`.fs` (file system, layout);
they import pyarrow and fsspec and are registered by lazy string, imported on first use through the
registry (``create_adapter({"adapter": "parquet", "path": "/out"})``). See ``docs/files.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from ...plugins import Registry

__all__ = ["register_adapters"]


def register_adapters(registry: Registry) -> None:
    """Register ``parquet``, ``csv`` and ``jsonl`` (lazily)."""
    registry.register("parquet", "dc_api_x.adapters.files.parquet:ParquetAdapter")
    registry.register("csv", "dc_api_x.adapters.files.csv:CSVAdapter")
    registry.register("jsonl", "dc_api_x.adapters.files.jsonl:JSONLAdapter")
