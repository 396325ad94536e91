"""Numbers with more significant digits than a float64 holds (issue 16): kept where the destination
can hold them (JSON text, decimal columns), refused naming stream, field and line where it cannot;
never rounded silently. Ordinary numbers keep orjson's fast path."""

from __future__ import annotations

import io
import json
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
import pytest

from tests.singer_target.support import target_in_process

LONG = "123456789012345678901234567890.123456789"
TINY_TAIL = "0.1000000000000000000001"  # parses to the float 0.1: the tail would vanish
BIG_INT = "123456789012345678901234567890"  # orjson decodes it as a float (1.2345678901234568e+29)


def _schema(x: dict[str, Any] | None = None) -> dict[str, Any]:
    props = {
        "id": {"type": "integer"},
        "x": x or {"type": ["number", "null"]},
        "j": {"type": ["object", "null"]},
    }
    return {
        "type": "SCHEMA",
        "stream": "s",
        "schema": {"type": "object", "properties": props},
        "key_properties": ["id"],
    }


def _messages(x: dict[str, Any] | None = None, value: str = LONG, first: Any = 1.5) -> list[Any]:
    return [
        _schema(x),
        {"type": "RECORD", "stream": "s", "record": {"id": 1, "x": first, "j": {"a": 1}}},
        f'{{"type":"RECORD","stream":"s","record":{{"id":2,"x":{value},"j":{{"a":{TINY_TAIL}}}}}}}',
        {"type": "STATE", "value": {"n": 2}},
    ]


@pytest.fixture
def run(plugins: Any, tmp_path: Path):
    """``run(messages, **config) -> (rc, states, stderr)``: target-dcapix in-process, built-in adapters."""

    def go(messages: list[Any], **config: Any) -> tuple[int, list[Any], str]:
        rc, out, err = target_in_process(messages, **config)
        return rc, [json.loads(x) for x in out.splitlines() if x.strip()], err

    return go


