"""The column path of target-dcapix (:mod:`target_dcapix.columnar`): RECORD lines decoded by msgspec
into typed structs and written as Arrow columns must give exactly the Parquet the dict path gives,
on hostile but valid input; what it does not take (extra keys, long numbers, bad values) goes the
dict path, which names the line. And ``batch_size_bytes``: a few huge records are flushed without
waiting for ``batch_size_rows``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.dataset as ds
import pytest
from target_dcapix import columnar

from tests.singer_target.support import target_in_process

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "name": {"type": ["string", "null"]},
        "amount": {"type": ["number", "null"]},
        "qty": {"type": "integer", "description": "may be left out"},
        "ok": {"type": ["boolean", "null"]},
        "at": {"type": ["string", "null"], "format": "date-time"},
        "day": {"type": ["string", "null"], "format": "date"},
        "price": {"type": ["string", "null"], "format": "decimal", "x-precision": 20, "x-scale": 6},
        "big": {"type": ["integer", "null"]},
        "attrs": {"type": ["object", "null"], "additionalProperties": True},
        "tags": {"type": ["array", "null"]},
        "mixed": {"type": ["string", "integer", "null"]},
        "note": {"type": "string"},
    },
    "required": ["id"],
}
NAMES = ["é", "😀 emoji", 'q"uote\\back', "line\nbreak", "", "  spaced  ", "مرحبا", "nul\u0000byte", None]
AMOUNTS = [0.1, -0.0, 1e-7, 1.5e3, 123456789012345, -2.5, 0, None, 7.25e-5, 99.99, 1e22, -3]
ATS = [
    "2024-03-10T02:30:00-05:00",
    "2024-01-01T00:00:00Z",
    "2024-06-01T12:00:00.123456+05:45",
    "2024-01-01T00:00:00",
    "1970-01-01T00:00:00+00:00",
    None,
]
DAYS = ["2024-02-29", "1900-01-01", "0001-01-01", None]
PRICES = ["12345.678901", "-0.000001", "0", "1234.5", None]
BIGS = [999999999999999, -999999999999999, 0, None, 42]


def _record(i: int) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "id": i,
        "name": NAMES[i % len(NAMES)],
        "amount": AMOUNTS[i % len(AMOUNTS)],
        "qty": i % 1000,
        "ok": [True, False, None][i % 3],
        "at": ATS[i % len(ATS)],
        "day": DAYS[i % len(DAYS)],
        "price": PRICES[i % len(PRICES)],
        "big": BIGS[i % len(BIGS)],
        "attrs": [
            {"k": i, "nested": {"a": [1, 2.5, None, True], "s": "é😀"}, "f": 0.5905},
            None,
            {},
            {"deep": {"x": {"y": [{"z": "w"}]}}, "n": -0.0},
        ][i % 4],
        "tags": [["a", 1, None], None, []][i % 3],
        "mixed": ["x", 5, None][i % 3],
        "note": f"note {i}",
    }
    if i % 7 == 0:
        del rec["qty"], rec["note"]  # left out: null
    if i % 11 == 0:
        rec = dict(reversed(list(rec.items())))  # another key order
    return rec


def _line(i: int) -> str:
    msg = {"type": "RECORD", "stream": "s", "record": _record(i)}
    if i < 6000:
        return orjson.dumps(msg).decode()  # compact: the JSON columns' texts are orjson's own
    # json.dumps: spaces and \\u escapes, which orjson.dumps would not write: the texts are rebuilt
    return json.dumps(msg)


def _messages(n: int, special: dict[int, str] | None = None) -> list[Any]:
    msgs: list[Any] = [{"type": "SCHEMA", "stream": "s", "schema": SCHEMA, "key_properties": ["id"]}]
    for i in range(1, n + 1):
        msgs.append((special or {}).get(i) or _line(i))
        if i % 1000 == 0:
            msgs.append({"type": "STATE", "value": {"n": i}})
    return msgs


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Counts the chunks the column path converted (the msgspec structs: the compiled scanner, which
    would read most blocks first, is off here; tests/singer_target/test_native_scan.py tests it)."""
    monkeypatch.setenv("DC_API_X_NATIVE", "0")
    counts = {"tables": 0, "rows": 0}
    to_arrow = columnar.ColumnarPlan.to_arrow

    def counting(self: Any, records: Any, schema: Any) -> Any:
        table = to_arrow(self, records, schema)
        counts["tables"] += 1
        counts["rows"] += table.num_rows
        return table

    monkeypatch.setattr(columnar.ColumnarPlan, "to_arrow", counting)
    return counts


def _run(messages: list[Any], out: Path, **config: Any) -> tuple[int, str, str]:
    return target_in_process(messages, adapter="parquet", path=str(out), **config)


def _table(out: Path) -> pa.Table:
    table = ds.dataset(out / "s", format="parquet").to_table()
    return table.sort_by("id")


