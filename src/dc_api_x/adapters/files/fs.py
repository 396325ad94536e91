"""The file system of the file adapters (local paths or fsspec URLs) and their directory layout::

    <path>/<stream>/part-00000-<runid>.parquet      # one file per flushed part
    <path>/<stream>/_schema.jsonschema              # csv/jsonl only: the stream's JSON Schema
    <path>/.<stream>.tmp-<runid>/                   # overwrite: the new files, swapped in at finish

Writes of whole files are atomic (temporary name, fsync, rename)."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import sys
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

__all__ = [
    "FS",
    "GLOB_CHARS",
    "SIDECAR",
    "STREAM_META",
    "URL_RE",
    "WRITE_BEHIND_BYTES",
    "WriteBehind",
    "safe_name",
    "start_writeback",
]


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


# -------------------------------------------------------------------------------- write-behind
#: bytes a part file grows by before :class:`WriteBehind` starts their write-back (a part smaller
#: than this is left to the final fsync alone)
WRITE_BEHIND_BYTES = 4 << 20
#: ``sync_file_range``'s ``SYNC_FILE_RANGE_WRITE``: start the write-out of the range's dirty pages,
#: wait for none of it
_SYNC_FILE_RANGE_WRITE = 2
#: what ``sync_file_range`` fails with where the file system (or the kernel) cannot do it: the
#: write-behind is then off for the file (its final fsync does all the work, as without it)
_UNSUPPORTED = frozenset({errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ESPIPE, errno.ENOTSUP})
_sync_range: Any = None  # the C library's sync_file_range (ctypes), False where there is none


def _load_sync_range() -> Any:
    """The C library's ``sync_file_range`` through :mod:`ctypes` (Linux), or ``False``."""
    global _sync_range
    if _sync_range is None:
        _sync_range = False
        if sys.platform.startswith("linux"):
            try:
                import ctypes

                fn = ctypes.CDLL(None, use_errno=True).sync_file_range
                fn.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
                fn.restype = ctypes.c_int
                _sync_range = fn
            except (OSError, AttributeError):  # pragma: no cover - a C library without it
                pass
    return _sync_range


def start_writeback(fd: int, offset: int, nbytes: int) -> bool:
    """Start the kernel's write-out of ``nbytes`` bytes of ``fd`` from ``offset`` without waiting for
    it (``sync_file_range(SYNC_FILE_RANGE_WRITE)``). ``False`` where that is not available (another
    system, a file system without it); an I/O error is raised as :class:`OSError`."""
    fn = _load_sync_range()
    if not fn:
        return False
    if fn(fd, offset, nbytes, _SYNC_FILE_RANGE_WRITE) == 0:
        return True
    import ctypes

    err = ctypes.get_errno()
    if err in _UNSUPPORTED:
        return False
    raise OSError(err, os.strerror(err))


class WriteBehind:
    """Write-behind of a local file being written: each time it grew by :data:`WRITE_BEHIND_BYTES`,
    the kernel starts writing the new bytes to the disk (:func:`start_writeback`), while the writer
    goes on. The final ``fsync`` (:meth:`FS.sync_file`, before the rename) stays and still makes the
    file durable; it then waits only for what was written since the last write-behind (W2, 1M rows,
    59 MB: the fsync before the rename 23-31 ms -> 2-6 ms; docs/files.md). Nothing changes in the
    file; a file system that cannot do it turns it off for the file, an I/O error is raised naming
    the file (what its fsync would report later)."""

    def __init__(self, fd: int, path: str) -> None:
        self.fd, self.path = fd, path
        self.started = 0  # bytes whose write-back was started
        self.on = True

    def advance(self) -> None:
        """Start the write-back of what was written since the last call, once it is big enough."""
        if not self.on:
            return
        size = os.fstat(self.fd).st_size
        if size - self.started < WRITE_BEHIND_BYTES:
            return
        try:
            self.on = start_writeback(self.fd, self.started, size - self.started)
        except OSError as exc:
            self.on = False
            why = exc.strerror or str(exc)
            raise OSError(exc.errno, f"starting the write-back of {self.path!r} failed: {why}") from None
        self.started = size


def safe_name(stream: str) -> str:
    name = stream.replace("/", "_").replace("\\", "_")
    return "_" if name in ("", ".", "..") else name
