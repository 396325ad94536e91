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

    def run(
        messages: list[Any], *, args: tuple[str, ...] = (), inprocess: bool = False, **config: Any
    ) -> Run:
        counter["n"] += 1
        out = tmp_path / f"out{counter['n']}"
        cfg = {"adapter": "probe", "path": str(out), **config}
        cfg_path = tmp_path / f"config{counter['n']}.json"
        cfg_path.write_text(json.dumps(cfg))
        if inprocess:
            return _run_inprocess(cfg_path, messages_text(messages), out)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = subprocess.run(
            [sys.executable, "-m", "tests.singer_target.run_target", "--config", str(cfg_path), *args],
            input=messages_text(messages),
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=env,
            timeout=120,
        )
        return Run(proc.returncode, proc.stdout, proc.stderr, out)

    return run


def _run_inprocess(cfg_path: Path, text: str, out: Path) -> Run:
    """The same run inside this process (for behaviour tests: no interpreter start-up per run)."""
    import contextlib
    import io
    import types

    from target_dcapix.target import TargetDcApiX

    from dc_api_x import enable_plugins
    from tests.singer_target import probe_adapter

    ps = enable_plugins(entry_points=False, plugins=[probe_adapter])
    stdout, stderr = io.StringIO(), io.StringIO()
    rc = 0
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                TargetDcApiX.invoke(
                    config=types.SimpleNamespace(config=json.loads(cfg_path.read_text()), parse_env=False),
                    file_input=io.BytesIO(text.encode()),
                )  # type: ignore[arg-type]
            except SystemExit as exc:
                rc = int(exc.code or 0)
    finally:
        ps.close()
    return Run(rc, stdout.getvalue(), stderr.getvalue(), out)
