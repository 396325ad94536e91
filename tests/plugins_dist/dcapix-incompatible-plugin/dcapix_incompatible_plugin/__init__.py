"""Registers an adapter, but its distribution requires dc-api-x<0.0.1: it must be skipped (and not
even imported) unless the user allows incompatible plugins."""

from __future__ import annotations

from typing import Any

IMPORTED = True


def register_adapters(registry: Any) -> None:
    registry.register("incompatible_adapter", "dc_api_x.ext.adapters:ProtocolAdapter")
