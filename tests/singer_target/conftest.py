"""Fixtures of the target-dcapix tests: run the target as a real process with the ``probe`` adapter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.singer_target.support import ROOT, Run, messages_text


@pytest.fixture
def run_target(tmp_path: Path):
    """``run_target(messages, **config)`` runs target-dcapix (probe adapter) on the messages."""
    counter = {"n": 0}

    def run(messages: list[Any], *, args: tuple[str, ...] = (), **config: Any) -> Run:
        counter["n"] += 1
        out = tmp_path / f"out{counter['n']}"
        cfg = {"adapter": "probe", "path": str(out), **config}
        cfg_path = tmp_path / f"config{counter['n']}.json"
        cfg_path.write_text(json.dumps(cfg))
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = subprocess.run(
            [sys.executable, "-m", "tests.singer_target.run_target", "--config", str(cfg_path), *args],
            input=messages_text(messages), capture_output=True, text=True, cwd=ROOT, env=env, timeout=120,
        )
        return Run(proc.returncode, proc.stdout, proc.stderr, out)

    return run
