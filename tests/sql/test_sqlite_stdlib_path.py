"""The SQLite backend's own path (a plain ``sqlite:///FILE``: discovery and table reads on the stdlib
``sqlite3`` driver, ADBC for large files, no SQLAlchemy) gives exactly what the SQLAlchemy path gives:
the same stream specs, the same Arrow schema and values, the same Parquet bytes — on the demo
database and on tables of awkward types, names and values, full and incremental, with limits.

The SQLAlchemy path is the same adapter with ``engine_options`` set (an engine is then needed).
Entry-point plugins are left out (``isolated_plugins``): an installed SQL extension that loads engine
plugins (``dc-api-x-sqlalchemy``'s instrumentation) sends every read through the engine.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dc_api_x.adapters.sql import sqlite as sqlite_backend
from dc_api_x.exceptions import AdapterError
from dc_api_x.plugins import create_adapter
from dc_api_x.runner.demo import make_demo_project
from dc_api_x.testing import isolated_plugins

#: how each variant reads: (own path?, ADBC?)
VARIANTS = {"sqlite3": (True, False), "adbc": (True, True), "sqlalchemy": (False, False)}


@pytest.fixture(autouse=True)
def _builtins_only():
    with isolated_plugins():
        yield


def _config(url: str, variant: str, **extra: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {"adapter": "sql", "url": url, **extra}
    if not VARIANTS[variant][0]:
        cfg["engine_options"] = {"pool_pre_ping": False}  # any engine option: the engine's path
    return cfg


def _read(
    monkeypatch: pytest.MonkeyPatch,
    url: str,
    variant: str,
    state: Any = None,
    limit: Any = None,
    **extra: Any,
) -> tuple[list[Any], list[pa.Table], list[Any]]:
    """``(specs, one Arrow table per stream, last bookmark per stream)`` of a discover + read."""
    own, adbc = VARIANTS[variant]
    with monkeypatch.context() as m:
        m.setattr(sqlite_backend, "ADBC_MIN_BYTES", 0 if adbc else 1 << 62)
        with create_adapter(_config(url, variant, **extra)) as ad:
            assert (ad.backend.file is not None) is own
            specs = ad.discover()
            tables, marks = [], []
            for spec in specs:
                batches = list(ad.read(spec, state=state, limit=limit))
                arrow = [b.to_arrow() for b in batches]
                tables.append(pa.concat_tables(arrow) if arrow else None)
                marks.append(batches[-1].bookmark if batches else None)
    return specs, tables, marks


def _parquet(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def _same_everywhere(monkeypatch: pytest.MonkeyPatch, url: str, **kw: Any) -> list[pa.Table]:
    ref_specs, ref_tables, ref_marks = _read(monkeypatch, url, "sqlalchemy", **kw)
    for variant in ("sqlite3", "adbc"):
        specs, tables, marks = _read(monkeypatch, url, variant, **kw)
        assert specs == ref_specs, variant
        assert marks == ref_marks, variant
        for got, ref in zip(tables, ref_tables, strict=True):
            if ref is None:
                assert got is None, variant
                continue
            assert got.schema.equals(ref.schema, check_metadata=True), variant
            assert got.equals(ref), variant
            assert got.to_pylist() == ref.to_pylist(), variant
            assert _parquet(got) == _parquet(ref), variant
    return ref_tables


def test_demo_database_is_read_identically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = make_demo_project(tmp_path / "demo", 2_000)
    url = f"sqlite:///{cfg.parent / 'shop.db'}"
    tables = _same_everywhere(monkeypatch, url, streams=["customers", "orders"])
    assert [t.num_rows for t in tables] == [200, 2_000]
    # and through the whole runner: the Parquet files `dcapix run` writes are byte-identical
    outs = []
    for variant in ("sqlalchemy", "sqlite3"):
        out = tmp_path / f"out-{variant}"
        src = _config(url, variant, streams=["customers", "orders"])
        (tmp_path / "src.json").write_text(json.dumps(src))
        (tmp_path / "dst.json").write_text(json.dumps({"adapter": "parquet", "path": str(out)}))
        res = subprocess.run(
            [
                sys.executable, "-m", "dc_api_x.cli", "run", "--no-progress",
                "--state-db", str(tmp_path / f"state-{variant}.db"),
                "--source", str(tmp_path / "src.json"), "--destination", str(tmp_path / "dst.json"),
            ],
            capture_output=True, text=True, env={**_env(), "DC_API_X_BLOCKED_PLUGINS": "sqlalchemy"},
        )  # fmt: skip
        assert res.returncode == 0, res.stderr
        files = sorted(out.rglob("*.parquet"))
        assert len(files) == 2
        outs.append([pq.read_table(f) for f in files])
    for a, b in zip(*outs, strict=True):
        assert a.schema.equals(b.schema, check_metadata=True) and a.equals(b)


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("DC_API_X_")}


EDGE_DDL = [
    'CREATE TABLE "odd ""name"" t" (id INTEGER PRIMARY KEY, "a b" TEXT, "q""c" INTEGER, f REAL, '
    "d DECIMAL_TEXT(10,2), n NUMERIC, ts TIMESTAMPTZ, naive TIMESTAMP, day DATE, at TIME, "
    "flag BOOLEAN, j JSON, bin BLOB, u UUID, v VARCHAR(5), anything)",
    "CREATE TABLE kv (k1 TEXT NOT NULL, k2 INTEGER NOT NULL, v TEXT, PRIMARY KEY (k2, k1))",
    "CREATE TABLE nokey (x INTEGER, y TEXT)",
    "CREATE VIEW kv_view AS SELECT k1, v FROM kv",
]
EDGE_ROWS = [
    (1, None, None, None, None, None, None, None, None, None, None, None, None, None, None, None),
    (2, "x", 7, 0.1, "1.25", 3, "2020-01-01T00:00:00+00:00", "2021-03-04T07:06:07+02:00", "2020-02-29",
     "10:30:00", 1, '{"a": [1, 2]}', b"\x00\x01", "6f1c6a1e-0000-4000-8000-000000000001", "short", 5),
    (3, 12, 8, 2.5, 3, 1.5, "2020-01-02", "2021-03-04 05:06:07", "2021-01-01", "23:59:59.123456", 0,
     "[1, 2]", None, None, "abc", "text"),
    (4, "ünï'cødé\"", -(2**63), -0.0, "-0.01", None, "2020-01-02T03:04:05.123456-05:00", None, None, None,
     1, "null", b"", None, "", 2.5),
]  # fmt: skip


def _edge_db(tmp_path: Path) -> str:
    import sqlite3

    path = tmp_path / "edge.db"
    con = sqlite3.connect(path)
    with con:
        for ddl in EDGE_DDL:
            con.execute(ddl)
        con.executemany(f'INSERT INTO "odd ""name"" t" VALUES ({", ".join("?" * 16)})', EDGE_ROWS)
        con.executemany(
            "INSERT INTO kv VALUES (?, ?, ?)", [(f"k{i % 3}", i // 3, f"v{i}") for i in range(12)]
        )
        con.executemany("INSERT INTO nokey VALUES (?, ?)", [(i % 4, f"y{i}") for i in range(9)])
    con.close()
    return f"sqlite:///{path}"


def test_type_edges_discovery_and_full_reads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = _edge_db(tmp_path)
    tables = _same_everywhere(monkeypatch, url, batch_size=2)  # every table and view of the file
    assert [t.num_rows for t in tables] == [12, 12, 9, 4]  # kv, kv_view, nokey, odd "name" t


def test_listed_streams_columns_and_limits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = _edge_db(tmp_path)
    streams = [
        {"table": 'odd "name" t', "columns": ["id", 'q"c', "ts"], "replication_key": "ts"},
        {"table": "kv", "replication_key": "k2"},
        {"name": "nk", "table": "nokey", "replication_key": "x"},
    ]
    _same_everywhere(monkeypatch, url, streams=streams, limit=5, batch_size=3)
    _same_everywhere(monkeypatch, url, streams=streams, batch_size=2)


def test_incremental_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = _edge_db(tmp_path)
    streams = [{"table": "kv", "replication_key": "k2"}]
    _, (full,), (mark,) = _read(monkeypatch, url, "sqlalchemy", streams=streams, limit=7)
    assert full.num_rows == 7 and mark["replication_key_value"] == 2
    # resumed at k2 = 2 with the keys delivered at it dropped, on each path
    _same_everywhere(monkeypatch, url, streams=streams, state=mark, batch_size=2)
    _same_everywhere(monkeypatch, url, streams=streams, state=mark, limit=1)


@pytest.mark.parametrize("variant", ["sqlite3", "adbc"])
def test_errors_name_the_stream_and_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variant: str
) -> None:
    import sqlite3

    path = tmp_path / "bad.db"
    con = sqlite3.connect(path)
    with con:
        con.execute("CREATE TABLE r (id INTEGER PRIMARY KEY, at TIMESTAMPTZ)")
        con.executemany("INSERT INTO r VALUES (?, ?)", [(1, "2021-03-04T05:06:07+00:00"), (2, "never")])
    con.close()
    with pytest.raises(AdapterError, match=r"adapter 'sql', stream 'r', field 'at'"):
        _read(monkeypatch, f"sqlite:///{path}", variant)
    with pytest.raises(AdapterError, match=r"table 'missing' not found on sqlite:///"):
        _read(monkeypatch, f"sqlite:///{path}", variant, streams=["missing"])


def test_own_path_imports_no_sqlalchemy(tmp_path: Path) -> None:
    url = _edge_db(tmp_path)
    code = (
        "import sys\n"
        "from dc_api_x.plugins import create_adapter\n"
        f"with create_adapter({{'adapter': 'sql', 'url': {url!r}}}) as ad:\n"
        "    assert ad.backend.file is not None\n"
        "    n = sum(len(b) for s in ad.discover() for b in ad.read(s))\n"
        "assert n == 37, n\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'adbc_driver_sqlite'))\n"
        "assert not bad, bad[:5]\n"
    )
    env = {**_env(), "DC_API_X_BLOCKED_PLUGINS": "sqlalchemy"}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///shop.db", "shop.db"),
        ("sqlite:////abs/shop.db", "/abs/shop.db"),
        ("sqlite+pysqlite:///a b/c.db", "a b/c.db"),
        ("sqlite://", None),
        ("sqlite:///:memory:", None),
        ("sqlite:///file:x.db?mode=ro&uri=true", None),
        ("sqlite:///x.db?timeout=5", None),
        ("sqlite:///x%20y.db", None),
        ("postgresql://u:p@h/db", None),
    ],
)
def test_sqlite_file_parses_as_sqlalchemy_does(url: str, path: str | None) -> None:
    import sqlalchemy as sa

    from dc_api_x.adapters.sql.adapter import sqlite_file

    assert sqlite_file(url) == path
    if path is not None:
        assert sa.make_url(url).database == path


def test_adbc_found_but_broken_falls_back_to_sqlite3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = _edge_db(tmp_path)
    _, ref, _ = _read(monkeypatch, url, "sqlite3", batch_size=3)
    monkeypatch.setattr(sqlite_backend, "_adbc_findable", lambda: True)
    monkeypatch.setattr(sqlite_backend, "_adbc_importable", lambda: False)
    monkeypatch.setattr(sqlite_backend, "ADBC_MIN_BYTES", 0)
    with create_adapter(_config(url, "sqlite3", batch_size=3)) as ad:
        assert ad.backend.adbc is True
        got = [pa.concat_tables([b.to_arrow() for b in ad.read(s)]) for s in ad.discover()]
        assert ad.backend.adbc is False
    assert [t.to_pylist() for t in got] == [t.to_pylist() for t in ref]
