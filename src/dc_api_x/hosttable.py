"""A table of hosts shared by the processes of one run: each host's next free request slot and
the end of its pause, for :mod:`dc_api_x.adapters.http_limits`.

``dcapix run --worker-pool processes`` calls :func:`share_across_processes` in the driver before it
starts its workers. That creates the table in a file mapped into memory (``/dev/shm`` where there
is one, else the temporary directory) and names it in the environment variable :data:`ENV`, which
the worker processes inherit; :func:`shared_table` opens it in each process. Slots are read and
written under an ``flock`` of the file; ``time.monotonic`` is the machine's clock, the same in every
process. The driver removes the file at exit; a file left by a driver that was killed is removed by
the next run that creates one (its process is gone).
"""

from __future__ import annotations

import os
import time
from typing import Any

__all__ = ["ENV", "SharedSlot", "SharedTable", "share_across_processes", "shared_table"]

#: the environment variable naming the host table the worker processes of a run share.
ENV = "DC_API_X_HOST_LIMITS"
_PREFIX = "dcapix-hostlimits-"
_SLOT = 32  # 16 bytes of the host's digest, the next free slot and the end of the pause (doubles)
_SLOTS = 128


class SharedSlot:
    """One host's slot in a :class:`SharedTable` (callers hold their limiter's thread lock: the
    ``flock`` excludes the other processes, not the other threads of this one)."""

    def __init__(self, table: SharedTable, offset: int) -> None:
        self.table, self.at = table, offset + 16

    def reserve(self, rate: float | None) -> float:
        t = self.table
        if not rate:  # nothing to take: only a pause to wait for (read without the lock)
            return t.read(self.at)[1] - time.monotonic()
        with t.locked():
            nxt, paused = t.read(self.at)
            now = time.monotonic()
            at = max(now, paused, nxt)
            t.write(self.at, at + 1.0 / rate, paused)
        return at - now

    def pause(self, until: float) -> None:
        t = self.table
        with t.locked():
            nxt, paused = t.read(self.at)
            if until > paused:
                t.write(self.at, nxt, until)

    def paused_until(self) -> float:
        return self.table.read(self.at)[1]


class SharedTable:
    """The host table of a run's processes: ``_SLOTS`` slots in a memory-mapped file."""

    def __init__(self, path: str) -> None:
        import mmap

        self.path = path
        self.fd = os.open(path, os.O_RDWR)
        self.map = mmap.mmap(self.fd, _SLOT * _SLOTS)
        self.pid = os.getpid()

    def locked(self) -> Any:
        import contextlib
        import fcntl

        if self.pid != os.getpid():
            # a forked child: an inherited descriptor shares its lock with the parent's, so the
            # child opens the file again (the mapping is shared memory either way)
            self.fd, self.pid = os.open(self.path, os.O_RDWR), os.getpid()

        @contextlib.contextmanager
        def held() -> Any:
            fcntl.flock(self.fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self.fd, fcntl.LOCK_UN)

        return held()

    def read(self, at: int) -> tuple[float, float]:
        import struct

        nxt, paused = struct.unpack_from("<dd", self.map, at)
        return nxt, paused

    def write(self, at: int, nxt: float, paused: float) -> None:
        import struct

        struct.pack_into("<dd", self.map, at, nxt, paused)

    def slot(self, key: str) -> SharedSlot | None:
        """``key``'s slot (claimed when new), or ``None`` when the table is full (then the host is
        paced per process, as without the table)."""
        import hashlib

        digest = hashlib.blake2b(key.encode(), digest_size=16).digest()
        with self.locked():
            for i in range(_SLOTS):
                at = i * _SLOT
                have = self.map[at : at + 16]
                if have == digest:
                    return SharedSlot(self, at)
                if have == bytes(16):
                    self.map[at : at + 16] = digest
                    return SharedSlot(self, at)
        return None


_table: list[Any] = []  # [path, SharedTable | None] once looked up


def shared_table() -> SharedTable | None:
    """The table named by :data:`ENV` (``None`` when the variable is unset or the file is gone)."""
    path = os.environ.get(ENV)
    if _table and _table[0] == path:
        return _table[1]  # type: ignore[no-any-return]
    table = None
    if path:
        try:
            table = SharedTable(path)
        except (OSError, ValueError):  # removed by its driver: pace this process alone
            table = None
    _table[:] = [path, table]
    return table


def share_across_processes() -> str:
    """Make the host limits of this process and of the processes it starts from now on one table
    (module docstring); returns its path. Idempotent; the file is removed when this process exits."""
    import atexit
    import tempfile

    path = os.environ.get(ENV)
    if path and os.path.exists(path):
        return path
    where = "/dev/shm" if os.access("/dev/shm", os.W_OK) else tempfile.gettempdir()
    _remove_orphans(where)
    fd, path = tempfile.mkstemp(prefix=f"{_PREFIX}{os.getpid()}-", dir=where)
    try:
        os.ftruncate(fd, _SLOT * _SLOTS)
    finally:
        os.close(fd)
    os.environ[ENV] = path
    mine = os.getpid()

    def remove() -> None:
        if os.getpid() == mine:  # not in a forked child that runs atexit handlers
            try:
                os.unlink(path)
            except OSError:
                pass

    atexit.register(remove)
    return path


def _remove_orphans(where: str) -> None:
    """Remove host tables whose driver process is gone (a run that was killed)."""
    try:
        names = [n for n in os.listdir(where) if n.startswith(_PREFIX)]
    except OSError:
        return
    for name in names:
        pid = name[len(_PREFIX) :].split("-", 1)[0]
        if not pid.isdigit() or _alive(int(pid)):
            continue
        try:
            os.unlink(os.path.join(where, name))
        except OSError:
            pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
