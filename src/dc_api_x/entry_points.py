"""The installed distributions' entry points (the plugin loader's and ``core_version``'s source),
read without importing :mod:`importlib.metadata` when a snapshot of them is still valid.

Importing importlib.metadata (email, zipfile, csv …) and scanning every installed distribution for
the plugin entry points and dc-api-x's version costs ~130 M instructions, 12 % of a small
``dcapix run`` (issue 15). When importlib.metadata is not imported yet, the answers come from a
snapshot in ``$XDG_CACHE_HOME/dc-api-x/plugins`` (one file per interpreter and ``sys.path``), taken by
a real scan and used only while every ``sys.path`` entry, every ``*.dist-info`` / ``*.egg-info`` in
them and its ``entry_points.txt`` keep their modification times (a pip install, upgrade or removal
changes them) and none of those changed in the last 2 s (a change within the same clock tick could
go unseen). When importlib.metadata is already imported (a test, a host application) the scan is
made through it, as before. ``DC_API_X_ENTRY_POINT_CACHE=0`` switches the snapshot off.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

__all__ = ["ENTRY_POINT_CACHE_ENV", "entry_points", "metadata_module", "snapshot"]


def metadata_module() -> Any:
    """:mod:`importlib.metadata`, imported when first needed (it costs ~30 ms: email, zipfile …)."""
    from importlib import metadata

    return metadata


ENTRY_POINT_CACHE_ENV = "DC_API_X_ENTRY_POINT_CACHE"
_SNAPSHOT_FORMAT = 2
_last_snapshot: dict[str, Any] | None = None


class _SnapshotDist:
    """The parts of an ``importlib.metadata.Distribution`` the plugin loader reads."""

    def __init__(
        self,
        name: str | None,
        version: str | None,
        requires: list[str] | None,
        judged: list[Any] | None = None,
    ) -> None:
        self.metadata = {"Name": name}
        self.version = version
        self.requires = requires
        #: ``[specifier, compatible]`` of the distribution's requirement on dc-api-x, judged when the
        #: snapshot was written (the snapshot is keyed on dc-api-x's own dist-info too), so a start
        #: from the snapshot imports no ``packaging``; ``None``: judge it now
        self.dcapix_judged = judged


class _SnapshotEntryPoint:
    """An entry point read from the snapshot: ``name``, ``value``, ``group``, ``dist`` and ``load()``
    as ``importlib.metadata.EntryPoint`` has them."""

    def __init__(self, row: list[Any], group: str) -> None:
        self.name, self.value, self.module, self.attr = row[0], row[1], row[2], row[3]
        self.group = group
        self.dist = None if row[4] is None else _SnapshotDist(*row[4])

    def load(self) -> Any:
        obj: Any = importlib.import_module(self.module)
        for part in filter(None, (self.attr or "").split(".")):
            obj = getattr(obj, part)
        return obj


def _snapshot_path() -> str | None:
    if os.environ.get(ENTRY_POINT_CACHE_ENV, "").strip().lower() in ("0", "false", "no", "off"):
        return None
    import zlib

    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    key = "\0".join([sys.executable, *sys.path]).encode("utf-8", "surrogatepass")
    return os.path.join(base, "dc-api-x", "plugins", f"entry-points-{zlib.crc32(key):08x}.json")


def _installed_fingerprint() -> list[Any] | None:
    """What the snapshot depends on: for each ``sys.path`` entry, its distributions' metadata
    directories (as importlib.metadata finds them) with their and their ``entry_points.txt``'s
    modification times (a file entry, a zip: its own). ``None`` when one is less than 2 s old.
    (A directory's own time is left out: the working directory, on ``sys.path`` for ``python -m``,
    changes with every run.)"""
    import stat
    import time

    out: list[Any] = []
    newest = 0
    for entry in sys.path:
        where = entry or os.getcwd()
        try:
            st = os.stat(where)
        except OSError:
            out.append([entry, None])
            continue
        if not stat.S_ISDIR(st.st_mode):
            newest = max(newest, st.st_mtime_ns)
            out.append([entry, st.st_mtime_ns])
            continue
        try:
            with os.scandir(where) as it:
                infos = [e for e in it if e.name.lower().endswith((".dist-info", ".egg-info", "egg-info"))]
        except OSError:
            infos = []
        dists: list[Any] = []
        for e in infos:
            times: list[int | None] = []
            for path in (e.path, os.path.join(e.path, "entry_points.txt")):
                try:
                    times.append(os.stat(path).st_mtime_ns)
                except OSError:
                    times.append(None)
            newest = max(newest, *(t for t in times if t is not None), 0)
            dists.append([e.name, *times])
        out.append([entry, sorted(dists)])
    if newest > time.time_ns() - 2_000_000_000:
        return None
    return out


def _scan(groups: list[str]) -> dict[str, Any] | None:
    """A snapshot made by a real scan (``None`` when an entry point cannot be written down)."""
    md = metadata_module()
    try:
        version: str | None = md.version("dc-api-x")
    except md.PackageNotFoundError:  # pragma: no cover - running from a source tree
        version = None
    rows: dict[str, list[Any]] = {}
    for group in groups:
        rows[group] = []
        for ep in md.entry_points(group=group):
            try:
                module, attr = ep.module, ep.attr
            except Exception:  # a value importlib cannot parse: only the real entry point can say
                return None
            dist = getattr(ep, "dist", None)
            d = None if dist is None else [dist.metadata["Name"], dist.version, dist.requires, _judge(dist)]
            rows[group].append([ep.name, ep.value, module, attr, d])
    return {"format": _SNAPSHOT_FORMAT, "version": version, "groups": rows}


def _judge(dist: Any) -> list[Any] | None:
    """``[specifier, compatible]`` of ``dist``'s requirement on dc-api-x (the plugin loader's own
    reading of it), or ``None`` when it cannot be judged now (the loader then says why)."""
    from .plugins import _compatible, _dist_requirement

    try:
        spec = _dist_requirement(dist)
        return [spec, True if not spec else _compatible(spec)]
    except Exception:
        return None


def snapshot(groups: list[str]) -> dict[str, Any] | None:
    """The entry points of ``groups`` and dc-api-x's version without importing importlib.metadata
    (a valid snapshot, else a real scan written down for the next process); ``None`` when
    importlib.metadata is imported already or the snapshot is off or cannot be trusted now."""
    global _last_snapshot
    if "importlib.metadata" in sys.modules:
        return None
    if _last_snapshot is not None and all(g in _last_snapshot["groups"] for g in groups):
        return _last_snapshot  # (one process reads it once: core_version, then the entry points)
    path = _snapshot_path()
    if path is None:
        return None
    import json

    key = _installed_fingerprint()
    if key is None:
        return None
    try:
        with open(path, encoding="utf-8") as f:
            snap = json.load(f)
        if (
            isinstance(snap, dict)
            and snap.get("format") == _SNAPSHOT_FORMAT
            and snap.get("key") == key
            and all(g in snap["groups"] for g in groups)
        ):
            _last_snapshot = snap
            return snap
    except (OSError, ValueError, KeyError, TypeError):
        pass
    fresh = _scan(groups)
    if fresh is None:
        return None
    fresh["key"] = key
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        _drop_stale_temps(path)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(fresh, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except (OSError, TypeError, ValueError):
        try:
            os.unlink(tmp)
        except OSError:
            pass
    return fresh


def _drop_stale_temps(path: str) -> None:
    """Remove the temporary files of ``path`` that a killed writer left (older than a minute)."""
    import time

    folder, stem = os.path.split(path)
    try:
        with os.scandir(folder) as it:
            for e in it:
                stale = e.name.startswith(stem + ".") and e.name.endswith(".tmp")
                if stale and e.stat().st_mtime < time.time() - 60:
                    os.unlink(e.path)
    except OSError:
        pass


def entry_points(group: str, groups: list[str]) -> list[Any]:
    """The entry points of ``group`` (``groups``: every group this scan reads, snapshotted together)."""
    snap = snapshot(groups)
    if snap is not None:
        return [_SnapshotEntryPoint(row, group) for row in snap["groups"][group]]
    return list(metadata_module().entry_points(group=group))
