"""A cached ``--about`` for the Singer console scripts (``tap-dcapix``): answered without singer-sdk.

``--about`` describes every setting of every installed adapter, which means importing singer-sdk
(about a second) and every adapter plugin. Meltano calls it on ``meltano install``/``config``/``run``
and the answer only changes when the environment does, so the console script answers a bare
``--about`` (optionally ``--format json|markdown``) from a cache file and runs the full command
only when the cache has no answer for this environment; any other command line goes straight to
the singer-sdk command.

The cache key covers everything the answer depends on: the Python version, every installed
distribution on ``sys.path`` (its ``.dist-info``/``.egg-info`` directory name and modification
time — an install, upgrade or removal changes it), the modification times of the source files of
``dc_api_x`` and the plugin's own package (editable checkouts), and every ``DC_API_X_*`` variable of
the environment (plugin groups, blocked plugins). The file lives in ``$XDG_CACHE_HOME/dc-api-x``
(default ``~/.cache/dc-api-x``), one per command and format, written atomically (temp file + fsync
+ rename); when the directory cannot be written the answer is simply not cached.
``DC_API_X_ABOUT_CACHE=0`` turns the cache off (e.g. while editing a third-party plugin installed
in editable mode, whose source files are not part of the key).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import io
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

__all__ = ["ABOUT_CACHE_ENV", "about_cache_key", "about_format", "run_with_cached_about"]

#: Set to ``0`` to answer every ``--about`` from the full command.
ABOUT_CACHE_ENV = "DC_API_X_ABOUT_CACHE"
_FORMATS = ("json", "markdown")


def about_format(argv: Sequence[str]) -> str | Literal[False] | None:
    """For a command line that only asks for ``--about``: its format (``None``: the default text,
    ``"json"``, ``"markdown"``); ``False`` for every other command line."""
    args = list(argv)
    if "--about" not in args:
        return False
    args.remove("--about")
    fmt: str | None = None
    if len(args) == 2 and args[0] == "--format":
        fmt = args[1]
    elif len(args) == 1 and args[0].startswith("--format="):
        fmt = args[0].split("=", 1)[1]
    elif args:
        return False
    if fmt is not None:
        fmt = fmt.lower()
        if fmt not in _FORMATS:
            return False  # the SDK's command names the valid choices
    return fmt


def _tree_mtimes(h: hashlib._Hash, package: str) -> None:
    """Hash the names and modification times of a top-level package's source files."""
    spec = importlib.util.find_spec(package)  # a top-level name: nothing is imported
    roots = list(spec.submodule_search_locations or []) if spec is not None else []
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
            for f in sorted(filenames):
                if f.endswith(".py"):
                    p = os.path.join(dirpath, f)
                    with contextlib.suppress(OSError):
                        h.update(f"{p}:{os.stat(p).st_mtime_ns}\n".encode())


def about_cache_key(command: str, fmt: str | None, packages: Sequence[str]) -> str:
    """The cache key of ``command --about [--format fmt]`` in this environment (module docstring)."""
    h = hashlib.sha256()
    h.update(f"{command}\0{fmt}\0{sys.version}\0{sys.executable}\n".encode())
    for var in sorted(os.environ):
        if var.startswith("DC_API_X_"):
            h.update(f"{var}={os.environ[var]}\n".encode())
    for entry in sys.path:
        try:
            with os.scandir(entry or ".") as it:
                dists = sorted(
                    (e.name, e.stat().st_mtime_ns)
                    for e in it
                    if e.name.endswith((".dist-info", ".egg-info", ".pth"))
                )
        except OSError:
            continue
        h.update(f"{entry}\0{dists}\n".encode())
    for package in ("dc_api_x", *packages):
        _tree_mtimes(h, package)
    return h.hexdigest()[:32]


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "dc-api-x"


def _write_atomic(path: Path, text: str, stale: str) -> None:
    """Write ``path`` (temp file + fsync + rename), then remove the answers of earlier environments
    (``stale*``) and temp files a killed run left behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    for old in [*path.parent.glob(f"{stale}*"), *path.parent.glob(f".{stale}*.tmp")]:
        if old != path and old.name != os.path.basename(tmp):
            with contextlib.suppress(OSError):
                old.unlink()


def run_with_cached_about(command: str, target: str, packages: Sequence[str] = ()) -> None:
    """The console script ``command`` whose singer-sdk plugin class is ``target``
    (``"module:Class"``): a bare ``--about`` is answered from the cache when it can be (module
    docstring), everything else runs ``Class.cli()``. ``packages``: the plugin's own top-level
    packages, whose source files are part of the key."""
    fmt = about_format(sys.argv[1:])
    enabled = os.environ.get(ABOUT_CACHE_ENV, "1").strip().lower() not in ("0", "false", "no")
    path: Path | None = None
    prefix = f"about-{command}-{fmt or 'text'}-"
    if fmt is not False and enabled:
        try:
            path = _cache_dir() / f"{prefix}{about_cache_key(command, fmt, packages)}.txt"
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            pass
        else:
            sys.stdout.write(text)
            sys.stdout.flush()
            return
    module, _, attr = target.partition(":")
    cls = getattr(importlib.import_module(module), attr)
    if path is None:
        cls.cli()
        return
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        cls.print_about(fmt)
    text = buf.getvalue()
    with contextlib.suppress(OSError):
        _write_atomic(path, text, prefix)
    sys.stdout.write(text)
    sys.stdout.flush()
