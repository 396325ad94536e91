"""Singer stream maps as transform configs: :func:`stream_map_to_transforms` (used by ``dcapix run``
for a source's Meltano-style ``stream_maps``; light: no pyarrow)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..exceptions import ConfigError
from .expressions import parse_expression

__all__ = ["stream_map_to_transforms"]


_SM_UNSUPPORTED = ("__alias__", "__key_properties__", "__source__")


def stream_map_to_transforms(mapping: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Convert one stream's Singer stream map (``{"new": "expr", "old": None, "__else__": None,
    "__filter__": "expr"}``) to transform configs.

    What converts: ``"prop": None`` (drop), ``"__else__": None`` (keep only the mapped properties),
    ``"__filter__": expr`` (``filter``), ``"prop": "other"`` and ``"prop": "expr"`` (``add_field``,
    overwriting when ``prop`` exists) for expressions inside our safe grammar.

    Limits: Singer evaluates every expression against the *input* record, we apply them in order
    (an expression that reads a property mapped earlier in the same map sees the new value);
    functions (``md5()``, ``datetime``, ``int()`` …), ``record[...]``, ``config``, ``__alias__``,
    ``__key_properties__`` and ``__source__`` are not supported and raise :class:`ConfigError`
    naming the property; a stream map of ``None`` (drop the stream) is a selection matter, not a
    transform.
    """
    if mapping is None or not isinstance(mapping, Mapping):
        raise ConfigError(
            f"stream map: expected a mapping of property -> expression, got {mapping!r} "
            "(dropping a whole stream is done by stream selection)",
            plugin="stream map",
            field="(root)",
        )
    out: list[dict[str, Any]] = []
    drops: list[str] = []
    kept: list[str] = []
    adds: list[dict[str, Any]] = []
    else_drop = False
    for key, value in mapping.items():
        if key in _SM_UNSUPPORTED:
            raise ConfigError(
                f"stream map: {key!r} is not supported by transforms", plugin="stream map", field=key
            )
        if key == "__else__":
            if value is not None:
                raise ConfigError(
                    "stream map: only '__else__: null' is supported", plugin="stream map", field=key
                )
            else_drop = True
            continue
        if key == "__filter__":
            if not isinstance(value, str):
                raise ConfigError(
                    "stream map: '__filter__' must be an expression string", plugin="stream map", field=key
                )
            parse_expression(value, where="stream map '__filter__'")
            out.append({"type": "filter", "expression": value})
            continue
        if value is None:
            drops.append(key)
            continue
        if not isinstance(value, str):
            raise ConfigError(
                f"stream map: property {key!r}: expected an expression string or null, got {value!r}",
                plugin="stream map",
                field=key,
            )
        expr = parse_expression(value, arithmetic=True, where=f"stream map property {key!r}")
        kept.append(key)
        if expr.node == ("field", key):
            continue  # "id": "id" keeps the property as it is
        adds.append({"type": "add_field", "name": key, "expression": value, "overwrite": True})
    out.extend(adds)
    if else_drop:
        out.append({"type": "select", "fields": kept})
    elif drops:
        out.append({"type": "select", "exclude": drops})
    return out
