"""``dcapix run`` in-process with real SQLite endpoints: state ordering, incremental runs, full
refresh, load methods, transforms, selection, limit, dry-run redaction and config errors."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from dc_api_x.prefetch import Prefetcher
from dc_api_x.runner.state import open_state_store
from tests.runner.conftest import dcapix, write_config
from tests.runner.support import make_source_db, table_rows


def _pipes(src: Path, dst: Path, **dest_extra):
    return {
        "copy": {
            "source": {"adapter": "t_sqlite_src", "path": str(src), "batch_size": 50},
            "destination": {"adapter": "t_sqlite_dst", "path": str(dst), **dest_extra},
            "checkpoint_rows": 100,
        }
    }


def _state(project: Path, pipeline: str = "copy", stream: str = "items"):
    with open_state_store(project_dir=project) as s:
        return s.get(pipeline, stream)


def test_incremental_runs_move_only_new_rows(rplugins, project, capsys) -> None:
    src, dst = project / "src.db", project / "dst.db"
    make_source_db(src, 1000)
    write_config(project, _pipes(src, dst))
    assert dcapix("run", "copy", "--json", "--no-progress") == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["status"] == "done" and metrics["rows"] == 1000
    assert metrics["streams"][0]["checkpoints"] >= 9
    assert table_rows(dst, "items") == [(i, f"n{i}", i * 1.5) for i in range(1, 1001)]
    assert _state(project) == {"id": 1000}

    make_source_db(src, 250, start=1001)
    assert dcapix("run", "--json", "--no-progress") == 0  # the only pipeline: name optional
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["rows"] == 250
    rows = table_rows(dst, "items")
    assert [r[0] for r in rows] == list(range(1, 1251))  # append: nothing duplicated
    assert _state(project) == {"id": 1250}

    # nothing new: zero rows, state unchanged
    assert dcapix("run", "copy", "--json", "--no-progress") == 0
    assert json.loads(capsys.readouterr().out)["rows"] == 0
    assert _state(project) == {"id": 1250}


def test_full_refresh_reloads(rplugins, project, capsys) -> None:
    src, dst = project / "src.db", project / "dst.db"
    make_source_db(src, 300)
    write_config(project, _pipes(src, dst, load_method="overwrite"))
    assert dcapix("run", "copy", "--no-progress") == 0
    assert _state(project) == {"id": 300}
    # a changed row is not re-read incrementally ...
    conn = sqlite3.connect(src)
    with conn:
        conn.execute("UPDATE items SET name = 'changed' WHERE id = 3")
    conn.close()
    assert dcapix("run", "copy", "--no-progress") == 0
    assert len(table_rows(dst, "items")) == 0  # overwrite with an empty incremental read: empty
    # ... but --full-refresh reloads everything
    assert dcapix("run", "copy", "--full-refresh", "--no-progress") == 0
    rows = table_rows(dst, "items")
    assert len(rows) == 300 and rows[2] == (3, "changed", 4.5)
    assert _state(project) == {"id": 300}
    out = capsys.readouterr().out
    assert "items" in out and "300" in out


def test_upsert_and_overwrite_do_not_duplicate(rplugins, project) -> None:
    src, dst = project / "src.db", project / "dst.db"
    make_source_db(src, 200)
    write_config(project, _pipes(src, dst, load_method="upsert"))
    for _ in range(2):
        assert dcapix("run", "copy", "--full-refresh", "--no-progress") == 0
    assert [r[0] for r in table_rows(dst, "items")] == list(range(1, 201))


def test_failure_keeps_state_at_last_commit(rplugins, project, capsys) -> None:
    src, dst = project / "src.db", project / "dst.db"
    make_source_db(src, 1000)
    pipes = _pipes(src, dst)
    pipes["copy"]["source"]["fail_at_row"] = 480
    write_config(project, pipes)
    assert dcapix("run", "copy", "--no-progress") == 1
    err = capsys.readouterr().err
    assert "injected failure" in err and "t_sqlite_src" in err
    # checkpoints every 100 rows (batches of 50): the state is the last flushed bookmark,
    # and everything up to it is in the destination
    state = _state(project)
    assert state == {"id": 400}
    committed = [r[0] for r in table_rows(dst, "items")]
    assert committed == list(range(1, 401))
    pipes["copy"]["source"].pop("fail_at_row")
    write_config(project, pipes)
    assert dcapix("run", "copy", "--no-progress") == 0
    assert [r[0] for r in table_rows(dst, "items")] == list(range(1, 1001))


def test_select_limit_and_multiple_streams(rplugins, project, capsys) -> None:
    src, dst = project / "src.db", project / "dst.db"
    make_source_db(src, 120, table="a")
    make_source_db(src, 80, table="b")
    write_config(project, _pipes(src, dst))
    assert dcapix("run", "copy", "--select", "b", "--json", "--no-progress") == 0
    m = json.loads(capsys.readouterr().out)
    assert [s["stream"] for s in m["streams"]] == ["b"] and m["rows"] == 80
    assert dcapix("run", "copy", "--select", "a", "--limit", "70", "--json", "--no-progress") == 0
    assert json.loads(capsys.readouterr().out)["rows"] == 70
    assert _state(project, stream="a") == {"id": 70}
    assert _state(project, stream="b") == {"id": 80}  # subset runs keep the other streams' state
    assert dcapix("run", "copy", "--parallel", "2", "--json", "--no-progress") == 0
    m = json.loads(capsys.readouterr().out)
    assert {s["stream"]: s["rows"] for s in m["streams"]} == {"a": 50, "b": 0}
    assert len(table_rows(dst, "a")) == 120 and len(table_rows(dst, "b")) == 80


@pytest.mark.parametrize("prefetch", ["0", "3"])
def test_prefetch_modes_equal(rplugins, project, prefetch) -> None:
    src, dst = project / "src.db", project / "dst.db"
    make_source_db(src, 333)
    write_config(project, _pipes(src, dst))
    assert dcapix("run", "copy", "--prefetch", prefetch, "--no-progress") == 0
    assert [r[0] for r in table_rows(dst, "items")] == list(range(1, 334))


def test_transforms_between_read_and_write(rplugins, project) -> None:
    from dc_api_x.plugins import get_plugins

    names = get_plugins().transforms.names()
    if "rename" not in names:
        pytest.skip(f"no 'rename' transform registered yet ({names})")
    src, dst = project / "src.db", project / "dst.db"
    make_source_db(src, 10)
    pipes = _pipes(src, dst)
    pipes["copy"]["source"]["transforms"] = [{"type": "rename", "fields": {"name": "label"}}]
    write_config(project, pipes)
    assert dcapix("run", "copy", "--no-progress") == 0
    conn = sqlite3.connect(dst)
    cols = [r[1] for r in conn.execute("PRAGMA table_info(items)")]
    conn.close()
    assert "label" in cols and "name" not in cols
    assert table_rows(dst, "items")[0][:2] == (1, "n1")


def test_dry_run_redacts_secrets(rplugins, project, capsys) -> None:
    src, dst = project / "src.db", project / "dst.db"
    make_source_db(src, 5)
    pipes = _pipes(src, dst)
    pipes["copy"]["source"]["password"] = "hunter2-very-secret"
    write_config(project, pipes)
    assert dcapix("run", "copy", "--dry-run") == 0
    out = capsys.readouterr().out
    assert "hunter2-very-secret" not in out
    plan = json.loads(out)
    assert plan["source"]["password"] == "***"
    assert plan["streams"][0]["name"] == "items"
    assert plan["streams"][0]["read"]["query"] == "SELECT * FROM items"
    assert not dst.exists()  # nothing written


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"source": {"adapter": "nope", "path": "x"}},
            "pipeline 'copy', source: unknown adapter 'nope'; valid: ",
        ),
        ({"source": {"adapter": "t_sqlite_src"}}, "option 'path': required option is missing"),
        (
            {"destination": {"adapter": "t_sqlite_dst", "path": "x", "load_method": "merge"}},
            "unknown load_method 'merge'; valid: append, upsert, overwrite",
        ),
        ({"source": {"adapter": "t_sqlite_src", "path": "x", "bogus": 1}}, "option 'bogus': unknown option"),
    ],
)
def test_bad_config_one_line(rplugins, project, capsys, change, expected) -> None:
    src, dst = project / "src.db", project / "dst.db"
    make_source_db(src, 5)
    pipes = _pipes(src, dst)
    pipes["copy"].update(change)
    write_config(project, pipes)
    assert dcapix("run", "copy") == 1
    err = capsys.readouterr().err.strip()
    assert expected in err and err.count("\n") == 0, err
    if "unknown adapter" in expected:
        assert "t_sqlite_src" in err


def test_unknown_pipeline_and_stream(rplugins, project, capsys) -> None:
    src, dst = project / "src.db", project / "dst.db"
    make_source_db(src, 5)
    write_config(project, {**_pipes(src, dst), "other": _pipes(src, dst)["copy"]})
    assert dcapix("run", "nosuch") == 1
    err = capsys.readouterr().err.strip()
    assert "unknown pipeline 'nosuch'" in err and "valid: copy, other" in err and "\n" not in err
    assert dcapix("run") == 1
    assert "name a pipeline" in capsys.readouterr().err
    assert dcapix("run", "copy", "--select", "zzz") == 1
    err = capsys.readouterr().err.strip()
    assert "unknown stream 'zzz'" in err and "valid: items" in err


def test_no_config_file(project, capsys) -> None:
    assert dcapix("run") == 1
    assert "no pipeline file" in capsys.readouterr().err


def test_adhoc_source_destination(rplugins, project, capsys) -> None:
    src, dst = project / "src.db", project / "dst.db"
    make_source_db(src, 42)
    (project / "s.json").write_text(json.dumps({"adapter": "t_sqlite_src", "path": str(src)}))
    (project / "d.json").write_text(json.dumps({"adapter": "t_sqlite_dst", "path": str(dst)}))
    assert dcapix("run", "--source", "s.json", "--destination", "d.json", "--json", "--no-progress") == 0
    m = json.loads(capsys.readouterr().out)
    assert m["rows"] == 42 and m["pipeline"].startswith("adhoc-")
    assert dcapix("run", "--source", "s.json", "--destination", "d.json", "--json", "--no-progress") == 0
    assert json.loads(capsys.readouterr().out)["rows"] == 0  # incremental ad-hoc too
    assert len(table_rows(dst, "items")) == 42


def test_state_commands(rplugins, project, capsys) -> None:
    src, dst = project / "src.db", project / "dst.db"
    make_source_db(src, 60)
    write_config(project, _pipes(src, dst))
    assert dcapix("run", "copy", "--no-progress") == 0
    capsys.readouterr()
    assert dcapix("state", "list") == 0
    assert "\titems\t" in capsys.readouterr().out
    assert dcapix("state", "show", "--pipeline", "copy", "--stream", "items") == 0
    assert json.loads(capsys.readouterr().out)[0]["value"] == {"id": 60}
    assert dcapix("state", "set", '{"id": 10}', "--pipeline", "copy", "--stream", "items") == 0
    assert dcapix("run", "copy", "--json", "--no-progress") == 0
    assert json.loads(capsys.readouterr().out)["rows"] == 50  # resumed after id 10
    assert dcapix("state", "export", "--pipeline", "copy") == 0
    exported = json.loads(capsys.readouterr().out)
    assert [(e["stream"], e["value"]) for e in exported] == [("items", {"id": 60})]
    assert dcapix("state", "reset") == 1
    assert "needs --pipeline" in capsys.readouterr().err
    assert dcapix("state", "reset", "--pipeline", "copy", "--stream", "items") == 0
    assert dcapix("state", "show", "--pipeline", "copy", "--stream", "items") == 1
    assert dcapix("state", "set", "not json", "--pipeline", "copy", "--stream", "items") == 1
    assert "not valid JSON" in capsys.readouterr().err


def test_prefetcher_propagates_errors_and_closes() -> None:
    def gen():
        yield 1
        yield 2
        raise ValueError("boom")

    items = []
    p = Prefetcher(gen, 1)
    with pytest.raises(ValueError, match="boom"):
        for x in p:
            items.append(x)
    p.close()
    assert items == [1, 2]

    closed = []

    def endless():
        try:
            i = 0
            while True:
                i += 1
                yield i
        finally:
            closed.append(True)

    p = Prefetcher(endless, 2)
    for x in p:
        if x == 5:
            break
    p.close()
    assert closed == [True]


def test_env_references_in_config(rplugins, project, capsys, monkeypatch) -> None:
    src, dst = project / "src.db", project / "dst.db"
    make_source_db(src, 7)
    pipes = _pipes(src, dst)
    pipes["copy"]["source"]["path"] = "${DCAPIX_T_SRC}"
    pipes["copy"]["destination"]["path"] = "${DCAPIX_T_DST:-" + str(dst) + "}"
    write_config(project, pipes)
    assert dcapix("run", "copy", "--no-progress") == 1
    assert "environment variable 'DCAPIX_T_SRC' is not set" in capsys.readouterr().err
    monkeypatch.setenv("DCAPIX_T_SRC", str(src))
    assert dcapix("run", "copy", "--no-progress") == 0
    assert len(table_rows(dst, "items")) == 7


@pytest.mark.postgres
def test_postgres_state_backend(rplugins, project, capsys, pg_url) -> None:
    src, dst = project / "src.db", project / "dst.db"
    make_source_db(src, 150)
    write_config(project, _pipes(src, dst), state_backend=pg_url)
    assert dcapix("run", "copy", "--no-progress") == 0
    capsys.readouterr()
    with open_state_store(pg_url) as s:
        assert s.get("copy", "items") == {"id": 150}
    assert not (project / ".dcapix").exists()
    make_source_db(src, 10, start=151)
    assert dcapix("run", "copy", "--json", "--no-progress") == 0
    assert json.loads(capsys.readouterr().out)["rows"] == 10
    assert dcapix("state", "reset", "--pipeline", "copy") == 0
    with open_state_store(pg_url) as s:
        assert s.get("copy", "items") is None


def test_plain_progress_lines() -> None:
    import io
    import time as _time

    from dc_api_x.runner.progress import Progress, RunMetrics, format_summary

    m = RunMetrics("p")
    buf = io.StringIO()
    with Progress(m, stream=buf, interval=0.05) as prog:
        s = m.stream("orders")
        prog.stream_started("orders")
        s.rows = 1234
        # the ticker's line shows up when the ticker thread runs: wait for it (a loaded machine may
        # take long), not for a fixed time
        deadline = _time.monotonic() + 60
        while "orders: 1,234 rows" not in buf.getvalue() and _time.monotonic() < deadline:
            _time.sleep(0.01)
        s.status, s.finished = "done", _time.monotonic()
        prog.stream_finished(s)
    m.finished, m.status = _time.monotonic(), "done"
    text = buf.getvalue()
    assert "[dcapix] orders: started" in text
    assert "[dcapix] orders: 1,234 rows" in text  # a periodic line while running
    assert "[dcapix] orders: done, 1,234 rows" in text
    summary = format_summary(m)
    assert "orders" in summary and "1,234" in summary and "total" in summary


def test_live_progress_renders() -> None:
    import io

    from dc_api_x.runner.progress import Progress, RunMetrics

    m = RunMetrics("p")
    buf = io.StringIO()
    with Progress(m, stream=buf, live=True):
        m.stream("orders").rows = 42
    assert "orders" in buf.getvalue() and "42" in buf.getvalue()


def test_failing_middle_stream(rplugins, project, capsys) -> None:
    src, dst = project / "src.db", project / "dst.db"
    make_source_db(src, 80, table="a")
    make_source_db(src, 120, table="b")
    make_source_db(src, 50, table="c")
    pipes = _pipes(src, dst)
    pipes["copy"]["source"]["fail_at_row"] = 100  # only b reaches it
    write_config(project, pipes)
    assert dcapix("run", "copy", "--json", "--no-progress") == 1
    m = json.loads(capsys.readouterr().out)
    assert {s["stream"]: s["status"] for s in m["streams"]} == {"a": "done", "b": "failed", "c": "skipped"}
    assert m["status"] == "failed" and "injected failure" in m["error"]
    assert _state(project, stream="a") == {"id": 80}
    assert _state(project, stream="b") is None  # nothing of b was committed
    assert _state(project, stream="c") is None
    assert len(table_rows(dst, "a")) == 80


def test_second_run_of_a_running_pipeline_is_refused(rplugins, project, capsys) -> None:
    src, dst = project / "src.db", project / "dst.db"
    make_source_db(src, 5)
    write_config(project, _pipes(src, dst))
    import subprocess
    import sys

    code = (
        "import time; from dc_api_x.runner.state import open_state_store\n"
        "s = open_state_store(project_dir='.')\n"
        "with s.lock('copy'):\n    print('LOCKED', flush=True); time.sleep(30)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], cwd=project, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "LOCKED"
        assert dcapix("run", "copy", "--no-progress") == 1
        err = capsys.readouterr().err
        assert "pipeline 'copy' is already running" in err and f"pid {holder.pid}" in err
    finally:
        holder.kill()
        holder.wait()
    assert dcapix("run", "copy", "--no-progress") == 0  # the lock died with its holder


def test_example_pipeline_file_validates() -> None:
    from dc_api_x.runner.config import load_config

    root = Path(__file__).resolve().parents[2]
    cfg = load_config(root / "dcapix.example.yml")
    assert set(cfg.pipelines) == {"shop_to_lake", "pg_copy", "api_to_jsonl"}
    _name, pipe = cfg.pipeline("pg_copy")
    assert pipe.destination.load_method == "upsert" and pipe.destination.options["schema"] == "copy"
    assert "${" not in pipe.source.options["url"]


@pytest.mark.parametrize("mode", ["in-process", "via-singer"])
def test_meltano_stream_maps_of_the_source(plugins, project, mode) -> None:
    """A source's Meltano-style ``stream_maps`` (singer-sdk's setting) give the same rows in process
    (converted to transforms) and through tap-dcapix | target-dcapix (applied by the tap's SDK)."""
    src, dst = project / "src.db", project / "dst.db"
    con = sqlite3.connect(src)
    con.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, secret TEXT)")
    con.executemany("INSERT INTO items VALUES (?, ?, ?)", [(i, f"n{i}", f"s{i}") for i in range(1, 8)])
    con.commit()
    con.close()
    maps = {"items": {"secret": None, "__filter__": "id > 3", "label": "name"}}
    pipes = {
        "copy": {
            "source": {"adapter": "sql", "url": f"sqlite:///{src}", "stream_maps": maps},
            "destination": {"adapter": "sql", "url": f"sqlite:///{dst}"},
        }
    }
    write_config(project, pipes)
    args = ["run", "copy", "--no-progress"] + (["--via-singer"] if mode == "via-singer" else [])
    assert dcapix(*args) == 0
    con = sqlite3.connect(dst)
    cols = [r[1] for r in con.execute("PRAGMA table_info(items)")]
    rows = con.execute("SELECT id, name, label FROM items ORDER BY id").fetchall()
    con.close()
    assert "secret" not in cols
    assert rows == [(i, f"n{i}", f"n{i}") for i in range(4, 8)]


