"""The state store: SQLite and PostgreSQL backends, atomic writes, locks, unreadable state."""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from dc_api_x.bookmarks import BoundaryBookmark
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


@pytest.mark.postgres
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


def test_bytes_and_decimals_are_stored_in_the_bookmark_forms(tmp_path: Path) -> None:
    """One form for bytes and decimals in state and bookmarks: base64 and plain notation (never
    ``1E-10``), as :meth:`BoundaryBookmark.to_state` writes them."""
    db = tmp_path / "s.db"
    value = {"replication_key_value": Decimal("1E-10"), "keys_at_value": [[b"\x00\xff", Decimal("1E+3")]]}
    with open_state_store(path=str(db)) as store:
        store.set("p", "s", value)
        stored = store.get("p", "s")
    bm = BoundaryBookmark("v", ["k1", "k2"], Decimal("1E-10"), [[b"\x00\xff", Decimal("1E+3")]])
    assert stored == {"replication_key_value": "0.0000000001", "keys_at_value": [["AP8=", "1000"]]}
    assert stored["replication_key_value"] == bm.to_state()["replication_key_value"]
    assert stored["keys_at_value"] == bm.to_state()["keys_at_value"]
    conn = sqlite3.connect(db)
    (text,) = conn.execute("SELECT value FROM dcapix_state").fetchone()
    conn.close()
    assert "E-10" not in text and "00ff" not in text


def test_state_written_by_the_previous_version_still_loads(tmp_path: Path) -> None:
    """dc-api-x 0.2.0 stored raw bytes as hex and decimals with ``str()`` (``1E-10``): such a state
    is still read, and its decimal resumes at the same value."""
    db = tmp_path / "s.db"
    with open_state_store(path=str(db)) as store:
        store.set("p", "s", {"placeholder": True})
    old = '{"keys_at_value": [[7]], "raw": "00ff", "replication_key": "v", "replication_key_value": "1E-10"}'
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE dcapix_state SET value = ? WHERE stream = 's'", (old,))
    conn.close()
    with open_state_store(path=str(db)) as store:
        state = store.get("p", "s")
    assert state == {
        "keys_at_value": [[7]],
        "raw": "00ff",
        "replication_key": "v",
        "replication_key_value": "1E-10",
    }
    assert bytes.fromhex(state["raw"]) == b"\x00\xff"
    bm = BoundaryBookmark.from_state(state, "v", ["id"], convert=Decimal)
    assert bm.start_value == Decimal("0.0000000001")
    assert not bm.is_new(Decimal("0.0000000001"), (7,)) and bm.is_new(Decimal("0.0000000001"), (8,))
    assert bm.to_state()["replication_key_value"] == "0.0000000001"


def test_sqlite_store_commits_in_wal_mode_and_a_killed_writer_keeps_every_commit(tmp_path: Path) -> None:
    """WAL with ``synchronous=FULL`` (one sync per commit, durable on power loss too). A writer
    killed (SIGKILL: no close, no checkpoint) after its commits and inside an open transaction:
    the next open has every committed state and none of the uncommitted one."""
    db = tmp_path / "s.db"
    code = (
        "import os, signal; from dc_api_x.runner.state import open_state_store\n"
        f"s = open_state_store(path={str(db)!r})\n"
        "c = s._conn()\n"
        "q = lambda p: c.execute('PRAGMA ' + p).fetchone()[0]\n"
        "print(q('journal_mode'), q('synchronous'))\n"
        "for i in range(5): s.set('p', 's', {'id': i})\n"
        "c.execute('BEGIN IMMEDIATE')\n"
        'c.execute("UPDATE dcapix_state SET value = \'{\\"id\\": 99}\'")\n'
        "print('ready', flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == -9 and res.stdout.split() == ["wal", "2", "ready"], res.stdout + res.stderr
    assert (tmp_path / "s.db-wal").exists()  # the commits are in the log, not yet in the file
    with open_state_store(path=str(db)) as store:
        assert store.get("p", "s") == {"id": 4}


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


@pytest.mark.postgres
def test_postgres_lock(pg_url: str) -> None:
    with (
        open_state_store(pg_url) as a,
        open_state_store(pg_url) as b,
        a.lock("pipe"),
        pytest.raises(StateError, match="already running"),
        b.lock("pipe"),
    ):
        pass


def test_lock_and_history_commits_are_not_synced_on_their_own(tmp_path: Path) -> None:
    """``durable=False`` (the run's lock and history rows) commits with ``synchronous=NORMAL`` for
    that transaction alone; state writes and every other transaction keep ``synchronous=FULL``
    (one sync per commit: a bookmark survives a power cut)."""
    from dc_api_x.runner.history import begin_run, finish_run

    def level(tx) -> int:
        return tx.execute("PRAGMA synchronous")[0][0]

    with open_state_store(path=str(tmp_path / "s.db")) as store:
        with store.transaction(durable=False) as tx:
            assert level(tx) == 1  # NORMAL
        with store.transaction() as tx:
            assert level(tx) == 2  # FULL again
        with pytest.raises(RuntimeError), store.transaction(durable=False) as tx:
            raise RuntimeError("rolled back")
        with store.transaction() as tx:
            assert level(tx) == 2  # also after a failed one
        writes: list[tuple[str, bool]] = []  # (table written, durable) of each writing statement
        real = store.transaction

        @contextlib.contextmanager
        def recording(*, durable: bool = True):
            with real(durable=durable) as tx:
                run = tx.execute

                def execute(sql: str, params=()):
                    words = sql.split()
                    if words[0].upper() in ("INSERT", "UPDATE", "DELETE"):
                        table = words[2] if words[0].upper() != "UPDATE" else words[1]
                        writes.append((table, durable))
                    return run(sql, params)

                tx.execute = execute
                yield tx

        store.transaction = recording  # type: ignore[method-assign]
        with store.lock("p", run_id="r1"):
            begin_run(store, "r1", "p")
            finish_run(store, "r1", status="done", streams=[])
        tables = {t for t, _ in writes}
        assert {"dcapix_locks", "dcapix_runs"} <= tables
        assert all(not durable for _, durable in writes), writes  # none synced alone
        writes.clear()
        store.execute("DELETE FROM dcapix_state WHERE pipeline = 'none'")
        assert writes == [("dcapix_state", True)]
