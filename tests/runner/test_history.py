"""Every run is recorded in the state store — in-process, failed, via Singer (the real tap-dcapix |
target-dcapix), on SQLite and PostgreSQL stores — and ``dcapix runs list|show`` show it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dc_api_x.runner.history import begin_run, get_run, list_runs
from dc_api_x.runner.state import open_state_store
from tests.runner.conftest import dcapix, write_config
from tests.runner.support import make_source_db


def _pipes(src: Path, dst: Path, **src_extra: object) -> dict:
    return {
        "copy": {
            "source": {"adapter": "t_sqlite_src", "path": str(src), "batch_size": 50, **src_extra},
            "destination": {"adapter": "t_sqlite_dst", "path": str(dst)},
            "checkpoint_rows": 100,
        }
    }


def _runs(capsys, *args: str) -> list[dict]:
    capsys.readouterr()
    assert dcapix("runs", "list", "--json", *args) == 0
    return json.loads(capsys.readouterr().out)


def test_manual_runs_are_recorded_with_streams_and_state(rplugins, project, capsys) -> None:
    src, dst = project / "src.db", project / "dst.db"
    make_source_db(src, 300)
    make_source_db(src, 40, table="other")
    write_config(project, _pipes(src, dst))
    assert dcapix("run", "copy", "--json", "--no-progress") == 0
    first = json.loads(capsys.readouterr().out)
    make_source_db(src, 25, start=301)
    assert dcapix("run", "copy", "--no-progress") == 0
    out = capsys.readouterr().out
    runs = _runs(capsys)
    assert [r["status"] for r in runs] == ["done", "done"]
    new, old = runs
    assert old["run_id"] == first["run_id"] and f"run id {new['run_id']}" in out
    assert (old["trigger"], old["mode"], old["attempt"], old["rows"]) == ("manual", "in-process", 1, 340)
    assert new["rows"] == 25 and new["started_at"] > old["started_at"]
    assert old["seconds"] > 0 and old["ended_at"] >= old["started_at"] and old["error"] is None
    streams = {s["stream"]: s for s in old["streams"]}
    assert streams["items"]["rows"] == 300 and streams["other"]["rows"] == 40
    assert streams["items"]["state_before"] is None and streams["items"]["state_after"] == {"id": 300}
    assert streams["items"]["bytes"] > 300 * 8  # id, name, amount of 300 rows
    assert old["bytes"] == streams["items"]["bytes"] + streams["other"]["bytes"]
    new_items = {s["stream"]: s for s in new["streams"]}["items"]
    assert new_items["state_before"] == {"id": 300} and new_items["state_after"] == {"id": 325}
    # the metrics of the --json output agree with the history
    assert {s["stream"]: s["rows"] for s in first["streams"]} == {"items": 300, "other": 40}
    assert {s["stream"]: s["bytes"] for s in first["streams"]} == {k: v["bytes"] for k, v in streams.items()}


def test_failed_run_recorded_with_one_line_error(rplugins, project, capsys) -> None:
    src, dst = project / "src.db", project / "dst.db"
    make_source_db(src, 300)
    write_config(project, _pipes(src, dst, fail_at_row=220, password="hunter2-secret"))
    assert dcapix("run", "copy", "--no-progress") == 1
    (run,) = _runs(capsys, "--status", "failed")
    assert run["status"] == "failed" and "injected failure" in run["error"] and "\n" not in run["error"]
    (items,) = run["streams"]
    assert items["status"] == "failed" and items["state_after"] == {"id": 200}  # last checkpoint
    assert "hunter2-secret" not in json.dumps(run)
    # the table form and `runs show`
    assert dcapix("runs", "list") == 0
    table = capsys.readouterr().out
    assert run["run_id"] in table and "failed" in table and "injected failure" in table
    assert dcapix("runs", "show", run["run_id"][:6]) == 0  # a unique prefix is enough
    shown = capsys.readouterr().out
    assert f"run {run['run_id']}: pipeline 'copy', failed" in shown
    assert '{"id": 200}' in shown and "injected failure" in shown
    assert dcapix("runs", "show", run["run_id"], "--json") == 0
    assert json.loads(capsys.readouterr().out)["streams"][0]["state_after"] == {"id": 200}
    assert dcapix("runs", "show", "nope") == 1
    assert "dcapix: error: no run 'nope' in the history of" in capsys.readouterr().err


def test_via_singer_run_is_recorded(rplugins, project, capsys) -> None:
    """The real tap-dcapix | target-dcapix over SQLite files."""
    src, dst = project / "src.db", project / "dst.db"
    make_source_db(src, 120)
    stream = {"name": "items", "table": "items", "primary_keys": ["id"], "replication_key": "id"}
    write_config(
        project,
        {
            "viasinger": {
                "source": {"adapter": "sql", "url": f"sqlite:///{src}", "streams": [stream]},
                "destination": {"adapter": "sql", "url": f"sqlite:///{dst}", "load_method": "upsert"},
            }
        },
    )
    assert dcapix("run", "viasinger", "--via-singer", "--no-progress") == 0
    (run,) = _runs(capsys)
    assert (run["mode"], run["status"], run["rows"]) == ("via-singer", "done", 120)
    (items,) = run["streams"]
    assert items["rows"] == 120 and items["bytes"] is None  # the records go tap -> target directly
    assert items["state_before"] is None and items["state_after"]["replication_key_value"] == 120


@pytest.mark.postgres
def test_history_in_postgresql_store_and_retention(rplugins, project, capsys, pg_url) -> None:
    import psycopg

    plain = pg_url.replace("postgresql+psycopg://", "postgresql://", 1)
    src, dst = project / "src.db", project / "dst.db"
    make_source_db(src, 60)
    write_config(project, _pipes(src, dst), state_backend=plain, history_days=7)
    with open_state_store(plain) as store:  # a run from 30 days ago
        begin_run(store, "ancient", "copy")
        store.execute(
            "UPDATE dcapix_runs SET started_at = '2000-01-01T00:00:00.000+00:00', status = 'done'"
            " WHERE run_id = 'ancient'"
        )
        assert [r.run_id for r in list_runs(store)] == ["ancient"]
    try:
        assert dcapix("run", "copy", "--no-progress") == 0
        with open_state_store(plain) as store:
            (run,) = list_runs(store, streams=True)  # the old one was pruned when this run started
            assert run.rows == 60 and run.streams[0].state_after == {"id": 60}
            assert get_run(store, run.run_id).streams[0].rows == 60
    finally:
        with psycopg.connect(plain, autocommit=True) as conn:
            for t in ("dcapix_locks", "dcapix_runs", "dcapix_run_streams", "dcapix_state"):
                conn.execute(f"DROP TABLE IF EXISTS {t}")


@pytest.mark.parametrize("keep", [0, 7])
def test_history_days_zero_keeps_everything(tmp_path: Path, keep: int) -> None:
    with open_state_store(path=str(tmp_path / "s.db")) as store:
        store.history_days = keep
        begin_run(store, "old", "p")
        store.execute("UPDATE dcapix_runs SET started_at = '2000-01-01T00:00:00.000+00:00'")
        begin_run(store, "new", "p")
        assert sorted(r.run_id for r in list_runs(store)) == (["new", "old"] if keep == 0 else ["new"])
