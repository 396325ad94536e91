"""Checkpoints by time next to the row bound (issue 17, item 2): a slow source (a real loopback HTTP
server answering a page every 0.15 s) gets its state stored every ``checkpoint_seconds`` although the
row bound is never reached — in process (the runner) and with ``--via-singer`` (tap-dcapix emits a
STATE after every batch, target-dcapix drains by ``batch_wait_limit_seconds``, the runner stores
each STATE as it arrives)."""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.runner.conftest import dcapix, write_config
from tests.runner.support import make_source_db
from tests.support.httpserver import cursor_items_source

PAGES, PER_PAGE, DELAY = 16, 3, 0.15


def _slow_items(req: Any) -> tuple[int, dict[str, str], Any]:
    time.sleep(DELAY)
    since = int(req.arg("since") or 0)
    rows = [{"id": i, "name": f"n{i}"} for i in range(1, PAGES * PER_PAGE + 1) if i > since]
    start = int(req.arg("cursor") or 0)
    page = rows[start : start + PER_PAGE]
    nxt = str(start + PER_PAGE) if start + PER_PAGE < len(rows) else None
    return 200, {"content-type": "application/json"}, {"data": page, "next": nxt}


def _jsonl_ids(out: Path) -> list[int]:
    return sorted(json.loads(x)["id"] for f in out.rglob("*.jsonl") for x in f.read_text().splitlines() if x)


def test_in_process_checkpoint_by_time_on_a_slow_http_source(rplugins, project, http_server, capsys) -> None:
    http_server.route("GET", "/items", _slow_items)
    out = project / "out"
    write_config(
        project,
        {
            "p": {
                "source": cursor_items_source(http_server.url),
                "destination": {"adapter": "jsonl", "path": str(out)},
                "checkpoint_rows": 1_000_000,  # never reached
                "checkpoint_seconds": 0.5,
            }
        },
    )
    t0 = time.monotonic()
    assert dcapix("run", "p", "--json", "--no-progress") == 0
    secs = time.monotonic() - t0
    (s,) = json.loads(capsys.readouterr().out)["streams"]
    assert s["rows"] == PAGES * PER_PAGE
    # one checkpoint per 0.5 s of a run of >= 2.4 s (the final state is not counted)
    assert 2 <= s["checkpoints"] <= secs / 0.5 + 1
    assert _jsonl_ids(out) == list(range(1, PAGES * PER_PAGE + 1))
    # without the time bound the same run stores no state before its end
    write_config(
        project,
        {
            "q": {
                "source": cursor_items_source(http_server.url),
                "destination": {"adapter": "jsonl", "path": str(project / "out2")},
                "checkpoint_rows": 1_000_000,
                "checkpoint_seconds": 3600,
            }
        },
    )
    assert dcapix("run", "q", "--json", "--no-progress") == 0
    (s,) = json.loads(capsys.readouterr().out)["streams"]
    assert s["checkpoints"] == 0


def test_checkpoint_seconds_flag_overrides_the_config(rplugins, project, capsys) -> None:
    src, dst = project / "src.db", project / "dst.db"
    make_source_db(src, 60)
    write_config(
        project,
        {
            "p": {
                "source": {"adapter": "t_sqlite_src", "path": str(src), "batch_size": 5, "delay": 0.1},
                "destination": {"adapter": "t_sqlite_dst", "path": str(dst)},
                "checkpoint_rows": 1_000_000,
            }
        },
    )
    assert dcapix("run", "p", "--json", "--no-progress", "--checkpoint-seconds", "0.3") == 0
    (s,) = json.loads(capsys.readouterr().out)["streams"]
    assert s["checkpoints"] >= 2
    assert dcapix("run", "p", "--no-progress", "--checkpoint-seconds", "0") == 1
    assert "--checkpoint-seconds must be a number of seconds > 0" in capsys.readouterr().err


def test_via_singer_checkpoint_by_time_on_a_slow_http_source(rplugins, project, http_server, capsys) -> None:
    if shutil.which("tap-dcapix", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("tap-dcapix / target-dcapix are not installed next to this Python (pip install -e .)")
    http_server.route("GET", "/items", _slow_items)
    out = project / "out"
    write_config(
        project,
        {
            "p": {
                "source": cursor_items_source(http_server.url),
                "destination": {"adapter": "jsonl", "path": str(out)},
                "checkpoint_rows": 1_000_000,
                "checkpoint_seconds": 0.5,
            }
        },
    )
    assert dcapix("run", "p", "--via-singer", "--json", "--no-progress") == 0
    m = json.loads(capsys.readouterr().out)
    (s,) = m["streams"]
    # STATEs stored while the run went on (by time: target-dcapix's batches of 100,000 rows are never
    # full), plus the final one
    assert s["checkpoints"] >= 3, m
    assert _jsonl_ids(out) == list(range(1, PAGES * PER_PAGE + 1))


def test_a_stalled_source_gets_what_was_written_checkpointed_while_it_stalls(rplugins, project) -> None:
    """The batch that arrived just after a checkpoint is not left unflushed until the next batch: while
    the runner waits for a source that stalls (3 s here), it checkpoints what it wrote once
    ``checkpoint_seconds`` went by."""
    import threading

    from dc_api_x.runner.config import load_config
    from dc_api_x.runner.pipeline import RunOptions, run_pipeline
    from dc_api_x.runner.state import open_state_store

    src, dst = project / "src.db", project / "dst.db"
    make_source_db(src, 30)
    write_config(
        project,
        {
            "p": {
                "source": {
                    "adapter": "t_sqlite_src",
                    "path": str(src),
                    "batch_size": 10,
                    "stall_after": 1,
                    "stall": 3.0,
                },
                "destination": {"adapter": "t_sqlite_dst", "path": str(dst)},
                "checkpoint_rows": 1_000_000,
                "checkpoint_seconds": 0.3,
            }
        },
    )
    name, pipe = load_config(project / "dcapix.yml").pipeline("p")
    done: list[object] = []
    with open_state_store(project_dir=project) as store:
        t = threading.Thread(target=lambda: done.append(run_pipeline(name, pipe, store, RunOptions())))
        t0 = time.monotonic()
        t.start()
        seen = None
        while time.monotonic() - t0 < 2.5 and seen is None:
            with open_state_store(project_dir=project) as peek:
                seen = peek.get("p", "items")
            time.sleep(0.05)
        stored_at = time.monotonic() - t0
        t.join(60)
    assert done, "the run did not finish"
    assert seen == {"id": 10}, "nothing was checkpointed while the source stalled"
    assert stored_at < 2.5
    assert done[0].streams["items"].rows == 30  # type: ignore[attr-defined]
