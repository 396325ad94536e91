"""Declares, at module level, that it needs a dc-api-x from the future."""

from __future__ import annotations

from typing import Any

DC_API_X_REQUIRES = ">=99"


def register_adapters(registry: Any) -> None:
    registry.register("future_adapter", "dc_api_x.ext.adapters:ProtocolAdapter")
