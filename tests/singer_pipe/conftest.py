"""Fixtures of the pipe tests: ``tap-dcapix | target-dcapix`` as two real processes joined by a pipe."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class PipeRun:
    tap_rc: int
    target_rc: int
    states: list[dict[str, Any]]
    tap_stderr: str
    target_stderr: str

    @property
    def ok(self) -> bool:
        return self.tap_rc == 0 and self.target_rc == 0

    @property
    def last_state(self) -> dict[str, Any]:
        assert self.states, f"the target emitted no STATE; stderr: {self.target_stderr[-2000:]}"
        return self.states[-1]


def run_pipe(
    tmp: Path,
    tap_config: dict[str, Any],
    target_config: dict[str, Any],
    *,
    state: dict[str, Any] | None = None,
    timeout: int = 180,
) -> PipeRun:
    """Run ``tap-dcapix --config T [--state S] | target-dcapix --config G``; STATE lines of the target."""
    tmp.mkdir(parents=True, exist_ok=True)
    n = len(list(tmp.glob("tap-*.json")))
    tap_cfg, tgt_cfg = tmp / f"tap-{n}.json", tmp / f"target-{n}.json"
    tap_cfg.write_text(json.dumps(tap_config))
    tgt_cfg.write_text(json.dumps(target_config))
    tap_cmd = [str(BIN / "tap-dcapix"), "--config", str(tap_cfg)]
    if state is not None:
        state_path = tmp / f"state-{n}.json"
        state_path.write_text(json.dumps(state))
        tap_cmd += ["--state", str(state_path)]
    tap_err, tgt_err = tmp / f"tap-{n}.err", tmp / f"target-{n}.err"
    with tap_err.open("wb") as te, tgt_err.open("wb") as ge:
        tap = subprocess.Popen(tap_cmd, stdout=subprocess.PIPE, stderr=te, cwd=tmp)
        target = subprocess.Popen(
            [str(BIN / "target-dcapix"), "--config", str(tgt_cfg)],
            stdin=tap.stdout,
            stdout=subprocess.PIPE,
            stderr=ge,
            cwd=tmp,
        )
        assert tap.stdout is not None
        tap.stdout.close()  # the target owns the read end now
        out, _ = target.communicate(timeout=timeout)
        tap.wait(timeout=timeout)
    states = [json.loads(line) for line in out.decode().splitlines() if line.strip()]
    return PipeRun(tap.returncode, target.returncode, states, tap_err.read_text(), tgt_err.read_text())


@pytest.fixture
def pipe(tmp_path: Path):
    """``pipe(tap_config, target_config, state=None)`` → :class:`PipeRun`."""

    def run(
        tap_config: dict[str, Any], target_config: dict[str, Any], *, state: dict[str, Any] | None = None
    ) -> PipeRun:
        result = run_pipe(tmp_path / "pipe", tap_config, target_config, state=state)
        return result

    return run
