"""Built-in plugin: the transforms applied to batches between read and write.

``select``, ``rename``, ``cast``, ``flatten``, ``hash``, ``mask``, ``filter`` and ``add_field`` are
registered by name; each lives in its own module of this package and is imported on first use (this
module imports nothing heavy). The package also holds the expression language of ``filter`` and
``add_field`` (:mod:`.expressions`, :mod:`.evaluation`), exact casting (:mod:`.casting`), column
helpers (:mod:`.columns`) and the Singer stream-map converter (:mod:`.stream_maps`). Build a chain
with :func:`dc_api_x.ext.transforms.build_transforms`; see ``docs/transforms.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from ..plugins import Registry

__all__ = ["BUILTIN_TRANSFORMS", "register_transform_providers", "stream_map_to_transforms"]

#: name → lazy ``"module:Class"`` of every built-in transform.
BUILTIN_TRANSFORMS: dict[str, str] = {
    "select": "dc_api_x.transforms.select:SelectTransform",
    "rename": "dc_api_x.transforms.rename:RenameTransform",
    "cast": "dc_api_x.transforms.cast:CastTransform",
    "flatten": "dc_api_x.transforms.flatten:FlattenTransform",
    "hash": "dc_api_x.transforms.masking:HashTransform",
    "mask": "dc_api_x.transforms.masking:MaskTransform",
    "filter": "dc_api_x.transforms.filter:FilterTransform",
    "add_field": "dc_api_x.transforms.add_field:AddFieldTransform",
}


def stream_map_to_transforms(mapping: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Convert a Singer stream map of one stream to transform configs (see
    :func:`dc_api_x.transforms.stream_maps.stream_map_to_transforms` for what converts and the limits)."""
    from .stream_maps import stream_map_to_transforms as convert

    return convert(mapping)


def register_transform_providers(registry: Registry) -> None:
    """Register the built-in transforms (lazily imported)."""
    for name, target in BUILTIN_TRANSFORMS.items():
        registry.register(name, target)
