"""target-dcapix as a real process: records, STATE after flush, schema changes, ACTIVATE_VERSION, BATCH."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.singer_target.support import SCHEMA, rec, schema_msg, state


def test_records_land_and_state_follows_the_flush(run_target):
    msgs = [state(0), schema_msg(bookmarks=["updated_at"]), rec(1), rec(2), state(2), rec(3), state(3)]
    run = run_target(msgs, batch_size_rows=2)
    assert run.rc == 0, run.stderr
    assert [r["id"] for r in run.rows("users")] == [1, 2, 3]
    assert run.rows("users")[0] == {
        "id": 1,
        "name": "n1",
        "amount": 1.5,
        "updated_at": "2024-01-02T00:00:00Z",
    }
    # stdout holds only state values, each once, in order
    assert run.states == [{"bookmarks": {"users": {"replication_key_value": v}}} for v in (0, 2, 3)]
    calls = run.calls()
    assert calls[0] == {
        "call": "start_write",
        "stream": "users",
        "load_method": "append",
        "columns": ["id", "name", "amount", "updated_at"],
        "keys": ["id"],
        "replication_key": "updated_at",
    }
    assert [c["call"] for c in calls] == [
        "start_write",
        "write",
        "flush",
        "write",
        "flush",
        "finish_write",
        "close",
    ]


def test_no_state_for_records_the_adapter_did_not_commit(run_target):
    msgs = [schema_msg(), rec(1), rec(2), state("A"), rec(3), rec(4), state("B"), rec(5), state("C")]
    run = run_target(msgs, batch_size_rows=2, fail_on_write=2)
    assert run.rc == 1
    assert [s["bookmarks"]["users"]["replication_key_value"] for s in run.states] == ["A"]
    assert len(run.error_lines) == 1 and "injected failure on write 2" in run.error_lines[0]
    assert "stream 'users'" in run.error_lines[0]
    assert "Traceback" not in run.stderr
    assert [r["id"] for r in run.rows("users")] == [1, 2]


def test_state_waits_for_buffered_records_until_the_end(run_target):
    msgs = [schema_msg(), rec(1), state(1), rec(2), state(2)]
    run = run_target(msgs, inprocess=True)  # batch_size_rows default (100k): one write at the end
    assert run.rc == 0, run.stderr
    assert run.states == [{"bookmarks": {"users": {"replication_key_value": 2}}}]
    assert [c["call"] for c in run.calls()] == ["start_write", "write", "flush", "finish_write", "close"]


def test_overwrite_emits_state_only_after_finish_write(run_target, tmp_path: Path):
    msgs = [schema_msg(), rec(1), rec(2), state(2), rec(3), state(3)]
    run = run_target(msgs, batch_size_rows=1, load_method="overwrite", inprocess=True)
    assert run.rc == 0, run.stderr
    assert run.states == [{"bookmarks": {"users": {"replication_key_value": 3}}}]
    assert [r["id"] for r in run.rows("users")] == [1, 2, 3]
    assert run.calls()[0]["load_method"] == "overwrite"


def test_records_reach_the_adapter_in_chunks_and_state_waits_for_the_flush(run_target, monkeypatch):
    """The fast path hands every ``CHUNK_ROWS`` records to the adapter unflushed (so a big batch is
    never held as dicts); a STATE still waits for the flush at ``batch_size_rows``."""
    from target_dcapix import sinks

    monkeypatch.setattr(sinks, "CHUNK_ROWS", 2)
    msgs = [
        schema_msg(),
        rec(1),
        rec(2),
        rec(3),
        state(3),
        rec(4),
        rec(5),
        rec(6),
        state(6),
        rec(7),
        state(7),
    ]
    run = run_target(msgs, batch_size_rows=5, inprocess=True)
    assert run.rc == 0, run.stderr
    assert [r["id"] for r in run.rows("users")] == [1, 2, 3, 4, 5, 6, 7]
    assert [s["bookmarks"]["users"]["replication_key_value"] for s in run.states] == [3, 6, 7]
    calls = [c["call"] for c in run.calls()]
    assert calls == [
        "start_write",
        "write",
        "write",
        "write",
        "flush",
        "write",
        "flush",
        "finish_write",
        "close",
    ]


def test_no_state_when_a_chunk_write_fails(run_target, monkeypatch):
    from target_dcapix import sinks

    monkeypatch.setattr(sinks, "CHUNK_ROWS", 2)
    msgs = [schema_msg(), rec(1), rec(2), rec(3), rec(4), state(4), rec(5), rec(6), state(6)]
    run = run_target(msgs, batch_size_rows=4, fail_on_write=3, inprocess=True)
    assert run.rc == 1
    assert [s["bookmarks"]["users"]["replication_key_value"] for s in run.states] == [4]
    assert [r["id"] for r in run.rows("users")] == [1, 2, 3, 4]


def test_append_only_is_accepted_as_append(run_target):
    run = run_target([schema_msg(), rec(1)], load_method="append-only", inprocess=True)
    assert run.rc == 0, run.stderr
    assert run.calls()[0]["load_method"] == "append"


def test_schema_change_mid_stream_flushes_the_old_batch_first(run_target):
    wider = json.loads(json.dumps(SCHEMA))
    wider["properties"]["email"] = {"type": ["string", "null"]}
    msgs = [schema_msg(), rec(1), rec(2), state(2), schema_msg(schema=wider), rec(3, email="a@x"), state(3)]
    run = run_target(msgs, inprocess=True)
    assert run.rc == 0, run.stderr
    rows = run.rows("users")
    assert [r["id"] for r in rows] == [1, 2, 3]
    assert rows[2]["email"] == "a@x" and "email" not in rows[0]
    calls = [(c["call"], c.get("rows"), tuple(c.get("columns") or ())) for c in run.calls()]
    assert calls[:5] == [
        ("start_write", None, ("id", "name", "amount", "updated_at")),
        ("write", 2, ()),
        ("flush", 2, ()),
        ("start_write", None, ("id", "name", "amount", "updated_at", "email")),
        ("write", 1, ()),
    ]
    assert run.states[-1] == {"bookmarks": {"users": {"replication_key_value": 3}}}


def test_several_streams_and_keys(run_target):
    other = {"type": "object", "properties": {"k": {"type": "string"}, "v": {"type": "integer"}}}
    msgs = [
        schema_msg(),
        schema_msg("kv", other, keys=["k"]),
        rec(1),
        {"type": "RECORD", "stream": "kv", "record": {"k": "a", "v": 1}},
        rec(2),
        state(9),
    ]
    run = run_target(msgs, load_method="upsert", inprocess=True)
    assert run.rc == 0, run.stderr
    assert [r["id"] for r in run.rows("users")] == [1, 2]
    assert run.rows("kv") == [{"k": "a", "v": 1}]
    starts = {c["stream"]: c for c in run.calls() if c["call"] == "start_write"}
    assert starts["kv"]["keys"] == ["k"] and starts["kv"]["load_method"] == "upsert"
    assert run.states == [{"bookmarks": {"users": {"replication_key_value": 9}}}]


def test_empty_stream_is_still_created(run_target):
    run = run_target([schema_msg(), state(0)], inprocess=True)
    assert run.rc == 0, run.stderr
    assert [c["call"] for c in run.calls()] == ["start_write", "finish_write", "close"]
    assert run.states == [{"bookmarks": {"users": {"replication_key_value": 0}}}]


def test_activate_version_without_hard_delete_keeps_rows(run_target):
    msgs = [
        schema_msg(),
        {"type": "ACTIVATE_VERSION", "stream": "users", "version": 1},
        {**rec(1), "version": 1},
        {"type": "ACTIVATE_VERSION", "stream": "users", "version": 1},
    ]
    run = run_target(msgs, inprocess=True)
    assert run.rc == 0, run.stderr
    assert [r["id"] for r in run.rows("users")] == [1]
    assert run.calls()[0]["load_method"] == "append"


def test_activate_version_with_hard_delete_replaces_the_stream(run_target, tmp_path: Path):
    msgs = [
        schema_msg(),
        {"type": "ACTIVATE_VERSION", "stream": "users", "version": 7},
        {**rec(5), "version": 7},
        {**rec(6), "version": 7},
        {"type": "ACTIVATE_VERSION", "stream": "users", "version": 7},
    ]
    first = run_target([schema_msg(), rec(1), rec(2)], inprocess=True)
    assert first.rc == 0
    # second run into the same directory: the old rows of earlier versions must be gone
    run = run_target(msgs, hard_delete=True, path=str(first.out), inprocess=True)
    assert run.rc == 0, run.stderr
    assert [r["id"] for r in first.rows("users")] == [5, 6]  # same directory as the first run
    assert [c["load_method"] for c in first.calls() if c["call"] == "start_write"][-1] == "overwrite"


def test_batch_messages_jsonl_gzip_and_parquet(run_target, tmp_path: Path):
    jl = tmp_path / "b1.jsonl.gz"
    with gzip.open(jl, "wt") as f:
        for i in (2, 3):
            f.write(json.dumps(rec(i)["record"]) + "\n")
    pqf = tmp_path / "b2.parquet"
    pq.write_table(pa.Table.from_pylist([rec(4)["record"], rec(5)["record"]]), pqf)
    msgs = [
        schema_msg(),
        rec(1),
        {
            "type": "BATCH",
            "stream": "users",
            "encoding": {"format": "jsonl", "compression": "gzip"},
            "manifest": [jl.as_uri()],
        },
        {
            "type": "BATCH",
            "stream": "users",
            "encoding": {"format": "parquet", "compression": "none"},
            "manifest": [str(pqf)],
        },
        rec(6),
        state(6),
    ]
    run = run_target(msgs, inprocess=True)
    assert run.rc == 0, run.stderr
    rows = run.rows("users")
    assert [r["id"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert rows[1]["name"] == "n2" and rows[3]["amount"] == 6.0
    assert run.states == [{"bookmarks": {"users": {"replication_key_value": 6}}}]


def test_batch_file_with_a_bad_record_names_the_file_and_field(run_target, tmp_path: Path):
    jl = tmp_path / "bad.jsonl"
    jl.write_text(json.dumps(rec(1)["record"]) + "\n" + json.dumps({"id": "x"}) + "\n")
    msgs = [
        schema_msg(),
        {"type": "BATCH", "stream": "users", "encoding": {"format": "jsonl"}, "manifest": [str(jl)]},
        state(1),
    ]
    run = run_target(msgs, inprocess=True)
    assert run.rc == 1
    assert len(run.error_lines) == 1
    assert "field 'id'" in run.error_lines[0] and "line 2" in run.error_lines[0]
    assert run.states == []


def test_stream_maps_take_the_sdk_record_path(run_target):
    msgs = [schema_msg(), rec(1), rec(2), state(2)]
    run = run_target(
        msgs,
        stream_maps={"users": {"__alias__": "people", "name": "__NULL__", "__filter__": "record['id'] != 2"}},
        inprocess=True,
    )
    assert run.rc == 0, run.stderr
    assert run.rows("people") == [{"id": 1, "amount": 1.5, "updated_at": "2024-01-02T00:00:00Z"}]
    assert run.states == [{"bookmarks": {"users": {"replication_key_value": 2}}}]


def test_input_file_option(run_target, tmp_path: Path):
    from tests.singer_target.support import messages_text

    src = tmp_path / "in.jsonl"
    src.write_text(messages_text([schema_msg(), rec(1), state(1)]))
    run = run_target([], args=("--input", str(src)))
    assert run.rc == 0, run.stderr
    assert [r["id"] for r in run.rows("users")] == [1]


def test_fields_missing_from_the_schema_are_reported_not_silently_dropped(run_target, caplog):
    run = run_target([schema_msg(), rec(1, surprise="x"), rec(2, surprise="y")], inprocess=True)
    assert run.rc == 0, run.stderr
    warnings = [r.getMessage() for r in caplog.records if "surprise" in r.getMessage()]
    assert len(warnings) == 1 and "not in the stream's schema" in warnings[0] and "line 2" in warnings[0]


def test_batch_files_are_read_in_chunks_of_batch_size_rows(run_target, tmp_path: Path):
    """A BATCH file is never read whole: JSONL (gzip or not) and Parquet go to the adapter in writes
    of at most ``batch_size_rows`` records, in order."""
    jl = tmp_path / "big.jsonl.gz"
    with gzip.open(jl, "wt") as f:
        for i in range(1, 12):
            f.write(json.dumps(rec(i)["record"]) + "\n")
    pqf = tmp_path / "big.parquet"
    pq.write_table(pa.Table.from_pylist([rec(i)["record"] for i in range(12, 19)]), pqf, row_group_size=3)
    msgs = [
        schema_msg(),
        {
            "type": "BATCH",
            "stream": "users",
            "encoding": {"format": "jsonl", "compression": "gzip"},
            "manifest": [str(jl)],
        },
        {"type": "BATCH", "stream": "users", "encoding": {"format": "parquet"}, "manifest": [str(pqf)]},
        state(18),
    ]
    run = run_target(msgs, batch_size_rows=4, inprocess=True)
    assert run.rc == 0, run.stderr
    assert [r["id"] for r in run.rows("users")] == list(range(1, 19))
    assert [c["rows"] for c in run.calls() if c["call"] == "write"] == [4, 4, 3, 4, 3]


@pytest.mark.parametrize(
    ("row", "field"),
    [({"id": None, "name": "x"}, "id"), ({"id": 7, "name": "much too long for 10"}, "name")],
    ids=["null-key", "schema"],
)
def test_parquet_batch_rows_are_checked_like_records(run_target, tmp_path: Path, row, field):
    """Parquet BATCH rows get the check a RECORD gets (keys, the stream's schema); the error names the
    file, the row and the field, and no STATE covers the file."""
    pqf = tmp_path / "bad.parquet"
    rows = [rec(1)["record"], {**rec(2)["record"], **row}]
    pq.write_table(pa.Table.from_pylist(rows), pqf)
    msgs = [
        schema_msg(),
        {"type": "BATCH", "stream": "users", "encoding": {"format": "parquet"}, "manifest": [str(pqf)]},
        state(2),
    ]
    run = run_target(msgs, inprocess=True)
    assert run.rc == 1
    assert len(run.error_lines) == 1
    line = run.error_lines[0]
    assert f"field {field!r}" in line and "row 2" in line and "bad.parquet" in line
    assert run.states == []


TYPES_ONLY = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "name": {"type": ["string", "null"]},
        "amount": {"type": ["number", "null"]},
        "updated_at": {"type": ["string", "null"], "format": "date-time"},
    },
    "required": ["id"],
}


def test_parquet_batch_of_matching_types_skips_the_per_row_check(run_target, tmp_path: Path, monkeypatch):
    """A Parquet file whose column types are those the (types-only) schema allows is loaded at Arrow
    speed: no row is turned into its JSON form to be checked; one that does not match is checked
    row by row and the error names the row."""
    from target_dcapix.sinks import DcApiXSink

    checked: list[str] = []
    orig = DcApiXSink._checked
    monkeypatch.setattr(
        DcApiXSink, "_checked", lambda self, r, url, where: (checked.append(where), orig(self, r, url, where))
    )
    good = tmp_path / "good.parquet"
    pq.write_table(pa.Table.from_pylist([rec(i)["record"] for i in (1, 2, 3)]), good)
    bad = tmp_path / "bad.parquet"
    pq.write_table(pa.Table.from_pylist([rec(4)["record"], {**rec(5)["record"], "id": None}]), bad)
    batch = {"type": "BATCH", "stream": "users", "encoding": {"format": "parquet"}}
    run = run_target(
        [schema_msg(schema=TYPES_ONLY), {**batch, "manifest": [str(good)]}, state(3)], inprocess=True
    )
    assert run.rc == 0, run.stderr
    assert [r["id"] for r in run.rows("users")] == [1, 2, 3] and checked == []
    run = run_target(
        [schema_msg(schema=TYPES_ONLY), {**batch, "manifest": [str(bad)]}, state(5)], inprocess=True
    )
    assert run.rc == 1 and run.states == []
    assert checked == ["row 1", "row 2"]
    assert "row 2" in run.error_lines[0] and "field 'id'" in run.error_lines[0]


JSON_DOCS = {
    "type": "object",
    "properties": {"id": {"type": "integer"}, "doc": {"type": ["object", "null"]}},
    "required": ["id"],
}


def _json_text_file(path: Path, docs: list[str | None]) -> None:
    field = pa.field("doc", pa.string(), metadata={b"dcapix.json": b"true"})
    schema = pa.schema([pa.field("id", pa.int64()), field])
    pq.write_table(pa.table([list(range(1, len(docs) + 1)), docs], schema=schema), path)


def test_parquet_batch_json_text_columns_checked_by_kernels(run_target, tmp_path: Path, monkeypatch):
    """A JSON-text column (``dcapix.json``) under an object property is checked by the JSON type of
    its values in Arrow (no per-row JSON forms); a value of another JSON type takes the per-row
    check, whose error names the row."""
    from target_dcapix.sinks import DcApiXSink

    checked: list[str] = []
    orig = DcApiXSink._checked
    monkeypatch.setattr(
        DcApiXSink, "_checked", lambda self, r, url, where: (checked.append(where), orig(self, r, url, where))
    )
    good = tmp_path / "good.parquet"
    _json_text_file(good, ['{"a": [1, 2]}', None, ' {"b": {"c": "x"}}', "null"])
    bad = tmp_path / "bad.parquet"
    _json_text_file(bad, ['{"a": 1}', "[1, 2]"])
    batch = {"type": "BATCH", "stream": "users", "encoding": {"format": "parquet"}}
    run = run_target(
        [schema_msg(schema=JSON_DOCS), {**batch, "manifest": [str(good)]}, state(3)], inprocess=True
    )
    assert run.rc == 0, run.stderr
    assert checked == []
    got = {r["id"]: r["doc"] for r in run.rows("users")}
    assert got[1] in ({"a": [1, 2]}, '{"a": [1, 2]}') and got[2] is None
    run = run_target(
        [schema_msg(schema=JSON_DOCS), {**batch, "manifest": [str(bad)]}, state(5)], inprocess=True
    )
    assert run.rc == 1 and run.states == []
    assert checked == ["row 1", "row 2"]
    assert "row 2" in run.error_lines[0] and "field 'doc'" in run.error_lines[0]


def _batch_file(path: Path, ids: list[int]) -> str:
    pq.write_table(pa.Table.from_pylist([rec(i)["record"] for i in ids]), path)
    return path.as_uri()


@pytest.mark.parametrize("load_method", ["append", "overwrite"])
def test_loaded_batch_files_under_the_batch_root_are_removed_once_committed(
    run_target, tmp_path: Path, monkeypatch, load_method: str
):
    """Files of a BATCH manifest under ``batch_config.storage.root`` are removed after their rows are
    committed: after the flush for append, only after ``finish_write`` for overwrite. A file outside
    the root is kept, and so is every file of a run that fails."""
    from target_dcapix.sinks import StreamWriter

    root = tmp_path / "batches"
    root.mkdir()
    inside = [_batch_file(root / "a=1.parquet", [1, 2]), _batch_file(root / "a=2.parquet", [3])]
    outside = _batch_file(tmp_path / "elsewhere.parquet", [4])
    seen_at_finish: list[bool] = []
    orig = StreamWriter.finish
    monkeypatch.setattr(
        StreamWriter,
        "finish",
        lambda self: (seen_at_finish.append((root / "a=1.parquet").exists()), orig(self))[1],
    )
    batch = {"type": "BATCH", "stream": "users", "encoding": {"format": "parquet"}}
    cfg = {"batch_config": {"storage": {"root": root.as_uri()}}, "load_method": load_method}
    run = run_target(
        [schema_msg(), {**batch, "manifest": [*inside, outside]}, state(4)], inprocess=True, **cfg
    )
    assert run.rc == 0, run.stderr
    assert sorted(r["id"] for r in run.rows("users")) == [1, 2, 3, 4]
    assert list(root.iterdir()) == [] and (tmp_path / "elsewhere.parquet").exists()
    assert seen_at_finish == [load_method == "overwrite"]

    # a failing load keeps its files (the tap's next run from the last STATE writes them again)
    good = _batch_file(root / "b=1.parquet", [5])
    bad = root / "b=2.parquet"
    pq.write_table(pa.Table.from_pylist([{**rec(6)["record"], "id": None}]), bad)
    run = run_target(
        [schema_msg(), {**batch, "manifest": [good, bad.as_uri()]}, state(6)], inprocess=True, **cfg
    )
    assert run.rc == 1 and run.states == []
    assert (root / "b=1.parquet").exists() and bad.exists()


def _ipc_file(path: Path, rows: list[dict[str, Any]], *, chunk: int, stream: bool = False) -> None:
    """An Arrow IPC file (``stream``: the IPC stream format) of ``rows`` in record batches of ``chunk``."""
    table = pa.Table.from_pylist(rows)
    new = pa.ipc.new_stream if stream else pa.ipc.new_file
    with pa.OSFile(str(path), "wb") as sink, new(sink, table.schema) as w:
        w.write_table(table, max_chunksize=chunk)


def test_arrow_ipc_batch_files_loaded_in_chunks(run_target, tmp_path: Path):
    """``"format": "arrow"`` (what tap-dcapix writes with that batch_config): Arrow IPC files, file
    and stream format, their record batches gathered into writes of at most ``batch_size_rows``
    rows, in order, values exact."""
    a = tmp_path / "a.arrow"
    _ipc_file(a, [rec(i)["record"] for i in range(1, 12)], chunk=3)
    b = tmp_path / "b.arrows"
    _ipc_file(b, [rec(i)["record"] for i in range(12, 15)], chunk=2, stream=True)
    msgs = [
        schema_msg(),
        {
            "type": "BATCH",
            "stream": "users",
            "encoding": {"format": "arrow"},
            "manifest": [a.as_uri(), str(b)],
        },
        state(14),
    ]
    run = run_target(msgs, batch_size_rows=4, inprocess=True)
    assert run.rc == 0, run.stderr
    assert run.rows("users") == [rec(i)["record"] for i in range(1, 15)]
    assert [c["rows"] for c in run.calls() if c["call"] == "write"] == [4, 4, 3, 3]
    assert run.states == [state(14)["value"]]


def test_arrow_ipc_batch_rows_checked_and_bad_file_named(run_target, tmp_path: Path):
    """Arrow IPC rows get the check a RECORD gets (the error names file, row and field); a file that
    is not Arrow IPC is one error naming it; no STATE in either case."""
    bad = tmp_path / "bad.arrow"
    _ipc_file(bad, [rec(1)["record"], {**rec(2)["record"], "name": "much too long for 10"}], chunk=1)
    msgs = [
        schema_msg(),
        {"type": "BATCH", "stream": "users", "encoding": {"format": "arrow"}, "manifest": [str(bad)]},
        state(2),
    ]
    run = run_target(msgs, inprocess=True)
    assert run.rc == 1 and len(run.error_lines) == 1
    line = run.error_lines[0]
    assert "field 'name'" in line and "row 2" in line and "bad.arrow" in line
    assert run.states == []

    junk = tmp_path / "junk.arrow"
    junk.write_bytes(b"PAR1 this is not arrow")
    msgs[1] = {"type": "BATCH", "stream": "users", "encoding": {"format": "arrow"}, "manifest": [str(junk)]}
    run = run_target(msgs, inprocess=True)
    assert run.rc == 1 and len(run.error_lines) == 1
    assert "junk.arrow" in run.error_lines[0] and "not readable Arrow IPC" in run.error_lines[0]
    assert run.states == []


def test_small_batch_files_commit_every_batch_size_rows_state_after_the_flush(
    run_target, tmp_path: Path, monkeypatch
):
    """tap-dcapix sends one BATCH (and a STATE) per adapter batch: the target writes their rows
    without a flush and commits every ``batch_size_rows`` rows, as for RECORD messages; each STATE
    is printed only once the rows before it are flushed, and a file is removed only after the flush
    that committed its rows."""
    from target_dcapix.target import TargetDcApiX

    root = tmp_path / "batches"
    root.mkdir()
    names = [f"s=1-{n}.arrow" for n in range(1, 5)]
    for n, name in enumerate(names):
        _ipc_file(root / name, [rec(i)["record"] for i in range(3 * n + 1, 3 * n + 4)], chunk=3)
    printed: list[tuple[Any, list[str]]] = []
    orig = TargetDcApiX._write_state_message

    def spy(self: Any, value: Any) -> None:
        if not self._holding_state() and value != getattr(self, "_spied", None):
            self._spied = value
            printed.append((value, sorted(p.name for p in root.iterdir())))
        orig(self, value)

    monkeypatch.setattr(TargetDcApiX, "_write_state_message", spy)
    batch = {"type": "BATCH", "stream": "users", "encoding": {"format": "arrow"}}
    msgs: list[Any] = [schema_msg()]
    for n, name in enumerate(names):
        msgs += [{**batch, "manifest": [(root / name).as_uri()]}, state(3 * n + 3)]
    cfg = {"batch_config": {"storage": {"root": root.as_uri()}}}
    run = run_target(msgs, batch_size_rows=5, inprocess=True, **cfg)
    assert run.rc == 0, run.stderr
    assert run.rows("users") == [rec(i)["record"] for i in range(1, 13)]
    calls = [(c["call"], c.get("rows")) for c in run.calls() if c["call"] in ("write", "flush")]
    assert calls == [("write", 3), ("write", 3), ("flush", 6)] * 2
    assert run.states == [state(v)["value"] for v in (3, 6, 9, 12)]
    # STATE 3 waits for the flush after the second file (which removes both files), STATE 6 needs
    # nothing more; STATE 9 waits for the next flush, and so on
    assert [(v["bookmarks"]["users"]["replication_key_value"], left) for v, left in printed] == [
        (3, names[2:]),
        (6, names[2:]),
        (9, []),
        (12, []),
    ]
    assert list(root.iterdir()) == []


def test_bulk_reader_keeps_order_streams_lines_and_errors(run_target):
    """Blocks of input are decoded and dispatched in bulk (runs of RECORDs of one stream at once):
    two interleaved streams, STATEs between them, every record in order, the chunk and flush
    boundaries of line-by-line reading; a bad message inside a block is still named by its line,
    with no STATE for what was not flushed."""
    orders = {"type": "object", "properties": {"id": {"type": "integer"}, "total": {"type": "number"}}}
    msgs: list[Any] = [schema_msg(), schema_msg("orders", orders)]
    for i in range(1, 2001):
        msgs.append(rec(i))
        if i % 3 == 0:
            msgs.append({"type": "RECORD", "stream": "orders", "record": {"id": i, "total": i / 4}})
        if i % 500 == 0:
            msgs.append(state(i))
    run = run_target(msgs, batch_size_rows=700)
    assert run.rc == 0, run.stderr
    assert run.rows("users") == [rec(i)["record"] for i in range(1, 2001)]
    assert run.rows("orders") == [{"id": i, "total": i / 4} for i in range(3, 2001, 3)]
    # orders (666 records < 700) is flushed only at the end: no STATE before it
    assert run.states == [state(2000)["value"]]
    writes = [(c["stream"], c["rows"]) for c in run.calls() if c["call"] == "write"]
    assert sum(r for s, r in writes if s == "users") == 2000
    assert sum(r for s, r in writes if s == "orders") == 666

    # line 1203 inside one block: a RECORD without 'record', or a line that is not JSON
    bad = [schema_msg(), *[rec(i) for i in range(1, 1200)], state(1199), rec(1200)]
    cases = [({"type": "RECORD", "stream": "users"}, "missing 'record'"), ("{oops", "not valid JSON")]
    for broken, what in cases:
        run = run_target([*bad, broken, rec(1201)], batch_size_rows=500)
        assert run.rc == 1 and len(run.error_lines) == 1, run.stderr
        assert "line 1203" in run.error_lines[0] and what in run.error_lines[0]
        # 1000 records flushed at most: STATE 1199 needs 1199 → never printed
        assert run.states == []
