"""Arrow-native Singer BATCH files: the tap writes each adapter batch's Arrow table to Parquet
or Arrow IPC files.

With singer-sdk's ``batch_config`` in the tap config::

    {"batch_config": {"encoding": {"format": "parquet"},
                      "storage": {"root": "file:///data/batches", "prefix": "shop-"},
                      "batch_size": 100000}}

``"format": "arrow"`` writes Arrow IPC files (``.arrow``, the IPC *file* format; ``compression``
``none`` — the default — ``lz4`` or ``zstd``) instead: no encoding step at all, and the reader
maps the file into memory. singer-sdk targets do not read them (the SDK knows ``jsonl`` and
``parquet``): use them between ``tap-dcapix`` and ``target-dcapix``, Parquet for any other target.

every adapter batch (after the ``transforms`` and the stream maps, see :func:`arrow_stream_map`)
is written straight from Arrow to one Parquet file per ``batch_size`` rows — no per-row Python —
and announced with one Singer ``BATCH`` message whose manifest lists the files' ``file://`` URLs
(singer-sdk issues #976/#1117). Files are named like singer-sdk's own Parquet batcher names them
(``{prefix}{tap}--{stream}-{uuid}={n}.parquet``, ``.gz`` added for gzip) and written atomically:
a hidden temporary name in the same directory, fsync, rename, fsync of the directory. A temporary
file left by a killed run is removed when the next run of the same stream starts.

The Arrow schema travels in the file, so decimals keep their precision and scale, timestamps their
time zone, and JSON columns their ``dcapix.json`` marker (JSON text); target-dcapix loads them
Arrow-natively. singer-sdk targets read the same files with ``pyarrow`` (their Parquet support).
"""

from __future__ import annotations

import os
import re
import typing as t
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from dc_api_x.exceptions import ConfigError

if t.TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

__all__ = ["ArrowBatchFiles", "arrow_stream_map", "map_transform", "parquet_batch_config"]

_NULL = (None, "__NULL__")
_OPTIONS = frozenset({"__alias__", "__source__", "__key_properties__", "__else__"})
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def parquet_batch_config(raw: Any, tap: str) -> dict[str, Any] | None:
    """The parts of ``batch_config`` the Arrow path uses (``root`` as a local directory, ``prefix``,
    ``batch_size``, ``compression``), or ``None`` when the config asks for another format (singer-sdk's
    own batcher handles those). A non-local root or a bad value is a :class:`ConfigError`."""
    if not raw:
        return None
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{tap}: setting 'batch_config' must be an object", plugin=tap, field="batch_config"
        )
    enc = raw.get("encoding") or {}
    fmt = str(enc.get("format", "") if isinstance(enc, dict) else "").lower()
    if fmt not in ("parquet", "arrow"):
        return None
    storage = raw.get("storage") or {}
    root = storage.get("root") if isinstance(storage, dict) else None
    if not isinstance(root, str) or not root:
        raise ConfigError(
            f"{tap}: setting 'batch_config.storage.root' is required (a file:// URL or directory)",
            plugin=tap,
            field="batch_config.storage.root",
        )
    parsed = urlparse(root)
    if parsed.scheme not in ("", "file"):
        raise ConfigError(
            f"{tap}: setting 'batch_config.storage.root' {root!r}: Arrow BATCH files need a local "
            f"directory (file://); got scheme {parsed.scheme!r}",
            plugin=tap,
            field="batch_config.storage.root",
        )
    size = raw.get("batch_size", 10000)
    if size is None:
        size = 10000
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ConfigError(
            f"{tap}: setting 'batch_config.batch_size' must be a positive integer, got {size!r}",
            plugin=tap,
            field="batch_config.batch_size",
        )
    compression = enc.get("compression") if isinstance(enc, dict) else None
    if fmt == "arrow" and compression not in (None, "none", "lz4", "zstd"):
        raise ConfigError(
            f"{tap}: setting 'batch_config.encoding.compression' {compression!r}: Arrow IPC files "
            f"take none, lz4 or zstd",
            plugin=tap,
            field="batch_config.encoding.compression",
        )
    path = unquote(parsed.path) if parsed.scheme == "file" else root
    return {
        "root": Path(path).expanduser().resolve(),
        "prefix": str(storage.get("prefix") or ""),
        "batch_size": size,
        "format": fmt,
        "compression": None if compression in (None, "none") else str(compression),
        "encoding": {"format": fmt, "compression": compression},
    }


def map_transform(stream_maps: Any, stream: str, alias: str) -> dict[str, Any] | None:
    """The ``stream_maps`` entry that made the map of ``stream`` named ``alias`` (singer-sdk's
    ``PluginMapper`` keeps no reference to it), or ``None`` unless exactly one entry matches."""
    import fnmatch

    found = []
    for key, value in (stream_maps or {}).items():
        if not isinstance(value, dict):
            continue
        if "__source__" in value:
            source, name = value["__source__"], key
        else:
            source, name = key, value.get("__alias__", key)
        if not isinstance(source, str) or not (source == stream or fnmatch.fnmatch(stream, source)):
            continue
        if name == alias or (name == source and alias == stream):
            found.append(value)
    return found[0] if len(found) == 1 else None


