"""The compiled RECORD-line scanner of target-dcapix's column path (``dc_api_x.arrow._recordscan``, built by
setup.py; :meth:`target_dcapix.columnar.ColumnarPlan.native_table`): whatever block it takes must
give exactly the Arrow table the Python paths give — the dict path (orjson, or the exact decode for
long numbers, then ``records_to_arrow``) and the msgspec column path — value for value, null vs
missing, long integers, number spellings, escapes, unicode, duplicate keys; anything it cannot read
exactly it leaves to them (``None``). These tests fail when the extension is not built (``.ci/run``
installs with gcc at hand)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pytest
from target_dcapix import columnar

from dc_api_x.arrow import jsonschema_to_arrow, records_to_arrow
from dc_api_x.arrow import native as native_mod
from dc_api_x.values import exact_json_loads, has_long_digit_run
from tests.singer_target.test_columnar import SCHEMA, _both, _messages, _run, _table

ARROW = jsonschema_to_arrow(SCHEMA)


@pytest.fixture(scope="module")
def plan() -> columnar.ColumnarPlan:
    got = columnar.columnar_plan("s", SCHEMA, ["id"])
    assert got is not None
    return got


def test_the_scanner_is_built_and_used_for_the_schema(plan: columnar.ColumnarPlan) -> None:
    assert native_mod.status() == (True, "built"), native_mod.status()
    assert plan.native is not None
    # kinds: id i, name s, amount n, qty i, ok b, at s, day s, price s, big i, attrs j, tags j,
    # mixed j, note s
    assert plan.native[2] == b"isnibsssijjjs"


def _expected(line: bytes) -> pa.Table:
    """The dict path's table of one RECORD line: decoded as the reader decodes it, converted by
    ``records_to_arrow`` with the stream's Arrow schema."""
    msg = exact_json_loads(line) if has_long_digit_run(line) else orjson.loads(line)
    return records_to_arrow([msg["record"]], arrow_schema=ARROW)


def _check(plan: columnar.ColumnarPlan, line: bytes) -> bool:
    """Whether the scanner took ``line``; when it did, its table is the dict path's and the msgspec
    path's (which must accept the line as a RECORD of the stream)."""
    try:
        got = plan.native_table([line], SCHEMA)
    except Exception:  # a value Arrow refuses: the target leaves the block to the Python path
        return False
    if got is None:
        return False
    kinds, table, _ = got
    if kinds == b"O":  # another message type: the target decodes it, and takes only a STATE
        try:
            msg = plan.decode(line)
        except plan.decode_error:
            return False
        if type(msg) is not plan.state_type:
            return False
        assert orjson.loads(line)["type"] == "STATE"
        return True
    assert kinds == b"R"
    msg = plan.decode(line)  # the msgspec path's type check agrees
    assert type(msg) is plan.message_type and msg.stream == "s", line
    want = _expected(line)
    assert table.schema.equals(want.schema, check_metadata=True)
    assert table.equals(want), (line, table.to_pylist(), want.to_pylist())
    assert table.to_pylist() == want.to_pylist()
    # equal floats with a sign: -0.0 vs 0.0 compare equal; their text tells them apart
    assert repr(table.to_pylist()) == repr(want.to_pylist()), line
    try:
        theirs = plan.to_arrow([msg.record], SCHEMA)
    except columnar._Refused:
        return True
    assert theirs.equals(table)
    return True


