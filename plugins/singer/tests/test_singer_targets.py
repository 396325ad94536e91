"""Third-party Singer targets from PyPI (each in its own venv) as destinations of ``dcapix run``.

* target-jsonl 0.1.4 (singer-python 5.8): every value exactly, several commits (one target run
  per checkpoint: ``commit: exit``), an incremental second run, the target killed with the runner;
* meltanolabs-target-postgres 0.8.1 (singer-sdk 0.54): upsert and overwrite through the runner's
  load method, exact values in PostgreSQL, a one-line error naming the target;
* target-dcapix (singer-sdk, this repository's own executable): ``commit: echo`` keeps one target
  process for all checkpoints, and falls back to ending the input when the echo does not come;
* a target that never prints a STATE (``cat`` into a file) finishes with the documented behaviour.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from singer_support import dcapix, kill_after_first_checkpoint, write_config

from dc_api_x.runner.state import open_state_store

pytestmark = pytest.mark.usefixtures("singer_plugins")


# ---------------------------------------------------------------------------- the SQLite source
DDL = (
    "CREATE TABLE events (id INTEGER PRIMARY KEY, name TEXT NOT NULL, price DECIMAL(10,2), ratio REAL,"
    " at TIMESTAMP, day DATE, flag BOOLEAN, note TEXT, version INTEGER NOT NULL)"
)
NAMES = ["plain", "héllo ✓ ünïcode", 'quote " \\ back', "new\nline", "emoji 🎉"]


def event(i: int, version: int = 1) -> tuple[Any, ...]:
    return (
        i,
        NAMES[i % 5] + f" {i}",
        f"{i % 1000}.{i % 100:02d}",
        [0.1, 1 / 3, -2.5e-7, 12345.678][i % 4],
        f"2024-01-{1 + i % 28:02d} {i % 24:02d}:04:05.{i % 1000000:06d}",
        f"2024-02-{1 + i % 29:02d}",
        i % 2,
        None if i % 3 == 0 else f"note {i}",
        version,
    )


def make_source(path: Path, first: int, last: int, version: int = 1) -> None:
    con = sqlite3.connect(path)
    try:
        con.execute("CREATE TABLE IF NOT EXISTS events" + DDL.split("events", 1)[1])
        con.executemany(
            "INSERT OR REPLACE INTO events VALUES (?,?,?,?,?,?,?,?,?)",
            [event(i, version) for i in range(first, last + 1)],
        )
        con.commit()
    finally:
        con.close()


def sql_source(path: Path, *, replication_key: str | None = "id", batch_size: int = 1000) -> dict[str, Any]:
    stream: dict[str, Any] = {"name": "events", "table": "events", "primary_keys": ["id"]}
    if replication_key:
        stream["replication_key"] = replication_key
    return {"adapter": "sql", "url": f"sqlite:///{path}", "streams": [stream], "batch_size": batch_size}


def expect_json(i: int, version: int = 1) -> dict[str, Any]:
    """The record of ``event(i)`` in Singer JSON form (what a target receives)."""
    e = event(i, version)
    return {
        "id": e[0],
        "name": e[1],
        "price": str(Decimal(e[2]).quantize(Decimal("0.01"))),
        "ratio": e[3],
        "at": dt.datetime.fromisoformat(e[4]).isoformat(),
        "day": e[5],
        "flag": bool(e[6]),
        "note": e[7],
        "version": e[8],
    }


def read_jsonl(directory: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for f in sorted(directory.glob("*.jsonl")):
        with open(f, encoding="utf-8") as fh:
            rows.extend(json.loads(line, parse_float=Decimal) for line in fh)
    return rows


# --------------------------------------------------------------------------------- target-jsonl
def test_sqlite_into_target_jsonl_exact_with_checkpoints_and_incremental(
    project: Path, target_jsonl: str, capsys: pytest.CaptureFixture[str]
) -> None:
    make_source(project / "src.db", 1, 1000)
    dst = {
        "adapter": "singer",
        "executable": target_jsonl,
        "config": {"destination_path": str(project / "out"), "do_timestamp_file": False},
    }
    write_config(
        project, {"ev": {"source": sql_source(project / "src.db", batch_size=200), "destination": dst}}
    )
    rc, out, err = dcapix(capsys, "run", "ev", "--no-progress", "--json", "--checkpoint-rows", "400")
    assert rc == 0, err
    m = json.loads(out)
    assert m["rows"] == 1000 and m["streams"][0]["checkpoints"] == 2  # 2 commits + the final one
    rows = read_jsonl(project / "out")
    assert len(rows) == 1000  # every commit ran the target once: nothing lost, nothing twice
    for r in rows:
        want = expect_json(r["id"])
        assert {**r, "ratio": float(r["ratio"])} == want
    with open_state_store(project_dir=project) as s:
        assert s.get("ev", "events")["replication_key_value"] == 1000

    make_source(project / "src.db", 1001, 1007)
    rc, out, err = dcapix(capsys, "run", "ev", "--no-progress", "--json")
    assert rc == 0, err
    assert json.loads(out)["rows"] == 7
    rows = read_jsonl(project / "out")
    assert sorted(r["id"] for r in rows) == list(range(1, 1008))


def test_killed_runner_kills_the_target_and_resumes(
    project: Path, target_jsonl: str, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = 40_000
    make_source(project / "src.db", 1, rows)
    dst = {
        "adapter": "singer",
        "executable": target_jsonl,
        "config": {"destination_path": str(project / "out"), "do_timestamp_file": False},
    }
    write_config(
        project, {"ev": {"source": sql_source(project / "src.db", batch_size=2000), "destination": dst}}
    )
    kill_after_first_checkpoint(project, "ev", "events", "target-jsonl", "--checkpoint-rows", "4000")
    with open_state_store(project_dir=project) as s:
        done = s.get("ev", "events")["replication_key_value"]
    assert 4000 <= done < rows
    ids = [r["id"] for r in read_jsonl(project / "out")]
    assert set(range(1, done + 1)) <= set(ids)  # every committed row is in the files

    rc, out, err = dcapix(capsys, "run", "ev", "--no-progress", "--json")
    assert rc == 0, err
    assert json.loads(out)["rows"] == rows - done
    ids = [r["id"] for r in read_jsonl(project / "out")]
    assert set(ids) == set(range(1, rows + 1))
    # append: rows the killed target wrote after its last commit arrive again (at least once);
    # at most what was sent after that commit: one checkpoint interval plus one batch
    assert 0 <= len(ids) - rows <= 4000 + 2000


# ------------------------------------------------------------------------------ target-postgres
def _pg_target(exe: str, db: Any, **config: Any) -> dict[str, Any]:
    return {
        "adapter": "singer",
        "executable": exe,
        "config": {**db.tap_config(), "default_target_schema": "public", **config},
    }


@pytest.mark.postgres
def test_sqlite_into_target_postgres_upsert_then_overwrite(
    project: Path, pg_db: Any, target_postgres: str, capsys: pytest.CaptureFixture[str]
) -> None:
    make_source(project / "src.db", 1, 300)
    src = sql_source(project / "src.db", replication_key="version")
    dst = {**_pg_target(target_postgres, pg_db, hard_delete=True), "load_method": "upsert"}
    write_config(project, {"ev": {"source": src, "destination": dst}})
    rc, out, err = dcapix(capsys, "run", "ev", "--no-progress", "--json")
    assert rc == 0, err
    assert json.loads(out)["rows"] == 300

    def pg_rows() -> dict[int, dict[str, Any]]:
        cols = ["id", "name", "price", "ratio", "at", "day", "flag", "note", "version"]
        got = pg_db.rows(f"SELECT {', '.join(cols)} FROM public.events ORDER BY id")
        return {r[0]: dict(zip(cols, r, strict=True)) for r in got}

    def check(rows: dict[int, dict[str, Any]], ids: range, version: int) -> None:
        assert sorted(rows) == list(ids)
        for i in ids:
            r, want = rows[i], expect_json(i, version)
            assert r["name"] == want["name"] and r["note"] == want["note"] and r["version"] == version
            assert str(r["price"]) == want["price"]  # a decimal string stays that exact text
            assert float(r["ratio"]) == want["ratio"] and r["flag"] == want["flag"]
            at = r["at"] if isinstance(r["at"], dt.datetime) else dt.datetime.fromisoformat(str(r["at"]))
            assert at.replace(tzinfo=None) == dt.datetime.fromisoformat(want["at"])
            assert str(r["day"])[:10] == want["day"]

    check(pg_rows(), range(1, 301), 1)

    # new versions of 100 rows: the incremental run moves only them, the target upserts them
    make_source(project / "src.db", 101, 200, version=2)
    rc, out, err = dcapix(capsys, "run", "ev", "--no-progress", "--json")
    assert rc == 0, err
    assert json.loads(out)["rows"] == 100
    rows = pg_rows()
    assert len(rows) == 300 and sorted(i for i, r in rows.items() if r["version"] == 2) == list(
        range(101, 201)
    )
    check({i: rows[i] for i in range(101, 201)}, range(101, 201), 2)

    # overwrite: the target gets load_method overwrite (which target-postgres 0.8.1 ignores) and
    # ACTIVATE_VERSION before and after the records (which it honours with hard_delete)
    con = sqlite3.connect(project / "src.db")
    con.execute("DELETE FROM events WHERE id > 50")
    con.commit()
    con.close()
    rc, out, err = dcapix(
        capsys, "run", "ev", "--no-progress", "--json", "--full-refresh", "--load-method", "overwrite"
    )
    assert rc == 0, err
    rows = pg_rows()
    assert sorted(rows) == list(range(1, 51))


@pytest.mark.postgres
def test_target_error_is_one_line_naming_the_target(
    project: Path, pg_db: Any, target_postgres: str, capsys: pytest.CaptureFixture[str]
) -> None:
    make_source(project / "src.db", 1, 10)
    dst = _pg_target(target_postgres, pg_db, password="Wr0ng-pa55word")
    write_config(project, {"ev": {"source": sql_source(project / "src.db"), "destination": dst}})
    rc, _, err = dcapix(capsys, "run", "ev", "--no-progress")
    assert rc == 1
    lines = [ln for ln in err.splitlines() if ln.startswith("dcapix: error:")]
    assert len(lines) == 1, err
    assert lines[0].startswith("dcapix: error: adapter 'singer': target target-postgres exited with code 1: ")
    assert "password authentication failed" in lines[0], lines[0]
    assert "Wr0ng-pa55word" not in err and "Traceback" not in err
    with open_state_store(project_dir=project) as s:
        assert s.get("ev", "events") is None  # nothing committed, nothing stored


# ---------------------------------------------------------------------------------- commit modes
SPEC_SCHEMA = {
    "type": "object",
    "properties": {"id": {"type": "integer"}, "name": {"type": ["string", "null"]}},
}


def _drive(adapter: Any, batches: int, size: int) -> list[bool]:
    """start_write, then per batch write + flush, then finish_write; whether the same target
    process served each flush."""
    from dc_api_x import Batch, StreamSpec

    spec = StreamSpec("items", SPEC_SCHEMA, key_properties=("id",), replication_key="id")
    adapter.start_write(spec)
    first = adapter._target
    same = []
    for k in range(batches):
        recs = [{"id": i, "name": f"n{i}"} for i in range(k * size, (k + 1) * size)]
        adapter.write(spec, Batch.from_records(recs, schema=SPEC_SCHEMA, bookmark={"id": (k + 1) * size - 1}))
        adapter.flush(spec)
        same.append(adapter._target is first and first is not None)
    adapter.finish_write(spec)
    return same


def _jsonl_ids(directory: Path) -> list[int]:
    ids = []
    for f in directory.rglob("*.jsonl"):
        ids.extend(json.loads(line)["id"] for line in f.read_text().splitlines())
    return sorted(ids)


def test_commit_echo_keeps_one_target_process(singer_plugins: Any, tmp_path: Path) -> None:
    from dc_api_x import create_adapter

    exe = str(Path(sys.executable).parent / "target-dcapix")
    # target-dcapix prints a STATE as soon as no sink holds unwritten records: with batches of
    # its batch_size_rows each checkpoint is echoed at once
    cfg = {"adapter": "jsonl", "path": str(tmp_path / "echo"), "batch_size_rows": 100}
    with create_adapter({"adapter": "singer", "executable": exe, "config": cfg, "commit": "echo"}) as a:
        assert _drive(a, 4, 100) == [True, True, True, True]
    assert _jsonl_ids(tmp_path / "echo") == list(range(400))
    # an echo that does not come (records held below batch_size_rows): commit by ending the input
    cfg = {**cfg, "path": str(tmp_path / "late"), "batch_size_rows": 10_000}
    opts = {"adapter": "singer", "executable": exe, "config": cfg, "commit": "echo", "commit_timeout": 0.5}
    with create_adapter(opts) as a:
        assert _drive(a, 2, 100) == [False, False]
    assert _jsonl_ids(tmp_path / "late") == list(range(200))
    # exit (the default): a new target run after each commit
    cfg = {**cfg, "path": str(tmp_path / "exit")}
    with create_adapter({"adapter": "singer", "executable": exe, "config": cfg}) as a:
        assert _drive(a, 2, 100) == [False, False]
    assert _jsonl_ids(tmp_path / "exit") == list(range(200))


def test_target_that_prints_no_state_commits_on_exit(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A target that never prints a STATE: its exit code 0 is the commit (documented)."""
    make_source(project / "src.db", 1, 250)
    out = project / "messages.singer"
    dst = {"adapter": "singer", "executable": ["sh", "-c", 'cat >> "$0"', str(out)]}
    write_config(
        project, {"ev": {"source": sql_source(project / "src.db", batch_size=100), "destination": dst}}
    )
    rc, stdout, err = dcapix(capsys, "run", "ev", "--no-progress", "--json", "--checkpoint-rows", "100")
    assert rc == 0, err
    assert json.loads(stdout)["rows"] == 250
    msgs = [json.loads(line, parse_float=Decimal) for line in out.read_text(encoding="utf-8").splitlines()]
    records = [m["record"] for m in msgs if m["type"] == "RECORD"]
    assert [r["id"] for r in records] == list(range(1, 251))
    assert records[4] == expect_json(5) | {"ratio": Decimal(str(expect_json(5)["ratio"]))}
    states = [m["value"] for m in msgs if m["type"] == "STATE"]
    assert states[-1]["bookmarks"]["events"]["replication_key_value"] == 250
    assert [s["dcapix_checkpoint"] for s in states] == list(range(1, len(states) + 1))
    assert sum(1 for m in msgs if m["type"] == "SCHEMA") == len(states)  # one target run per commit
    with open_state_store(project_dir=project) as s:
        assert s.get("ev", "events")["replication_key_value"] == 250