def arrow_stream_map(stream_map: Any, transform: Mapping[str, Any] | None = None) -> Any:
    """A function ``table -> table | None`` doing on Arrow what ``stream_map.transform`` does per
    record, or ``None`` when that is not possible (the stream then goes record by record).

    Possible: the identity / alias map (``SameRecordTransform`` without flattening), a removed
    stream (``None``: returns ``None`` for every table), and custom maps made only of dropped
    properties (``null``), ``__else__: null``, copies or renames of a property (``"new": "old"``),
    ``__alias__``, ``__source__`` and ``__key_properties__`` (``transform``: the map's ``stream_maps``
    entry, :func:`map_transform`). Not possible: expressions, ``__filter__`` and flattening."""
    from singer_sdk.mapper import CustomStreamMap, RemoveRecordTransform, SameRecordTransform

    if getattr(stream_map, "flattening_enabled", False):
        return None
    if type(stream_map) is SameRecordTransform:
        return lambda table: table
    if type(stream_map) is RemoveRecordTransform:
        return lambda table: None
    if type(stream_map) is not CustomStreamMap or transform is None:
        return None
    config = dict(transform)
    sources: dict[str, str] = {}
    for key, value in config.items():
        if key in _OPTIONS:
            if key == "__else__" and value not in _NULL:
                return None
            continue
        if key.startswith("__"):
            return None  # __filter__ and anything newer
        if value in _NULL:
            continue
        if not isinstance(value, str) or not _IDENT.match(value):
            return None
        sources[key] = value
    raw_props = (stream_map.raw_schema or {}).get("properties") or {}
    if any(src not in raw_props for src in sources.values()):
        return None  # an expression naming something else (e.g. a function or a constant)
    out = list((stream_map.transformed_schema or {}).get("properties") or {})

    def project(table: pa.Table) -> pa.Table:
        import pyarrow as pa

        names = set(table.column_names)
        cols, fields = [], []
        for name in out:
            src = sources.get(name, name)
            if src not in names:
                continue
            i = table.schema.get_field_index(src)
            cols.append(table.column(i))
            fields.append(table.schema.field(i).with_name(name))
        return pa.Table.from_arrays(cols, schema=pa.schema(fields, metadata=table.schema.metadata))

    return project


class ArrowBatchFiles:
    """Writes Arrow tables of one stream alias to Parquet or Arrow IPC BATCH files under the
    storage root."""

    def __init__(self, cfg: dict[str, Any], tap: str, stream: str) -> None:
        self.format: str = cfg.get("format", "parquet")
        self.root: Path = cfg["root"]
        self.prefix: str = cfg["prefix"]
        self.batch_size: int = cfg["batch_size"]
        self.compression: str | None = cfg["compression"]
        self.stream = stream
        self._base = f"{self.prefix}{tap}--{stream}"
        self._sync_id = f"{self._base}-{uuid.uuid4()}"
        self._n = 0
        self.root.mkdir(parents=True, exist_ok=True)
        self._remove_stale_temps()

    def _remove_stale_temps(self) -> None:
        """Temporary files a killed run of this stream left behind (never a finished file)."""
        for p in self.root.glob(f".{glob_escape(self._base)}-*.tmp"):
            p.unlink(missing_ok=True)

    def write(self, table: pa.Table) -> list[str]:
        """Write ``table`` as files of at most ``batch_size`` rows; their ``file://`` URLs."""
        urls: list[str] = []
        for start in range(0, table.num_rows, self.batch_size):
            part = table.slice(start, self.batch_size)
            self._n += 1
            if self.format == "arrow":
                name = f"{self._sync_id}={self._n}.arrow"
            else:
                name = f"{self._sync_id}={self._n}.parquet" + (".gz" if self.compression == "gzip" else "")
            final = self.root / name
            tmp = self.root / f".{name}.{os.getpid()}.tmp"
            try:
                self._write_file(part, tmp)
                fd = os.open(tmp, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
                os.replace(tmp, final)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            urls.append(final.as_uri())
        if urls:
            _fsync_dir(self.root)
        return urls

    def _write_file(self, part: pa.Table, path: Path) -> None:
        if self.format == "arrow":
            import pyarrow as pa

            options = pa.ipc.IpcWriteOptions(compression=self.compression)
            with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, part.schema, options=options) as w:
                w.write_table(part)
            return
        import pyarrow.parquet as pq

        # no codec asked for: uncompressed, no dictionaries (the files live from one BATCH
        # message to its load; writing and reading them then costs ~1/3 of snappy's CPU)
        kwargs: dict[str, Any] = (
            {"compression": self.compression}
            if self.compression
            else {"compression": "none", "use_dictionary": False}
        )
        pq.write_table(part, path, **kwargs)


def glob_escape(text: str) -> str:
    """``text`` with glob metacharacters escaped."""
    import glob

    return glob.escape(text)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)
