"""The default read/write overlap of ``dcapix run`` (``prefetch: 1``): a reader thread produces the
next batch while the current one is written, batches still arrive in order, and the stored state
never runs ahead of what the destination committed."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from dc_api_x.runner.config import PipelineConfig
from dc_api_x.runner.pipeline import Runner
from tests.runner import support
from tests.runner.conftest import dcapix, write_config
from tests.runner.support import make_source_db, table_rows


def _committed_ids(dst: Path) -> list[int]:
    """The ids another connection sees in the destination (only committed rows)."""
    conn = sqlite3.connect(dst)
    try:
        return [r[0] for r in conn.execute('SELECT id FROM "items" ORDER BY id')]
    except sqlite3.OperationalError:  # the table is created by the first start_write
        return []
    finally:
        conn.close()


def test_default_overlap_keeps_order_and_state_behind_commits(rplugins, project, monkeypatch) -> None:
    assert PipelineConfig.model_fields["prefetch"].default == 1
    src, dst = project / "src.db", project / "dst.db"
    make_source_db(src, 1000)
    write_config(
        project,
        {
            "copy": {
                "source": {"adapter": "t_sqlite_src", "path": str(src), "batch_size": 50},
                "destination": {"adapter": "t_sqlite_dst", "path": str(dst)},
                "checkpoint_rows": 100,
            }
        },
    )  # no prefetch key: the default

    events: list[tuple[str, int, str]] = []
    lock = threading.Lock()
    orig_read, orig_write = support.SQLiteSource.read, support.SQLiteDestination.write

    def read(self: Any, stream: Any, **kw: Any) -> Any:
        for batch in orig_read(self, stream, **kw):
            with lock:
                events.append(("read", batch.bookmark["id"], threading.current_thread().name))
            yield batch

    def write(self: Any, stream: Any, batch: Any) -> Any:
        time.sleep(0.005)  # a writer slower than the reader: the next batch is always waiting
        out = orig_write(self, stream, batch)
        with lock:
            events.append(("write", batch.bookmark["id"], threading.current_thread().name))
        return out

    saves: list[tuple[int, list[int]]] = []
    orig_save = Runner._save

    def save(self: Runner, stream: str, bookmark: Any) -> None:
        saves.append((bookmark["id"], _committed_ids(dst)))  # what is durable when state is stored
        orig_save(self, stream, bookmark)

    monkeypatch.setattr(support.SQLiteSource, "read", read)
    monkeypatch.setattr(support.SQLiteDestination, "write", write)
    monkeypatch.setattr(Runner, "_save", save)

    assert dcapix("run", "copy", "--no-progress") == 0

    reads = [e for e in events if e[0] == "read"]
    writes = [e for e in events if e[0] == "write"]
    # read in a reader thread, written in the caller's thread
    assert {t for _, _, t in reads} == {"dcapix-read-items"}
    assert all(not t.startswith("dcapix-read") for _, _, t in writes)
    # batches are written in the order they were read, every one exactly once
    assert [i for _, i, _ in writes] == [i for _, i, _ in reads] == list(range(50, 1001, 50))
    # the overlap happened: batch N+1 was read before batch N's write finished
    pos = {(k, i): n for n, (k, i, _) in enumerate(events)}
    assert any(pos[("read", i + 50)] < pos[("write", i)] for i in range(50, 1000, 50))
    # state never ahead: every stored bookmark is covered by rows committed before it was stored
    assert saves and saves[-1][0] == 1000
    for bookmark, committed in saves:
        assert committed[:bookmark] == list(range(1, bookmark + 1)), bookmark
    assert [r[0] for r in table_rows(dst, "items")] == list(range(1, 1001))


def test_reader_error_surfaces_in_one_line_with_overlap(rplugins, project, capsys) -> None:
    src, dst = project / "src.db", project / "dst.db"
    make_source_db(src, 500)
    write_config(
        project,
        {
            "copy": {
                "source": {"adapter": "t_sqlite_src", "path": str(src), "batch_size": 50, "fail_at_row": 230},
                "destination": {"adapter": "t_sqlite_dst", "path": str(dst)},
                "checkpoint_rows": 100,
            }
        },
    )
    assert dcapix("run", "copy", "--no-progress") == 1
    err = capsys.readouterr().err
    assert "injected failure" in err and "t_sqlite_src" in err
    # nothing past the last checkpoint (200) is committed or stored
    assert [r[0] for r in table_rows(dst, "items")] == list(range(1, 201))
    from dc_api_x.runner.state import open_state_store

    with open_state_store(project_dir=project) as s:
        assert s.get("copy", "items") == {"id": 200}


@pytest.mark.parametrize("preset", [None, "mimalloc"])
def test_run_picks_the_system_allocator_unless_told(rplugins, project, monkeypatch, preset) -> None:
    import pyarrow as pa

    before = pa.default_memory_pool()
    if preset is None:
        monkeypatch.delenv("ARROW_DEFAULT_MEMORY_POOL", raising=False)
    else:
        monkeypatch.setenv("ARROW_DEFAULT_MEMORY_POOL", preset)
    src, dst = project / "src.db", project / "dst.db"
    make_source_db(src, 10)
    write_config(
        project,
        {
            "copy": {
                "source": {"adapter": "t_sqlite_src", "path": str(src)},
                "destination": {"adapter": "t_sqlite_dst", "path": str(dst)},
            }
        },
    )
    try:
        assert dcapix("run", "copy", "--no-progress") == 0
        backend = pa.default_memory_pool().backend_name
        assert backend == ("system" if preset is None else before.backend_name)
    finally:
        pa.set_memory_pool(before)


def test_parquet_dictionary_only_for_repeated_values(tmp_path) -> None:
    """The Parquet writer dictionary-encodes the low-cardinality columns only; values and types are
    unchanged (read back equal to what was written)."""
    import datetime as dt

    import pyarrow as pa
    import pyarrow.parquet as pq

    from dc_api_x.adapters.files.parquet import _dictionary_columns, _ParquetPart

    n = 5000
    base = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    table = pa.table(
        {
            "id": pa.array(range(n), pa.int64()),
            "category": pa.array([f"c{i % 7}" for i in range(n)]),
            "flag": pa.array([i % 3 == 0 for i in range(n)]),
            "note": pa.array([None if i % 10 == 0 else f"note {i}" for i in range(n)]),
            "at": pa.array([base + dt.timedelta(seconds=i) for i in range(n)], pa.timestamp("us", tz="UTC")),
        }
    )
    assert _dictionary_columns(table) == ["category", "flag"]
    assert _dictionary_columns(table.slice(0, 10)) is True  # too few rows to judge: the default
    path = tmp_path / "x.parquet"
    part = _ParquetPart(str(path), table.schema, "snappy")
    part.write_table(table.slice(0, 3000), row_group_size=1000)
    part.write_table(table.slice(3000), row_group_size=1000)
    part.close()
    assert pq.read_table(path).equals(table)
    rg = pq.ParquetFile(path).metadata.row_group(0)
    dict_cols = {
        rg.column(i).path_in_schema
        for i in range(rg.num_columns)
        if any("DICTIONARY" in e for e in rg.column(i).encodings)
    }
    assert dict_cols == {"category"}  # (Parquet stores booleans bit-packed, never as a dictionary)
    empty = tmp_path / "empty.parquet"
    _ParquetPart(str(empty), table.schema, "snappy").close()  # a part without rows is a valid file
    assert pq.read_table(empty).schema == table.schema and pq.read_table(empty).num_rows == 0
