"""``dcapix`` as a real process, for tests that check exit codes and the one-line errors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

__all__ = ["CLI", "ROOT", "cli_with_plugins", "dcapix", "kill_when"]

ROOT = Path(__file__).resolve().parents[2]
#: ``python -c`` code running the dcapix CLI (the installed plugins)
CLI = "import sys\nfrom dc_api_x.cli import main\nsys.exit(main(sys.argv[1:]))\n"


def dcapix(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``dcapix ARGS`` as a real process in ``cwd`` (a loopback server may run in the test's process)."""
    return subprocess.run(
        [sys.executable, "-m", "dc_api_x.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def cli_with_plugins(module: str) -> str:
    """``python -c`` code running the dcapix CLI with the built-ins and the plugin module ``module``
    (e.g. ``tests.runner.support``'s test adapters) only."""
    package, _, name = module.rpartition(".")
    return (
        f"import sys\nfrom dc_api_x import enable_plugins\nfrom {package} import {name}\n"
        f"enable_plugins(entry_points=False, plugins=[{name}])\n"
        "from dc_api_x.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    )


def kill_when(
    cwd: Path,
    code: str,
    args: list[str],
    ready: Callable[[], object],
    *,
    what: str,
    timeout: float = 60.0,
    poll: float = 0.02,
) -> int:
    """Run ``python -c code ARGS`` in ``cwd`` (the repository on ``PYTHONPATH``), call ``ready()``
    every ``poll`` seconds until it is true, then SIGKILL the process; returns its exit code. The
    test fails if the process ends first or ``what`` does not happen within ``timeout`` seconds."""
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                err = proc.stderr.read().decode() if proc.stderr else ""
                pytest.fail(f"the process ended before it could be killed (rc {proc.returncode}): {err}")
            if ready():
                break
            time.sleep(poll)
        else:
            pytest.fail(f"{what} did not happen within {timeout:.0f} s")
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    return proc.returncode
