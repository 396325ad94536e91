"""``batch_wait_limit_seconds``: with a slow tap the target writes, flushes and emits the waiting STATE
by time, long before a batch is full (issue 17, item 2)."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.singer_target.support import messages_text, rec, schema_msg, state


def _target_argv() -> list[str]:
    exe = Path(sys.executable).parent / "target-dcapix"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "target_dcapix"]


def _jsonl_ids(out: Path) -> list[int]:
    return sorted(json.loads(x)["id"] for f in out.rglob("*.jsonl") for x in f.read_text().splitlines() if x)


@pytest.mark.parametrize("limit", [0.5])
def test_slow_tap_gets_its_state_emitted_by_time(tmp_path: Path, limit: float) -> None:
    out = tmp_path / "out"
    cfg = tmp_path / "config.json"
    # batches of 100,000 rows: by rows alone nothing would be written before the end of the input
    cfg.write_text(json.dumps({"adapter": "jsonl", "path": str(out), "batch_wait_limit_seconds": limit}))
    proc = subprocess.Popen(
        [*_target_argv(), "--config", str(cfg)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout], daemon=True).start()  # type: ignore[union-attr]
    try:
        proc.stdin.write(messages_text([schema_msg(), *(rec(i) for i in range(1, 11)), state(10)]))
        proc.stdin.flush()
        t0 = time.monotonic()
        got = None
        i = 11
        while time.monotonic() - t0 < 30 and got is None:
            # a record every 0.1 s, none of them followed by a STATE yet
            proc.stdin.write(messages_text([rec(i)]))
            proc.stdin.flush()
            i += 1
            try:
                got = json.loads(lines.get(timeout=0.1))
            except queue.Empty:
                pass
        waited = time.monotonic() - t0
        assert got == {"bookmarks": {"users": {"replication_key_value": 10}}}, "no STATE before the end"
        assert proc.poll() is None  # still running: emitted by time, not at the end of the input
        assert limit <= waited + 0.2 and waited < limit + 10
        # the STATE never runs ahead: every record before it is in a committed file
        assert set(range(1, 11)) <= set(_jsonl_ids(out))
        proc.stdin.write(messages_text([state(i - 1)]))
        proc.stdin.close()
        assert proc.wait(timeout=60) == 0, proc.stderr.read() if proc.stderr else ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert _jsonl_ids(out) == list(range(1, i))


def test_bad_batch_wait_limit_is_one_line(tmp_path: Path) -> None:
    cfg = tmp_path / "config.json"
    cfg.write_text(
        json.dumps({"adapter": "jsonl", "path": str(tmp_path), "batch_wait_limit_seconds": "soon"})
    )
    run = subprocess.run(
        [*_target_argv(), "--config", str(cfg)], input="", capture_output=True, text=True, timeout=60
    )
    assert run.returncode != 0
    assert "Traceback" not in run.stderr
    assert "batch_wait_limit_seconds" in run.stderr
