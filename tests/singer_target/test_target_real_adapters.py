"""target-dcapix with the real built-in adapters (SQLite through ``sql``, Parquet, JSONL), in-process."""

from __future__ import annotations

import contextlib
import io
import json
import sqlite3
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from tests.singer_target.support import SCHEMA, messages_text, rec, schema_msg, state


@pytest.fixture
def run(plugins: Any, tmp_path: Path):
    """``run(messages, **config) -> (rc, states, stderr)`` with the built-in plugins."""
    import types

    from target_dcapix.target import TargetDcApiX

    def go(messages: list[Any], **config: Any) -> tuple[int, list[Any], str]:
        cfg = tmp_path / "config.json"
        cfg.write_text(json.dumps(config))
        out, err = io.StringIO(), io.StringIO()
        rc = 0
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                TargetDcApiX.invoke(
                    config=types.SimpleNamespace(config=json.loads(cfg.read_text()), parse_env=False),
                    file_input=io.BytesIO(messages_text(messages).encode()),
                )  # type: ignore[arg-type]
            except SystemExit as exc:
                rc = int(exc.code or 0)
        return rc, [json.loads(x) for x in out.getvalue().splitlines() if x.strip()], err.getvalue()

    return go


def _sqlite_rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(db)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_sqlite_upsert_last_record_wins_and_schema_change_adds_a_column(run, tmp_path: Path):
    db = tmp_path / "dst.sqlite"
    wider = json.loads(json.dumps(SCHEMA))
    wider["properties"]["email"] = {"type": ["string", "null"]}
    msgs = [
        schema_msg(),
        rec(1),
        rec(2),
        rec(1, name="again"),
        state(1),
        schema_msg(schema=wider),
        rec(3, email="c@x"),
        rec(2, name="upd", email="b@x"),
        state(2),
    ]
    rc, states, err = run(msgs, adapter="sql", url=f"sqlite:///{db}", load_method="upsert")
    assert rc == 0, err
    assert states[-1] == {"bookmarks": {"users": {"replication_key_value": 2}}}
    rows = _sqlite_rows(db, "SELECT id, name, email FROM users ORDER BY id")
    assert rows == [(1, "again", None), (2, "upd", "b@x"), (3, "n3", "c@x")]


def test_sqlite_activate_version_with_hard_delete_replaces_old_rows(run, tmp_path: Path):
    db = tmp_path / "dst.sqlite"
    url = f"sqlite:///{db}"
    rc, _, err = run([schema_msg(), rec(1), rec(2), rec(3)], adapter="sql", url=url)
    assert rc == 0, err
    av = {"type": "ACTIVATE_VERSION", "stream": "users", "version": 5}
    rc, states, err = run(
        [schema_msg(), av, {**rec(7), "version": 5}, av, state(7)], adapter="sql", url=url, hard_delete=True
    )
    assert rc == 0, err
    assert _sqlite_rows(db, "SELECT id FROM users ORDER BY id") == [(7,)]
    assert states == [{"bookmarks": {"users": {"replication_key_value": 7}}}]


def test_overwrite_cannot_be_widened_midway_and_keeps_the_old_table(run, tmp_path: Path):
    db = tmp_path / "dst.sqlite"
    url = f"sqlite:///{db}"
    assert run([schema_msg(), rec(1)], adapter="sql", url=url)[0] == 0
    wider = json.loads(json.dumps(SCHEMA))
    wider["properties"]["email"] = {"type": ["string", "null"]}
    msgs = [schema_msg(), rec(5), rec(6), state(6), schema_msg(schema=wider), rec(7, email="x")]
    rc, states, err = run(msgs, adapter="sql", url=url, load_method="overwrite", batch_size_rows=1)
    assert rc == 1 and states == []
    line = next(x for x in err.splitlines() if x.startswith("target-dcapix: error:"))
    assert "'overwrite'" in line and "'email'" in line
    assert _sqlite_rows(db, "SELECT id FROM users") == [(1,)]  # the previous table is intact


def test_parquet_schema_change_and_typed_columns(run, tmp_path: Path):
    out = tmp_path / "pq"
    wider = json.loads(json.dumps(SCHEMA))
    wider["properties"]["email"] = {"type": ["string", "null"]}
    msgs = [schema_msg(), rec(1), rec(2), schema_msg(schema=wider), rec(3, email="c@x"), state(3)]
    rc, states, err = run(msgs, adapter="parquet", path=str(out))
    assert rc == 0, err
    files = sorted(str(p) for p in out.rglob("*.parquet"))
    assert len(files) == 2  # one part per schema version
    schema = pa.unify_schemas([pq.read_schema(f) for f in files])
    assert "email" in pq.read_schema(files[-1]).names
    table = ds.dataset(files, format="parquet", schema=schema).to_table()
    rows = sorted(table.to_pylist(), key=lambda r: r["id"])
    assert [r["id"] for r in rows] == [1, 2, 3]
    assert rows[2]["email"] == "c@x" and rows[0].get("email") is None
    assert str(table.schema.field("updated_at").type) == "timestamp[us, tz=UTC]"
    assert states == [{"bookmarks": {"users": {"replication_key_value": 3}}}]


def test_parquet_bad_value_with_validation_off_names_the_field_and_leaves_no_file(run, tmp_path: Path):
    out = tmp_path / "pq"
    msgs = [
        schema_msg(),
        rec(1),
        {"type": "RECORD", "stream": "users", "record": {"id": 2, "updated_at": "yesterday"}},
        state(2),
    ]
    rc, states, err = run(msgs, adapter="parquet", path=str(out), validate_records=False)
    assert rc == 1 and states == []
    line = next(x for x in err.splitlines() if x.startswith("target-dcapix: error:"))
    assert "'updated_at'" in line and "stream 'users'" in line
    assert not list(out.rglob("*.parquet"))
