"""Built-in plugin: the ``http`` adapter (httpx).

The implementation lives in :mod:`dc_api_x.adapters._http` and is registered by a lazy string, so
enabling plugins does not import httpx. Reach it through the registry::

    from dc_api_x import create_adapter
    api = create_adapter({"adapter": "http", "base_url": "https://api.example.com"})
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from ..plugins import Registry

__all__ = ["register_adapters"]


def register_adapters(registry: Registry) -> None:
    """Register the ``http`` adapter (imported on first use)."""
    registry.register("http", "dc_api_x.adapters._http:HttpAdapter")
