"""SQLite's two-step read of rows of megabytes (``ROWID_READ_ROWS``): the ordered rowids first,
then the rows by rowid in key order. It must give exactly what the one-statement read gives — the
rows, their order, every bookmark (ties at one timestamp, a resumed read, limits) — on the sqlite3,
ADBC and SQLAlchemy paths, and be taken only for tables with a rowid whose rows fill a batch.

The one-statement reference is the same read with ``ROWID_READ_ROWS = 0`` (never two steps).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from dc_api_x.adapters.sql import sqlite as sqlite_backend
from dc_api_x.plugins import create_adapter
from dc_api_x.testing import isolated_plugins

#: how each variant reads: (own path?, ADBC?)
VARIANTS = {"sqlite3": (True, False), "adbc": (True, True), "sqlalchemy": (False, False)}
#: payloads of 2,000 characters and a byte limit of 4,000: two rows a batch, the two-step path
PAYLOAD = 2000
BATCH_BYTES = 4000


@pytest.fixture(autouse=True)
def _builtins_only():
    with isolated_plugins():
        yield


def _database(path: Path) -> str:
    con = sqlite3.connect(path)
    con.execute(
        "CREATE TABLE t000 (id INTEGER PRIMARY KEY, updated_at TIMESTAMP NOT NULL, name TEXT, "
        "amount REAL, payload TEXT)"
    )
    # ids inserted out of key order, ties at one timestamp (the primary key breaks them), a NULL
    # payload, non-ASCII text and a float that must come back exactly
    rows = []
    for i, (ident, ts) in enumerate(
        [(9, 3), (3, 3), (7, 3), (1, 1), (12, 5), (4, 2), (2, 2), (11, 5), (5, 4), (8, 3), (6, 6), (10, 6)]
    ):
        payload = None if ident == 5 else (chr(0x4E00 + i) + "é" + str(ident)) * (PAYLOAD // 4)
        rows.append((ident, f"2026-01-0{ts} 00:00:00", f"n{ident}", ident / 3, payload))
    con.executemany("INSERT INTO t000 VALUES (?, ?, ?, ?, ?)", rows)
    # a primary key that is not the rowid, a WITHOUT ROWID table, a view and a table of small rows
    con.execute("CREATE TABLE textkey (k TEXT PRIMARY KEY, updated_at TEXT NOT NULL, payload TEXT)")
    con.executemany(
        "INSERT INTO textkey VALUES (?, ?, ?)",
        [(f"k{9 - i}", f"2026-01-0{1 + i % 3}", "x" * PAYLOAD) for i in range(9)],
    )
    con.execute(
        "CREATE TABLE norowid (id INTEGER PRIMARY KEY, updated_at TEXT NOT NULL, payload TEXT) WITHOUT ROWID"
    )
    con.execute("INSERT INTO norowid SELECT id, updated_at, payload FROM t000")
    con.execute("CREATE VIEW v000 AS SELECT id, updated_at, payload FROM t000")
    con.execute("CREATE TABLE small (id INTEGER PRIMARY KEY, updated_at TEXT NOT NULL, payload TEXT)")
    con.execute("INSERT INTO small SELECT id, updated_at, substr(payload, 1, 10) FROM t000")
    con.commit()
    con.close()
    return f"sqlite:///{path}"


def _read(
    monkeypatch: pytest.MonkeyPatch,
    url: str,
    variant: str,
    two_step: bool,
    stream: dict[str, Any],
    state: Any = None,
    limit: int | None = None,
    **extra: Any,
) -> tuple[list[dict[str, Any]], list[Any], int]:
    """``(rows, bookmark of every batch, two-step reads)`` of one stream."""
    own, adbc = VARIANTS[variant]
    calls = []
    real = sqlite_backend.SQLiteBackend._chunks_rowid

    def spy(self: Any, *a: Any, **kw: Any) -> Any:
        calls.append(1)
        return real(self, *a, **kw)

    cfg: dict[str, Any] = {"adapter": "sql", "url": url, "streams": [stream], "batch_bytes": BATCH_BYTES}
    cfg.update(extra)
    if not own:
        cfg["engine_options"] = {"pool_pre_ping": False}  # any engine option: the engine's path
    with monkeypatch.context() as m:
        m.setattr(sqlite_backend, "ADBC_MIN_BYTES", 0 if adbc else 1 << 62)
        m.setattr(sqlite_backend, "ROWID_READ_ROWS", 256 if two_step else 0)
        m.setattr(sqlite_backend.SQLiteBackend, "_chunks_rowid", spy)
        with create_adapter(cfg) as ad:
            assert (ad.backend.file is not None) is own
            (spec,) = ad.discover()
            batches = list(ad.read(spec, state=state, limit=limit))
    rows = pa.concat_tables([b.to_arrow() for b in batches]).to_pylist() if batches else []
    return rows, [b.bookmark for b in batches], len(calls)


def _same(monkeypatch: pytest.MonkeyPatch, url: str, variant: str, stream: dict[str, Any], **kw: Any) -> Any:
    """The two-step read equals the one-statement read (rows, order, last bookmark); the callers
    check the bookmark at every row through limited reads and reads resumed from them."""
    ref, ref_marks, ref_calls = _read(monkeypatch, url, variant, False, stream, **kw)
    got, marks, calls = _read(monkeypatch, url, variant, True, stream, **kw)
    assert ref_calls == 0 and calls == 1
    assert got == ref
    assert marks[-1] == ref_marks[-1]
    return got, marks


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_two_step_read_equals_one_statement(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variant: str
) -> None:
    url = _database(tmp_path / "db.sqlite")
    stream = {"table": "t000", "replication_key": "updated_at"}
    rows, marks = _same(monkeypatch, url, variant, stream)
    assert [r["id"] for r in rows] == [1, 2, 4, 3, 7, 8, 9, 5, 11, 12, 6, 10]
    assert rows[3]["amount"] == 1.0 and rows[0]["payload"] == (chr(0x4E00 + 3) + "é1") * (PAYLOAD // 4)
    assert rows[7]["payload"] is None
    assert len(marks) == 6  # two rows a batch
    # every position, a tie at 2026-01-03 included: a limited read's bookmark, then the rest from it
    for k in range(1, len(rows)):
        head, head_marks = _same(monkeypatch, url, variant, stream, limit=k)
        assert head == rows[:k]
        rest, _ = (
            _same(monkeypatch, url, variant, stream, state=head_marks[-1])
            if k < len(rows) - 1
            else (rows[k:], None)
        )
        assert head + rest == rows
        # a resumed read with a limit
        if k <= 8:
            part, _ = _same(monkeypatch, url, variant, stream, state=head_marks[-1], limit=3)
            assert part == rows[k : k + 3]


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_text_primary_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variant: str) -> None:
    url = _database(tmp_path / "db.sqlite")
    stream = {"table": "textkey", "replication_key": "updated_at"}
    rows, _ = _same(monkeypatch, url, variant, stream)
    assert [r["k"] for r in rows] == ["k3", "k6", "k9", "k2", "k5", "k8", "k1", "k4", "k7"]
    _, marks = _same(monkeypatch, url, variant, stream, limit=4)
    rest, _ = _same(monkeypatch, url, variant, stream, state=marks[-1], batch_size=1)
    assert rest == rows[4:]


@pytest.mark.parametrize(
    ("stream", "extra"),
    [
        ({"table": "norowid", "replication_key": "updated_at"}, {}),  # WITHOUT ROWID
        ({"table": "v000", "replication_key": "updated_at"}, {}),  # a view
        # rows far below the limit (29 characters, 1/256 of the limit: 4 KiB)
        ({"table": "small", "replication_key": "updated_at"}, {"batch_bytes": 1 << 20}),
        ({"table": "t000"}, {}),  # a full read: no ORDER BY, no sorter
        ({"table": "t000", "replication_key": "updated_at"}, {"batch_bytes": 0}),  # no byte limit
        ({"name": "q", "query": "SELECT * FROM t000", "replication_key": "updated_at"}, {}),
    ],
)
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_one_statement_kept(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    variant: str,
    stream: dict[str, Any],
    extra: dict[str, Any],
) -> None:
    url = _database(tmp_path / "db.sqlite")
    rows, _, calls = _read(monkeypatch, url, variant, True, stream, **extra)
    assert calls == 0 and len(rows) == 12


def test_rowid_alias_shadowed(tmp_path: Path) -> None:
    from dc_api_x.adapters.sql.sqlite_statements import rowid_alias

    con = sqlite3.connect(tmp_path / "a.sqlite")
    con.execute('CREATE TABLE a (rowid TEXT, "OID" INT)')
    con.execute("CREATE TABLE b (rowid TEXT, _rowid_ TEXT, oid TEXT)")

    class Src:
        schema = None

        def __init__(self, table: str) -> None:
            self.table = table

    class Read:
        def __init__(self, table: str) -> None:
            self.source = Src(table)

    assert rowid_alias(con, Read("a")) == "_rowid_"  # type: ignore[arg-type]
    assert rowid_alias(con, Read("b")) is None  # type: ignore[arg-type]
    assert rowid_alias(con, Read("missing")) is None  # type: ignore[arg-type]
    con.close()


@pytest.mark.parametrize(("batch_bytes", "calls"), [(2005 * 256, 1), (2005 * 256 + 300, 0)])
def test_threshold(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch_bytes: int, calls: int) -> None:
    """Two steps from a mean row (2,005 characters here) of ``batch_bytes / ROWID_READ_ROWS`` (256) up."""
    assert sqlite_backend.ROWID_READ_ROWS == 256
    path = tmp_path / "db.sqlite"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, updated_at TEXT NOT NULL, payload TEXT)")
    con.executemany(
        "INSERT INTO t VALUES (?, ?, ?)", [(i, f"2026-01-0{i % 3 + 1}", "p" * 1995) for i in range(40)]
    )
    con.commit()
    con.close()
    stream = {"table": "t", "replication_key": "updated_at"}
    ref, ref_marks, _ = _read(
        monkeypatch, f"sqlite:///{path}", "sqlite3", False, stream, batch_bytes=batch_bytes
    )
    rows, marks, got = _read(
        monkeypatch, f"sqlite:///{path}", "sqlite3", True, stream, batch_bytes=batch_bytes
    )
    assert got == calls and rows == ref and marks[-1] == ref_marks[-1] and len(rows) == 40
