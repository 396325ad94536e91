"""Temporary part files of a killed run (issue 17, item 3): a ``dcapix run`` SIGKILLed while writing
Parquet or JSONL leaves a hidden ``.part-….tmp``; the next write of that stream removes it, says so in
the summary, and never touches a live writer's temporary files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from dc_api_x.types import Batch, StreamSpec
from tests.runner.conftest import dcapix, write_config
from tests.runner.support import make_source_db
from tests.support.process import cli_with_plugins, kill_when

CHILD = cli_with_plugins("tests.runner.support")


def _tmp_files(out: Path) -> list[Path]:
    return sorted(p for p in out.rglob(".*") if p.name.endswith(".tmp") or ".tmp-" in p.name)


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
def test_sigkill_while_writing_leaves_a_tmp_part_the_next_run_removes(
    rplugins, project, capsys, fmt: str
) -> None:
    src, out = project / "src.db", project / "out"
    make_source_db(src, 3000)
    pipe = {
        "copy": {
            "source": {"adapter": "t_sqlite_src", "path": str(src), "batch_size": 50, "delay": 0.02},
            "destination": {"adapter": fmt, "path": str(out), "row_group_size": 50},
            "checkpoint_rows": 1000,
        }
    }
    write_config(project, pipe)

    def writing() -> bool:
        parts = [p for p in _tmp_files(out) if p.name.startswith(".part-")]
        return bool(parts) and parts[0].stat().st_size > 0

    kill_when(project, CHILD, ["run", "copy", "--no-progress"], writing, what="a temporary part", poll=0.01)
    left = _tmp_files(out)
    assert [p for p in left if p.name.startswith(".part-")], left  # the kill left one behind

    # a faster rerun: resumes from the last checkpoint and removes what the killed writer left
    pipe["copy"]["source"]["delay"] = 0
    write_config(project, pipe)
    assert dcapix("run", "copy", "--no-progress") == 0
    summary = capsys.readouterr().out
    assert "note: removed 1 stale temporary file of an interrupted write: items/.part-" in summary
    assert _tmp_files(out) == []
    assert not list(out.glob(".dcapix-writer-*"))  # the lock files go with their writers
    # every row arrived (append: rows after the last checkpoint at most twice)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        ids = pq.read_table(out / "items").column("id").to_pylist()
    else:
        ids = [
            json.loads(x)["id"]
            for f in sorted((out / "items").glob("*.jsonl"))
            for x in f.read_text().split("\n")
            if x
        ]
    assert sorted(set(ids)) == list(range(1, 3001))

    # and the history records the note
    assert dcapix("runs", "list", "--json") == 0
    runs = json.loads(capsys.readouterr().out)
    assert dcapix("runs", "show", runs[0]["run_id"], "--json") == 0
    rec = json.loads(capsys.readouterr().out)
    assert any("stale temporary file" in n for s in rec["streams"] for n in s["detail"].get("notes", []))


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
def test_a_live_writers_tmp_parts_are_never_removed(rplugins, tmp_path: Path, fmt: str) -> None:
    from dc_api_x.plugins import create_adapter

    spec = StreamSpec("items", {"type": "object", "properties": {"id": {"type": "integer"}}})
    a = create_adapter({"adapter": fmt, "path": str(tmp_path), "row_group_size": 2})
    b = create_adapter({"adapter": fmt, "path": str(tmp_path), "row_group_size": 2})
    try:
        a.start_write(spec, load_method="append")
        a.write(spec, Batch.from_records([{"id": i} for i in range(5)], schema=spec.schema))
        mine = _tmp_files(tmp_path)
        assert len(mine) == 1 and mine[0].name.startswith(".part-")
        # a second writer of the same stream (another adapter, as another process would be)
        b.start_write(spec, load_method="append")
        assert b.take_notes(spec) == []
        assert _tmp_files(tmp_path) == mine
        b.write(spec, Batch.from_records([{"id": 10}], schema=spec.schema))
        b.finish_write(spec)
        a.finish_write(spec)  # a's part is intact and committed
    finally:
        a.close()
        b.close()
    assert _tmp_files(tmp_path) == []
    assert not list(tmp_path.glob(".dcapix-writer-*"))


def test_stale_overwrite_staging_directory_is_removed(rplugins, tmp_path: Path) -> None:
    """A writer killed during an overwrite leaves ``.<stream>.tmp-<runid>/``; the next write removes
    it once its writer holds no lock."""
    from dc_api_x.plugins import create_adapter

    spec = StreamSpec("items", {"type": "object", "properties": {"id": {"type": "integer"}}})
    dead = create_adapter({"adapter": "parquet", "path": str(tmp_path)})
    dead.start_write(spec, load_method="overwrite")
    dead.write(spec, Batch.from_records([{"id": 1}], schema=spec.schema))
    dead.flush(spec)
    staging = [p for p in tmp_path.iterdir() if p.name.startswith(".items.tmp-")]
    assert len(staging) == 1
    # what SIGKILL does to the writer: its lock goes away with its file descriptor
    assert dead._lock is not None
    os.close(dead._lock.fd)
    dead._lock.fd = None
    dead._writers.clear()
    nxt = create_adapter({"adapter": "parquet", "path": str(tmp_path)})
    try:
        nxt.start_write(spec, load_method="append")
        notes = nxt.take_notes(spec)
        assert len(notes) == 1 and staging[0].name in notes[0]
        assert not staging[0].exists()
        nxt.finish_write(spec)
    finally:
        nxt.close()
        dead.close()


def test_dead_writers_side_file_temp_and_lock_file_are_removed(rplugins, tmp_path: Path) -> None:
    """What a writer killed while replacing ``_schema.jsonschema`` leaves (its temporary side file and
    its lock file, held by nobody now) is removed by the next write; a lock file held by a live writer
    of this process stays."""
    from dc_api_x.adapters.files.stale import WriterLock
    from dc_api_x.plugins import create_adapter

    spec = StreamSpec("items", {"type": "object", "properties": {"id": {"type": "integer"}}})
    (tmp_path / "items").mkdir()
    dead_run = "20200101T000000-deadbeef"
    side = tmp_path / "items" / f"._schema.jsonschema.{dead_run}.tmp"
    side.write_text("{")
    (tmp_path / f".dcapix-writer-{dead_run}.lock").write_text("")
    live = WriterLock(str(tmp_path), "20200101T000001-0123abcd")
    live.acquire()
    live_part = tmp_path / "items" / ".part-00000-20200101T000001-0123abcd.jsonl.tmp"
    live_part.write_text("")
    w = create_adapter({"adapter": "jsonl", "path": str(tmp_path)})
    try:
        w.start_write(spec, load_method="append")
        notes = w.take_notes(spec)
        assert len(notes) == 1 and "removed 1 stale temporary file" in notes[0] and side.name in notes[0]
        assert not side.exists() and not (tmp_path / f".dcapix-writer-{dead_run}.lock").exists()
        assert live_part.exists() and Path(live.path).exists()
        w.write(spec, Batch.from_records([{"id": 1}], schema=spec.schema))
        w.finish_write(spec)
    finally:
        w.close()
        live.release()
    live_part.unlink()
    assert _tmp_files(tmp_path) == [] and not list(tmp_path.glob(".dcapix-writer-*"))
