"""Connector processes: finding the executable, private config files, spawning, stderr, errors.

Every tap or target the bridge runs is a :class:`Connector`:

* its executable is looked up in ``DCAPIX_SINGER_PATH`` (directories, ``os.pathsep``-separated),
  next to the running Python, then on ``PATH`` (a path is used as it is);
* its config, catalog and state files live in a private directory (mode 0700, files 0600,
  removed when the process is done; directories left by a killed run are removed by the next
  one, once their owner's pid is gone);
* it dies with the runner: ``PR_SET_PDEATHSIG`` (Linux) makes the kernel send it SIGKILL when the
  thread that started it ends, so a killed runner leaves no orphan behind;
* its stderr is read by a thread: each line goes to the ``dc_api_x.singer`` logger (secrets
  redacted) and the last lines are kept, so an error names the executable and the last line it
  wrote.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from dc_api_x.exceptions import AdapterError, ConfigError
from dc_api_x.logs import redact

__all__ = ["PATH_ENV", "Connector", "private_dir", "resolve_command", "write_private_json"]

log = logging.getLogger("dc_api_x.singer")

#: Extra directories searched for connector executables, before ``PATH``.
PATH_ENV = "DCAPIX_SINGER_PATH"
_DIR_PREFIX = "dcapix-bridge-"
#: the unindented ``module.ExceptionName: message`` line that ends a Python traceback
_EXCEPTION_LINE = re.compile(r"^(?:[A-Za-z_]\w*\.)*[A-Za-z_]\w*(?:: |$)")
_TAIL = 40


# ---------------------------------------------------------------------------- the executable
def resolve_command(command: str | Sequence[str], *, adapter: str = "singer") -> list[str]:
    """The argv of ``command`` (a string is split like a shell would) with its executable resolved."""
    argv = shlex.split(command) if isinstance(command, str) else [str(a) for a in command]
    if not argv or not argv[0]:
        raise ConfigError(
            f"adapter {adapter!r}: option 'executable': empty command", plugin=adapter, field="executable"
        )
    exe = argv[0]
    if os.sep in exe:
        if not (os.path.isfile(exe) and os.access(exe, os.X_OK)):
            raise ConfigError(
                f"adapter {adapter!r}: option 'executable': {exe!r} is not an executable file",
                plugin=adapter,
                field="executable",
            )
        return argv
    dirs = [d for d in os.environ.get(PATH_ENV, "").split(os.pathsep) if d]
    dirs.append(str(Path(sys.executable).parent))
    found = shutil.which(exe, path=os.pathsep.join(dirs)) or shutil.which(exe)
    if found is None:
        raise ConfigError(
            f"adapter {adapter!r}: option 'executable': {exe!r} not found in {PATH_ENV}, next to "
            f"{sys.executable} or on PATH",
            plugin=adapter,
            field="executable",
        )
    return [found, *argv[1:]]


# ---------------------------------------------------------------------- private config files
def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - someone else's process
        return True
    return True


def _remove_stale_dirs(root: str) -> None:
    """Remove private directories of bridge processes that no longer run (a SIGKILLed runner)."""
    try:
        names = os.listdir(root)
    except OSError:  # pragma: no cover
        return
    for name in names:
        if not name.startswith(_DIR_PREFIX):
            continue
        pid_text = name[len(_DIR_PREFIX) :].split("-", 1)[0]
        if not pid_text.isdigit() or int(pid_text) == os.getpid() or _pid_alive(int(pid_text)):
            continue
        path = os.path.join(root, name)
        try:
            if os.stat(path).st_uid == os.getuid():
                shutil.rmtree(path, ignore_errors=True)
                log.debug("removed %s (left by a process that is gone)", path)
        except OSError:  # pragma: no cover - raced with another cleaner
            pass


@contextlib.contextmanager
def private_dir() -> Iterator[str]:
    """A directory only this user can read (0700), removed afterwards. Stale ones of dead runs go
    first, so no config file with secrets outlives the next run."""
    root = tempfile.gettempdir()
    _remove_stale_dirs(root)
    path = tempfile.mkdtemp(prefix=f"{_DIR_PREFIX}{os.getpid()}-", dir=root)
    try:
        os.chmod(path, 0o700)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def write_private_json(directory: str, name: str, data: Any) -> str:
    """Write ``data`` as JSON to ``directory/name`` (mode 0600, flushed to disk); return the path."""
    path = os.path.join(directory, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, default=str)
        fh.flush()
        os.fsync(fh.fileno())
    return path


# ------------------------------------------------------------------------------ the children
_prctl: Callable[..., int] | None = None
_PR_SET_PDEATHSIG = 1


def _load_prctl() -> Callable[..., int] | None:
    """``prctl`` of the C library, looked up in the parent (the child must not import or lock)."""
    global _prctl
    if _prctl is None and sys.platform.startswith("linux"):
        try:
            import ctypes

            _prctl = ctypes.CDLL(None, use_errno=True).prctl
        except (OSError, AttributeError):  # pragma: no cover - no libc prctl
            _prctl = None
    return _prctl


def _die_with_parent(prctl: Callable[..., int] | None, parent: int) -> Callable[[], None]:
    def setup() -> None:  # pragma: no cover - runs in the child between fork and exec
        if prctl is not None:
            prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            if os.getppid() != parent:  # the parent died before prctl: do not run orphaned
                os._exit(1)

    return setup


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(-code).name
    except ValueError:  # pragma: no cover
        return f"signal {-code}"


class Connector:
    """One running tap or target.

    :param argv: the resolved command and its arguments.
    :param role: ``"tap"`` or ``"target"`` (for messages).
    :param where: how errors name the adapter and stream, e.g. ``"adapter 'singer', stream 'x'"``.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        role: str,
        where: str,
        env: Mapping[str, str] | None = None,
        stdin: Any = subprocess.DEVNULL,
        stream: str | None = None,
    ) -> None:
        self.argv = list(argv)
        self.role = role
        self.where = where
        self.stream = stream
        self.name = os.path.basename(self.argv[0])
        self.tail: collections.deque[str] = collections.deque(maxlen=_TAIL)
        self._lines = 0
        self._exception: tuple[int, str] | None = None
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.proc: subprocess.Popen[bytes] = subprocess.Popen(
            self.argv,
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=full_env,
            bufsize=1 << 20,
            preexec_fn=_die_with_parent(_load_prctl(), os.getpid()),
        )
        self._stderr = threading.Thread(
            target=self._read_stderr, name=f"dcapix-singer-{self.name}-stderr", daemon=True
        )
        self._stderr.start()

    # -- stderr ------------------------------------------------------------------------------------
    def _read_stderr(self) -> None:
        pipe = self.proc.stderr
        assert pipe is not None
        indented = False
        for raw in iter(pipe.readline, b""):
            line = redact(raw.decode("utf-8", errors="replace").rstrip())
            if not line:
                continue
            self._lines += 1
            if indented and _EXCEPTION_LINE.match(line):  # follows a traceback's frame lines
                self._exception = (self._lines, line.strip())
            indented = line[:1].isspace()
            self.tail.append(line)
            if log.isEnabledFor(logging.INFO):
                log.info("[%s] %s", self.name, line)
        pipe.close()

    def last_line(self) -> str:
        """The connector's last message on stderr (redacted): the exception line of a Python
        traceback that ended at most a few lines before the end (not the hint printed after it),
        else the last line."""
        self._stderr.join(timeout=5)
        if self._exception is not None and self._lines - self._exception[0] <= 5:
            return self._exception[1]
        for line in reversed(self.tail):
            if line.strip():
                return line.strip()
        return "(nothing on stderr)"

    # -- lifecycle ---------------------------------------------------------------------------------
    @property
    def stdout(self) -> IO[bytes]:
        assert self.proc.stdout is not None
        return self.proc.stdout

    @property
    def stdin(self) -> IO[bytes]:
        assert self.proc.stdin is not None
        return self.proc.stdin

    def wait(self, timeout: float | None = None) -> int:
        rc = self.proc.wait(timeout=timeout)
        self._stderr.join(timeout=5)
        return rc

    def stop(self, grace: float = 5.0) -> None:
        """Terminate the process (SIGTERM, then SIGKILL after ``grace`` seconds); no error."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.terminate()
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError, ValueError):
                    pipe.close()
        self._stderr.join(timeout=5)

    def exit_error(self, rc: int) -> AdapterError:
        """The one-line error of a connector that exited with ``rc``."""
        how = f"was killed by {_signal_name(rc)}" if rc < 0 else f"exited with code {rc}"
        return self.error(self.last_line(), subject=f"{self.role} {self.name} {how}")

    def error(self, message: str, *, subject: str = "") -> AdapterError:
        """One line: where (adapter, executable, stream), ``subject`` as it is, ``message`` redacted.

        The names are not redacted: a secret that happens to be part of an executable's name
        (password ``postgres``, executable ``tap-postgres``) must not hide which one failed."""
        text = redact(" ".join(message.splitlines()))
        head = f"{self.where}: {subject}: " if subject else f"{self.where}: "
        return AdapterError(head + text, adapter="singer", stream=self.stream)
