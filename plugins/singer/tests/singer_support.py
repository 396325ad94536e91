"""Helpers of the bridge's end-to-end tests: ``dcapix`` in-process, pipeline files, and a runner
started as its own process and SIGKILLed after its first stored checkpoint."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from dc_api_x.runner.state import open_state_store

#: ``python -c CHILD run …``: dcapix with the built-ins and the ``singer`` plugin
CHILD = (
    "import sys, dc_api_x_singer\n"
    "from dc_api_x import enable_plugins\n"
    "enable_plugins(entry_points=False, plugins=[dc_api_x_singer])\n"
    "from dc_api_x.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def dcapix(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``dcapix ARGV`` in this process: (exit code, stdout, stderr)."""
    from dc_api_x.cli import main

    capsys.readouterr()
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def write_config(directory: Path, pipelines: dict[str, Any]) -> Path:
    path = directory / "dcapix.yml"
    path.write_text(yaml.safe_dump({"pipelines": pipelines}, sort_keys=False))
    return path


def children(pid: int) -> list[int]:
    """The pids whose parent is ``pid``."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    if int(fh.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    return out


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def kill_after_first_checkpoint(
    project: Path, pipeline: str, stream: str, connector: str, *run_args: str
) -> list[int]:
    """Run ``dcapix run PIPELINE RUN_ARGS`` as a process, SIGKILL it once a checkpoint of ``stream``
    is stored while its ``connector`` child runs; wait until those children are gone (they must die
    with the runner) and return their pids."""
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, "run", pipeline, "--no-progress", *run_args],
        cwd=project,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    kids: list[int] = []
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                err = proc.stderr.read().decode()[-500:] if proc.stderr else ""
                pytest.fail(f"the run ended before it was killed: {err}")
            db = project / ".dcapix" / "state.db"
            if db.exists():
                with open_state_store(path=str(db)) as s:
                    stored = s.get(pipeline, stream)
                if stored:
                    kids = [
                        p for p in children(proc.pid) if connector in Path(f"/proc/{p}/cmdline").read_text()
                    ]
                    if kids:
                        break
            time.sleep(0.01)
        else:
            pytest.fail("no checkpoint within 120 s")
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    t0 = time.monotonic()
    while any(alive(p) for p in kids) and time.monotonic() - t0 < 10:
        time.sleep(0.05)
    assert not any(alive(p) for p in kids), f"{connector} outlived the killed runner"
    return kids
