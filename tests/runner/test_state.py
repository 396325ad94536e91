"""The state store: SQLite and PostgreSQL backends, atomic writes, locks, unreadable state."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from dc_api_x.exceptions import StateError
from dc_api_x.runner.state import PostgresStateStore, SQLiteStateStore, open_state_store


def _roundtrip(store) -> None:
    assert store.get("p", "s") is None
    store.set("p", "s", {"id": 5, "ts": "2026-01-01T00:00:00"})
    store.set("p", "s2", {"id": 1})
    store.set("p", "s", {"id": 7}, partition="singer")
    store.set("q", "s", {"x": [1, 2]})
    assert store.get("p", "s") == {"id": 5, "ts": "2026-01-01T00:00:00"}
    store.set("p", "s", {"id": 9})
    assert store.get("p", "s") == {"id": 9}
    assert store.get("p", "s", partition="singer") == {"id": 7}
    assert [(e.pipeline, e.stream, e.partition) for e in store.list("p")] == [
        ("p", "s", ""),
        ("p", "s", "singer"),
        ("p", "s2", ""),
    ]
    assert len(store.list()) == 4
    assert store.delete("p", "s2") == 1
    assert store.get("p", "s2") is None
    assert store.delete("p") == 2
    assert [e.pipeline for e in store.list()] == ["q"]


def test_sqlite_store_roundtrip(tmp_path: Path) -> None:
    store = open_state_store("sqlite", project_dir=tmp_path)
    assert isinstance(store, SQLiteStateStore)
    assert store.location == str(tmp_path / ".dcapix" / "state.db")
    with store:
        _roundtrip(store)
    # survives reopening
    with open_state_store(path=str(tmp_path / ".dcapix" / "state.db")) as again:
        assert again.get("q", "s") == {"x": [1, 2]}


def test_postgres_store_roundtrip(pg_url: str) -> None:
    store = open_state_store(pg_url)
    assert isinstance(store, PostgresStateStore)
    assert "postgres:***@" in store.location
    with store:
        store.delete()
        _roundtrip(store)
        store.delete()


def test_unreadable_state_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    with open_state_store(path=str(db)) as store:
        store.set("p", "s", {"id": 1})
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE dcapix_state SET value = '{\"id\": 1' WHERE stream = 's'")
    conn.close()
    with open_state_store(path=str(db)) as store, pytest.raises(StateError, match="pipeline 'p', stream 's'"):
        store.get("p", "s")


def test_non_json_value_rejected(tmp_path: Path) -> None:
    with open_state_store(path=str(tmp_path / "s.db")) as store:
        with pytest.raises(StateError, match="not JSON-serialisable"):
            store.set("p", "s", {"x": float("nan")})
        assert store.get("p", "s") is None


def test_sqlite_lock_excludes_second_process(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    with open_state_store(path=str(db)) as store, store.lock("pipe"):
        code = (
            "import sys; from dc_api_x.runner.state import open_state_store\n"
            f"s = open_state_store(path={str(db)!r})\n"
            "try:\n"
            "    with s.lock('pipe'): print('GOT')\n"
            "except Exception as e: print('REFUSED', e)\n"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
        assert out.startswith("REFUSED") and "already running" in out and "pid " in out
        # another pipeline is independent
        with store.lock("other"):
            pass
    # released: a new holder gets it
    with open_state_store(path=str(db)) as store, store.lock("pipe"):
        pass


def test_postgres_lock(pg_url: str) -> None:
    with (
        open_state_store(pg_url) as a,
        open_state_store(pg_url) as b,
        a.lock("pipe"),
        pytest.raises(StateError, match="already running"),
        b.lock("pipe"),
    ):
        pass
