"""Resume after SIGKILL in process mode: ``dcapix run --via-singer`` stores every STATE the target
emits as it arrives, so a killed run resumes from the last one (issue 17, item 1)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dc_api_x.runner.process import singer_state
from dc_api_x.runner.state import open_state_store
from tests.runner.conftest import dcapix, write_config

ROOT = Path(__file__).resolve().parents[2]
FAKES = Path(__file__).parent / "singer_fakes"
CHILD = (
    "import sys\nfrom dc_api_x import enable_plugins\nfrom tests.runner import support\n"
    "enable_plugins(entry_points=False, plugins=[support])\n"
    "from dc_api_x.cli import main\nsys.exit(main(sys.argv[1:]))\n"
)


def _pipe(out: Path, rows: int, **tap_extra: object) -> dict:
    return {
        "p": {
            "source": {"adapter": "t_sqlite_src", "path": "unused"},
            "destination": {"adapter": "t_sqlite_dst", "path": "unused"},
            "singer": {
                "tap": f"{sys.executable} {FAKES / 'fake_tap.py'}",
                "target": f"{sys.executable} {FAKES / 'fake_target.py'}",
                "tap_config": {"rows": rows, **tap_extra},
                "target_config": {"path": str(out)},
            },
        }
    }


def _stored_id(project: Path) -> int | None:
    db = project / ".dcapix" / "state.db"
    if not db.exists():
        return None
    with open_state_store(path=str(db)) as s:
        state = singer_state(s, "p")
    if not state:
        return None
    return int(state["bookmarks"]["items"]["id"])


def test_sigkill_via_singer_after_second_state_resumes_from_it(rplugins, project, capsys) -> None:
    out = project / "ids.txt"
    rows, every = 400, 20
    write_config(project, _pipe(out, rows, sleep=0.01, state_every=every))
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, "run", "p", "--via-singer", "--no-progress"],
        cwd=project,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                err = proc.stderr.read().decode() if proc.stderr else ""
                pytest.fail(f"the run ended before its second STATE was stored (rc {proc.returncode}): {err}")
            seen = _stored_id(project)
            if seen is not None and seen >= 2 * every:
                break
            time.sleep(0.01)
        else:
            pytest.fail("no second STATE stored within 60 s: the runner does not store STATE as it arrives")
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    time.sleep(0.3)  # the children die with the runner (PR_SET_PDEATHSIG)
    saved = _stored_id(project)
    assert saved is not None and 2 * every <= saved < rows and saved % every == 0
    before = [int(x) for x in out.read_text().split()]
    # the state never runs ahead of what the target committed (it fsyncs before echoing a STATE)
    assert set(range(1, saved + 1)) <= set(before)

    write_config(project, _pipe(out, rows, state_every=every))
    assert dcapix("run", "p", "--via-singer", "--json", "--no-progress") == 0
    m = json.loads(capsys.readouterr().out)
    assert m["rows"] == rows - saved  # the rerun moved the rows after the stored STATE only
    ids = [int(x) for x in out.read_text().split()]
    assert ids[len(before) :] == list(range(saved + 1, rows + 1))
    assert sorted(set(ids)) == list(range(1, rows + 1))  # nothing lost
    assert _stored_id(project) == rows


def test_via_singer_stores_each_state_while_running(rplugins, project) -> None:
    """In-process check of the same: every distinct STATE is stored once, as it arrives (the run's
    history shows the checkpoints), not only at the end."""
    from dc_api_x.runner.config import load_config
    from dc_api_x.runner.pipeline import RunOptions
    from dc_api_x.runner.process import run_via_singer

    out = project / "ids.txt"
    write_config(project, _pipe(out, 100, state_every=25))
    cfg = load_config(project / "dcapix.yml")
    name, pipe = cfg.pipeline("p")
    seen: list[dict] = []
    with open_state_store(project_dir=project) as store:
        real = store.set_many

        def spy(pipeline, items, run_id=None):  # type: ignore[no-untyped-def]
            items = list(items)
            seen.extend(v for s, p, v in items if s == "items")
            return real(pipeline, items, run_id=run_id)

        store.set_many = spy  # type: ignore[method-assign]
        metrics = run_via_singer(name, pipe, store, RunOptions())
    # 25, 50, 75, 100 from the periodic STATEs; the final STATE repeats 100 and is not stored again
    assert [v["id"] for v in seen] == [25, 50, 75, 100]
    assert metrics.streams["items"].checkpoints == 4
