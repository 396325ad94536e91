"""target-dcapix: a Singer target (singer-sdk) whose sinks write through dc-api-x adapters.

``TargetDcApiX`` is imported lazily so that ``import target_dcapix`` stays cheap.
"""

from __future__ import annotations

from typing import Any

__all__ = ["TargetDcApiX"]


def __getattr__(name: str) -> Any:
    if name == "TargetDcApiX":
        from .target import TargetDcApiX

        return TargetDcApiX
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
