"""End to end with ``dcapix run`` (real SQLite files, the real PostgreSQL): the instrumentation's
figures in the run's JSON metrics, slow statements logged without their values, and the
``network_types`` mapping keeping INET/CIDR/MACADDR through SQLite → PostgreSQL → SQLite."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

N = 1000
SECRET = "s3cret-note"


def _source(tmp_path: Path) -> Path:
    db = tmp_path / "src.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE hosts (id INTEGER PRIMARY KEY, addr INET, net CIDR, mac MACADDR, note TEXT)")
    con.executemany(
        "INSERT INTO hosts VALUES (?, ?, ?, ?, ?)",
        [
            (i, f"10.0.{i // 256}.{i % 256}/32", f"10.{i % 200}.0.0/16", "08:00:2b:01:02:03", f"{SECRET}-{i}")
            for i in range(N)
        ],
    )
    con.commit()
    con.close()
    return db


def _run(
    cli: Any, tmp_path: Path, src: dict[str, Any], dst: dict[str, Any], **env: str
) -> tuple[dict[str, Any], str]:
    (tmp_path / "src.json").write_text(json.dumps(src))
    (tmp_path / "dst.json").write_text(json.dumps(dst))
    res = cli(
        "dcapix",
        "run",
        "--source",
        "src.json",
        "--destination",
        "dst.json",
        "--no-state",
        "--json",
        "--no-progress",
        cwd=tmp_path,
        env=env,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout), res.stderr


@pytest.mark.postgres
def test_sqlite_to_postgresql_and_back(cli: Any, tmp_path: Path, pg_database: str, pg_exec: Any) -> None:
    _source(tmp_path)
    pg_exec("DROP TABLE IF EXISTS hosts")
    # to PostgreSQL through SQLAlchemy (arrow: false): the writes are instrumented statements
    out, err = _run(
        cli,
        tmp_path,
        {"adapter": "sql", "url": "sqlite:///src.db"},
        {"adapter": "sql", "url": pg_database, "arrow": False},
        DC_API_X_SQL_SLOW_MS="0",
    )
    assert out["rows"] == N
    dst = out["adapters"]["destination"]["sql"]
    assert (
        dst["rows"] == N and dst["parameter_sets"] >= N and dst["errors"] == 0
    )  # every row an executemany set
    assert dst["statements"] == dst["slow_statements"] >= 3  # threshold 0: all logged
    assert (
        out["adapters"]["source"]["sql"]["statements"] >= 1
    )  # SQLite: discovery (its reads are raw sqlite3)
    assert "slow statement on postgresql database" in err and "<str>" in err
    assert SECRET not in err and "postgres:postgres" not in err
    # the types survived: the extension mapped the SQLite declared types and created PG's own
    types = pg_exec(
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
        "WHERE attrelid = 'hosts'::regclass AND attnum > 0 ORDER BY attnum"
    )
    assert types == [
        ("id", "bigint"),
        ("addr", "inet"),
        ("net", "cidr"),
        ("mac", "macaddr"),
        ("note", "text"),
    ]
    assert pg_exec("SELECT count(*), count(DISTINCT addr) FROM hosts WHERE addr << '10.0.0.0/8'") == [(N, N)]
    assert pg_exec("SELECT addr::text, net::text, mac::text FROM hosts WHERE id = 300") == [
        ("10.0.1.44/32", "10.100.0.0/16", "08:00:2b:01:02:03")
    ]
    # and back to SQLite on the default (ADBC) read path: declared INET/CIDR/MACADDR again, same text
    out2, _ = _run(
        cli,
        tmp_path,
        {"adapter": "sql", "url": pg_database, "streams": ["hosts"]},
        {"adapter": "sql", "url": "sqlite:///back.db"},
    )
    assert out2["rows"] == N and out2["adapters"]["source"]["sql"]["errors"] == 0
    con = sqlite3.connect(tmp_path / "back.db")
    decl = {r[1]: r[2] for r in con.execute("PRAGMA table_info(hosts)")}
    assert decl == {"id": "BIGINT", "addr": "INET", "net": "CIDR", "mac": "MACADDR", "note": "TEXT"}
    src = sqlite3.connect(tmp_path / "src.db").execute("SELECT * FROM hosts ORDER BY id").fetchall()
    # as PostgreSQL prints an inet (on the ADBC and the psycopg paths alike): a /32 host has no prefix
    printed = [(i, addr.removesuffix("/32"), *rest) for i, addr, *rest in src]
    assert printed[300][1] == "10.0.1.44"
    assert con.execute("SELECT * FROM hosts ORDER BY id").fetchall() == printed


def test_without_the_plugin_there_are_no_figures(cli: Any, tmp_path: Path) -> None:
    _source(tmp_path)
    out, _ = _run(
        cli,
        tmp_path,
        {"adapter": "sql", "url": "sqlite:///src.db"},
        {"adapter": "sql", "url": "sqlite:///dst.db"},
        DC_API_X_BLOCKED_PLUGINS="sqlalchemy",
    )
    assert out["rows"] == N and "adapters" not in out
    decl = {r[1]: r[2] for r in sqlite3.connect(tmp_path / "dst.db").execute("PRAGMA table_info(hosts)")}
    assert decl["addr"] == "TEXT"  # the built-in mapping: a plain string
