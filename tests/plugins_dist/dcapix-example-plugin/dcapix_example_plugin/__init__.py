"""An example dc-api-x plugin, written as a third party would.

The hook functions are plain functions named like the hooks (no ``@hookimpl`` needed). Entries are
registered as ``"module:Class"`` strings or factories, so loading the plugin imports nothing but
this module: the adapter, paginator and transform modules are imported on first use.
"""

from __future__ import annotations

import sys
from typing import Any

DC_API_X_REQUIRES = ">=0.1"


def register_adapters(registry: Any) -> None:
    registry.register("example", "dcapix_example_plugin.adapter:ExampleAdapter")
    registry.add_cleanup(_close_open_adapters)


def register_pagination_handlers(registry: Any) -> None:
    registry.register("example_pages", "dcapix_example_plugin.paging:SkipPaginator")


def register_transform_providers(registry: Any) -> None:
    registry.register("example_upper", factory=_upper_transform)


def _upper_transform() -> Any:
    from .transform import UpperTransform

    return UpperTransform


def _close_open_adapters() -> None:
    """Cleanup run when the plugin set closes: close adapters the user forgot to close."""
    mod = sys.modules.get("dcapix_example_plugin.adapter")
    if mod is not None:
        for adapter in list(mod.OPEN_ADAPTERS):
            adapter.close()
