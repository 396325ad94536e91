"""Temporary files left by a killed writer, and how the next write of a stream removes them.

Every temporary name a file destination creates carries its writer's run id (``adapter.run_id``)::

    <path>/<stream>/.part-00003-<runid>.parquet.tmp     # a part being written
    <path>/<stream>/._schema.jsonschema.<runid>.tmp     # the schema side file being replaced
    <path>/.<stream>.tmp-<runid>/                       # overwrite: the new directory being written
    <path>/.<stream>.old-<runid>/                       # overwrite: the replaced directory, until removed

While a writer (one adapter instance) writes under ``<path>`` it holds an exclusive ``flock`` on
``<path>/.dcapix-writer-<runid>.lock``; the lock file appears already locked (it is verified to be the
file it locked before any temporary file is created) and is removed when the adapter closes. A process
killed with SIGKILL loses its lock with it. When a write of a stream starts, the temporary files of that
stream whose writer holds no lock (its lock file missing, or lockable) are removed — never those of a
live writer, in this process or another one. Lock files of dead writers are removed with them.

Local file systems only: on fsspec stores (object stores), a file is created at its close, so a killed
writer leaves nothing; there is also no ``flock`` to ask. Without :mod:`fcntl` (Windows) no lock is
taken and nothing is removed (a writer that cannot be proven dead is treated as alive).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["WriterLock", "remove_stale", "writer_alive"]

_LOCK_PREFIX = ".dcapix-writer-"
_LOCK_SUFFIX = ".lock"
#: a run id (``FileAdapter.run_id``: UTC time and 8 hex digits) in a hidden ``….tmp`` name.
_TMP_RE = re.compile(r"^\..*?(?P<run>\d{8}T\d{6}-[0-9a-f]{8}).*\.tmp$")
_LOCK_RE = re.compile(rf"^{re.escape(_LOCK_PREFIX)}(?P<run>.+){re.escape(_LOCK_SUFFIX)}$")


def lock_path(root: str, run_id: str) -> str:
    """The lock file of the writer ``run_id`` under ``root``."""
    return os.path.join(root, f"{_LOCK_PREFIX}{run_id}{_LOCK_SUFFIX}")


class WriterLock:
    """The lock a live writer holds on ``<root>/.dcapix-writer-<run_id>.lock`` (see the module doc)."""

    def __init__(self, root: str, run_id: str) -> None:
        self.path = lock_path(root, run_id)
        self.fd: int | None = None

    def acquire(self) -> None:
        """Create and lock the file; return once the locked file is the one at :attr:`path` (a
        cleaner may remove a lock file in the instant between its creation and its lock)."""
        if self.fd is not None or fcntl is None:
            return
        for _ in range(100):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # a cleaner holds it for an instant: try again
                os.close(fd)
                continue
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self.fd = fd
                return
            os.close(fd)
        raise OSError(f"cannot lock {self.path!r}")  # pragma: no cover - 100 lost races in a row

    def release(self) -> None:
        """Remove the lock file, then unlock (nothing of this writer is left to protect)."""
        fd, self.fd = self.fd, None
        if fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.path)
        os.close(fd)


def writer_alive(root: str, run_id: str, own: str | None = None) -> bool:
    """Whether the writer ``run_id`` still holds its lock under ``root``. A dead writer's lock file is
    removed (holding its lock, so no writer can be creating it at that moment)."""
    if run_id == own or fcntl is None:
        return True
    path = lock_path(root, run_id)
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return False
    except OSError:
        return True  # cannot tell (permissions): leave it alone
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        with contextlib.suppress(FileNotFoundError):
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                os.remove(path)
        return False
    finally:
        os.close(fd)


def _staged(name: str, prefix: str) -> tuple[str, str]:
    """``(kind, run)`` of a staging directory name ``<prefix>tmp-<run>`` / ``<prefix>old-<run>``
    (``run`` non-empty, without ``/``); ``("", "")`` for any other name."""
    if not name.startswith(prefix):
        return "", ""
    rest = name[len(prefix) :]
    kind, run = rest[:3], rest[4:]
    if kind not in ("tmp", "old") or rest[3:4] != "-" or not run or "/" in run:
        return "", ""
    return kind, run


def remove_stale(root: str, safe: str, own: str) -> list[str]:
    """Remove the temporary files of stream directory ``<root>/<safe>`` left by dead writers (part
    files, side files, overwrite staging directories, replaced directories once the stream directory
    is back), and the lock files of dead writers in ``root``.
    Returns the paths removed. ``own`` is the run id of the calling writer (never removed)."""
    removed: list[str] = []
    alive: dict[str, bool] = {}

    def dead(run: str) -> bool:
        if run not in alive:
            alive[run] = writer_alive(root, run, own)
        return not alive[run]

    stream_dir = os.path.join(root, safe)
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        with os.scandir(stream_dir) as it:
            entries = [(e.name, e.path) for e in it if e.is_file(follow_symlinks=False)]
        for name, path in sorted(entries):
            m = _TMP_RE.match(name)
            if m and dead(m.group("run")):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(path)
                    removed.append(path)
    # ``.<safe>.tmp-<run>`` / ``.<safe>.old-<run>`` (a run id without ``/``), matched without
    # compiling a regular expression per stream (~1 M instructions each, issue 15)
    staged_prefix = f".{safe}."
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        with os.scandir(root) as it:
            dirs = [(e.name, e.path) for e in it if e.is_dir(follow_symlinks=False)]
        for name in sorted(os.listdir(root)):  # lock files of dead writers with nothing left behind
            lm = _LOCK_RE.match(name)
            if lm:
                dead(lm.group("run"))
        for name, path in sorted(dirs):
            kind, run = _staged(name, staged_prefix)
            if not run or not dead(run):
                continue
            if kind == "old" and not os.path.isdir(stream_dir):
                continue  # the only copy of the stream: put back by the adapter's recovery
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed
