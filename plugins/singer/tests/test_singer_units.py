"""Unit tests of the bridge's pieces: exact decoding, record encoding, catalogs, replays, the
message reader, the process helpers. (The connectors themselves are in test_singer_taps.py and
test_singer_targets.py.)"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import stat
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from dc_api_x_singer import catalog as cat
from dc_api_x_singer.messages import RecordEncoder, decode_line, exact_number
from dc_api_x_singer.process import (
    PATH_ENV,
    Connector,
    private_dir,
    resolve_command,
    write_private_json,
)
from dc_api_x_singer.source import Replays, StreamReader, state_values

from dc_api_x.exceptions import AdapterError, ConfigError, SchemaError


# ------------------------------------------------------------------------------------- decoding
def test_decoding_keeps_every_number_exact() -> None:
    msg = decode_line(
        b'{"a": 1.5, "b": 12345678901234567890123, "c": 12345678901234567890.0123456789, '
        b'"d": 0.1, "e": 0.6666666666666666, "f": 1e400, "g": 1e-400, "h": 2.50}'
    )
    assert msg["a"] == 1.5 and type(msg["a"]) is float
    assert msg["b"] == 12345678901234567890123 and type(msg["b"]) is int
    assert msg["c"] == Decimal("12345678901234567890.0123456789")
    assert type(msg["d"]) is float and msg["d"] == 0.1
    # the shortest text of a double: a float loses nothing
    assert type(msg["e"]) is float and repr(msg["e"]) == "0.6666666666666666"
    assert msg["f"] == Decimal("1e400") and msg["g"] == Decimal("1e-400")
    assert msg["h"] == 2.5
    assert exact_number("0.10000000000000000555") == Decimal("0.10000000000000000555")


# ------------------------------------------------------------------------------------- encoding
SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "amount": {"type": ["number", "null"]},
        "price": {"type": ["string", "null"], "format": "decimal"},
        "at": {"type": ["string", "null"], "format": "date-time"},
        "local": {"type": ["string", "null"], "format": "date-time", "x-timezone": False},
        "day": {"type": ["string", "null"], "format": "date"},
        "blob": {"type": ["string", "null"], "contentEncoding": "base64"},
        "doc": {"type": ["object", "null"]},
    },
}


def _lines(data: bytes) -> list[dict[str, Any]]:
    return [json.loads(line, parse_float=Decimal) for line in data.splitlines()]


def test_record_encoder_writes_exact_json_forms() -> None:
    enc = RecordEncoder("s", SCHEMA, where="adapter 'singer' (t)")
    recs = [
        {
            "id": 2**70,
            "amount": Decimal("12345678901234567890.0123456789"),
            "price": Decimal("10.50"),
            "at": dt.datetime(2024, 1, 2, 3, 4, 5, 600, tzinfo=dt.timezone.utc),
            "local": dt.datetime(2024, 1, 2, 3, 4, 5),
            "day": dt.date(2024, 2, 29),
            "blob": b"\x00\xff",
            "doc": {"k": [1, "x"]},
        },
        {
            "id": 1,
            "amount": 1.25,
            "price": None,
            "at": None,
            "local": None,
            "day": None,
            "blob": None,
            "doc": None,
        },
    ]
    out = _lines(enc.encode(recs))
    assert [m["type"] for m in out] == ["RECORD", "RECORD"] and out[0]["stream"] == "s"
    r = out[0]["record"]
    assert r["id"] == 2**70
    assert r["amount"] == Decimal("12345678901234567890.0123456789")  # a JSON number, exact
    assert r["price"] == "10.50"  # a decimal-as-string field stays a string
    assert r["at"] == "2024-01-02T03:04:05.000600+00:00"
    assert r["local"] == "2024-01-02T03:04:05"
    assert r["day"] == "2024-02-29" and r["blob"] == "AP8=" and r["doc"] == {"k": [1, "x"]}
    assert out[1]["record"] == {
        "id": 1,
        "amount": Decimal("1.25"),
        "price": None,
        "at": None,
        "local": None,
        "day": None,
        "blob": None,
        "doc": None,
    }
    assert b'"amount":12345678901234567890.0123456789' in enc.encode(recs[:1])


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), Decimal("NaN")])
def test_record_encoder_refuses_nan_instead_of_writing_null(bad: Any) -> None:
    enc = RecordEncoder("s", SCHEMA, where="adapter 'singer' (t), stream 's'")
    with pytest.raises(SchemaError, match=r"stream 's', field 'amount'.*cannot be written as JSON"):
        enc.encode([{"id": 1, "amount": bad}])


# ------------------------------------------------------------------------------------- catalogs
SDK_ENTRY = {
    "tap_stream_id": "public-orders",
    "stream": "orders",
    "schema": {
        "type": "object",
        "properties": {"id": {"type": "integer"}, "email": {"type": "string"}, "at": {"type": "string"}},
        "required": ["id", "email"],
    },
    "metadata": [
        {"breadcrumb": [], "metadata": {"table-key-properties": ["id"], "valid-replication-keys": ["at"]}},
        {"breadcrumb": ["properties", "id"], "metadata": {"inclusion": "automatic"}},
    ],
}


def test_entry_spec_reads_keys_and_replication_from_metadata() -> None:
    spec = cat.entry_spec(SDK_ENTRY)
    assert spec.name == "public-orders" and spec.options["stream"] == "orders"
    assert spec.key_properties == ("id",) and spec.replication_key is None
    assert spec.replication_keys == ("at",)
    entries = [json.loads(json.dumps(SDK_ENTRY))]
    cat.apply_metadata(
        entries, {"public-*": {"replication-method": "INCREMENTAL", "email": {"selected": False}}}
    )
    spec = cat.entry_spec(entries[0])
    assert spec.replication_key == "at"  # INCREMENTAL with one valid key
    assert set(spec.properties) == {"id", "at"} and spec.schema["required"] == ["id"]
    cat.apply_metadata(entries, {"*orders": {"replication-method": "FULL_TABLE"}})
    assert cat.entry_spec(entries[0]).replication_key is None
    assert cat.entry_spec({**SDK_ENTRY, "replication_key": "at"}).replication_key == "at"


def test_field_selection_patterns() -> None:
    props = ["id", "email", "name", "secret"]
    assert cat.field_selection("users", props, []) is None
    assert cat.field_selection("users", props, ["orders.*"]) is None
    assert cat.field_selection("users", props, ["users.id", "users.e*"]) == {"id", "email"}
    assert cat.field_selection("users", props, ["!users.secret"]) == {"id", "email", "name"}
    spec = cat.entry_spec(SDK_ENTRY, ["public-orders.email"])
    assert set(spec.properties) == {"id", "email"}  # the key stays


def test_read_catalog_selects_one_stream_and_its_replication() -> None:
    other = {**SDK_ENTRY, "tap_stream_id": "public-users", "stream": "users", "metadata": []}
    spec = cat.entry_spec(SDK_ENTRY).with_(replication_key="at")
    out = cat.read_catalog([SDK_ENTRY, other], spec, columns=["email"], legacy=True)
    orders, users = out["streams"]
    md = {tuple(m["breadcrumb"]): m["metadata"] for m in orders["metadata"]}
    assert md[()]["selected"] is True
    assert md[()]["replication-method"] == "INCREMENTAL" and md[()]["replication-key"] == "at"
    assert md[("properties", "email")]["selected"] and md[("properties", "id")]["selected"]
    assert md[("properties", "at")]["selected"]  # the replication key is always read
    assert orders["schema"]["selected"] is True and users["schema"]["selected"] is False
    assert [m["metadata"]["selected"] for m in users["metadata"] if m["breadcrumb"] == []] == [False]
    assert SDK_ENTRY["metadata"][0]["metadata"].get("selected") is None  # the input is not changed


def test_validate_catalog_names_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="streams"):
        cat.validate_catalog({"x": 1})
    with pytest.raises(ValueError, match="no schema"):
        cat.validate_catalog({"streams": [{"tap_stream_id": "a"}]})


# -------------------------------------------------------------------------------------- replays
def test_state_values_finds_sdk_partitions_and_singer_python_bookmarks() -> None:
    sdk = {
        "bookmarks": {
            "s": {
                "partitions": [
                    {"context": {"f": "a"}, "replication_key": "rk", "replication_key_value": "2024-01-01"},
                    {"context": {"f": "b"}, "replication_key": "rk", "replication_key_value": "2024-02-01"},
                ],
                "replication_key": "rk",
                "replication_key_value": "2024-01-01",
                "progress_markers": {"replication_key": "other", "replication_key_value": 5},
            },
            "t": {"replication_key_value": "zzz"},
        }
    }
    assert state_values(sdk, ["s"], "rk") == ["2024-01-01", "2024-02-01"]
    assert state_values({"bookmarks": {"orders": {"updated_at": 17}}}, ["x", "orders"], "updated_at") == [17]
    assert state_values({"currently_syncing": None}, ["s"], "rk") == []


def test_replays_drop_exactly_the_rows_delivered_at_the_resume_values() -> None:
    r = Replays(["s"], "rk", ["id"])
    first = [{"id": 1, "rk": 5}, {"id": 2, "rk": 7}, {"id": 3, "rk": 7}]
    assert r.filter(list(first)) == first
    stored = r.at_state({"bookmarks": {"s": {"replication_key": "rk", "replication_key_value": 7}}})
    assert stored == {"replication_key": "rk", "keys_at_values": [[7, [[2], [3]]]]}
    again = Replays(["s"], "rk", ["id"], json.loads(json.dumps(stored)))
    replayed = [
        {"id": 2, "rk": 7},
        {"id": 3, "rk": 7},
        {"id": 4, "rk": 7},
        {"id": 2, "rk": 8},
        {"id": 9, "rk": None},
    ]
    assert again.filter(replayed) == replayed[2:]  # a new row at 7, an update at 8, a null: kept
    assert again.dropped == 2
    # the next state still at 7: what was delivered at 7 before and now is listed
    nxt = again.at_state({"bookmarks": {"s": {"replication_key": "rk", "replication_key_value": 7}}})
    assert sorted(nxt["keys_at_values"][0][1]) == [[2], [3], [4]]
    assert Replays(["s"], "other_rk", ["id"], stored).filter([{"id": 2, "rk": 7}]) == [{"id": 2, "rk": 7}]


def test_replays_without_key_count_identical_rows() -> None:
    r = Replays(["s"], "rk", [])
    rows = [{"rk": 1, "v": "a"}, {"rk": 1, "v": "a"}, {"rk": 1, "v": "b"}]
    r.filter([dict(x) for x in rows])
    stored = r.at_state({"bookmarks": {"s": {"rk": 1}}})
    assert stored is not None and len(stored["keys_at_values"][0][1]) == 3
    again = Replays(["s"], "rk", [], json.loads(json.dumps(stored)))
    # three copies of "a" come back: two were delivered, one is new
    out = again.filter([{"rk": 1, "v": "a"}, {"rk": 1, "v": "a"}, {"rk": 1, "v": "a"}, {"rk": 1, "v": "b"}])
    assert out == [{"rk": 1, "v": "a"}]


# ------------------------------------------------------------------------------- message reader
def _msg(**kw: Any) -> bytes:
    return orjson.dumps(kw) + b"\n"


def _err(text: str, subject: str = "") -> AdapterError:
    return AdapterError(f"adapter 'singer' (tap-x), stream 's': {subject}: {text}")


SPEC = cat.entry_spec(
    {"tap_stream_id": "s", "schema": {"type": "object", "properties": {"id": {"type": "integer"}}}}
)
REC_SCHEMA = {"type": "object", "properties": {"id": {"type": "integer"}}}


def _reader(**kw: Any) -> StreamReader:
    kw.setdefault("batch_size", 100)
    kw.setdefault("replays", None)
    return StreamReader(SPEC, error=_err, tap="tap-x", **kw)


def test_reader_ends_batches_at_state_and_at_batch_size() -> None:
    lines = [
        _msg(type="SCHEMA", stream="s", schema=REC_SCHEMA, key_properties=["id"]),
        *[_msg(type="RECORD", stream="s", record={"id": i}) for i in range(1, 4)],
        _msg(type="STATE", value={"bookmarks": {"s": {"n": 3}}}),
        _msg(type="RECORD", stream="other", record={"id": 99}),
        _msg(type="STATE", value={"bookmarks": {"s": {"n": 3}}, "x": 1}),
        *[_msg(type="RECORD", stream="s", record={"id": i}) for i in range(4, 9)],
        _msg(type="ACTIVATE_VERSION", stream="s", version=1),
        _msg(type="STATE", value={"bookmarks": {"s": {"n": 8}}}),
        _msg(type="RECORD", stream="s", record={"id": 9}),
    ]
    r = _reader(batch_size=3)
    out = [(b.records, b.bookmark) for b in r.batches(lines)]
    assert out == [
        ([{"id": 1}, {"id": 2}, {"id": 3}], None),  # cut at batch_size: the STATEs come after it
        ([], {"singer_state": {"bookmarks": {"s": {"n": 3}}, "x": 1}}),  # (with no record between: the last)
        ([{"id": 4}, {"id": 5}, {"id": 6}], None),
        ([{"id": 7}, {"id": 8}], {"singer_state": {"bookmarks": {"s": {"n": 8}}}}),
        ([{"id": 9}], None),  # after the last STATE: no bookmark
    ]
    assert r.other_records == {"other": 1} and r.states == 3


def test_reader_limit_and_on_end() -> None:
    ended: list[int] = []
    lines = [_msg(type="SCHEMA", stream="s", schema=REC_SCHEMA)]
    lines += [_msg(type="RECORD", stream="s", record={"id": i}) for i in range(10)]
    r = _reader(batch_size=4, limit=6, on_end=lambda: ended.append(1))
    assert [len(b) for b in r.batches(lines)] == [4, 2] and r.limited and not ended
    r = _reader(on_end=lambda: ended.append(1))
    assert [len(b) for b in r.batches(lines)] == [10] and ended == [1]


@pytest.mark.parametrize(
    ("lines", "match"),
    [
        ([b"hello\n"], r"tap tap-x: wrote line 1, which is not a Singer message: 'hello'"),
        ([_msg(type="RECORD", stream="s", record={"id": 1})], r"RECORD before the SCHEMA \(line 1\)"),
        ([_msg(type="STATE", value=3)], r"STATE without a value object"),
    ],
)
def test_reader_errors_name_the_tap_and_line(lines: list[bytes], match: str) -> None:
    with pytest.raises(AdapterError, match=match):
        list(_reader().batches(lines))


def test_reader_reads_batch_messages_jsonl_gzip_and_parquet(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    jl = tmp_path / "part one.json.gz"
    with gzip.open(jl, "wb") as fh:
        fh.write(b'{"id": 1}\n{"id": 2}\n{"id": 12345678901234567890123}\n')
    pqf = tmp_path / "p.parquet"
    pq.write_table(pa.table({"id": [4, 5]}), pqf)
    lines = [
        _msg(type="SCHEMA", stream="s", schema=REC_SCHEMA),
        _msg(type="RECORD", stream="s", record={"id": 0}),
        _msg(
            type="BATCH",
            stream="s",
            encoding={"format": "jsonl", "compression": "gzip"},
            manifest=[jl.as_uri()],
        ),
        _msg(
            type="BATCH",
            stream="s",
            encoding={"format": "parquet", "compression": "none"},
            manifest=[str(pqf)],
        ),
        _msg(type="STATE", value={"done": True}),
    ]
    batches = list(_reader(batch_size=2).batches(lines))
    ids = [r["id"] for b in batches for r in b.records]
    assert ids == [0, 1, 2, 12345678901234567890123, 4, 5]
    assert batches[-1].bookmark == {"singer_state": {"done": True}}
    missing = [
        lines[0],
        _msg(type="BATCH", stream="s", encoding={"format": "jsonl"}, manifest=["/nope.jsonl"]),
    ]
    with pytest.raises(AdapterError, match=r"tap tap-x: sent BATCH file /nope\.jsonl"):
        list(_reader().batches(missing))


# ------------------------------------------------------------------------------------ processes
def test_resolve_command_searches_dcapix_singer_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    exe = tmp_path / "tap-made-up"
    exe.write_text("#!/bin/sh\nexit 0\n")
    exe.chmod(0o755)
    with pytest.raises(ConfigError, match="'tap-made-up' not found in DCAPIX_SINGER_PATH"):
        resolve_command("tap-made-up --flag")
    monkeypatch.setenv(PATH_ENV, str(tmp_path))
    assert resolve_command("tap-made-up --flag 'a b'") == [str(exe), "--flag", "a b"]
    with pytest.raises(ConfigError, match="is not an executable file"):
        resolve_command([str(tmp_path / "nope")])


def test_private_dir_is_private_and_stale_ones_are_removed() -> None:
    import tempfile

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = Path(tempfile.gettempdir()) / f"dcapix-bridge-{dead.pid}-leftover"
    stale.mkdir(exist_ok=True)
    (stale / "config.json").write_text("{}")
    with private_dir() as d:
        assert stat.S_IMODE(os.stat(d).st_mode) == 0o700
        p = write_private_json(d, "c.json", {"password": "x"})
        assert stat.S_IMODE(os.stat(p).st_mode) == 0o600
        assert not stale.exists()
    assert not os.path.exists(d)


def test_connector_error_names_the_executable_and_last_stderr_line(tmp_path: Path) -> None:
    from dc_api_x.logs import register_secret

    register_secret("hunter2-secret")
    exe = tmp_path / "tap-broken"
    exe.write_text(
        "#!/bin/sh\necho 'starting' >&2\necho 'Traceback (most recent call last):' >&2\n"
        "echo '  File \"x.py\", line 1, in <module>' >&2\n"
        "echo 'sqlalchemy.exc.OperationalError: bad password hunter2-secret' >&2\necho >&2\n"
        "echo '(Background on this error at: https://example.invalid/e3q8)' >&2\nexit 3\n"
    )
    exe.chmod(0o755)
    conn = Connector([str(exe)], role="tap", where="adapter 'singer' (tap-broken), stream 's'")
    rc = conn.wait()
    err = conn.exit_error(rc)
    assert str(err) == (
        "adapter 'singer' (tap-broken), stream 's': tap tap-broken exited with code 3: "
        "sqlalchemy.exc.OperationalError: bad password ***"
    )
    plain = tmp_path / "target-plain"
    plain.write_text("#!/bin/sh\necho 'line one' >&2\necho 'CRITICAL the end' >&2\nkill -9 $$\n")
    plain.chmod(0o755)
    conn = Connector([str(plain)], role="target", where="adapter 'singer'")
    assert str(conn.exit_error(conn.wait())) == (
        "adapter 'singer': target target-plain was killed by SIGKILL: CRITICAL the end"
    )
