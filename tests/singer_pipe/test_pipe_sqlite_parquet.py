"""``tap-dcapix | target-dcapix``: SQLite → Parquet, incremental runs and the bookmark boundary."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds


def _ts(i: int) -> str:
    return f"2024-01-01T{i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}+00:00"


def _make_items(db: Path, ids: range, ts: Any = _ts) -> None:
    con = sqlite3.connect(db)
    con.execute(
        "CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, "
        "category TEXT, amount REAL, note TEXT, updated_at TEXT NOT NULL)"
    )
    con.executemany(
        "INSERT INTO items VALUES (?,?,?,?,?,?)",
        [(i, f"name-{i}", f"cat-{i % 3}", i * 0.25, None if i % 7 == 0 else f"note {i}", ts(i)) for i in ids],
    )
    con.commit()
    con.close()


def _rows(out: Path) -> list[dict[str, Any]]:
    files = sorted(str(p) for p in out.rglob("*.parquet"))
    assert files, f"no parquet file under {out}"
    return sorted(ds.dataset(files, format="parquet").to_table().to_pylist(), key=lambda r: r["id"])


def _configs(tmp_path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    db = tmp_path / "src.sqlite"
    tap = {
        "adapter": "sql",
        "url": f"sqlite:///{db}",
        "streams": [
            {"name": "items", "table": "items", "primary_keys": ["id"], "replication_key": "updated_at"}
        ],
    }
    return tap, {"adapter": "parquet", "path": str(tmp_path / "out")}


def test_sqlite_to_parquet_exact_rows_then_only_new_rows(pipe, tmp_path: Path):
    tap, target = _configs(tmp_path)
    _make_items(tmp_path / "src.sqlite", range(1, 1001))
    first = pipe(tap, target)
    assert first.ok, first.target_stderr[-3000:] + first.tap_stderr[-3000:]
    rows = _rows(tmp_path / "out")
    assert [r["id"] for r in rows] == list(range(1, 1001))
    for r in rows:
        i = r["id"]
        assert r["name"] == f"name-{i}" and r["category"] == f"cat-{i % 3}" and r["amount"] == i * 0.25
        assert r["note"] == (None if i % 7 == 0 else f"note {i}")
    assert first.last_state["bookmarks"]["items"]["replication_key_value"].startswith("2024-01-01T00:16:40")

    _make_items(tmp_path / "src.sqlite", range(1001, 1251))
    second = pipe(tap, target, state=first.last_state)
    assert second.ok, second.target_stderr[-3000:]
    rows = _rows(tmp_path / "out")
    assert [r["id"] for r in rows] == list(range(1, 1251))  # each row exactly once

    third = pipe(tap, target, state=second.last_state)  # nothing new: nothing added
    assert third.ok
    assert len(_rows(tmp_path / "out")) == 1250


def test_rows_at_the_bookmark_value_are_delivered_exactly_once(pipe, tmp_path: Path):
    tap, target = _configs(tmp_path)
    db = tmp_path / "src.sqlite"
    same = "2024-06-01T00:00:00+00:00"
    # the last three rows of the first run share the replication-key value of the bookmark
    _make_items(db, range(1, 11), ts=lambda i: _ts(i) if i <= 7 else same)
    first = pipe(tap, target)
    assert first.ok, first.target_stderr[-3000:]
    assert first.last_state["bookmarks"]["items"]["replication_key_value"].startswith("2024-06-01T00:00:00")
    # new rows whose key EQUALS the stored bookmark, and one newer row
    _make_items(db, range(11, 14), ts=lambda i: same)
    _make_items(db, range(14, 15), ts=lambda i: "2024-06-02T00:00:00+00:00")
    second = pipe(tap, target, state=first.last_state)
    assert second.ok, second.target_stderr[-3000:]
    ids = [r["id"] for r in _rows(tmp_path / "out")]
    assert sorted(ids) == list(range(1, 15)), ids  # 11..13 once, 8..10 not again
    assert len(ids) == len(set(ids))