def _one_error(rc: int, err: str) -> str:
    assert rc == 1, err
    lines = [x for x in err.splitlines() if x.startswith("target-dcapix: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_jsonl_keeps_every_digit_of_top_level_and_nested_numbers(run, tmp_path: Path):
    rc, states, err = run(_messages(), adapter="jsonl", path=str(tmp_path / "out"))
    assert rc == 0, err
    assert states == [{"n": 2}]
    (part,) = (tmp_path / "out" / "s").glob("*.jsonl")
    lines = part.read_text().splitlines()
    assert lines[0] == '{"id":1,"x":1.5,"j":{"a":1}}'
    assert lines[1] == f'{{"id":2,"x":{LONG},"j":{{"a":{TINY_TAIL}}}}}'
    # and the numbers are JSON numbers, not strings
    back = json.loads(lines[1], parse_float=Decimal)
    assert back["x"] == Decimal(LONG) and back["j"]["a"] == Decimal(TINY_TAIL)


@pytest.mark.parametrize("value", [LONG, TINY_TAIL, "1e400"])
def test_parquet_float_column_refuses_naming_stream_field_and_line(run, tmp_path: Path, value: str):
    rc, states, err = run(_messages(value=value), adapter="parquet", path=str(tmp_path / "out"))
    line = _one_error(rc, err)
    assert "line 3" in line and "stream 's'" in line and "field 'x'" in line, line
    assert "float64" in line and ("significant digits" in line or "beyond the range" in line)
    assert states == []  # the STATE after the refused record is never emitted
    assert not list((tmp_path / "out").rglob("*.parquet"))


def test_sqlite_real_column_refuses_naming_stream_field_and_line(run, tmp_path: Path):
    db = tmp_path / "dst.sqlite"
    rc, states, err = run(_messages(), adapter="sql", url=f"sqlite:///{db}")
    line = _one_error(rc, err)
    assert "line 3" in line and "stream 's'" in line and "field 'x'" in line and LONG in line, line
    assert states == []
    con = sqlite3.connect(db)
    try:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        rows = con.execute("SELECT count(*) FROM s").fetchone()[0] if "s" in tables else 0
    finally:
        con.close()
    assert rows == 0


DECIMAL_X = {"type": ["number", "null"], "format": "decimal", "x-precision": 40, "x-scale": 9}


def test_parquet_decimal_column_keeps_the_digits(run, tmp_path: Path):
    rc, states, err = run(_messages(DECIMAL_X), adapter="parquet", path=str(tmp_path / "out"))
    assert rc == 0, err
    assert states == [{"n": 2}]
    table = ds.dataset(tmp_path / "out" / "s", format="parquet").to_table()
    assert str(table.schema.field("x").type) == "decimal256(40, 9)"
    rows = sorted(table.to_pylist(), key=lambda r: r["id"])
    assert rows[0]["x"] == Decimal("1.5") and rows[1]["x"] == Decimal(LONG)
    assert json.loads(rows[1]["j"], parse_float=Decimal) == {"a": Decimal(TINY_TAIL)}


def test_sqlite_decimal_column_keeps_the_digits(run, tmp_path: Path):
    db = tmp_path / "dst.sqlite"
    rc, states, err = run(
        _messages({"type": ["number", "null"], "format": "decimal"}), adapter="sql", url=f"sqlite:///{db}"
    )
    assert rc == 0, err
    assert states == [{"n": 2}]
    con = sqlite3.connect(db)
    try:
        rows = con.execute("SELECT id, x, j FROM s ORDER BY id").fetchall()
    finally:
        con.close()
    assert Decimal(rows[0][1]) == Decimal("1.5")
    assert rows[1][1] == LONG
    assert json.loads(rows[1][2], parse_float=Decimal) == {"a": Decimal(TINY_TAIL)}


def test_integer_beyond_float_precision_is_not_turned_into_a_float(run, tmp_path: Path):
    msgs = _messages({"type": ["integer", "null"]}, value=BIG_INT, first=7)
    rc, states, err = run(msgs, adapter="parquet", path=str(tmp_path / "out"))
    line = _one_error(rc, err)
    assert "line 3" in line and "field 'x'" in line and "1.2345678901234568e+29" not in line, line
    assert states == []


def test_maximum_is_checked_exactly_on_a_long_number(run, tmp_path: Path):
    x = {"type": ["number", "null"], "maximum": 1e29}
    rc, states, err = run(_messages(x), adapter="jsonl", path=str(tmp_path / "out"))
    line = _one_error(rc, err)
    assert "line 3" in line and "field 'x'" in line and "maximum" in line, line
    assert states == []


def test_ordinary_numbers_and_long_digit_strings_stay_on_the_fast_path():
    from target_dcapix.reader import FastSingerReader

    lines = [
        b'{"type":"RECORD","stream":"s","record":{"x":250.11,"y":0.1234567890123456,"id":"12345678901234567890"}}',
        b'{"type":"RECORD","stream":"s","record":{"x":9007199254740993,"y":1e-300}}',
        b'{"type":"RECORD","stream":"s","record":{"x":%s}}' % LONG.encode(),
    ]
    got: list[Any] = []
    reader = FastSingerReader()
    reader.process_lines(io.BytesIO(b"\n".join(lines) + b"\n"), {"RECORD": got.append})
    assert got[0]["record"] == {"x": 250.11, "y": 0.1234567890123456, "id": "12345678901234567890"}
    assert type(got[0]["record"]["y"]) is float  # 16 digits a float64 holds exactly: stays a float
    assert got[1]["record"] == {"x": 9007199254740993, "y": 1e-300}
    assert got[2]["record"] == {"x": Decimal(LONG)}
    assert reader.exact_lines == 2  # line 2: 2**53 + 1 is an int, which a float64 column would not hold


def test_value_helpers():
    from dc_api_x.arrow import InexactNumberError, exact_float
    from dc_api_x.values import exact_json_loads, has_inexact_numbers, has_long_digit_run

    assert not has_long_digit_run(b'{"a":250.11,"t":"2024-01-01T00:00:00.000000+00:00"}')
    assert has_long_digit_run(b'{"a":12345678.12345678}') and has_long_digit_run("1234567890123456")
    doc = exact_json_loads(f'{{"a": {LONG}, "b": 1.5, "c": {BIG_INT}, "d": 1e400}}')
    assert doc == {"a": Decimal(LONG), "b": 1.5, "c": int(BIG_INT), "d": Decimal("1e400")}
    assert type(doc["b"]) is float and has_inexact_numbers(doc) and not has_inexact_numbers({"b": 1.5})
    with pytest.raises(ValueError):
        exact_json_loads('{"a": NaN}')
    assert exact_float(Decimal("1.50")) == 1.5 and exact_float(2**53) == float(2**53)
    for bad in (Decimal(LONG), 2**53 + 1, Decimal("1e400")):
        with pytest.raises(InexactNumberError):
            exact_float(bad)


@pytest.mark.postgres
def test_postgresql_numeric_column_keeps_the_digits_double_refuses(run, pg_url: str, pg_schema: str):
    import psycopg

    plain = pg_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE TABLE "{pg_schema}".s (id bigint PRIMARY KEY, x numeric, j jsonb)')
    rc, states, err = run(_messages(), adapter="sql", url=pg_url, schema=pg_schema)
    assert rc == 0, err
    assert states == [{"n": 2}]
    with psycopg.connect(plain) as conn:
        rows = conn.execute(f'SELECT id, x::text, j::text FROM "{pg_schema}".s ORDER BY id').fetchall()
    assert rows[1][1] == LONG
    assert json.loads(rows[1][2], parse_float=Decimal) == {"a": Decimal(TINY_TAIL)}

    msgs = [{**_schema(), "stream": "t"}] + [
        m.replace('"stream":"s"', '"stream":"t"') if isinstance(m, str) else {**m, "stream": "t"}
        for m in _messages()[1:3]
    ]
    rc, states, err = run(msgs, adapter="sql", url=pg_url, schema=pg_schema)  # creates t: double precision
    line = _one_error(rc, err)
    assert "line 3" in line and "stream 't'" in line and "field 'x'" in line, line


@pytest.mark.parametrize("value", ["1e-400", "-2.5E-999", "4.9e-324"])
def test_numbers_below_float64s_range_are_not_turned_into_zero(run, tmp_path: Path, value: str):
    """``1e-400`` has few digits but orjson decodes it as ``0.0``: JSON output keeps it as written,
    a float64 column refuses it (never a silent zero)."""
    rc, states, err = run(_messages(value=value), adapter="jsonl", path=str(tmp_path / "out"))
    assert rc == 0, err
    (part,) = (tmp_path / "out" / "s").glob("*.jsonl")
    row = part.read_text().splitlines()[1]
    assert json.loads(row, parse_float=Decimal)["x"] == Decimal(value), row
    rc, states, err = run(_messages(value=value), adapter="parquet", path=str(tmp_path / "pq"))
    line = _one_error(rc, err)
    assert "line 3" in line and "field 'x'" in line, line
    assert states == []