def _both(
    messages: list[Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **config: Any
) -> tuple[tuple[int, str, str], tuple[int, str, str]]:
    """(column path run, dict path run) of the same input."""
    fast = _run(messages, tmp_path / "fast", **config)
    with monkeypatch.context() as m:
        m.setattr(columnar, "ARROW_ADAPTERS", frozenset())
        slow = _run(messages, tmp_path / "slow", **config)
    return fast, slow


def test_column_path_writes_exactly_what_the_dict_path_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spy: dict[str, int], caplog: pytest.LogCaptureFixture
) -> None:
    # a 16-digit number (the reader's exact path) in the last block, an extra key in another
    special = {
        9000: orjson.dumps(
            {"type": "RECORD", "stream": "s", "record": {**_record(9000), "extra": 1}}
        ).decode(),
        29980: orjson.dumps({"type": "RECORD", "stream": "s", "record": {**_record(29980), "amount": 7}})
        .decode()
        .replace('"amount":7', '"amount":-0'),  # the integer 0 on the dict path, not -0.0
        29985: orjson.dumps(
            {"type": "RECORD", "stream": "s", "record": {**_record(29985), "attrs": {"a": 7}}}
        )
        .decode()
        .replace('{"a":7}', '{"a":0.1000000000000000000001}'),  # 0.1 to a float64: kept as JSON text
        29990: orjson.dumps(
            {"type": "RECORD", "stream": "s", "record": {**_record(29990), "amount": 0.1234567890123456}}
        ).decode(),
    }
    fast, slow = _both(_messages(30000, special), tmp_path, monkeypatch)
    assert fast[0] == 0, fast[2]
    assert slow[0] == 0, slow[2]
    assert fast[1] == slow[1]  # the same STATE messages
    assert json.loads(fast[1].splitlines()[-1]) == {"n": 30000}
    a, b = _table(tmp_path / "fast"), _table(tmp_path / "slow")
    assert a.num_rows == 30000
    assert a.schema.equals(b.schema, check_metadata=True)
    assert a.equals(b)
    assert a.to_pylist() == b.to_pylist()
    # the column path did most of it, and not everything (the blocks it refused went the dict path)
    assert spy["tables"] >= 2 and 13000 <= spy["rows"] < 30000, spy
    # spot checks against the input
    rows = {r["id"]: r for r in a.to_pylist()}
    assert rows[29990]["amount"] == 0.1234567890123456
    assert rows[29980]["amount"] == 0.0 and str(rows[29980]["amount"]) == "0.0"
    assert rows[29985]["attrs"] == '{"a":0.1000000000000000000001}'
    assert rows[14]["qty"] is None and rows[14]["note"] is None
    assert rows[4]["attrs"] == '{"k":4,"nested":{"a":[1,2.5,null,true],"s":"é😀"},"f":0.5905}'
    assert rows[6004]["attrs"] == '{"k":6004,"nested":{"a":[1,2.5,null,true],"s":"é😀"},"f":0.5905}'
    assert rows[3]["attrs"] == '{"deep":{"x":{"y":[{"z":"w"}]}},"n":-0.0}'
    assert rows[1]["attrs"] is None and rows[2]["attrs"] == "{}"
    assert rows[7]["name"] == "nul\u0000byte"
    warned = [r for r in caplog.records if "field 'extra' is not in the stream's schema" in r.getMessage()]
    assert len(warned) == 2  # once per run


def test_a_bad_value_after_the_first_block_names_its_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spy: dict[str, int]
) -> None:
    bad = orjson.dumps({"type": "RECORD", "stream": "s", "record": {**_record(8000), "qty": "7"}}).decode()
    fast, slow = _both(_messages(9000, {8000: bad}), tmp_path, monkeypatch)
    errors = [x for x in fast[2].splitlines() if x.startswith("target-dcapix: error:")]
    assert fast[0] == 1 and len(errors) == 1, fast[2]
    line = 1 + 8000 + 7  # the SCHEMA line, 8000 records, a STATE after every 1000
    assert f"line {line}" in errors[0] and "field 'qty'" in errors[0], errors
    assert errors == [x for x in slow[2].splitlines() if x.startswith("target-dcapix: error:")]
    # the STATE messages before the block of the bad record were emitted, none after it
    assert fast[1] == slow[1]
    assert spy["tables"] >= 1


def test_a_value_arrow_refuses_goes_the_dict_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spy: dict[str, int]
) -> None:
    # a valid string, not a date-time: the column path's conversion fails, the dict path names it
    bad = orjson.dumps({"type": "RECORD", "stream": "s", "record": {**_record(8000), "at": "soon"}}).decode()
    fast, slow = _both(_messages(9000, {8000: bad}), tmp_path, monkeypatch)
    assert fast[0] == slow[0] == 1
    errors = [x for x in fast[2].splitlines() if x.startswith("target-dcapix: error:")]
    assert errors == [x for x in slow[2].splitlines() if x.startswith("target-dcapix: error:")]
    assert "field 'at'" in errors[0], errors
    assert fast[1] == slow[1]


