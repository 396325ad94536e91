"""``dcapix run --via-singer``: two real processes joined by a pipe, stderr prefixes, the target's
last STATE stored (also when the tap dies), temp configs 0600 and removed."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from dc_api_x.runner.process import singer_state
from dc_api_x.runner.state import open_state_store
from tests.runner.conftest import dcapix, write_config
from tests.support.singer_fakes import fake_singer_pipe


def _pipe(out: Path, rows: int, **tap_extra: object) -> dict:
    return fake_singer_pipe(out, rows, password="s3cr3t-pass", **tap_extra)  # (a secret to redact)


def _ids(path: Path) -> list[int]:
    return [int(x) for x in path.read_text().split()] if path.exists() else []


def test_via_singer_end_to_end_and_incremental(rplugins, project, capsys) -> None:
    out = project / "ids.txt"
    write_config(project, _pipe(out, 95))
    assert dcapix("run", "p", "--via-singer", "--json", "--no-progress") == 0
    cap = capsys.readouterr()
    m = json.loads(cap.out)
    assert m["mode"] == "via-singer" and m["status"] == "done" and m["rows"] == 95
    assert "[tap] tap secret" in cap.err and "s3cr3t-pass" not in cap.err
    assert "[target] target done" in cap.err
    assert _ids(out) == list(range(1, 96))
    with open_state_store(project_dir=project) as s:
        assert singer_state(s, "p") == {"bookmarks": {"items": {"id": 95}}}
    # second run: the tap gets --state and emits only new records
    write_config(project, _pipe(out, 120))
    assert dcapix("run", "p", "--via-singer", "--no-progress") == 0
    assert _ids(out) == list(range(1, 121))


def test_via_singer_tap_crash_stores_last_target_state(rplugins, project, capsys) -> None:
    out = project / "ids.txt"
    write_config(project, _pipe(out, 100, crash_at=57))
    assert dcapix("run", "p", "--via-singer", "--no-progress") == 1
    err = capsys.readouterr().err
    assert "tap crashing on purpose" in err and "exited with code 3" in err
    with open_state_store(project_dir=project) as s:
        assert singer_state(s, "p") == {"bookmarks": {"items": {"id": 50}}}
    write_config(project, _pipe(out, 100))
    assert dcapix("run", "p", "--via-singer", "--no-progress") == 0
    ids = _ids(out)
    assert sorted(set(ids)) == list(range(1, 101))  # nothing lost
    assert len(ids) - 100 == 7  # at-least-once: only the records after the last state (51..57) twice


def test_via_singer_dry_run_and_missing_executable(rplugins, project, capsys) -> None:
    pipes = _pipe(project / "x", 1)
    pipes["p"]["singer"]["tap"] = "no-such-tap-dcapix-exe"
    write_config(project, pipes)
    assert dcapix("run", "p", "--via-singer", "--no-progress") == 1
    assert "singer executable 'no-such-tap-dcapix-exe' not found" in capsys.readouterr().err


def test_killed_runner_leaves_no_orphans(rplugins, project) -> None:
    import os
    import signal
    import subprocess
    import time

    out = project / "ids.txt"
    # no STATE until the end: the children have nothing to write to the dead runner, so only
    # PR_SET_PDEATHSIG can end them
    write_config(project, _pipe(out, 10_000, sleep=0.01, state_every=1_000_000))
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    child = (
        "import sys\nfrom dc_api_x import enable_plugins\nfrom tests.runner import support\n"
        "enable_plugins(entry_points=False, plugins=[support])\n"
        "from dc_api_x.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", child, "run", "p", "--via-singer", "--no-progress"],
        cwd=project,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    kids: list[int] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(kids) < 2:
        try:
            kids = [
                int(p)
                for t in os.listdir(f"/proc/{proc.pid}/task")
                for p in Path(f"/proc/{proc.pid}/task/{t}/children").read_text().split()
            ]
        except FileNotFoundError:
            break
        time.sleep(0.05)
    assert len(kids) == 2, kids
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    deadline = time.monotonic() + 5
    alive = kids
    while alive and time.monotonic() < deadline:
        alive = [
            k
            for k in kids
            if os.path.exists(f"/proc/{k}") and Path(f"/proc/{k}/stat").read_text().split()[2] != "Z"
        ]
        time.sleep(0.05)
    assert not alive, f"tap/target survived the runner: {alive}"


def test_run_via_singer_takes_the_run_lock_for_a_library_caller(rplugins, project) -> None:
    """``run_via_singer`` (not only the CLI) holds the pipeline's lock: a second run of the same
    pipeline is refused while the first holds it, and the lock is free again afterwards."""
    import pytest

    from dc_api_x.exceptions import StateError
    from dc_api_x.runner.config import load_config
    from dc_api_x.runner.process import run_via_singer

    out = project / "ids.txt"
    write_config(project, _pipe(out, 5))
    cfg = load_config(project / "dcapix.yml")
    name, pipe = cfg.pipeline("p")
    with open_state_store(project_dir=project) as store:
        with store.lock(name), pytest.raises(StateError, match="already running"):
            run_via_singer(name, pipe, store)
        assert _ids(out) == []  # nothing ran
        metrics = run_via_singer(name, pipe, store)
        assert metrics.status == "done" and _ids(out) == [1, 2, 3, 4, 5]
        with store.lock(name):  # released
            pass
