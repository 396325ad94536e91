"""``dcapix run --executor local``: a stream read in partitions by a thread pool gives exactly the
rows and the state of the serial run (PostgreSQL -> Parquet, PostgreSQL -> PostgreSQL upsert)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from dc_api_x.ext.partitions import Partition, merge_ordered_bookmarks, merge_unordered_bookmarks
from dc_api_x.runner.state import open_state_store
from tests.scale.conftest import fill_items, write_config
from tests.support.destinations import parquet_rows, pg_rows


def dcapix(*argv: str) -> int:
    from dc_api_x.cli import main

    return main(list(argv))


def state_of(project: Path, pipeline: str) -> dict[str, Any]:
    with open_state_store(project_dir=project) as s:
        return {(e.stream, e.partition): e.value for e in s.list(pipeline)}


# ------------------------------------------------------------------------------------------ merging
def test_merge_ordered_stops_after_the_first_unfinished_partition() -> None:
    base = {"v": 0}
    bms = [{"v": 10}, {"v": 15}, None, {"v": 40}]
    assert merge_ordered_bookmarks(base, bms, [True, False, False, True]) == {"v": 15}
    assert merge_ordered_bookmarks(base, bms, [True, True, False, True]) == {"v": 15}
    assert merge_ordered_bookmarks(base, bms, [False, True, True, True]) == {"v": 10}
    assert merge_ordered_bookmarks(base, [None, None], [False, True]) == {"v": 0}
    assert merge_ordered_bookmarks(base, bms, [True] * 4) == {"v": 40}
    assert merge_ordered_bookmarks(None, [None, None], [True, True]) is None


def test_merge_unordered_waits_for_every_partition() -> None:
    k = "replication_key_value"
    bms = [{k: 5}, {k: 9}, {k: 7}]
    assert merge_unordered_bookmarks({k: 1}, bms, [True, False, True]) == {k: 1}
    assert merge_unordered_bookmarks({k: 1}, bms, [True, True, True]) == {k: 9}


def test_partition_round_trips_through_json() -> None:
    p = Partition(2, 4, {"range": {"column": "id", "gt": 5, "le": 9}}, {"x": 1}, label="id in (5, 9]")
    assert Partition.from_dict(p.as_dict()) == p
    assert p.key == "~p0002-of-0004"


# --------------------------------------------------------------------------------- SQL partitions
@pytest.mark.postgres
def test_sql_ranges_are_disjoint_and_cover_the_stream(pg_url: str, pg_schema: str, builtin_plugins) -> None:
    from dc_api_x import create_adapter

    fill_items(pg_url, pg_schema, 0, 5000, create=True)
    opts = {"adapter": "sql", "url": pg_url, "schema": pg_schema}
    with create_adapter({**opts, "streams": [{"table": "items", "replication_key": "updated_at"}]}) as a:
        spec = a.get_stream("items")
        serial = [r["id"] for b in a.read(spec) for r in b.records]
        parts = a.partitions(spec, max_partitions=4)
        # four ranges, and the rows without replication key (a serial first read returns them last)
        assert parts is not None and len(parts) == 5
        assert parts[0].label == "updated_at IS NULL"
        seen = [[r["id"] for b in a.read_partition(spec, p) for r in b.records] for p in parts]
        assert all(seen), "every range holds rows"
        assert sorted(i for s in seen for i in s) == sorted(serial)
        assert sorted(seen[0]) == [-3, -2, -1]
        # resuming after a bookmark: only rows at or after it, the delivered ones at it dropped
        state = next(b.bookmark for b in a.read(spec, limit=1000) if len(b))
        tail = [r["id"] for b in a.read(spec, state=state) for r in b.records]
        parts = a.partitions(spec, state=state, max_partitions=3)
        assert parts is not None and parts[0].state == state and parts[1].state is None
        got = [r["id"] for p in parts for b in a.read_partition(spec, p, state=p.state) for r in b.records]
        assert sorted(got) == sorted(tail)
    with create_adapter({**opts, "streams": [{"table": "items"}]}) as a:  # full table: id ranges
        spec = a.get_stream("items")
        parts = a.partitions(spec, max_partitions=4)
        assert parts is not None and parts[0].options["range"]["column"] == "id"
        ids = sorted(r["id"] for p in parts for b in a.read_partition(spec, p) for r in b.records)
        assert ids == sorted([-3, -2, -1, *range(5000)])


def test_sqlite_integer_key_partitions(tmp_path: Path, builtin_plugins) -> None:
    import sqlite3

    from dc_api_x import create_adapter

    db = tmp_path / "s.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
        conn.executemany("INSERT INTO t VALUES (?, ?)", [(i, f"v{i}") for i in range(1, 1001)])
    with create_adapter({"adapter": "sql", "url": f"sqlite:///{db}", "streams": [{"table": "t"}]}) as a:
        spec = a.get_stream("t")
        parts = a.partitions(spec, max_partitions=8)
        assert parts is not None and len(parts) == 8
        chunks = [[r["id"] for b in a.read_partition(spec, p) for r in b.records] for p in parts]
        assert [len(c) for c in chunks] == [len(c) for c in chunks if c]  # none empty
        assert sorted(i for c in chunks for i in c) == list(range(1, 1001))
        assert a.partitions(spec, max_partitions=1) is None


# ------------------------------------------------------------------------------- whole pipelines
def _source(pg_url: str, schema: str, **extra: Any) -> dict[str, Any]:
    return {
        "adapter": "sql",
        "url": pg_url,
        "schema": schema,
        "streams": [{"table": "items", "replication_key": "updated_at"}],
        "batch_size": 500,
        **extra,
    }


@pytest.mark.postgres
def test_pg_to_parquet_partitioned_equals_serial(
    project: Path, pg_url: str, pg_schema: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="dc_api_x.runner")
    fill_items(pg_url, pg_schema, 0, 30_000, create=True)
    write_config(
        project,
        {
            "serial": {
                "source": _source(pg_url, pg_schema),
                "destination": {"adapter": "parquet", "path": str(project / "serial")},
            },
            "parts": {
                "source": _source(pg_url, pg_schema, concurrency=4),
                "destination": {"adapter": "parquet", "path": str(project / "parts")},
                "checkpoint_rows": 2000,
            },
        },
    )
    for upto in (None, 33_000):  # a first run, then an incremental one after new rows
        if upto:
            fill_items(pg_url, pg_schema, 30_000, upto)
        assert dcapix("run", "serial", "--no-progress") == 0
        caplog.clear()
        assert dcapix("run", "parts", "--no-progress", "--json") == 0
        assert (
            "stream items in 5 partitions" in caplog.text
            if upto is None
            else "in 4 partitions" in caplog.text
        )
        serial, parts = parquet_rows(project / "serial" / "items"), parquet_rows(project / "parts" / "items")
        assert len(serial) == (upto or 30_000) + 3
        assert parts == serial
        assert state_of(project, "parts") == state_of(project, "serial")  # no plan left behind


@pytest.mark.postgres
def test_pg_to_pg_upsert_partitioned_equals_serial(project: Path, pg_url: str, pg_schema: str) -> None:
    fill_items(pg_url, pg_schema, 0, 20_000, create=True)

    def dest(table: str) -> dict[str, Any]:
        return {
            "adapter": "sql",
            "url": pg_url,
            "schema": pg_schema,
            "load_method": "upsert",
            "streams": [{"name": "items", "table": table}],
        }

    write_config(
        project,
        {
            "serial": {"source": _source(pg_url, pg_schema), "destination": dest("serial_items")},
            "parts": {"source": _source(pg_url, pg_schema), "destination": dest("part_items")},
        },
    )
    assert dcapix("run", "serial", "--no-progress") == 0
    assert dcapix("run", "parts", "--no-progress", "--workers", "4") == 0
    assert pg_rows(pg_url, pg_schema, "part_items") == pg_rows(pg_url, pg_schema, "serial_items")
    assert len(pg_rows(pg_url, pg_schema, "part_items")) == 20_003
    assert state_of(project, "parts") == state_of(project, "serial")


# ----------------------------------------------------------------------------------- file sources
def _write_files(directory: Path, first: int, count: int, rows: int = 400) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    directory.mkdir(parents=True, exist_ok=True)
    for f in range(first, first + count):
        ids = list(range(f * rows, (f + 1) * rows))
        # values interleave across files (files are not ordered against each other); the largest
        # value is reached in two files, so the merged bookmark needs the keys of both
        ts = [min(i % 997 + f, 1000 + first) for i in ids]
        pq.write_table(
            pa.table({"id": ids, "ts": ts, "v": [f"r{i}" for i in ids]}), directory / f"f{f:03d}.parquet"
        )


def test_files_one_partition_per_file_equals_serial(project: Path, builtin_plugins) -> None:
    src = project / "in"
    _write_files(src, 0, 6)

    def pipe(name: str, **extra: Any) -> dict[str, Any]:
        return {
            "source": {
                "adapter": "parquet",
                "path": str(src),
                "streams": [
                    {"name": "items", "path": str(src), "replication_key": "ts", "primary_keys": ["id"]}
                ],
                **extra,
            },
            "destination": {"adapter": "parquet", "path": str(project / name)},
        }

    write_config(project, {"serial": pipe("serial"), "parts": pipe("parts", concurrency=3, partitions=6)})
    for more in (0, 2):
        if more:
            _write_files(src, 6, more)
        assert dcapix("run", "serial", "--no-progress") == 0
        assert dcapix("run", "parts", "--no-progress") == 0
        assert parquet_rows(project / "parts" / "items") == parquet_rows(project / "serial" / "items")
        assert state_of(project, "parts") == state_of(project, "serial")
    from dc_api_x import create_adapter

    with create_adapter({"adapter": "parquet", "path": str(src)}) as a:
        spec = a.discover()[0]
        parts = a.partitions(spec, max_partitions=3)
        assert parts is not None and [len(p.options["files"]) for p in parts] == [2, 3, 3]


def test_dask_executor_without_distributed_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from dc_api_x.exceptions import ConfigError
    from dc_api_x.runner.executors.dask import _import_distributed

    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(ConfigError, match=r"pip install 'dc-api-x\[dask\]'"):
        _import_distributed()


def test_serial_fallbacks(project: Path, builtin_plugins, caplog: pytest.LogCaptureFixture) -> None:
    """--limit, overwrite and an unsplittable stream run serially (and say why)."""
    import sqlite3

    caplog.set_level(logging.INFO, logger="dc_api_x.runner")
    db = project / "s.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
        conn.executemany("INSERT INTO t VALUES (?, ?)", [(i, f"v{i}") for i in range(1, 501)])
        conn.execute("CREATE TABLE k (code TEXT PRIMARY KEY)")
        conn.executemany("INSERT INTO k VALUES (?)", [(f"c{i}",) for i in range(50)])
    src = {"adapter": "sql", "url": f"sqlite:///{db}"}
    write_config(
        project,
        {
            "p": {
                "source": {**src, "streams": [{"table": "t"}]},
                "destination": {"adapter": "parquet", "path": "o"},
            },
            "ow": {
                "source": {**src, "streams": [{"table": "t"}]},
                "destination": {"adapter": "parquet", "path": "w", "load_method": "overwrite"},
            },
            "text": {
                "source": {**src, "streams": [{"table": "k"}]},
                "destination": {"adapter": "parquet", "path": "x"},
            },
        },
    )
    assert dcapix("run", "p", "--no-progress", "--workers", "4", "--limit", "10") == 0
    assert "--limit reads serially" in caplog.text
    assert len(parquet_rows(project / "o" / "t")) == 10
    assert dcapix("run", "ow", "--no-progress", "--workers", "4") == 0
    assert "overwrite is committed as a whole" in caplog.text
    assert len(parquet_rows(project / "w" / "t")) == 500
    caplog.clear()
    assert dcapix("run", "text", "--no-progress", "--workers", "4") == 0  # a text key: not split
    assert "partitions" not in caplog.text
    assert len(parquet_rows(project / "x" / "k")) == 50
