"""tap-dcapix: a Singer tap whose streams are served by dc-api-x adapters (``TapDcApiX``)."""

from __future__ import annotations

from typing import Any

__all__ = ["TapDcApiX"]


def __getattr__(name: str) -> Any:  # lazy: importing the package must not import singer_sdk
    if name == "TapDcApiX":
        from .tap import TapDcApiX

        return TapDcApiX
    raise AttributeError(f"module 'tap_dcapix' has no attribute {name!r}")
