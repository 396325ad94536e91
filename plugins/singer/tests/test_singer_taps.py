"""Third-party Singer taps from PyPI (each in its own venv) as sources of ``dcapix run``.

* tap-jsonl 0.3.1 (singer-sdk 0.53): discovery, every value exactly into Parquet, BATCH messages
  (jsonl + gzip, parquet), a second run that moves nothing;
* meltanolabs-tap-postgres 0.10.0 (singer-sdk 0.54) against the loopback PostgreSQL: every type
  into Parquet and SQLite, stream selection, an incremental second run that moves only the new
  rows (the row the tap replays at its bookmark is not delivered twice), one-line errors, the tap
  killed with the runner and a resume from the last checkpoint.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from singer_support import dcapix, kill_after_first_checkpoint, write_config

from dc_api_x.runner.state import open_state_store

pytestmark = pytest.mark.usefixtures("singer_plugins")


def parquet_rows(directory: Path) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    rows: list[dict[str, Any]] = []
    for f in sorted(directory.rglob("*.parquet")):
        rows.extend(pq.read_table(f).to_pylist())
    return rows


# ------------------------------------------------------------------------------------ tap-jsonl
JSONL_ROWS = [
    {
        "id": i,
        "name": ["plain", "héllo ✓ ünïcode", 'quote " and \\ backslash', "new\nline", "tab\tx"][i % 5],
        "price": f"{i}.{i % 100:02d}",
        "ratio": [0.1, 1 / 3, 2.5, -0.0, 1e-7][i % 5],
        "at": f"2024-01-{1 + i % 28:02d}T{i % 24:02d}:30:15.123456+00:00",
        "nested": {"k": i, "tags": ["a", "b"][: i % 3]},
        "note": None if i % 4 == 0 else f"note {i}",
    }
    for i in range(1, 121)
]


def _jsonl_source(tap: str, data: Path, **extra: Any) -> dict[str, Any]:
    return {
        "adapter": "singer",
        "executable": tap,
        "config": {"path": f"{data}/*.jsonl", "stream_name": "things", "primary_keys": ["id"], **extra},
    }


def _write_jsonl(data: Path) -> None:
    data.mkdir(exist_ok=True)
    with open(data / "things.jsonl", "w", encoding="utf-8") as fh:
        for r in JSONL_ROWS:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")


def test_tap_jsonl_discovery_and_every_value_into_parquet(
    project: Path, tap_jsonl: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from dc_api_x import create_adapter

    _write_jsonl(project / "data")
    with create_adapter(_jsonl_source(tap_jsonl, project / "data")) as tap:
        (spec,) = tap.discover()
    assert spec.name == "things" and spec.key_properties == ("id",)
    assert spec.replication_key == "_sdc_last_modified"  # singer-sdk's forced INCREMENTAL, one valid key
    assert {"id", "name", "price", "ratio", "at", "nested", "note"} <= set(spec.properties)

    write_config(
        project,
        {
            "things": {
                "source": _jsonl_source(tap_jsonl, project / "data"),
                "destination": {"adapter": "parquet", "path": str(project / "out")},
            }
        },
    )
    rc, out, err = dcapix(capsys, "run", "things", "--no-progress", "--json")
    assert rc == 0, err
    assert json.loads(out)["rows"] == 120
    rows = sorted(parquet_rows(project / "out"), key=lambda r: r["id"])
    assert len(rows) == 120
    for got, want in zip(rows, JSONL_ROWS, strict=True):
        assert got["id"] == want["id"] and got["name"] == want["name"] and got["price"] == want["price"]
        assert got["ratio"] == want["ratio"] and got["note"] == want["note"]
        assert got["at"] == dt.datetime.fromisoformat(want["at"])  # timestamp[us, UTC], microseconds kept
        assert json.loads(got["nested"]) == want["nested"]
        assert got["_sdc_filename"] == str(project / "data" / "things.jsonl")

    # the tap's state is stored (after the commit) and handed back: nothing new, nothing moved
    with open_state_store(project_dir=project) as store:
        state = store.get("things", "things")
    assert state is not None
    assert state["singer_state"]["bookmarks"]["things"]["replication_key_value"]
    assert sorted(k[0] for k in state["replays"]["keys_at_values"][0][1]) == list(range(1, 121))
    rc, out, err = dcapix(capsys, "run", "things", "--no-progress", "--json")
    assert rc == 0, err
    assert json.loads(out)["rows"] == 0  # the tap replayed its 120 rows at the bookmark: all known
    assert len(parquet_rows(project / "out")) == 120


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_tap_jsonl_batch_messages(
    project: Path, tap_jsonl: str, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    _write_jsonl(project / "data")
    batches = project / "batches"
    batches.mkdir()
    batch_config = {
        "encoding": {"format": fmt, "compression": "gzip" if fmt == "jsonl" else "none"},
        "storage": {"root": batches.as_uri(), "prefix": "b-"},
    }
    src = _jsonl_source(tap_jsonl, project / "data", batch_config=batch_config)
    write_config(
        project, {"b": {"source": src, "destination": {"adapter": "jsonl", "path": str(project / "out")}}}
    )
    rc, _, err = dcapix(capsys, "run", "b", "--no-progress", "--json", "--no-state")
    assert rc == 0, err
    assert list(batches.iterdir()), "the tap wrote no BATCH file"
    got = []
    for f in (project / "out").rglob("*.jsonl*"):
        with open(f, encoding="utf-8") as fh:
            got.extend(json.loads(line) for line in fh)
    assert sorted(r["id"] for r in got) == list(range(1, 121))
    by_id = {r["id"]: r for r in got}
    for want in JSONL_ROWS:
        r = by_id[want["id"]]
        assert (r["name"], r["price"], r["ratio"], r["note"]) == (
            want["name"],
            want["price"],
            want["ratio"],
            want["note"],
        )


# --------------------------------------------------------------------------------- tap-postgres
ITEMS_DDL = """
CREATE TABLE public.items (
  id integer PRIMARY KEY, name text, price numeric(12,2), big numeric(38,10), ratio double precision,
  at timestamptz, day date, doc jsonb, flag boolean, note text);