def test_schemas_beyond_types_have_no_column_path() -> None:
    assert columnar.columnar_plan("s", SCHEMA, ["id"]) is not None
    for prop in (
        {"type": "string", "maxLength": 3},
        {"type": "integer", "minimum": 0},
        {"type": "string", "enum": ["a"]},
        {"type": "object", "properties": {"a": {"type": "integer"}}},
        {"type": "array", "items": {"type": "integer"}},
        {"anyOf": [{"type": "string"}, {"type": "null"}]},
        {"type": ["null"]},
        {},
    ):
        schema = {"type": "object", "properties": {"id": {"type": "integer"}, "x": prop}}
        assert columnar.columnar_plan("s", schema, ["id"]) is None, prop
    # a key property the schema does not declare
    assert columnar.columnar_plan("s", {"properties": {"a": {"type": "integer"}}}, ["id"]) is None


# -- batch_size_bytes (issue 16, H1 "huge values") ----------------------------------------------------


def test_batch_size_bytes_flushes_a_few_huge_records(run_target: Any) -> None:
    big = "x" * 300_000
    msgs: list[Any] = [
        {
            "type": "SCHEMA",
            "stream": "s",
            "schema": {"properties": {"id": {"type": "integer"}, "v": {"type": "string"}}},
            "key_properties": ["id"],
        }
    ]
    for i in range(1, 7):
        msgs.append({"type": "RECORD", "stream": "s", "record": {"id": i, "v": big}})
        msgs.append({"type": "STATE", "value": {"n": i}})
    run = run_target(msgs, batch_size_bytes=1_000_000)
    assert run.rc == 0, run.stderr
    flushes = [c["rows"] for c in run.calls() if c["call"] == "flush"]
    # 4 records (1.2 MB of input) reach the limit: written and flushed, the STATE received before
    # the 4th emitted then, the 4th's when it comes (nothing is buffered then)
    assert flushes == [4, 2], run.calls()
    assert run.states == [{"n": 3}, {"n": 4}, {"n": 6}]
    assert [r["id"] for r in run.rows("s")] == [1, 2, 3, 4, 5, 6]
    assert all(r["v"] == big for r in run.rows("s"))
    # the default (16 MiB) keeps them together
    run = run_target(msgs)
    assert [c["rows"] for c in run.calls() if c["call"] == "flush"] == [6]


def test_batch_size_bytes_must_be_a_positive_integer(run_target: Any) -> None:
    run = run_target([], batch_size_bytes=0)
    assert run.rc == 1
    assert run.error_lines and "batch_size_bytes" in run.error_lines[0], run.stderr


def test_number_and_json_texts_that_may_not_round_trip_are_refused() -> None:
    import msgspec

    from dc_api_x.arrow import jsonschema_field

    def raws(*texts: str) -> list[Any]:
        return [msgspec.json.decode(t.encode(), type=msgspec.Raw) for t in texts]

    number = columnar.ColumnarPlan._number_column
    got = number(raws("1", "-2.5", "1.5e3", "1E-7", "-0.0", "null", "123456789012345"), True)
    assert got.to_pylist() == [1.0, -2.5, 1500.0, 1e-7, -0.0, None, 123456789012345.0]
    assert number([*raws("1"), None], False).to_pylist() == [1.0, None]  # left out: null
    for bad in ("-0", "0.1000000000000000000001", "1e-400", '"5"', "true", "null", "{}"):
        with pytest.raises(columnar._Refused):
            number(raws("1", bad), False)
    field = jsonschema_field("j", {"type": ["object", "null"]})
    allowed = frozenset({dict, type(None)})
    text = columnar.ColumnarPlan._json_column
    assert text(raws('{"a":1}', "null", '{"b": 2}'), field, allowed).to_pylist() == [
        '{"a":1}',
        None,
        '{"b":2}',
    ]
    with pytest.raises(columnar._Refused):  # orjson would round it: the exact path decides
        text(raws('{"a": 0.1000000000000000000001}'), field, allowed)
    with pytest.raises(columnar._Refused):  # not an object
        text(raws('"s"'), field, allowed)