def _rec(**over: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {"id": 1, "name": "a", "amount": 1.5, "note": "n", "attrs": {"k": 1}}
    rec.update(over)
    return rec


def _line(rec: Any, **top: Any) -> bytes:
    return orjson.dumps({"type": "RECORD", "stream": "s", "record": rec, **top})


def _raw(record_text: str, head: str = '{"type":"RECORD","stream":"s","record":') -> bytes:
    return (head + record_text + "}").encode()


TAKEN = [
    _line(_rec()),
    _line(_rec(name='q"uote\\back/slash\nnl\ttab\u0000nul\u001f\u007f\u2028é😀مرحبا')),
    _raw('{"id":1,"name":"\\u00e9\\uD83D\\ude00\\/\\b\\f\\r\\u0000\\u001F"}'),
    _raw('{"id":9223372036854775807,"big":-9223372036854775808,"qty":-0}'),
    _raw('{"id":1,"amount":-0}'),  # the integer 0 on the dict path: +0.0
    _raw('{"id":1,"amount":-0.0}'),
    _raw('{"id":1,"amount":123456789012345}'),
    _raw('{"id":1,"amount":1E+22}'),
    _raw('{"id":1,"amount":0.1}'),
    _raw('{"id":1,"amount":2.2250738585072014e-308}'),
    _raw('{"id":1,"amount":4.9e-32}'),
    _raw('{"id":1,"amount":17976931348623157e-10}'),
    _raw('{"id":1,"amount":9007199254740993}'),  # 16 digits: refused (the exact path decides)
    _raw('{"id":1,"amount":0.500}'),
    _raw('{"id":1,"amount":null}'),
    _raw(
        ' { "id" : 1 , "name" : null , "ok" : false , "at" : "2024-03-10T02:30:00-05:00" } ',
        '{ "type" : "RECORD" , "stream" : "s" , "record" : ',
    ),
    _raw('{"id":1,"at":"2024-01-01T00:00:00","day":"0001-01-01","price":"-0.000001"}'),
    _raw('{"id":1,"at":"2024-06-01T12:00:00.123456+05:45","price":"12345.678901"}'),
    _raw('{"id":1}'),  # everything else left out: null
    _raw("{}"),  # id left out: refused (required)
    _raw('{"id":1,"attrs":{"a":[1,2.5,null,true,false,{"b":{}}],"s":"é\\"\\\\\\n\\u001f","n":-0.0}}'),
    _raw('{"id":1,"attrs":{"score":0.5905,"x":100.0,"y":0.0001,"z":123456789012345.6}}'),
    _raw('{"id":1,"attrs":{"x":1e-05}}'),  # orjson writes 0.00001: the rebuilt text decides
    _raw('{"id":1,"attrs":{"x":0.50}}'),
    _raw('{"id":1,"attrs":{"a":1,"a":2}}'),  # duplicate key: orjson keeps the last
    _raw('{"id":1,"attrs":{"a":"\\u00e9"}}'),  # an escape orjson does not write
    _raw('{"id":1,"attrs":{"a":"\\u001f\\u0000"}}'),
    _raw('{"id":1,"attrs":{"a":"\\u000a"}}'),  # orjson writes \\n
    _raw('{"id":1,"attrs":{"a":"\\/"}}'),
    _raw('{"id":1,"attrs":{"a": 1}}'),
    _raw('{"id":1,"attrs":{"a":01}}'),
    _raw('{"id":1,"attrs":{"a":-0}}'),
    _raw('{"id":1,"attrs":{"a":12345678901234567890}}'),
    _raw('{"id":1,"attrs":"text"}'),  # not an object: refused
    _raw('{"id":1,"attrs":null,"tags":null,"mixed":null}'),
    _raw('{"id":1,"attrs":[],"tags":[1,"a",null],"mixed":"x"}'),
    _raw('{"id":1,"tags":{"a":1}}'),  # an object in an array column: refused
    _raw('{"id":1,"mixed":5}'),
    _raw('{"id":1,"mixed":5.5}'),  # a float in a string|integer column: refused
    _raw('{"id":1,"mixed":true}'),
    _raw('{"id":1,"attrs":' + "[" * 70 + "]" * 70 + "}"),  # deeper than the scanner goes
    _raw('{"id":1,"attrs":{"a":' + "[" * 30 + "1" + "]" * 30 + "}}"),
    _raw('{"id":1,"id":2}'),  # duplicate field
    _raw('{"id":1,"extra":2}'),  # a field the schema does not declare
    _raw('{"id":1,"na\\u006de":"x"}'),  # an escaped key
    _raw('{"id":1.0}'),
    _raw('{"id":1e2}'),
    _raw('{"id":9223372036854775808}'),
    _raw('{"id":-9223372036854775809}'),
    _raw('{"id":"1"}'),
    _raw('{"id":true}'),
    _raw('{"id":null}'),
    _raw('{"id":1,"qty":null}'),  # null where the schema does not allow it
    _raw('{"id":1,"note":null}'),
    _raw('{"id":1,"ok":1}'),
    _raw('{"id":1,"amount":"1.5"}'),
    _raw('{"id":1,"amount":1e400}'),
    _raw('{"id":1,"amount":1e-400}'),
    _raw('{"id":1,"amount":0.1000000000000000000001}'),
    _raw('{"id":1,"amount":01}'),
    _raw('{"id":1,"amount":1.}'),
    _raw('{"id":1,"amount":.5}'),
    _raw('{"id":1,"amount":+1}'),
    _raw('{"id":1,"amount":NaN}'),
    _raw('{"id":1,"amount":Infinity}'),
    _raw('{"id":1,"name":"\\ud800"}'),  # a lone surrogate
    _raw('{"id":1,"name":"\\udc00x"}'),
    _raw('{"id":1,"name":"\\ud83d\\u0041"}'),
    _raw('{"id":1,"name":"tab\there"}'),  # a raw control character
    _raw('{"id":1,"name":"\\x"}'),
    _raw('{"id":1,"name":"\\u12"}'),
    _raw('{"id":1,}'),
    _raw('{"id":1'),
    _raw('{"id":1}}'),
    b'{"type":"RECORD","stream":"s","record":{"id":1}',
    b'{"type":"RECORD","stream":"s","record":{"id":1}} x',
    b'{"type":"RECORD","stream":"s","record":{"id":1},"time_extracted":"2024-01-01T00:00:00Z","version":3}',
    b'{"type":"RECORD","stream":"s","record":{"id":1},"x":{"a":[1, 2.5e400, "\\u00e9"]}}',
    b'{"type":"RECORD","stream":"s","record":{"id":1},"x":"\\ud800"}',
    b'{"type":"RECORD","stream":"s","record":{"id":1},"stream":"s"}',
    b'{"type":"RECORD","type":"RECORD","stream":"s","record":{"id":1}}',
    b'{"stream":"s","type":"RECORD","record":{"id":1}}',
    b'{"type":"RECORD","record":{"id":1},"stream":"s"}',
    b'{"type":"RECORD","stream":"t","record":{"id":1}}',
    b'{"type":"RECORD","stream":"\\u0073","record":{"id":1}}',
    b'{"type":"RECORD","stream":"s"}',
    b'{"type":"RECORD","record":{"id":1}}',
    b'{"type":"RECORD","stream":"s","record":[1]}',
    b'{"type":"RECORD","stream":"s","record":null}',
    b'{"type":"STATE","value":{"a":1}}',
    b"",
    b"   ",
    b"[]",
    b'\xef\xbb\xbf{"type":"RECORD","stream":"s","record":{"id":1}}',
    b'{"type":"RECORD","stream":"s","record":{"id":1,"name":"\xc3\x28"}}',  # invalid UTF-8
    b'{"type":"RECORD","stream":"s","record":{"id":1,"name":"\xc0\xaf"}}',  # overlong
    b'{"type":"RECORD","stream":"s","record":{"id":1,"name":"\xed\xa0\x80"}}',  # a surrogate
    b'{"type":"RECORD","stream":"s","record":{"id":1,"name":"\xf4\x90\x80\x80"}}',  # > U+10FFFF
    b'{"type":"RECORD","stream":"s","record":{"id":1,"attrs":{"a":"\xe2\x82"}}}',
]


def test_hand_written_lines(plan: columnar.ColumnarPlan) -> None:
    taken = [line for line in TAKEN if _check(plan, line)]
    # what the scanner must leave to the Python path
    for line in (
        _raw("{}"),
        _raw('{"id":1,"attrs":' + "[" * 70 + "]" * 70 + "}"),
        _raw('{"id":1,"attrs":{"a":12345678901234567890}}'),
        _raw('{"id":1,"id":2}'),
        _raw('{"id":1,"amount":9007199254740993}'),
        _raw('{"id":1,"name":"\\ud800"}'),
        _raw('{"id":1,"qty":null}'),
        b'{"type":"RECORD","stream":"t","record":{"id":1}}',
        b"",
    ):
        assert plan.native_table([line], SCHEMA) is None, line
    # and what it reads itself
    assert len(taken) >= 20, len(taken)
    for line in (
        _raw('{"id":1,"attrs":{"a":1,"a":2}}'),  # JSON texts orjson rebuilds: the column is rebuilt
        _raw('{"id":1,"attrs":{"x":0.50}}'),
        _raw('{"id":1,"attrs":{"a": 1}}'),
        _raw('{"id":1,"attrs":{"a":"\\u000a"}}'),
        _raw('{"id":1,"attrs":{"x":1e-05}}'),
        _raw('{"id":1,"amount":-0}'),
        _raw('{"id":9223372036854775807,"big":-9223372036854775808,"qty":-0}'),
        _raw('{"id":1,"attrs":{"a":[1,2.5,null,true,false,{"b":{}}],"s":"é\\"\\\\\\n\\u001f","n":-0.0}}'),
        b'{"type":"RECORD","stream":"s","record":{"id":1},"time_extracted":"2024-01-01T00:00:00Z","version":3}',
        b'{"type":"STATE","value":{"a":1}}',
    ):
        assert line in taken, line


def _hostile_line(rng: random.Random) -> bytes:
    """A RECORD line with random hostile values, some of them spelled by hand."""
    strings = ["", "é", "😀", 'q"b\\', "\u0000", "\u001f\u007f", "\u2028", "مرحبا", "x" * 40, "/"]
    numbers = [
        "0",
        "-0",
        "1",
        "-1",
        "0.1",
        "-0.0",
        "1e5",
        "1E-7",
        "2.5e+3",
        "123456789012345",
        "1234567890123456",
        "0.50",
        "100.0",
        "1e-05",
        "0.0001",
        "9007199254740993",
        "1e99",
        "1e100",
        "5e-324",
        "12345678.9",
        "0.30000000000000004",
    ]
    ints = [
        "0",
        "-0",
        "1",
        "-1",
        "9223372036854775807",
        "-9223372036854775808",
        "9223372036854775808",
        "12345678901234567890",
        "1.0",
        "1e2",
    ]

    def jstr(s: str) -> str:
        r = rng.random()
        if r < 0.5:
            return orjson.dumps(s).decode()
        if r < 0.8:
            return json.dumps(s)  # \\u escapes
        return json.dumps(s, ensure_ascii=False).replace("/", "\\/")

    def jvalue(depth: int = 0) -> str:
        r = rng.random()
        if depth > 3 or r < 0.3:
            return rng.choice([*numbers, "true", "false", "null", jstr(rng.choice(strings))])
        if r < 0.65:
            keys = [rng.choice(["a", "b", "é", "k", 'q"']) for _ in range(rng.randint(0, 4))]
            sep = rng.choice([":", ": ", ":"])
            return "{" + ",".join(jstr(k) + sep + jvalue(depth + 1) for k in keys) + "}"
        items = [jvalue(depth + 1) for _ in range(rng.randint(0, 3))]
        return "[" + rng.choice([",", ",", ", "]).join(items) + "]"

    fields: dict[str, str] = {"id": rng.choice(ints)}
    if rng.random() < 0.9:
        fields["name"] = rng.choice([jstr(rng.choice(strings)), "null"])
    if rng.random() < 0.9:
        fields["amount"] = rng.choice([*numbers, "null"])
    if rng.random() < 0.5:
        fields["qty"] = rng.choice(ints)
    if rng.random() < 0.7:
        fields["ok"] = rng.choice(["true", "false", "null"])
    if rng.random() < 0.6:
        fields["at"] = rng.choice(
            [
                '"2024-01-01T00:00:00Z"',
                '"2024-01-01T00:00:00"',
                "null",
                '"2024-06-01T12:00:00.123456+05:45"',
                '"soon"',
            ]
        )
    if rng.random() < 0.6:
        fields["day"] = rng.choice(['"2024-02-29"', '"0001-01-01"', "null", '"2023-02-29"'])
    if rng.random() < 0.5:
        fields["price"] = rng.choice(['"12345.678901"', '"-0.000001"', '"1.1234567"', "null"])
    if rng.random() < 0.5:
        fields["big"] = rng.choice([*ints, "null"])
    if rng.random() < 0.9:
        fields["attrs"] = rng.choice(["null", jvalue(), "{" + jstr("k") + ":" + jvalue() + "}"])
    if rng.random() < 0.5:
        fields["tags"] = rng.choice(["null", jvalue(), "[]"])
    if rng.random() < 0.5:
        fields["mixed"] = rng.choice(["null", jvalue()])
    if rng.random() < 0.5:
        fields["note"] = jstr(rng.choice(strings))
    items = list(fields.items())
    rng.shuffle(items)
    if rng.random() < 0.05:
        items.append(rng.choice(items))  # a duplicate field
    ws = rng.choice(["", "", " "])
    record = "{" + ("," + ws).join(f'"{k}":{ws}{v}' for k, v in items) + "}"
    return ('{"type":"RECORD","stream":"s","record":' + record + "}").encode()


def _taken(plan: columnar.ColumnarPlan, line: bytes) -> bool:
    """Whether the target would take ``line`` through the scanner (a RECORD it read, or a STATE)."""
    try:
        got = plan.native_table([line], SCHEMA)
    except Exception:  # (the target leaves such a block to the Python path)
        return False
    if got is None:
        return False
    if got[0] == b"R":
        return True
    try:
        return type(plan.decode(line)) is plan.state_type
    except plan.decode_error:
        return False


def _mutate(rng: random.Random, line: bytes) -> bytes:
    """``line`` with one byte replaced, dropped or inserted (mostly invalid JSON)."""
    b = bytearray(line)
    i = rng.randrange(len(b))
    op = rng.random()
    byte = rng.choice(b'{}[]",:\\-.0123456789eEnulltruefalse \t\x00\x1f\x7f\x80\xc3\xe2\xff')
    if op < 0.4:
        b[i] = byte
    elif op < 0.7:
        del b[i]
    else:
        b.insert(i, byte)
    return bytes(b)


def test_random_hostile_lines_and_their_mutations(plan: columnar.ColumnarPlan) -> None:
    rng = random.Random(20261203)
    taken = refused = mutants_taken = 0
    for _ in range(4000):
        line = _hostile_line(rng)
        try:
            if _check(plan, line):
                taken += 1
            else:
                refused += 1
        except (orjson.JSONDecodeError, ValueError):  # the dict path refuses the line: so must we
            assert not _taken(plan, line), line
            refused += 1
        for _ in range(3):
            mutant = _mutate(rng, line)
            if _taken(plan, mutant):
                mutants_taken += 1
                assert _check(plan, mutant), mutant
    # both kinds happened: the test exercised the scanner's own reading and its refusals
    assert taken > 300 and refused > 500, (taken, refused)
    assert mutants_taken > 100, mutants_taken


def test_a_block_is_read_whole_or_not_at_all(plan: columnar.ColumnarPlan) -> None:
    good = [_line(_rec(id=i)) for i in range(5)]
    state = b'{"type":"STATE","value":{"n":1}}'
    got = plan.native_table([*good[:2], state, *good[2:]], SCHEMA)
    assert got is not None
    kinds, table, _ = got
    assert kinds == b"RRORRR" and table.column("id").to_pylist() == [0, 1, 2, 3, 4]
    assert plan.native_table([*good, _raw('{"id":1,"id":2}')], SCHEMA) is None


def test_float_spellings_the_scanner_keeps_in_json_text_are_orjsons(plan: columnar.ColumnarPlan) -> None:
    """A float text the scanner keeps as JSON text is what orjson.dumps writes for it, over random
    doubles in every decade of fixed notation (the scanner compares with repr)."""
    rng = random.Random(5)
    kept = 0
    for _ in range(20000):
        v = round(rng.random(), rng.randint(1, 15)) * 10 ** rng.randint(-6, 17) * rng.choice([1, -1])
        for text in (repr(v), orjson.dumps(v).decode()):
            line = _raw('{"id":1,"attrs":{"v":' + text + "}}")
            got = plan.native_table([line], SCHEMA) if _taken(plan, line) else None
            if got is not None:
                kept += 1
                want = orjson.dumps({"v": orjson.loads(text)}).decode()
                assert got[1].column("attrs").to_pylist() == [want]
    assert kept > 10000, kept


@pytest.fixture
def counts(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Rows of blocks the scanner took, and of chunks the msgspec path converted."""
    seen = {"native": 0, "structs": 0}
    native_table = columnar.ColumnarPlan.native_table
    to_arrow = columnar.ColumnarPlan.to_arrow

    def counting_native(self: Any, block: Any, schema: Any) -> Any:
        got = native_table(self, block, schema)
        if got is not None:
            seen["native"] += got[1].num_rows
        return got

    def counting_structs(self: Any, records: Any, schema: Any) -> Any:
        table = to_arrow(self, records, schema)
        seen["structs"] += table.num_rows
        return table

    monkeypatch.setattr(columnar.ColumnarPlan, "native_table", counting_native)
    monkeypatch.setattr(columnar.ColumnarPlan, "to_arrow", counting_structs)
    return seen


def test_the_target_writes_with_the_scanner_exactly_what_the_python_paths_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, counts: dict[str, int]
) -> None:
    # the hostile 30,000 records of test_columnar (compact lines, then json.dumps lines with spaces
    # and \\u escapes), a 16-digit amount and a duplicate field in two blocks
    special = {
        20000: orjson.dumps(
            {"type": "RECORD", "stream": "s", "record": {**dict.fromkeys(["id"], 20000), "amount": 7}}
        )
        .decode()
        .replace('"amount":7', '"amount":1234567890123456'),
        4000: orjson.dumps({"type": "RECORD", "stream": "s", "record": {"id": 4000}})
        .decode()
        .replace('"id":4000', '"id":4000,"note":"a","note":"b"'),
    }
    msgs = _messages(30000, special)
    native_run, dict_run = _both(msgs, tmp_path, monkeypatch)
    assert counts["native"] >= 4000, counts
    with monkeypatch.context() as m:
        m.setenv(native_mod.ENV, "0")
        before = counts["native"]
        structs_run = _run(msgs, tmp_path / "structs")
        assert counts["native"] == before and counts["structs"] > 0, counts
    for run in (native_run, dict_run, structs_run):
        assert run[0] == 0, run[2]
    assert native_run[1] == dict_run[1] == structs_run[1]  # the same STATE messages
    a, b, c = _table(tmp_path / "fast"), _table(tmp_path / "slow"), _table(tmp_path / "structs")
    assert a.num_rows == 30000
    for other in (b, c):
        assert a.schema.equals(other.schema, check_metadata=True)
        assert a.equals(other)
        assert repr(a.to_pylist()) == repr(other.to_pylist())
    rows = {r["id"]: r for r in a.to_pylist()}
    assert rows[4000]["note"] == "b"  # the duplicate: the last, as orjson reads it
    assert rows[20000]["amount"] == 1234567890123456.0


def test_without_the_extension_the_python_path_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(native_mod.ENV, "0")
    assert native_mod.load() is None
    assert native_mod.status()[0] is False
    plan = columnar.columnar_plan("s", SCHEMA, ["id"])
    assert plan is not None and plan.native is None
    assert plan.native_table([_line(_rec())], SCHEMA) is None


def test_number_texts_read_as_float_reads_them(plan: columnar.ColumnarPlan) -> None:
    """The scanner's float parse (an exact power-of-ten multiply or divide when the digits and the
    exponent allow it, Python's parser otherwise) is correctly rounded: equal to ``float(text)``,
    bit for bit, over random spellings of up to 15 digits with and without an exponent (16 digits in
    a row, the leading 0 of 0.x counted, are the exact path's)."""
    import struct

    rng = random.Random(11)
    lines, texts = [], []
    for _ in range(30000):
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 14))).lstrip("0") or "0"
        cut = rng.randint(0, len(digits))
        text = (digits[:cut] or "0") + ("." + digits[cut:] if cut < len(digits) else "")
        if rng.random() < 0.5:
            text += rng.choice(["e", "E", "e+", "e-", "E-"]) + str(rng.randint(0, 40))
        text = rng.choice(["", "-"]) + text
        texts.append(text)
        lines.append(_raw('{"id":1,"amount":' + text + "}"))
    got = plan.native_table(lines, SCHEMA)
    assert got is not None
    values = got[1].column("amount").to_pylist()
    for text, value in zip(texts, values, strict=True):
        want = float(orjson.loads(text))  # an integer text is the integer (-0 is 0) as a float
        assert struct.pack("<d", value) == struct.pack("<d", want), (text, value, want)


