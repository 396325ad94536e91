"""``dcapix`` as a real process, for tests that check exit codes and the one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

__all__ = ["dcapix"]


def dcapix(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``dcapix ARGS`` as a real process in ``cwd`` (a loopback server may run in the test's process)."""
    return subprocess.run(
        [sys.executable, "-m", "dc_api_x.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
