"""Built-in plugin: the transforms applied to batches between read and write.

``select``, ``rename``, ``cast``, ``flatten``, ``hash``, ``mask``, ``filter`` and ``add_field`` are
registered by name; their implementation lives in :mod:`dc_api_x._transforms` and is imported on first
use (this module imports nothing heavy). Build a chain with
:func:`dc_api_x.ext.transforms.build_transforms`; convert a Singer stream map with
:func:`stream_map_to_transforms`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .plugins import Registry

__all__ = ["BUILTIN_TRANSFORMS", "register_transform_providers", "stream_map_to_transforms"]

#: name → lazy ``"module:Class"`` of every built-in transform.
BUILTIN_TRANSFORMS: dict[str, str] = {
    "select": "dc_api_x._transforms:SelectTransform",
    "rename": "dc_api_x._transforms:RenameTransform",
    "cast": "dc_api_x._transforms:CastTransform",
    "flatten": "dc_api_x._transforms:FlattenTransform",
    "hash": "dc_api_x._transforms:HashTransform",
    "mask": "dc_api_x._transforms:MaskTransform",
    "filter": "dc_api_x._transforms:FilterTransform",
    "add_field": "dc_api_x._transforms:AddFieldTransform",
}


def stream_map_to_transforms(mapping: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Convert a Singer stream map of one stream to transform configs (see
    :func:`dc_api_x._transforms.stream_map_to_transforms` for what converts and the limits)."""
    from ._transforms import stream_map_to_transforms as convert

    return convert(mapping)


def register_transform_providers(registry: Registry) -> None:
    """Register the built-in transforms (lazily imported)."""
    for name, target in BUILTIN_TRANSFORMS.items():
        registry.register(name, target)