def test_a_chunk_refused_at_write_time_is_read_again_from_its_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, counts: dict[str, int]
) -> None:
    """The scanner keeps no line of its records (only the block's bytes and offsets): a chunk the
    sink cannot write as a table is cut out of the input again and read by the dict path, each line
    with its number."""
    from target_dcapix import sinks

    def refuse(tables: Any, schema: Any) -> Any:
        raise ValueError("refused for the test")

    msgs = _messages(9000)
    with monkeypatch.context() as m:
        m.setattr(sinks, "_joined", refuse)
        refused_run = _run(msgs, tmp_path / "refused")
    assert counts["native"] > 0, counts
    with monkeypatch.context() as m:
        m.setattr(columnar, "ARROW_ADAPTERS", frozenset())
        dict_run = _run(msgs, tmp_path / "slow")
    assert refused_run[0] == dict_run[0] == 0, refused_run[2]
    assert refused_run[1] == dict_run[1]
    a, b = _table(tmp_path / "refused"), _table(tmp_path / "slow")
    assert a.num_rows == 9000 and a.equals(b)


@pytest.mark.parametrize(
    ("field", "value", "said", "named"),
    [("qty", '"7"', "field 'qty'", True), ("at", '"soon"', "field 'at'", False), ("id", "null", "id", True)],
)
def test_a_bad_record_in_a_block_the_scanner_would_read_names_its_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, field: str, value: str, said: str, named: bool
) -> None:
    bad = (
        orjson.dumps({"type": "RECORD", "stream": "s", "record": {"id": 8000, field: 0}})
        .decode()
        .replace(f'"{field}":0', f'"{field}":{value}')
    )
    fast, slow = _both(_messages(9000, {8000: bad}), tmp_path, monkeypatch)
    errors = [x for x in fast[2].splitlines() if x.startswith("target-dcapix: error:")]
    assert fast[0] == 1 and len(errors) == 1, fast[2]
    assert said in errors[0], errors
    # (a value Arrow refuses is named by its field, on both paths)
    assert (f"line {1 + 8000 + 7}" in errors[0]) is named, errors
    assert errors == [x for x in slow[2].splitlines() if x.startswith("target-dcapix: error:")]
    assert fast[1] == slow[1]  # the same STATE messages before it


