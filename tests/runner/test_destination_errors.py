"""``dcapix run`` to a file destination that cannot be created or written: the status table, then one
line naming the adapter, stream and path, exit code 1 — no traceback (issue 16)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(project: Path, dest_path: str, fmt: str) -> subprocess.CompletedProcess[str]:
    (project / "in.jsonl").write_text('{"id": 1, "name": "a"}\n{"id": 2, "name": "b"}\n')
    (project / "src.json").write_text(json.dumps({"adapter": "jsonl", "path": str(project / "in.jsonl")}))
    (project / "dst.json").write_text(json.dumps({"adapter": fmt, "path": dest_path}))
    argv = ["run", "--source", "src.json", "--destination", "dst.json", "--no-progress"]
    return subprocess.run(
        [sys.executable, "-m", "dc_api_x.cli", *argv],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def _check(run: subprocess.CompletedProcess[str], fmt: str, shown: str, reason: str) -> None:
    assert run.returncode == 1, run.stderr
    assert "Traceback" not in run.stderr and "Traceback" not in run.stdout
    assert "failed" in run.stdout  # the status table first
    errors = [line for line in run.stderr.splitlines() if line.startswith("dcapix: error:")]
    assert errors == [f"dcapix: error: adapter {fmt!r}, stream 'in': cannot write to {shown!r}: {reason}"], (
        run.stderr
    )


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])  # (csv shares start_write with both)
def test_destination_under_a_regular_file(tmp_path: Path, fmt: str) -> None:
    (tmp_path / "afile").write_text("x")
    dest = str(tmp_path / "afile" / "out")
    _check(_run(tmp_path, dest, fmt), fmt, dest, "Not a directory")


def test_destination_in_a_read_only_directory(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("running as root: a mode-0555 directory is writable to root (see the /sys case)")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        dest = str(ro / "out")
        _check(_run(tmp_path, dest, "parquet"), "parquet", dest, "Permission denied")
    finally:
        ro.chmod(0o755)


def test_destination_the_kernel_refuses(tmp_path: Path) -> None:
    """A directory nobody may create, root included (sysfs refuses mkdir)."""
    if not Path("/sys/kernel").is_dir():
        pytest.skip("no sysfs mounted at /sys")
    run = _run(tmp_path, "/sys/dcapix-cannot-write-here", "parquet")
    assert run.returncode == 1 and "Traceback" not in run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("dcapix: error:")]
    assert len(errors) == 1 and "cannot write to '/sys/dcapix-cannot-write-here'" in errors[0], run.stderr
