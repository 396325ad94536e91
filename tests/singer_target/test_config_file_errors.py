"""``target-dcapix --config`` with a missing, unreadable or invalid JSON file: one line on stderr, exit
code 1, no traceback (issue 16)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def _target_argv() -> list[str]:
    exe = Path(sys.executable).parent / "target-dcapix"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "target_dcapix"]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "cannot read the config file: FileNotFoundError"),
        ("{bad json", "config is not valid JSON: JSONDecodeError"),
        ("dir", "cannot read the config file: IsADirectoryError"),
    ],
)
def test_unreadable_config_is_one_line(tmp_path: Path, content: str | None, expected: str) -> None:
    cfg = tmp_path / "config.json"
    if content == "dir":
        cfg.mkdir()
    elif content is not None:
        cfg.write_text(content)
    run = subprocess.run(
        [*_target_argv(), "--config", str(cfg)], input="", capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("target-dcapix: error:")]
    assert len(errors) == 1 and expected in errors[0], run.stderr
    assert run.stdout == ""
