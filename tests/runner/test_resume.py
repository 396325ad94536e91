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
from tests.support.httpserver import cursor_items_source
from tests.support.process import ROOT, cli_with_plugins, kill_when
from tests.support.singer_fakes import fake_singer_pipe

CHILD = cli_with_plugins("tests.runner.support")


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
    write_config(project, fake_singer_pipe(out, rows, sleep=0.01, state_every=every))

    def second_state() -> bool:
        seen = _stored_id(project)
        return seen is not None and seen >= 2 * every

    rc = kill_when(
        project,
        CHILD,
        ["run", "p", "--via-singer", "--no-progress"],
        second_state,
        what="a second STATE stored (the runner stores STATE as it arrives)",
        poll=0.01,
    )
    assert rc == -signal.SIGKILL
    time.sleep(0.3)  # the children die with the runner (PR_SET_PDEATHSIG)
    saved = _stored_id(project)
    assert saved is not None and 2 * every <= saved < rows and saved % every == 0
    before = [int(x) for x in out.read_text().split()]
    # the state never runs ahead of what the target committed (it fsyncs before echoing a STATE)
    assert set(range(1, saved + 1)) <= set(before)

    write_config(project, fake_singer_pipe(out, rows, state_every=every))
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
    write_config(project, fake_singer_pipe(out, 100, state_every=25))
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


@pytest.mark.slow  # ~25 s on a loaded 2-core machine (two singer-sdk start-ups, twice)
def test_sigkill_real_tap_and_target_after_second_state_resumes_from_it(project, http_server, capsys) -> None:
    """The same with the real executables: tap-dcapix over a slow loopback HTTP API (a page of 3 rows
    every 0.1 s) | target-dcapix into JSONL, checkpoints by time; the runner is SIGKILLed once it
    stored its second STATE; the rerun moves the rows after it only, loses none, and leaves no
    temporary file of the killed target behind."""
    import shutil

    if shutil.which("tap-dcapix", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("tap-dcapix / target-dcapix are not installed next to this Python (pip install -e .)")
    total, per_page = 150, 3
    delay = [0.1]

    def items(req):  # type: ignore[no-untyped-def]
        time.sleep(delay[0])
        since = int(req.arg("since") or 0)
        rows = [{"id": i, "name": f"n{i}"} for i in range(since + 1, total + 1)]
        start = int(req.arg("cursor") or 0)
        nxt = str(start + per_page) if start + per_page < len(rows) else None
        return (
            200,
            {"content-type": "application/json"},
            {"data": rows[start : start + per_page], "next": nxt},
        )

    http_server.route("GET", "/items", items)
    out = project / "out"
    source = cursor_items_source(http_server.url)
    write_config(
        project,
        {
            "p": {
                "source": source,
                "destination": {"adapter": "jsonl", "path": str(out)},
                "checkpoint_seconds": 0.3,
            }
        },
    )

    def stored() -> int | None:
        db = project / ".dcapix" / "state.db"
        if not db.exists():
            return None
        with open_state_store(path=str(db)) as s:
            state = singer_state(s, "p")
        bm = ((state or {}).get("bookmarks") or {}).get("items") or {}
        value = bm.get("replication_key_value")
        return None if value is None else int(value)

    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "dc_api_x.cli", "run", "p", "--via-singer", "--no-progress"],
        cwd=project,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    seen: list[int] = []
    deadline = time.monotonic() + 90
    try:
        while time.monotonic() < deadline and len(seen) < 2:
            if proc.poll() is not None:
                err = proc.stderr.read().decode() if proc.stderr else ""
                pytest.fail(f"the run ended before its second STATE was stored (rc {proc.returncode}): {err}")
            value = stored()
            if value is not None and value not in seen:
                seen.append(value)
            time.sleep(0.01)
        assert len(seen) == 2, f"states stored while running: {seen}"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    time.sleep(0.5)  # the children die with the runner (PR_SET_PDEATHSIG)
    saved = stored()
    assert saved is not None and seen[1] <= saved < total

    def ids() -> list[int]:
        return [
            json.loads(x)["id"] for f in sorted(out.rglob("*.jsonl")) for x in f.read_text().splitlines() if x
        ]

    before = ids()
    assert set(range(1, saved + 1)) <= set(before)  # the state never ran ahead of committed rows
    delay[0] = 0.0
    assert dcapix("run", "p", "--via-singer", "--json", "--no-progress") == 0
    m = json.loads(capsys.readouterr().out)
    assert m["rows"] == total - saved  # only the rows after the stored STATE were moved
    after = ids()
    assert sorted(set(after)) == list(range(1, total + 1))  # nothing lost
    assert len(after) - len(before) == total - saved
    assert not [p for p in out.rglob(".*") if p.name.endswith(".tmp")]  # the killed target's temp parts
    assert stored() == total


def test_failed_via_singer_run_says_what_the_target_committed(rplugins, project, capsys) -> None:
    """A Singer target reports no committed row count: a failed process-mode run says its rows are the
    records the tap sent and that the target committed up to the last stored STATE."""
    out = project / "ids.txt"
    write_config(project, fake_singer_pipe(out, 100, crash_at=57, state_every=10))
    assert dcapix("run", "p", "--via-singer", "--no-progress") == 1
    summary = capsys.readouterr().out
    assert "failed" in summary
    assert 'the target committed those up to the last stored STATE ({"id": 50})' in summary