def test_stream_maps_beyond_the_transforms_are_one_line_errors(plugins, project, capsys) -> None:
    src = project / "src.db"
    con = sqlite3.connect(src)
    con.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)")
    con.commit()
    con.close()
    pipes = {
        "copy": {
            "source": {
                "adapter": "sql",
                "url": f"sqlite:///{src}",
                "stream_maps": {"items": {"h": "md5(name)"}},
            },
            "destination": {"adapter": "sql", "url": f"sqlite:///{project / 'dst.db'}"},
        }
    }
    write_config(project, pipes)
    assert dcapix("run", "copy", "--no-progress") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "stream map property 'h'" in err[0] and "md5" in err[0]


@pytest.mark.parametrize("parallel", ["1", "2"])
def test_adapter_figures_are_counted_once_per_adapter(rplugins, project, capsys, parallel) -> None:
    """The sources' ``figures()`` are summed once per adapter instance: in parallel mode the discovery
    source's figures are added once (they were added twice), each stream's own source's once."""
    src, dst = project / "src.db", project / "dst.db"
    make_source_db(src, 120, table="a")
    make_source_db(src, 80, table="b")
    write_config(project, _pipes(src, dst))
    assert dcapix("run", "copy", "--parallel", parallel, "--json", "--no-progress") == 0
    m = json.loads(capsys.readouterr().out)
    assert m["rows"] == 200
    # 120 rows in batches of 50: 3 batches; 80 rows: 2 batches; one discovery in either mode
    assert m["adapters"]["source"] == {"discoveries": 1, "batches_read": 5}
