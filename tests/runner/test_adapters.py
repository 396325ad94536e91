"""``dcapix run`` with the real built-in adapters: SQLite -> Parquet, PostgreSQL -> PostgreSQL
(append, upsert, overwrite), HTTP (local server) -> JSONL and Parquet, Parquet -> PostgreSQL.
Exact row counts and values; incremental second runs; --full-refresh."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.runner.conftest import dcapix, write_config


def _need(plugins: Any, *names: str) -> None:
    missing = [n for n in names if n not in plugins.adapters]
    if missing:
        pytest.skip(f"adapter(s) {missing} not registered yet")


def _parquet(path: Path) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    files = sorted(path.rglob("*.parquet"))
    assert files, f"no parquet files under {path}"
    return pa.concat_tables([pq.read_table(f) for f in files]).sort_by("id")


def _jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    for f in sorted(path.rglob("*.jsonl*")):
        if f.suffix == ".gz":
            import gzip

            text = gzip.decompress(f.read_bytes()).decode()
        else:
            text = f.read_text()
        rows += [json.loads(line) for line in text.splitlines() if line.strip()]
    return sorted(rows, key=lambda r: r["id"])


def _run_json(capsys: Any, *argv: str) -> dict[str, Any]:
    rc = dcapix(*argv, "--json", "--no-progress")
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    return json.loads(cap.out)  # type: ignore[no-any-return]


# ------------------------------------------------------------------------------ SQLite -> Parquet
def _sqlite_db(path: Path, rows: int, start: int = 1) -> None:
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY, name TEXT NOT NULL, "
            "amount REAL, updated_at INTEGER NOT NULL)"
        )
        conn.executemany(
            "INSERT INTO orders VALUES (?, ?, ?, ?)",
            [(i, f"o{i}", i / 4, 1000 + i) for i in range(start, start + rows)],
        )
    conn.close()


def test_sqlite_to_parquet_incremental(plugins, project, capsys) -> None:
    _need(plugins, "sql", "parquet")
    db, out = project / "shop.db", project / "lake"
    _sqlite_db(db, 5000)
    write_config(
        project,
        {
            "shop": {
                "source": {
                    "adapter": "sql",
                    "url": f"sqlite:///{db}",
                    "streams": [{"table": "orders", "replication_key": "updated_at"}],
                },
                "destination": {"adapter": "parquet", "path": str(out)},
            }
        },
    )
    m = _run_json(capsys, "run", "shop")
    assert m["rows"] == 5000
    t = _parquet(out)
    assert t.num_rows == 5000
    assert t.column("id").to_pylist() == list(range(1, 5001))
    assert t.column("name").to_pylist()[:3] == ["o1", "o2", "o3"]
    assert t.column("amount").to_pylist()[-1] == 5000 / 4
    _sqlite_db(db, 123, start=5001)
    m = _run_json(capsys, "run", "shop")
    assert m["rows"] == 123, m  # only the new rows
    t = _parquet(out)
    assert t.column("id").to_pylist() == list(range(1, 5124))
    m = _run_json(capsys, "run", "shop", "--full-refresh")
    assert m["rows"] == 5123


# ------------------------------------------------------------------------ PostgreSQL -> PostgreSQL
def _pg(url: str) -> Any:
    import psycopg

    return psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://", 1), autocommit=True)


@pytest.fixture
def pg_source(pg_url: str, pg_schema: str) -> str:
    with _pg(pg_url) as conn:
        conn.execute(
            f'CREATE TABLE "{pg_schema}".src (id bigint PRIMARY KEY, name text NOT NULL, '
            "amount numeric(12,2), at timestamptz NOT NULL, seq bigint NOT NULL)"
        )
        conn.execute(
            f"INSERT INTO \"{pg_schema}\".src SELECT g, 'n' || g, g * 1.25, "
            "timestamptz '2026-01-01 00:00:00+00' + g * interval '1 second', g "
            "FROM generate_series(1, 3000) g"
        )
    return pg_schema


@pytest.mark.parametrize("load_method", ["append", "upsert", "overwrite"])
@pytest.mark.postgres
def test_postgres_to_postgres(plugins, project, capsys, pg_url, pg_source, load_method) -> None:
    _need(plugins, "sql")
    dst_schema = f"{pg_source}_dst"
    with _pg(pg_url) as conn:
        conn.execute(f'CREATE SCHEMA "{dst_schema}"')
    try:
        write_config(
            project,
            {
                "copy": {
                    "source": {
                        "adapter": "sql",
                        "url": pg_url,
                        "streams": [{"table": "src", "schema": pg_source, "replication_key": "seq"}],
                    },
                    "destination": {
                        "adapter": "sql",
                        "url": pg_url,
                        "schema": dst_schema,
                        "load_method": load_method,
                    },
                }
            },
        )
        m = _run_json(capsys, "run", "copy")
        assert m["rows"] == 3000
        stream = m["streams"][0]["stream"]
        with _pg(pg_url) as conn:
            tables = [
                r[0]
                for r in conn.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (dst_schema,)
                )
            ]
            assert len(tables) == 1, tables
            table = f'"{dst_schema}"."{tables[0]}"'
            assert conn.execute(
                f"SELECT count(*), count(DISTINCT id), sum(amount) FROM {table}"
            ).fetchone() == (
                3000,
                3000,
                sum(
                    __import__("decimal").Decimal(i) * __import__("decimal").Decimal("1.25")
                    for i in range(1, 3001)
                ),
            )
            assert conn.execute(f"SELECT name, at FROM {table} WHERE id = 7").fetchone()[0] == "n7"
            conn.execute(
                f"INSERT INTO \"{pg_source}\".src SELECT g, 'n' || g, g, now(), g "
                "FROM generate_series(3001, 3050) g"
            )
            if load_method != "append":  # the destination keeps the primary key: append only inserts
                conn.execute(f"UPDATE \"{pg_source}\".src SET name = 'changed', seq = 4000 WHERE id = 5")
        m = _run_json(capsys, "run", "copy")
        assert m["rows"] == (50 if load_method == "append" else 51), (stream, m)  # new (+ updated)
        with _pg(pg_url) as conn:
            count, distinct = conn.execute(f"SELECT count(*), count(DISTINCT id) FROM {table}").fetchone()
            names = [r[0] for r in conn.execute(f"SELECT name FROM {table} WHERE id = 5 ORDER BY name")]
        if load_method == "append":
            assert (count, distinct) == (3050, 3050) and names == ["n5"]
            return
        if load_method == "upsert":
            assert (count, distinct) == (3050, 3050) and names == ["changed"]
        else:  # overwrite: the table holds what this (incremental) run read
            assert (count, distinct) == (51, 51) and names == ["changed"]
        m = _run_json(capsys, "run", "copy", "--full-refresh")
        assert m["rows"] == 3050
        with _pg(pg_url) as conn:
            count, distinct = conn.execute(f"SELECT count(*), count(DISTINCT id) FROM {table}").fetchone()
        assert (count, distinct) == (3050, 3050)
    finally:
        with _pg(pg_url) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{dst_schema}" CASCADE')


# ------------------------------------------------------------------------- HTTP -> JSONL / Parquet
def _serve(http_server: Any, total: int) -> None:
    def page(req: Any) -> tuple[int, dict[str, str], Any]:
        off, lim = int(req.arg("offset", "0")), int(req.arg("limit", "10"))
        recs = [
            {"id": i, "name": f"r{i}", "score": i * 0.5, "tags": ["a", str(i % 3)]}
            for i in range(off + 1, min(off + lim, total) + 1)
        ]
        return 200, {}, {"records": recs, "total": total}

    http_server.route("GET", "/items", page)


@pytest.mark.parametrize("dest", ["jsonl", "parquet"])
def test_http_to_files(plugins, project, capsys, http_server, dest) -> None:
    _need(plugins, "http", dest)
    _serve(http_server, 1234)
    out = project / "out"
    write_config(
        project,
        {
            "api": {
                "source": {
                    "adapter": "http",
                    "base_url": http_server.url,
                    "streams": [
                        {"name": "items", "path": "/items", "records_path": "records", "primary_key": ["id"]}
                    ],
                    "pagination": {
                        "type": "offset",
                        "offset_param": "offset",
                        "limit_param": "limit",
                        "limit": 100,
                        "total_path": "total",
                    },
                },
                "destination": {"adapter": dest, "path": str(out)},
            }
        },
    )
    m = _run_json(capsys, "run", "api")
    assert m["rows"] == 1234
    if dest == "jsonl":
        rows = _jsonl(out)
        assert [r["id"] for r in rows] == list(range(1, 1235))
        assert rows[9] == {"id": 10, "name": "r10", "score": 5.0, "tags": ["a", "1"]}
    else:
        t = _parquet(out)
        assert t.column("id").to_pylist() == list(range(1, 1235))
        assert t.column("name").to_pylist()[9] == "r10" and t.column("score").to_pylist()[9] == 5.0
    pages = len([r for r in http_server.requests if r.path == "/items"])
    assert 13 <= pages <= 14  # 13 pages (+ at most one read-ahead past the end)


# ------------------------------------------------------------------------ Parquet -> PostgreSQL
@pytest.mark.postgres
def test_parquet_to_postgres(plugins, project, capsys, pg_url, pg_schema) -> None:
    _need(plugins, "parquet", "sql")
    import pyarrow as pa
    import pyarrow.parquet as pq

    src = project / "in" / "events"
    src.mkdir(parents=True)
    for part in range(3):
        ids = list(range(part * 1000 + 1, part * 1000 + 1001))
        pq.write_table(
            pa.table(
                {
                    "id": pa.array(ids, pa.int64()),
                    "kind": [f"k{i % 5}" for i in ids],
                    "value": pa.array([i / 8 for i in ids], pa.float64()),
                }
            ),
            src / f"part-{part}.parquet",
        )
    write_config(
        project,
        {
            "load": {
                "source": {"adapter": "parquet", "path": str(project / "in"), "primary_keys": ["id"]},
                "destination": {
                    "adapter": "sql",
                    "url": pg_url,
                    "schema": pg_schema,
                    "load_method": "upsert",
                },
            }
        },
    )
    m = _run_json(capsys, "run", "load")
    assert m["rows"] == 3000
    with _pg(pg_url) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (pg_schema,)
            )
        ]
        assert len(tables) == 1
        table = f'"{pg_schema}"."{tables[0]}"'
        assert conn.execute(f"SELECT count(*), min(id), max(id), sum(value) FROM {table}").fetchone() == (
            3000,
            1,
            3000,
            sum(i / 8 for i in range(1, 3001)),
        )
        assert conn.execute(f"SELECT kind FROM {table} WHERE id = 12").fetchone()[0] == "k2"


# --------------------------------------------------------------------------------- demo and bench
def test_demo_sqlite_to_parquet(plugins, project, capsys) -> None:
    _need(plugins, "sql", "parquet")
    assert dcapix("demo", "--dir", str(project / "d"), "--rows", "500") == 0
    out = capsys.readouterr().out
    assert "customers" in out and "orders" in out and "Parquet files in" in out
    lake = project / "d" / "out"
    import pyarrow.parquet as pq

    counts = {
        p.name: sum(pq.ParquetFile(f).metadata.num_rows for f in p.rglob("*.parquet"))
        for p in lake.iterdir()
        if p.is_dir()
    }
    assert sorted(counts.values()) == [50, 500], counts
    # the written pipeline file runs again (full refresh is what the demo does)
    cfg = str(project / "d" / "dcapix.yml")
    assert dcapix("run", "-c", cfg, "demo", "--no-progress", "--full-refresh") == 0
    # the demo overwrites its output: a rerun (in-process or via Singer) leaves exactly one copy
    assert dcapix("demo", "--dir", str(project / "d"), "--rows", "500", "--via-singer") == 0
    counts = {
        p.name: sum(pq.ParquetFile(f).metadata.num_rows for f in p.rglob("*.parquet"))
        for p in lake.iterdir()
        if p.is_dir()
    }
    assert counts == {"customers": 50, "orders": 500}, counts


def test_bench_command(plugins, project, capsys) -> None:
    _need(plugins, "sql", "parquet")
    assert dcapix("bench", "--rows", "3000", "--json", "--dir", str(project / "b")) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["rows"] == res["rows_written"] == 3000 and res["rows_per_second"] > 0


def test_demo_via_singer_real_tap_and_target(plugins, project, capsys) -> None:
    _need(plugins, "sql", "parquet")
    assert dcapix("demo", "--dir", str(project / "d"), "--rows", "200", "--via-singer", "--json") == 0
    cap = capsys.readouterr()
    m = json.loads(cap.out)
    assert m["mode"] == "via-singer" and m["status"] == "done"
    assert {s["stream"]: s["rows"] for s in m["streams"]} == {"customers": 20, "orders": 200}
    assert "[tap]" in cap.err and "[target]" in cap.err
    import pyarrow.parquet as pq

    lake = project / "d" / "out"
    assert sum(pq.ParquetFile(f).metadata.num_rows for f in (lake / "orders").rglob("*.parquet")) == 200
    # dry run of process mode: the plan names the executables, secrets stay out
    assert dcapix("run", "-c", str(project / "d" / "dcapix.yml"), "demo", "--via-singer", "--dry-run") == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["mode"] == "via-singer" and plan["tap"] == "tap-dcapix" and plan["target"] == "target-dcapix"


def test_http_dry_run_redacts_secrets(plugins, project, capsys, http_server) -> None:
    _need(plugins, "http", "jsonl")
    _serve(http_server, 30)
    write_config(
        project,
        {
            "api": {
                "source": {
                    "adapter": "http",
                    "base_url": http_server.url,
                    "headers": {"Authorization": "Bearer tok-SECRET-123456"},
                    "params": {"api_key": "key-SECRET-987654"},
                    "streams": [{"name": "items", "path": "/items", "records_path": "records"}],
                    "pagination": {
                        "type": "offset",
                        "offset_param": "offset",
                        "limit_param": "limit",
                        "limit": 10,
                        "total_path": "total",
                    },
                },
                "destination": {
                    "adapter": "jsonl",
                    "path": str(project / "out"),
                    "storage_options": {"password": "pw-SECRET-555555"},
                },
            }
        },
    )
    assert dcapix("run", "api", "--dry-run") == 0
    cap = capsys.readouterr()
    for secret in ("tok-SECRET-123456", "key-SECRET-987654", "pw-SECRET-555555"):
        assert secret not in cap.out and secret not in cap.err
    plan = json.loads(cap.out)
    assert plan["streams"][0]["name"] == "items"
    assert plan["source"]["pagination"]["type"] == "offset"
    assert plan["source"]["base_url"] == http_server.url
    assert not (project / "out").exists()