def test_activate_version_after_records_of_the_column_path_keeps_them(
    tmp_path: Path, spy: dict[str, int], caplog: pytest.LogCaptureFixture
) -> None:
    """ACTIVATE_VERSION as the first line of a block while the column path still buffers records
    (fewer than a chunk): it arrived after records, so it must not make the stream an overwrite."""
    from tests.singer_target.support import messages_text

    msgs = _messages(9000)
    # a SCHEMA line of exactly 1 MiB: the first block holds it alone, so no record went the dict
    # path (nothing was written) before the column path buffered the second block's records
    schema = {**SCHEMA, "description": ""}
    base = len(json.dumps({**msgs[0], "schema": schema}).encode()) + 1
    msgs[0] = {**msgs[0], "schema": {**SCHEMA, "description": "x" * ((1 << 20) - base)}}
    text = messages_text(msgs).encode()
    assert text.index(b"\n") + 1 == 1 << 20
    cut = text.rfind(b"\n", 0, 2 << 20) + 1  # the end of the second block (1 MiB reads)
    av = json.dumps({"type": "ACTIVATE_VERSION", "stream": "s", "version": 2, "pad": "x" * 2000})
    lines = [x.decode() for x in text[:cut].split(b"\n")[:-1]]
    rest = [x.decode() for x in text[cut:].split(b"\n")[:-1]]
    rc, _, err = _run([*lines, av, *rest], tmp_path / "out", hard_delete=True)
    assert rc == 0, err
    assert spy["rows"] > 0
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "before its records" not in said and "arrived after records" in said, said
    assert _table(tmp_path / "out").num_rows == 9000


def test_the_console_script_runs_the_column_path_on_the_system_allocator_without_pyarrow_compute(
    tmp_path: Path,
) -> None:
    """``target-dcapix`` (``target_dcapix.cli:main``) makes Arrow allocate with ``malloc`` (pyarrow's
    mimalloc pool kept 35 MiB more at peak on W3) unless ``ARROW_DEFAULT_MEMORY_POOL`` is set, and the
    column path does not import :mod:`pyarrow.compute` (45 ms of CPU and 8 MiB of RSS at import)."""
    import os
    import subprocess
    import sys

    lines = [orjson.dumps(m).decode() if not isinstance(m, str) else m for m in _messages(12000)]
    probe = (
        "import atexit, sys\n"
        "def report():\n"
        "    import pyarrow as pa\n"
        "    print('POOL', pa.default_memory_pool().backend_name, file=sys.stderr)\n"
        "    print('COMPUTE', 'pyarrow.compute' in sys.modules, file=sys.stderr)\n"
        "atexit.register(report)\n"
        "sys.argv = ['target-dcapix', '--config', sys.argv[1]]\n"
        "from target_dcapix.cli import main\n"
        "main()\n"
    )
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"adapter": "parquet", "path": str(tmp_path / "out")}))
    for preset, pool in ((None, "system"), ("mimalloc", "mimalloc")):
        env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
        if preset:
            env["ARROW_DEFAULT_MEMORY_POOL"] = preset
        proc = subprocess.run(
            [sys.executable, "-c", probe, str(config)],
            input="\n".join(lines) + "\n",
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert f"POOL {pool}" in proc.stderr, proc.stderr[-2000:]
        assert "COMPUTE False" in proc.stderr, proc.stderr[-2000:]
        assert json.loads(proc.stdout.splitlines()[-1]) == {"n": 12000}
    assert _table(tmp_path / "out").num_rows == 24000  # (the two runs appended)


def test_the_console_script_starts_without_the_cyclic_gc(tmp_path: Path) -> None:
    """``target-dcapix`` runs its start-up with the cyclic collector off (it spent 0.08-0.10 of the
    ~0.55 CPU-s start-up tracing the imports' objects) and turns it back on, with the start-up's
    objects frozen, before the first line is read."""
    import subprocess
    import sys

    lines = [orjson.dumps(m).decode() if not isinstance(m, str) else m for m in _messages(3000)]
    probe = (
        "import gc, sys\n"
        "seen = {'collections': 0}\n"
        "def count(phase, info):\n"
        "    seen['collections'] += phase == 'stop'\n"
        "gc.callbacks.append(count)\n"
        "import target_dcapix.cli as cli\n"
        "done, off = cli.startup_done, cli.gc_off_for_startup\n"
        "def start():\n"
        "    off()\n"
        "    seen['collections'] = 0\n"
        "def probe():\n"
        "    before = seen['collections']\n"
        "    done()\n"
        "    print('BEFORE', before, gc.isenabled(), gc.get_freeze_count() > 0, file=sys.stderr)\n"
        "cli.gc_off_for_startup, cli.startup_done = start, probe\n"
        "sys.argv = ['target-dcapix', '--config', sys.argv[1]]\n"
        "cli.main()\n"
    )
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"adapter": "parquet", "path": str(tmp_path / "out")}))
    proc = subprocess.run(
        [sys.executable, "-c", probe, str(config)],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "BEFORE 0 True True" in proc.stderr, proc.stderr[-2000:]
    assert json.loads(proc.stdout.splitlines()[-1]) == {"n": 3000}
    assert _table(tmp_path / "out").num_rows == 3000