def test_field_names_that_are_prefixes_of_each_other_empty_or_not_ascii() -> None:
    """The scanner matches a key against the field expected next without cutting the key out first;
    a name that is a prefix of another, the empty name and non-ASCII names are matched exactly."""
    schema = {
        "type": "object",
        "properties": {n: {"type": ["integer", "null"]} for n in ("a", "ab", "", "é", "a\u00e9", "b")},
    }
    plan = columnar.columnar_plan("s", schema, [])
    assert plan is not None and plan.native is not None
    arrow = jsonschema_to_arrow(schema)
    rng = random.Random(3)
    names = ["a", "ab", "", "é", "a\u00e9", "b"]
    for _ in range(300):
        keys = rng.sample(names, rng.randint(0, len(names)))
        record = {k: rng.randint(-5, 5) for k in keys}
        line = orjson.dumps({"type": "RECORD", "stream": "s", "record": record})
        got = plan.native_table([line], schema)
        assert got is not None, line
        want = records_to_arrow([record], arrow_schema=arrow)
        assert got[1].equals(want), (line, got[1].to_pylist(), want.to_pylist())
    for bad in (b'{"abc":1}', b'{"a":1,"a":2}', b'{"\\u0061":1}', b'{"a\\u00e9":1}', b'{"A":1}'):
        line = b'{"type":"RECORD","stream":"s","record":' + bad + b"}"
        assert plan.native_table([line], schema) is None, line


@pytest.mark.parametrize("chunk", [1, 7, 64, 1000, 1 << 20])
def test_blocks_of_any_read_size_give_the_same_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, counts: dict[str, int], chunk: int
) -> None:
    """The reader cuts its reads at their last newline (a line longer than a read, a read without a
    newline, no newline at the end of the input): the target writes the same rows at any read size,
    through the scanner whenever a block holds whole RECORD lines of the stream."""
    from target_dcapix import reader

    monkeypatch.setattr(reader, "READ_CHUNK", chunk)
    msgs = _messages(1500)
    from tests.singer_target.support import messages_text

    text = messages_text(msgs).rstrip("\n")  # no newline at the end
    rc, out, err = _run([text], tmp_path / "out")
    assert rc == 0, err
    assert json.loads(out.splitlines()[-1]) == {"n": 1000}
    table = _table(tmp_path / "out")
    assert table.num_rows == 1500 and table.column("id").to_pylist() == list(range(1, 1501))
    if chunk == 1000:  # (one 1 MiB read holds the SCHEMA too: the dict path reads it all)
        assert counts["native"] > 0, counts
