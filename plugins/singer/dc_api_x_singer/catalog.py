"""Singer catalogs: streams as :class:`~dc_api_x.types.StreamSpec`, metadata overrides, selection.

A catalog entry becomes a stream named by its ``tap_stream_id``, with its JSON Schema, its key
properties (``key_properties`` or the ``table-key-properties`` metadata) and its replication key
(the ``replication-key`` metadata or ``replication_key``; none when the replication method is
``FULL_TABLE``). ``metadata`` overrides are applied first, as Meltano's ``metadata`` extra does:
``{"<stream glob>": {"replication-method": "INCREMENTAL", "replication-key": "id",
"<property>": {"selected": false}}}``.

For a read, the whole catalog goes to the tap (parent streams must stay described) with exactly
one stream selected, all of its properties selected unless ``select_fields`` patterns
(``"stream.field"``, globs, ``!`` to exclude) or the read's ``columns`` say otherwise.
"""

from __future__ import annotations

import copy
import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from dc_api_x.types import StreamSpec

__all__ = [
    "apply_metadata",
    "apply_schema",
    "entry_spec",
    "field_selection",
    "read_catalog",
    "stream_id",
    "validate_catalog",
]

_STREAM = ()


def stream_id(entry: Mapping[str, Any]) -> str:
    return str(entry.get("tap_stream_id") or entry.get("stream") or "")


def validate_catalog(data: Any) -> list[dict[str, Any]]:
    """The stream entries of a catalog; raises ``ValueError`` with what is wrong."""
    if not isinstance(data, Mapping) or not isinstance(data.get("streams"), list):
        raise ValueError('a catalog is a JSON object with a "streams" list')
    out = []
    for i, entry in enumerate(data["streams"]):
        if not isinstance(entry, Mapping) or not stream_id(entry):
            raise ValueError(f"catalog stream #{i} has no tap_stream_id")
        if not isinstance(entry.get("schema"), Mapping):
            raise ValueError(f"catalog stream {stream_id(entry)!r} has no schema")
        out.append(dict(entry))
    return out


def _metadata(entry: dict[str, Any], breadcrumb: Sequence[str], *, create: bool = False) -> dict[str, Any]:
    items = entry.get("metadata")
    if not isinstance(items, list):
        items = []
        if create:
            entry["metadata"] = items
    for item in items:
        if isinstance(item, dict) and tuple(item.get("breadcrumb") or ()) == tuple(breadcrumb):
            md = item.setdefault("metadata", {})
            return md  # type: ignore[no-any-return]
    md = {}
    if create:
        items.append({"breadcrumb": list(breadcrumb), "metadata": md})
    return md


def apply_metadata(entries: list[dict[str, Any]], overrides: Mapping[str, Mapping[str, Any]]) -> None:
    """Apply Meltano-style metadata overrides (stream globs → stream keys / ``{property: {...}}``)."""
    for entry in entries:
        sid = stream_id(entry)
        for pattern, values in overrides.items():
            if not (
                fnmatch.fnmatchcase(sid, pattern) or fnmatch.fnmatchcase(str(entry.get("stream")), pattern)
            ):
                continue
            for key, value in values.items():
                if isinstance(value, Mapping):
                    _metadata(entry, ("properties", key), create=True).update(value)
                else:
                    _metadata(entry, _STREAM, create=True)[key] = value


def apply_schema(
    sid: str, schema: Mapping[str, Any], overrides: Mapping[str, Mapping[str, Any]], stream: str = ""
) -> dict[str, Any]:
    """``schema`` with property schemas replaced as Meltano's ``schema`` extra does
    (``{"<stream glob>": {"<property>": {JSON Schema}}}``); a property not in it is added."""
    out = dict(schema)
    for pattern, props in overrides.items():
        if not (fnmatch.fnmatchcase(sid, pattern) or (stream and fnmatch.fnmatchcase(stream, pattern))):
            continue
        merged = dict(out.get("properties") or {})
        for name, prop in props.items():
            merged[name] = dict(prop)
        out["properties"] = merged
    return out


