"""File and HTTP sources never round a number (issue 16): a JSON number with more digits than a float64
holds, an integer beyond 64 bits or ``1e400`` read by ``dcapix run`` keeps every digit where the
destination can hold it (JSONL, decimal columns) and is refused in one line naming the stream and the
field where it cannot (float64 columns), with exit 1 and no state advanced."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[2]

LONG = "123456789012345678901234567890.123456789"
LINES = [
    b'{"id": 1, "v": 123456789012345678901234567890.123456789, "n": 18446744073709551616}',
    b'{"id": 2, "v": 2.5, "n": 7}',
    b'{"id": 3, "v": 1e400, "n": -123456789012345678901234567890}',
    b'{"id": 4, "v": 0.30000000000000004, "n": 9223372036854775807}',
    b'{"id": 5, "v": -0.0000000000000000000123456789012345678901, "n": null}',
]


def _dcapix(cwd: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dc_api_x.cli", *argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def _run(cwd: Path, src: dict[str, Any], dst: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    (cwd / "src.json").write_text(json.dumps(src))
    (cwd / "dst.json").write_text(json.dumps(dst))
    return _dcapix(cwd, "run", "--source", "src.json", "--destination", "dst.json", "--no-progress")


def _written(out: Path, suffix: str) -> list[Path]:
    return sorted(p for p in out.rglob(f"*{suffix}") if not p.name.startswith((".", "_")))


def _error_lines(run: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in run.stderr.splitlines() if line.startswith("dcapix: error:")]


def test_jsonl_to_jsonl_keeps_every_digit_byte_for_byte(tmp_path: Path) -> None:
    (tmp_path / "in.jsonl").write_bytes(b"\n".join(LINES) + b"\n")
    run = _run(
        tmp_path,
        {"adapter": "jsonl", "path": str(tmp_path / "in.jsonl")},
        {"adapter": "jsonl", "path": str(tmp_path / "out")},
    )
    assert run.returncode == 0, run.stderr
    (part,) = _written(tmp_path / "out", ".jsonl")
    text = part.read_bytes()
    for number in (
        b"123456789012345678901234567890.123456789",
        b"18446744073709551616",
        b"1e400",
        b"-123456789012345678901234567890",
        b"0.30000000000000004",
        b"9223372036854775807",
        b"-0.0000000000000000000123456789012345678901",
    ):
        assert b":" + number + b"," in text or b":" + number + b"}" in text, (number, text)
    rows = [json.loads(line, parse_float=Decimal) for line in text.splitlines()]
    assert [r["v"] for r in rows] == [
        Decimal(LONG),
        Decimal("2.5"),
        Decimal("1e400"),
        Decimal("0.30000000000000004"),
        Decimal("-0.0000000000000000000123456789012345678901"),
    ]
    assert [r["n"] for r in rows] == [2**64, 7, -123456789012345678901234567890, 2**63 - 1, None]


def test_jsonl_to_parquet_decimal_schema_keeps_digits(tmp_path: Path) -> None:
    (tmp_path / "in.jsonl").write_bytes(b"\n".join([LINES[0], LINES[1]]) + b"\n")
    schema = {
        "properties": {
            "v": {"type": ["number", "null"], "format": "decimal", "x-precision": 40, "x-scale": 9},
            "n": {"type": ["number", "null"], "format": "decimal", "x-precision": 30, "x-scale": 0},
        }
    }
    run = _run(
        tmp_path,
        {"adapter": "jsonl", "path": str(tmp_path / "in.jsonl"), "schema": schema},
        {"adapter": "parquet", "path": str(tmp_path / "out")},
    )
    assert run.returncode == 0, run.stderr
    (part,) = _written(tmp_path / "out", ".parquet")
    table = pq.read_table(part)
    assert str(table.schema.field("v").type) == "decimal256(40, 9)"
    assert table.column("v").to_pylist() == [Decimal(LONG), Decimal("2.5")]
    assert table.column("n").to_pylist() == [Decimal(2**64), Decimal(7)]


def test_jsonl_to_parquet_float64_refuses_in_one_line_without_advancing_state(tmp_path: Path) -> None:
    src = {"adapter": "jsonl", "path": str(tmp_path / "in.jsonl"), "replication_key": "id"}
    dst = {"adapter": "parquet", "path": str(tmp_path / "out")}
    (tmp_path / "in.jsonl").write_bytes(LINES[1] + b"\n")
    first = _run(tmp_path, src, dst)
    assert first.returncode == 0, first.stderr
    state = _dcapix(tmp_path, "state", "export").stdout
    assert '"replication_key_value": 2' in state.replace('":2', '": 2'), state

    with (tmp_path / "in.jsonl").open("ab") as fh:
        fh.write(LINES[3].replace(b'"id": 4', b'"id": 3') + b"\n")  # 0.30000000000000004: exact in float64
        fh.write(
            LINES[0].replace(b'"id": 1', b'"id": 4').replace(b', "n": 18446744073709551616', b"") + b"\n"
        )
    run = _run(tmp_path, src, dst)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "Traceback" not in run.stderr + run.stdout
    (line,) = _error_lines(run)
    assert line.startswith("dcapix: error: adapter 'parquet', stream 'in', field 'v': ")
    assert LONG in line and "float64" in line
    assert _dcapix(tmp_path, "state", "export").stdout == state
    assert len(_written(tmp_path / "out", ".parquet")) == 1  # the first run's file only


def test_csv_long_decimals_are_inferred_exact_and_reach_sqlite(tmp_path: Path) -> None:
    rows = [
        "id,amount,ratio",
        f"1,{LONG},0.5",
        "2,2.5,0.25",
        "3,-0.0000000000000000000123456789012345678901,1.5",
    ]
    (tmp_path / "in.csv").write_text("\n".join(rows) + "\n")
    db = tmp_path / "out.db"
    run = _run(
        tmp_path,
        {"adapter": "csv", "path": str(tmp_path / "in.csv")},
        {"adapter": "sql", "url": f"sqlite:///{db}"},
    )
    assert run.returncode == 0, run.stderr
    conn = sqlite3.connect(db)
    try:
        got = conn.execute('SELECT id, amount, typeof(amount), ratio FROM "in" ORDER BY id').fetchall()
    finally:
        conn.close()
    assert [Decimal(r[1]) for r in got] == [
        Decimal(LONG),
        Decimal("2.5"),
        Decimal("-0.0000000000000000000123456789012345678901"),
    ]
    assert {r[2] for r in got} == {"text"}  # kept as decimal text, never a REAL
    assert [r[3] for r in got] == [0.5, 0.25, 1.5]  # ordinary numbers stay numbers


def test_csv_declared_number_column_keeps_digits_in_jsonl_and_refuses_float_parquet(tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_text(f"id,amount\n1,{LONG}\n2,2.5\n3,+7\n")
    src = {
        "adapter": "csv",
        "path": str(tmp_path / "in.csv"),
        "schema": {"properties": {"amount": {"type": ["number", "null"]}}},
    }
    run = _run(tmp_path, src, {"adapter": "jsonl", "path": str(tmp_path / "out")})
    assert run.returncode == 0, run.stderr
    (part,) = _written(tmp_path / "out", ".jsonl")
    lines = part.read_bytes().splitlines()
    assert lines == [
        b'{"id":1,"amount":' + LONG.encode() + b"}",
        b'{"id":2,"amount":2.5}',
        b'{"id":3,"amount":7}',
    ]

    run = _run(tmp_path, src, {"adapter": "parquet", "path": str(tmp_path / "outp")})
    assert run.returncode == 1
    (line,) = _error_lines(run)
    assert line.startswith("dcapix: error: adapter 'parquet', stream 'in', field 'amount': ") and LONG in line
    assert not _written(tmp_path / "outp", ".parquet")


def test_http_json_to_jsonl_keeps_every_digit(tmp_path: Path, http_server: Any) -> None:
    """A real loopback HTTP server answers raw JSON text with numbers orjson alone would round."""
    body = b'{"records": [' + b", ".join(LINES) + b"]}"
    http_server.route("GET", "/items", lambda req: (200, {"Content-Type": "application/json"}, body))
    src = {
        "adapter": "http",
        "base_url": http_server.url,
        "streams": [{"name": "items", "path": "/items", "records_path": "records"}],
    }
    run = _run(tmp_path, src, {"adapter": "jsonl", "path": str(tmp_path / "out")})
    assert run.returncode == 0, run.stderr
    (part,) = _written(tmp_path / "out", ".jsonl")
    rows = part.read_bytes().splitlines()
    assert rows[0] == b'{"id":1,"v":123456789012345678901234567890.123456789,"n":18446744073709551616}'
    assert rows[2] == b'{"id":3,"v":1e400,"n":-123456789012345678901234567890}'
    assert rows[4] == b'{"id":5,"v":-0.0000000000000000000123456789012345678901,"n":null}'


def test_json_loads_decodes_exactly_only_what_orjson_would_change() -> None:
    from dc_api_x.values import JSONNumber, json_loads, may_change_numbers

    held = [b"0.30000000000000004", b"1234567890123456789", b"-1.2345678901234567e-20", b"0.8022650611681835"]
    changed = [
        LONG.encode(),
        b"18446744073709551616",
        b"-123456789012345678901234567890",
        b"1.00000000000000000000001",
    ]
    for token in held:
        doc = b'{"a": %s, "b": 1.5}' % token
        assert not may_change_numbers(doc) and type(json_loads(doc)["a"]) in (int, float), token
        assert not may_change_numbers(b"\n".join([doc] * 300))  # a chunk: checked through Arrow
    for token in changed:
        doc = b'{"a": %s, "b": 1.5}' % token
        assert may_change_numbers(doc) and may_change_numbers(
            b"\n".join([b'{"a": 0.8022650611681835}'] * 300 + [doc])
        )
        value = json_loads(doc)["a"]
        assert str(value) == token.decode() or (type(value) is JSONNumber and value.text == token.decode())
    assert json_loads(b'{"a": 1e400}')["a"].text == "1e400"
    assert json_loads(b'{"s": "1234567890123456789012", "b": 1.5}') == {
        "s": "1234567890123456789012",
        "b": 1.5,
    }
