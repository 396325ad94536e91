"""The settings (config JSON Schema) of target-dcapix.

The target's own settings (``adapter``, ``load_method``, ``batch_size_rows``, ``validate_records`` …)
plus every option of every registered adapter that can write (``ProtocolAdapter.load_methods``),
generated from the adapters' pydantic ``Options`` models by :mod:`dc_api_x.singer_settings`, secrets
marked ``"secret": true, "writeOnly": true``.

The schema only documents the adapter options and never rejects a valid config: the chosen adapter
validates its own options (pydantic, ``extra=forbid``) and names a bad field in one line.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Mapping
from typing import Any

__all__ = [
    "DEFAULT_BATCH_SIZE_BYTES",
    "DEFAULT_BATCH_SIZE_ROWS",
    "DEFAULT_BATCH_WAIT_LIMIT_SECONDS",
    "TARGET_KEYS",
    "target_settings_jsonschema",
]

log = logging.getLogger(__name__)

#: Default number of records buffered per stream before a write + flush (``batch_size_rows``).
DEFAULT_BATCH_SIZE_ROWS = 100_000
#: Default bytes of input (RECORD lines) buffered per stream before a write + flush
#: (``batch_size_bytes``): bounds the memory of records with huge values (10 records of 10 MB:
#: 778 MB peak without it, 256-264 MB with 16 MiB, 337 MB with 32 or 64 MiB, where the file writers'
#: own 32 MiB buffer adds up). Rows of more than ~170 bytes of JSON reach it before
#: ``batch_size_rows`` (100,000): W3's 350-byte rows are flushed every ~48,000.
DEFAULT_BATCH_SIZE_BYTES = 16 * 1024 * 1024
#: Default age (seconds) after which buffered records are written and flushed anyway, so a slow tap
#: still gets its STATE messages committed and echoed (``batch_wait_limit_seconds``).
DEFAULT_BATCH_WAIT_LIMIT_SECONDS = 60.0

#: The target's own settings (everything else in the config goes to the adapter).
TARGET_PROPERTIES: dict[str, dict[str, Any]] = {
    "adapter": {
        "type": "string",
        "description": "Name of the destination adapter (a dc-api-x adapter that can write: "
        "sql, parquet, csv, jsonl, or one registered by a plugin).",
    },
    "load_method": {
        "type": "string",
        "enum": ["append", "append-only", "upsert", "overwrite"],
        "default": "append",
        "description": "append: add rows; upsert: merge on the stream's key properties; overwrite: "
        "replace the stream's table/files when the run finishes (atomically). "
        "'append-only' is the singer-sdk spelling of append.",
    },
    "batch_size_rows": {
        "type": "integer",
        "minimum": 1,
        "default": DEFAULT_BATCH_SIZE_ROWS,
        "description": "Records buffered per stream before they are written and flushed.",
    },
    "batch_size_bytes": {
        "type": "integer",
        "minimum": 1,
        "default": DEFAULT_BATCH_SIZE_BYTES,
        "description": "Bytes of input (the RECORD lines) buffered per stream before they are "
        "written and flushed, whichever of this and batch_size_rows comes first: a few records "
        "with huge values are flushed without waiting for batch_size_rows records in memory. The "
        "records go to the adapter (converted, not yet flushed) at half of it.",
    },
    "batch_wait_limit_seconds": {
        "type": "number",
        "exclusiveMinimum": 0,
        "default": DEFAULT_BATCH_WAIT_LIMIT_SECONDS,
        "description": "Seconds after which the buffered records of every stream are written and "
        "flushed even if no batch is full, so the STATE received after them is emitted (checked "
        "whenever a message arrives).",
    },
    "validate_records": {
        "type": ["boolean", "string"],
        "enum": [True, False, "sample"],
        "default": True,
        "description": "true: check every record against its stream's JSON Schema (compiled once per "
        "schema); 'sample': check the first 1000 records of each stream, then every "
        "100th; false: no check (types are still enforced when a batch is converted).",
    },
    "hard_delete": {
        "type": "boolean",
        "default": False,
        "description": "With ACTIVATE_VERSION messages: an ACTIVATE_VERSION that arrives before a "
        "stream's records makes that stream an overwrite (rows of older versions are "
        "gone when the run finishes). Without it ACTIVATE_VERSION is logged and ignored.",
    },
    "remove_batch_files": {
        "type": "boolean",
        "default": True,
        "description": "Remove the files a BATCH message names once their rows are committed (after "
        "the write's flush; with load_method overwrite, after the stream is finished). Only local "
        "files under batch_config.storage.root are removed: without that setting none is.",
    },
    "max_parallelism": {
        "type": "integer",
        "minimum": 1,
        "default": 1,
        "description": "Streams drained in parallel (threads) when several sinks are full at once.",
    },
}

#: Keys of the config that belong to the target / singer-sdk, not to the adapter.
TARGET_KEYS = frozenset(TARGET_PROPERTIES) | frozenset(
    {
        "add_record_metadata",
        "process_activate_version_messages",
        "stream_maps",
        "stream_map_config",
        "faker_config",
        "flattening_enabled",
        "flattening_max_depth",
        "flattening_max_key_length",
        "flattening_separator",
        "batch_config",
        "default_target_schema",
    }
)


def _loosen(prop: dict[str, Any]) -> dict[str, Any]:
    """A property schema that documents but never rejects (pydantic does the real validation)."""
    doc = {k: v for k, v in prop.items() if k != "default"}
    if "default" in prop and prop["default"] is not None:
        # not as "default": singer-sdk would copy it into the config and hand it to every adapter
        doc["description"] = (
            str(doc.get("description") or doc.get("title") or "").rstrip(". ")
            + f" (default: {json.dumps(prop['default'], default=str)})"
        ).lstrip()
    return doc


def _writing_adapters(ps: Any) -> list[str]:
    """Names of the registered adapters that can write (``load_methods`` not empty)."""
    names = []
    for name in ps.adapters.names():
        try:
            cls = ps.adapters.get(name)
        except Exception as exc:  # an adapter whose extra is missing is left out of --about
            log.debug("adapter %r left out of the settings schema: %s", name, exc)
            continue
        if getattr(cls, "load_methods", ()):
            names.append(name)
    return names


def target_settings_jsonschema(plugins: Any = None) -> dict[str, Any]:
    """The config JSON Schema of target-dcapix: the target's settings plus the writing adapters'
    options (:func:`dc_api_x.singer_settings.adapter_settings_schema`) of ``plugins`` (default: the
    current plugin set), documented but never rejected here (each adapter validates its own options)."""
    from dc_api_x.plugins import get_plugins
    from dc_api_x.singer_settings import adapter_settings_schema

    plugins = plugins if plugins is not None else get_plugins()

    properties: dict[str, Any] = {}
    try:
        shared = adapter_settings_schema(_writing_adapters(plugins), plugins=plugins)
    except Exception as exc:  # a broken plugin must not break --about: the target's own settings
        log.warning("the adapters' settings could not be listed: %s", exc)
        shared = {}
    for key, prop in (shared.get("properties") or {}).items():
        if key != "adapter":
            properties[key] = _loosen(dict(prop)) if isinstance(prop, Mapping) else {}
    for key, prop in TARGET_PROPERTIES.items():
        properties[key] = copy.deepcopy(prop)
    return {"type": "object", "properties": properties, "required": ["adapter"]}
