"""Real third-party Singer connectors from PyPI, each in its own virtualenv, cached across runs.

``connector("tap-jsonl", "tap-jsonl==0.3.1")`` returns the path of the executable, installing the
requirement into ``$DCAPIX_SINGER_VENVS`` (default ``~/.cache/dcapix-singer-venvs``) under a
directory keyed by the requirement and the Python version, so only a clean machine pays the
install. Installs are serialised with a file lock (parallel sessions share the cache); a venv is
used only once its install finished (a ``.ok`` marker), a half-made one is rebuilt.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

CACHE = Path(os.environ.get("DCAPIX_SINGER_VENVS") or Path.home() / ".cache" / "dcapix-singer-venvs")

# The connectors the tests run (name==version pinned: the tests check exact behaviour).
TAP_JSONL = ("tap-jsonl", ("tap-jsonl==0.3.1", "pyarrow>=15"))  # singer-sdk tap (+ parquet BATCH)
TAP_POSTGRES = ("tap-postgres", ("meltanolabs-tap-postgres==0.10.0",))  # singer-sdk SQL tap
TARGET_JSONL = ("target-jsonl", ("target-jsonl==0.1.4",))  # singer-python 5 target
TARGET_POSTGRES = ("target-postgres", ("meltanolabs-target-postgres==0.8.1",))  # singer-sdk target


def venv_dir(requirements: tuple[str, ...]) -> Path:
    key = hashlib.sha256(
        ("\n".join(requirements) + f"\n{sys.version_info[0]}.{sys.version_info[1]}").encode()
    ).hexdigest()[:12]
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", requirements[0])[:40]
    return CACHE / f"{slug}-{key}"


def connector(executable: str, requirements: tuple[str, ...]) -> str:
    """The path of ``executable`` in a (cached) venv holding ``requirements``; skips loudly when
    the requirement cannot be installed (PyPI unreachable)."""
    target = venv_dir(requirements)
    exe = target / "bin" / executable
    if (target / ".ok").exists() and exe.exists():
        return str(exe)
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(str(target) + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / ".ok").exists() and exe.exists():
            return str(exe)
        shutil.rmtree(target, ignore_errors=True)
        python = getattr(sys, "_base_executable", None) or sys.executable
        steps = [
            [python, "-m", "venv", str(target)],
            [str(target / "bin" / "python"), "-m", "pip", "install", "-q", *requirements],
        ]
        for cmd in steps:
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=1200)
            if res.returncode != 0:
                shutil.rmtree(target, ignore_errors=True)
                tail = (res.stderr or res.stdout).strip().splitlines()[-3:]
                msg = (
                    f"!!! cannot install {' '.join(requirements)} into a venv ({' | '.join(tail)}) "
                    "-- this Singer interop test is SKIPPED"
                )
                warnings.warn(msg, stacklevel=2)
                pytest.skip(msg)
        freeze = subprocess.run(
            [str(target / "bin" / "python"), "-m", "pip", "freeze"], capture_output=True, text=True
        )
        (target / "freeze.txt").write_text(freeze.stdout)
        (target / ".ok").write_text("\n".join(requirements) + "\n")
    return str(exe)
