"""The file system of the file adapters (local paths or fsspec URLs) and their directory layout::

    <path>/<stream>/part-00000-<runid>.parquet      # one file per flushed part
    <path>/<stream>/_schema.jsonschema              # csv/jsonl only: the stream's JSON Schema
    <path>/.<stream>.tmp-<runid>/                   # overwrite: the new files, swapped in at finish

Writes of whole files are atomic (temporary name, fsync, rename)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

__all__ = ["FS", "GLOB_CHARS", "SIDECAR", "STREAM_META", "URL_RE", "safe_name"]


#: Parquet schema metadata key naming the stream a file belongs to.
STREAM_META = b"dcapix.stream"
#: The JSON Schema file of a CSV / JSONL stream directory.
SIDECAR = "_schema.jsonschema"
GLOB_CHARS = re.compile(r"[*?\[]")
URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


# -------------------------------------------------------------------------------- file system
class FS:
    """The few file-system operations the adapters need, local (os) or fsspec (URLs)."""

    def __init__(self, root: str, storage_options: Mapping[str, Any]) -> None:
        self.local = not URL_RE.match(root) or root.startswith("file://")
        self.fs: Any = None
        if not self.local:
            import fsspec

            self.fs, _ = fsspec.core.url_to_fs(root, **dict(storage_options))
            self.protocol = root.split("://", 1)[0]

    def norm(self, path: str) -> str:
        if self.local:
            if path.startswith("file://"):
                path = path[len("file://") :]
            return str(Path(path).expanduser())
        return path.rstrip("/")

    def join(self, *parts: str) -> str:
        if self.local:
            return os.path.join(*parts)
        return "/".join(p.strip("/") if i else p.rstrip("/") for i, p in enumerate(parts))

    def display(self, path: str) -> str:
        if self.local or "://" in path:
            return path
        return f"{self.protocol}://{path}"

    def basename(self, path: str) -> str:
        if self.local:
            return os.path.basename(path.rstrip(os.sep))
        return path.rstrip("/").rsplit("/", 1)[-1]

    def dirname(self, path: str) -> str:
        return os.path.dirname(path) if self.local else path.rstrip("/").rsplit("/", 1)[0]

    def exists(self, path: str) -> bool:
        return os.path.exists(path) if self.local else bool(self.fs.exists(path))

    def isdir(self, path: str) -> bool:
        return os.path.isdir(path) if self.local else bool(self.fs.isdir(path))

    def glob(self, pattern: str) -> list[str]:
        if self.local:
            import glob as _glob

            return sorted(p for p in _glob.glob(pattern, recursive=True) if os.path.isfile(p))
        return sorted(p for p in self.fs.glob(pattern) if self.fs.isfile(p))

    def listdir(self, path: str) -> list[tuple[str, bool]]:
        """``(full path, is_dir)`` of the entries of a directory, sorted by name."""
        if self.local:
            with os.scandir(path) as it:
                return sorted((e.path, e.is_dir()) for e in it)
        out = []
        for info in self.fs.ls(path, detail=True):
            out.append((info["name"].rstrip("/"), info.get("type") == "directory"))
        return sorted(out)

    def walk_files(self, path: str) -> list[str]:
        """Every file under ``path`` (recursively), skipping ``.``/``_`` names, sorted."""
        out: list[str] = []
        for full, is_dir in self.listdir(path):
            name = self.basename(full)
            if name.startswith((".", "_")):
                continue
            if is_dir:
                out.extend(self.walk_files(full))
            else:
                out.append(full)
        return out

    def makedirs(self, path: str) -> None:
        if self.local:
            os.makedirs(path, exist_ok=True)
        else:
            self.fs.makedirs(path, exist_ok=True)

    def open_read(self, path: str) -> IO[bytes]:
        if self.local:
            return open(path, "rb")
        return self.fs.open(path, "rb")  # type: ignore[no-any-return]

    def open_write(self, path: str) -> IO[bytes]:
        if self.local:
            return open(path, "wb")
        return self.fs.open(path, "wb")  # type: ignore[no-any-return]

    def sync_file(self, path: str) -> None:
        """fsync a closed local file (no-op for remote stores, durable on close)."""
        if self.local:
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def sync_dir(self, path: str) -> None:
        if self.local:
            with contextlib.suppress(OSError):
                fd = os.open(path, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)

    def rename(self, src: str, dst: str) -> None:
        if self.local:
            os.replace(src, dst)
        else:
            self.fs.mv(src, dst, recursive=True)

    def remove(self, path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            if self.local:
                os.remove(path)
            elif self.fs.exists(path):
                self.fs.rm(path)

    def rmtree(self, path: str) -> None:
        if self.local:
            shutil.rmtree(path, ignore_errors=True)
        elif self.fs.exists(path):
            self.fs.rm(path, recursive=True)

    def write_atomic(self, path: str, data: bytes, tag: str | None = None) -> None:
        """Write ``path`` whole: a temporary ``.<name>.<tag>.tmp`` (``tag``: the writer's run id, so
        a killed writer's leftover can be told apart; a random one by default), fsync, rename."""
        tmp = self.join(self.dirname(path), f".{self.basename(path)}.{tag or uuid.uuid4().hex[:8]}.tmp")
        try:
            with self.open_write(tmp) as fh:
                fh.write(data)
                if self.local:
                    fh.flush()
                    os.fsync(fh.fileno())
            self.rename(tmp, path)
        except BaseException:
            self.remove(tmp)
            raise


def safe_name(stream: str) -> str:
    name = stream.replace("/", "_").replace("\\", "_")
    return "_" if name in ("", ".", "..") else name
