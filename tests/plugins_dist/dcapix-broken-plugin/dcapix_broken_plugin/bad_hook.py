"""Registers a paginator, then an adapter, then raises: nothing it registered may survive."""

from __future__ import annotations

from typing import Any


def register_pagination_handlers(registry: Any) -> None:
    registry.register("broken_pages", "dc_api_x.ext.pagination:Paginator")


def register_adapters(registry: Any) -> None:
    registry.register("broken_partial", "dc_api_x.ext.adapters:ProtocolAdapter")
    raise ValueError("broken_hook refuses to register adapters")