CREATE TABLE public.other (id integer PRIMARY KEY, v text);
INSERT INTO public.other VALUES (1, 'not selected');
"""


def _insert_items(db: Any, first: int, last: int) -> None:
    db.execute(
        "INSERT INTO public.items SELECT g, "
        "CASE g % 3 WHEN 0 THEN 'ünïcode ✓ ' || g WHEN 1 THEN 'q\"uote' || g ELSE 'n' || g END, "
        "g * 1.25, 12345678901234567890.0123456789 + g, g / 7.0, "
        "timestamptz '2024-01-01 00:00:00.123456+00' + g * interval '1 minute', "
        "date '2024-01-01' + g, jsonb_build_object('k', g, 'list', jsonb_build_array(g, 'x')), "
        "g % 2 = 0, CASE WHEN g % 5 = 0 THEN NULL ELSE 'note ' || g END "
        f"FROM generate_series({first}, {last}) g"
    )


def _pg_source(tap: str, db: Any, **extra: Any) -> dict[str, Any]:
    return {
        "adapter": "singer",
        "executable": tap,
        "config": {**db.tap_config(), "filter_schemas": ["public"]},
        "metadata": {"public-items": {"replication-method": "INCREMENTAL", "replication-key": "id"}},
        "schema": {
            "public-items": {
                "big": {"type": ["string", "null"], "format": "decimal", "x-precision": 38, "x-scale": 10}
            }
        },
        "streams": ["public-items"],
        **extra,
    }


def _check_items(rows: list[dict[str, Any]], db: Any) -> None:
    want = {
        r[0]: r
        for r in db.rows("SELECT id, name, price, big, ratio, at, day, doc, flag, note FROM public.items")
    }
    assert sorted(r["id"] for r in rows) == sorted(want)  # every row exactly once
    for r in rows:
        w = want[r["id"]]
        assert r["name"] == w[1]
        assert r["price"] == float(w[2])  # the tap types numeric as "number": a float64 column
        assert r["big"] == w[3]  # exact: the schema override makes it decimal(38, 10)
        assert r["ratio"] == w[4]
        assert r["at"] == w[5] and r["day"] == w[6]
        assert (json.loads(r["doc"]) if isinstance(r["doc"], str) else r["doc"]) == w[7]
        assert bool(r["flag"]) == w[8] and r["note"] == w[9]


@pytest.mark.postgres
def test_tap_postgres_into_parquet_incremental(
    project: Path, pg_db: Any, tap_postgres: str, capsys: pytest.CaptureFixture[str]
) -> None:
    pg_db.execute(ITEMS_DDL)
    _insert_items(pg_db, 1, 1500)
    src = _pg_source(tap_postgres, pg_db)
    write_config(
        project, {"pg": {"source": src, "destination": {"adapter": "parquet", "path": str(project / "out")}}}
    )

    rc, out, err = dcapix(capsys, "run", "pg", "--dry-run")
    assert rc == 0, err
    plan = json.loads(out)
    assert plan["source"]["config"]["password"] == "***" and "postgres:postgres" not in out
    assert [s["name"] for s in plan["streams"]] == ["public-items"]
    assert plan["streams"][0]["replication_key"] == "id"

    rc, out, err = dcapix(capsys, "run", "pg", "--no-progress", "--json")
    assert rc == 0, err
    metrics = json.loads(out)
    assert metrics["rows"] == 1500 and [s["stream"] for s in metrics["streams"]] == ["public-items"]
    _check_items(parquet_rows(project / "out"), pg_db)

    _insert_items(pg_db, 1501, 1512)
    rc, out, err = dcapix(capsys, "run", "pg", "--no-progress", "--json")
    assert rc == 0, err
    assert json.loads(out)["rows"] == 12  # only the new rows (the tap's replay of id 1500 dropped)
    _check_items(parquet_rows(project / "out"), pg_db)
    with open_state_store(project_dir=project) as store:
        state = store.get("pg", "public-items")
    assert state["singer_state"]["bookmarks"]["public-items"]["replication_key_value"] == 1512
    assert state["replays"] == {"replication_key": "id", "keys_at_values": [[1512, [[1512]]]]}


@pytest.mark.postgres
def test_tap_postgres_into_sqlite_upsert(
    project: Path, pg_db: Any, tap_postgres: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import sqlite3

    pg_db.execute(ITEMS_DDL)
    _insert_items(pg_db, 1, 800)
    dst = {"adapter": "sql", "url": f"sqlite:///{project / 'out.db'}", "load_method": "upsert"}
    # the whole table each run (no replication key): upsert keeps one row per id
    src = _pg_source(tap_postgres, pg_db, metadata={}, dedupe_replays=False)
    write_config(project, {"pg": {"source": src, "destination": dst}})
    for _ in range(2):
        rc, out, err = dcapix(capsys, "run", "pg", "--no-progress", "--json")
        assert rc == 0, err
        assert json.loads(out)["rows"] == 800
    con = sqlite3.connect(project / "out.db")
    try:
        con.row_factory = sqlite3.Row
        rows = [dict(r) for r in con.execute('SELECT * FROM "public-items"')]
    finally:
        con.close()
    assert len(rows) == 800
    for r in rows:  # SQLite keeps what the SQL adapter wrote: check the exact texts
        r["at"] = dt.datetime.fromisoformat(r["at"])
        r["day"] = dt.date.fromisoformat(r["day"])
        r["big"] = Decimal(str(r["big"]))
    _check_items(rows, pg_db)


@pytest.mark.postgres
def test_tap_error_is_one_line_naming_the_tap(
    project: Path, pg_db: Any, tap_postgres: str, capsys: pytest.CaptureFixture[str]
) -> None:
    pg_db.execute(ITEMS_DDL)
    src = _pg_source(tap_postgres, pg_db)
    src["config"]["password"] = "Wr0ng-pa55word"
    write_config(project, {"pg": {"source": src, "destination": {"adapter": "jsonl", "path": "out"}}})
    rc, _, err = dcapix(capsys, "run", "pg", "--no-progress")
    assert rc == 1
    lines = [ln for ln in err.splitlines() if ln.startswith("dcapix: error:")]
    assert len(lines) == 1, err
    assert lines[0].startswith("dcapix: error: adapter 'singer': tap tap-postgres exited with code 1: ")
    assert "password authentication failed" in lines[0] or "authentication" in lines[0], lines[0]
    assert "Wr0ng-pa55word" not in err and "Traceback" not in err


@pytest.mark.postgres
def test_killed_runner_kills_the_tap_and_resumes_from_the_last_checkpoint(
    project: Path, pg_db: Any, tap_postgres: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 17 for the bridge: each checkpoint is stored as it is committed; a SIGKILLed run takes
    its tap with it and the next run moves only the rows after the last stored checkpoint."""
    import sqlite3

    rows = 30_000
    pg_db.execute(ITEMS_DDL)
    _insert_items(pg_db, 1, rows)
    dst = {"adapter": "sql", "url": f"sqlite:///{project / 'out.db'}", "load_method": "upsert"}
    write_config(project, {"pg": {"source": _pg_source(tap_postgres, pg_db), "destination": dst}})
    kill_after_first_checkpoint(project, "pg", "public-items", "tap-postgres", "--checkpoint-rows", "10000")
    with open_state_store(project_dir=project) as s:
        stored = s.get("pg", "public-items")
    done = stored["singer_state"]["bookmarks"]["public-items"]["replication_key_value"]
    assert 10_000 <= done < rows
    con = sqlite3.connect(project / "out.db")
    try:
        covered = con.execute('SELECT count(*), max(id) FROM "public-items" WHERE id <= ?', (done,))
        assert covered.fetchone() == (done, done)  # every row the stored state covers is there
    finally:
        con.close()

    rc, out, err = dcapix(capsys, "run", "pg", "--no-progress", "--json")
    assert rc == 0, err
    assert json.loads(out)["rows"] == rows - done  # resumed after the last checkpoint, no replay
    con = sqlite3.connect(project / "out.db")
    try:
        counts = con.execute('SELECT count(*), count(DISTINCT id) FROM "public-items"').fetchone()
        assert counts == (rows, rows)
    finally:
        con.close()
