"""A failed stream reports the rows its destination committed, and the rows written after the last
commit (rolled back) separately: in the summary, the ``--json`` metrics and ``dcapix runs``
(issue 17, item 6)."""

from __future__ import annotations

import json

from tests.runner.conftest import dcapix, write_config
from tests.runner.support import make_source_db, table_rows


def test_stream_failing_after_one_commit_reports_exactly_the_committed_rows(
    rplugins, project, capsys
) -> None:
    src, dst = project / "src.db", project / "dst.db"
    make_source_db(src, 1000)
    write_config(
        project,
        {
            "copy": {
                # batches of 100; a checkpoint (flush + state) after 200 rows; the 4th read fails
                "source": {
                    "adapter": "t_sqlite_src",
                    "path": str(src),
                    "batch_size": 100,
                    "fail_at_row": 350,
                },
                "destination": {"adapter": "t_sqlite_dst", "path": str(dst)},
                "checkpoint_rows": 200,
                "prefetch": 0,
            }
        },
    )
    assert dcapix("run", "copy", "--json", "--no-progress") == 1
    cap = capsys.readouterr()
    m = json.loads(cap.out)
    committed = len(table_rows(dst, "items"))
    assert committed == 200
    (s,) = m["streams"]
    assert s["status"] == "failed" and "injected failure" in s["error"]
    assert (s["rows"], s["rows_rolled_back"]) == (200, 100)
    assert (m["rows"], m["rows_rolled_back"]) == (200, 100)
    assert "rolled back: 100 rows written after the last commit" in cap.err  # the summary table
    assert dcapix("runs", "list", "--json") == 0
    (run,) = json.loads(capsys.readouterr().out)
    assert run["status"] == "failed" and run["rows"] == 200
    assert run["detail"]["rows_rolled_back"] == 100
    (rs,) = run["streams"]
    assert rs["rows"] == 200 and rs["detail"]["rows_rolled_back"] == 100
    assert dcapix("runs", "show", run["run_id"]) == 0
    assert "(100 rows rolled back)" in capsys.readouterr().out


def test_without_a_checkpoint_every_written_row_is_rolled_back(rplugins, project, capsys) -> None:
    src, dst = project / "src.db", project / "dst.db"
    make_source_db(src, 1000)
    write_config(
        project,
        {
            "copy": {
                "source": {
                    "adapter": "t_sqlite_src",
                    "path": str(src),
                    "batch_size": 100,
                    "fail_at_row": 350,
                },
                "destination": {"adapter": "t_sqlite_dst", "path": str(dst)},
                "checkpoint_rows": 100_000,
            }
        },
    )
    assert dcapix("run", "copy", "--json", "--no-progress") == 1
    m = json.loads(capsys.readouterr().out)
    assert table_rows(dst, "items") == []
    assert (m["rows"], m["rows_rolled_back"]) == (0, 300)


def test_per_batch_commits_of_the_sql_adapter_count_as_committed(rplugins, project, capsys) -> None:
    """The SQL adapter commits every batch (``WriteResult(committed=True)``): a failed stream reports
    every row that is in the table, and none rolled back; with overwrite nothing counts before the
    swap."""
    import sqlite3

    src, dst = project / "src.db", project / "dst.db"
    make_source_db(src, 1000)
    for load_method, expected in (("append", (300, 0)), ("overwrite", (0, 300))):
        write_config(
            project,
            {
                "copy": {
                    "source": {
                        "adapter": "t_sqlite_src",
                        "path": str(src),
                        "batch_size": 100,
                        "fail_at_row": 350,
                    },
                    "destination": {"adapter": "sql", "url": f"sqlite:///{dst}", "load_method": load_method},
                    "checkpoint_rows": 100_000,
                }
            },
        )
        assert dcapix("run", "copy", "--json", "--no-progress") == 1
        m = json.loads(capsys.readouterr().out)
        conn = sqlite3.connect(dst)
        try:
            in_table = conn.execute("SELECT count(*) FROM items").fetchone()[0]
        finally:
            conn.close()
        assert (m["rows"], m["rows_rolled_back"]) == expected, load_method
        # append: the 300 committed rows; the failed overwrite left the table as the append run made it
        assert in_table == 300