def field_selection(sid: str, properties: Iterable[str], patterns: Sequence[str]) -> set[str] | None:
    """The properties ``patterns`` select in stream ``sid`` (``None``: all of them).

    ``"stream.field"`` includes (globs on both parts), ``"!stream.field"`` excludes. A stream no
    include pattern names keeps all its fields but the excluded ones."""
    props = list(properties)
    include: set[str] | None = None
    exclude: set[str] = set()
    for pattern in patterns:
        neg = pattern.startswith("!")
        spat, _, fpat = pattern.lstrip("!").partition(".")
        if not fnmatch.fnmatchcase(sid, spat):
            continue
        hits = {p for p in props if fnmatch.fnmatchcase(p, fpat or "*")}
        if neg:
            exclude |= hits
        else:
            include = (include or set()) | hits
    if include is None and not exclude:
        return None
    return (set(props) if include is None else include) - exclude


def entry_spec(entry: Mapping[str, Any], select_fields: Sequence[str] = ()) -> StreamSpec:
    """The :class:`StreamSpec` of a (metadata-adjusted) catalog entry."""
    e = dict(entry)
    md = _metadata(e, _STREAM)
    sid = stream_id(e)
    schema = copy.deepcopy(dict(e["schema"]))
    props = schema.get("properties")
    if isinstance(props, Mapping) and not isinstance(props, dict):
        props = schema["properties"] = dict(props)
    keys = tuple(e.get("key_properties") or md.get("table-key-properties") or ())
    method = str(md.get("replication-method") or e.get("replication_method") or "").upper()
    forced = str(md.get("forced-replication-method") or "").upper()
    valid = tuple(md.get("valid-replication-keys") or ())
    rk = md.get("replication-key") or e.get("replication_key")
    if not rk and (method == "INCREMENTAL" or (not method and forced == "INCREMENTAL")) and len(valid) == 1:
        rk = valid[0]
    if (method or forced) == "FULL_TABLE" or method == "LOG_BASED":
        rk = None
    if isinstance(props, dict):
        fields = field_selection(sid, props, select_fields)
        for name in list(props):
            pmd = _metadata(e, ("properties", name))
            inclusion = pmd.get("inclusion")
            required = inclusion == "automatic" or name in keys or name == rk
            dropped = pmd.get("selected") is False or inclusion == "unsupported"
            if fields is not None and name not in fields:
                dropped = True
            if dropped and not required:
                del props[name]
        if isinstance(schema.get("required"), list):
            schema["required"] = [r for r in schema["required"] if r in props]
    return StreamSpec(
        sid,
        schema=schema,
        key_properties=keys,
        replication_key=str(rk) if rk else None,
        replication_keys=tuple(str(v) for v in valid),
        options={"tap_stream_id": sid, "stream": str(e.get("stream") or sid)},
    )


def read_catalog(
    entries: Sequence[Mapping[str, Any]],
    spec: StreamSpec,
    *,
    columns: Sequence[str] | None = None,
    legacy: bool = False,
) -> dict[str, Any]:
    """The catalog for reading ``spec``: every entry, only ``spec``'s stream selected with the
    properties of ``spec.schema`` (narrowed to ``columns``), its replication key set.

    ``legacy``: also mark selection inside the schemas (``"selected": true``), as taps read it
    from a ``--properties`` file."""
    wanted = set((spec.schema.get("properties") or {}).keys())
    if columns is not None:
        wanted &= {*columns, *spec.key_properties, *([spec.replication_key] if spec.replication_key else [])}
    out = []
    for entry in entries:
        e = copy.deepcopy(dict(entry))
        selected = stream_id(e) == spec.name
        md = _metadata(e, _STREAM, create=True)
        md["selected"] = selected
        if legacy:
            e["schema"]["selected"] = selected
        if selected:
            e["selected"] = True
            if spec.replication_key:
                md["replication-method"] = "INCREMENTAL"
                md["replication-key"] = spec.replication_key
                e["replication_method"] = "INCREMENTAL"
                e["replication_key"] = spec.replication_key
            for name, prop in (e["schema"].get("properties") or {}).items():
                pmd = _metadata(e, ("properties", name), create=True)
                if pmd.get("inclusion") == "unsupported":
                    continue
                pmd["selected"] = name in wanted
                if legacy and isinstance(prop, dict):
                    prop["selected"] = name in wanted
        out.append(e)
    return {"streams": out}
