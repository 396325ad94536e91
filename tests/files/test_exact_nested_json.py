"""Long numbers *inside* JSON values (issue 16: never round silently). A JSON-text value nested in an
array or an object field (``list<JSON text>``, ``struct{p: JSON text}``) is decoded and written again
on its way to SQLite, PostgreSQL (jsonb) and JSONL: every digit of a number a float64 does not hold
(``123456789012345678901234567890.123456789``) and of an integer beyond 64 bits is kept, from a file
source, an HTTP source and Singer RECORD messages alike."""

from __future__ import annotations

import json
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.files.test_exact_read import _run, _written
from tests.singer_target.support import target_in_process

LONG = "123456789012345678901234567890.123456789"
BIG = "18446744073709551616123"  # beyond 64 bits: orjson refuses to write it, decodes it as a float
TAIL = "1234567890.12345678901234"
LINE = (
    f'{{"id": 1, "k": [{{"x": {TAIL}, "y": {BIG}}}], "s": {{"p": {{"q": {LONG}}}}}, "j": {{"big": {BIG}}}}}'
)
SCHEMA = {
    "properties": {
        "id": {"type": "integer"},
        "k": {"type": ["array", "null"], "items": {"type": "object"}},
        "s": {"type": ["object", "null"], "properties": {"p": {"type": ["object", "null"]}}},
        "j": {"type": ["object", "null"]},
    }
}
EXPECTED = {
    "k": [{"x": Decimal(TAIL), "y": int(BIG)}],
    "s": {"p": {"q": Decimal(LONG)}},
    "j": {"big": int(BIG)},
}


def _exact(text: str) -> Any:
    return json.loads(text, parse_float=Decimal)


def _check_texts(row: dict[str, Any]) -> None:
    for name, want in EXPECTED.items():
        assert _exact(row[name]) == want, (name, row[name])
        assert '"' + LONG not in row[name] and '"' + BIG not in row[name]  # numbers, not strings


def test_arrow_round_trip_keeps_nested_json_numbers() -> None:
    from dc_api_x.arrow import arrow_to_records, json_text, records_to_arrow
    from dc_api_x.values import json_loads

    record = json_loads(LINE)
    table = records_to_arrow([record], schema=SCHEMA)
    (back,) = arrow_to_records(table, SCHEMA)
    assert back["k"] == EXPECTED["k"] and back["s"] == EXPECTED["s"] and back["j"] == EXPECTED["j"]
    assert json_text(back["k"]) == f'[{{"x":{TAIL},"y":{BIG}}}]'
    assert json_text({"n": 2**64 - 1, "m": -(2**63)}) == '{"n":18446744073709551615,"m":-9223372036854775808}'
    # the fast path stays: ordinary numbers come back as floats, not Decimals
    (plain,) = arrow_to_records(records_to_arrow([{"k": [{"x": 1.5}]}], schema=SCHEMA), SCHEMA)
    assert type(plain["k"][0]["x"]) is float


def _sqlite_row(db: Path, table: str) -> dict[str, Any]:
    con = sqlite3.connect(db)
    try:
        con.row_factory = sqlite3.Row
        return dict(con.execute(f'SELECT k, s, j FROM "{table}"').fetchone())
    finally:
        con.close()


def _src(tmp_path: Path) -> dict[str, Any]:
    (tmp_path / "in.jsonl").write_text(LINE + "\n")
    return {"adapter": "jsonl", "path": str(tmp_path / "in.jsonl"), "schema": SCHEMA}


def test_jsonl_to_sqlite_keeps_nested_digits(tmp_path: Path) -> None:
    db = tmp_path / "out.db"
    run = _run(tmp_path, _src(tmp_path), {"adapter": "sql", "url": f"sqlite:///{db}"})
    assert run.returncode == 0, run.stderr
    _check_texts(_sqlite_row(db, "in"))


def test_jsonl_to_jsonl_keeps_nested_digits(tmp_path: Path) -> None:
    run = _run(tmp_path, _src(tmp_path), {"adapter": "jsonl", "path": str(tmp_path / "out")})
    assert run.returncode == 0, run.stderr
    (part,) = _written(tmp_path / "out", ".jsonl")
    text = part.read_text()
    assert f'"y":{BIG}' in text and f'"q":{LONG}' in text and f'"x":{TAIL}' in text, text
    row = _exact(text)
    assert {n: row[n] for n in EXPECTED} == EXPECTED


def test_http_to_sqlite_keeps_nested_digits(tmp_path: Path, http_server: Any) -> None:
    body = ('{"records": [' + LINE + "]}").encode()
    http_server.route("GET", "/items", lambda req: (200, {"Content-Type": "application/json"}, body))
    src = {
        "adapter": "http",
        "base_url": http_server.url,
        "streams": [{"name": "items", "path": "/items", "records_path": "records", "schema": SCHEMA}],
    }
    db = tmp_path / "out.db"
    run = _run(tmp_path, src, {"adapter": "sql", "url": f"sqlite:///{db}"})
    assert run.returncode == 0, run.stderr
    _check_texts(_sqlite_row(db, "items"))


def _pg_rows(pg_url: str, schema: str, table: str) -> dict[str, Any]:
    import psycopg

    plain = pg_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(plain) as conn:
        row = conn.execute(f'SELECT k::text, s::text, j::text FROM "{schema}"."{table}"').fetchone()
        kinds = conn.execute(
            "SELECT data_type FROM information_schema.columns WHERE table_schema = %s AND table_name = %s "
            "AND column_name IN ('k', 's', 'j')",
            (schema, table),
        ).fetchall()
    assert row is not None and {k[0] for k in kinds} <= {"jsonb", "json"}, kinds
    return dict(zip(("k", "s", "j"), row, strict=True))


@pytest.mark.postgres
def test_jsonl_to_postgresql_jsonb_keeps_nested_digits(tmp_path: Path, pg_url: str, pg_schema: str) -> None:
    run = _run(tmp_path, _src(tmp_path), {"adapter": "sql", "url": pg_url, "schema": pg_schema})
    assert run.returncode == 0, run.stderr
    _check_texts(_pg_rows(pg_url, pg_schema, "in"))


def _singer_messages() -> list[Any]:
    schema = {"type": "object", "properties": SCHEMA["properties"]}
    return [
        {"type": "SCHEMA", "stream": "s", "schema": schema, "key_properties": ["id"]},
        '{"type":"RECORD","stream":"s","record":' + LINE + "}",
        {"type": "STATE", "value": {"n": 1}},
    ]


def test_singer_record_to_target_sqlite_keeps_nested_digits(plugins: Any, tmp_path: Path) -> None:
    db = tmp_path / "dst.sqlite"
    rc, _, err = target_in_process(_singer_messages(), adapter="sql", url=f"sqlite:///{db}")
    assert rc == 0, err
    _check_texts(_sqlite_row(db, "s"))


@pytest.mark.postgres
def test_singer_record_to_target_postgresql_keeps_nested_digits(
    plugins: Any, pg_url: str, pg_schema: str
) -> None:
    rc, _, err = target_in_process(_singer_messages(), adapter="sql", url=pg_url, schema=pg_schema)
    assert rc == 0, err
    _check_texts(_pg_rows(pg_url, pg_schema, "s"))


def test_singer_batch_jsonl_file_to_target_sqlite_keeps_nested_digits(plugins: Any, tmp_path: Path) -> None:
    """A BATCH message's JSONL file is decoded as RECORD lines are: every digit kept."""
    batch = tmp_path / "b.jsonl"
    batch.write_text(LINE + "\n")
    msgs = _singer_messages()
    msgs[1] = {"type": "BATCH", "stream": "s", "encoding": {"format": "jsonl"}, "manifest": [str(batch)]}
    db = tmp_path / "dst.sqlite"
    rc, _, err = target_in_process(msgs, adapter="sql", url=f"sqlite:///{db}")
    assert rc == 0, err
    _check_texts(_sqlite_row(db, "s"))


def test_response_data_of_a_non_json_content_type_keeps_every_digit(http_server: Any) -> None:
    """``Response.data`` decodes a body the adapter did not decode (its Content-Type is not JSON)
    with the same exact rule."""
    from dc_api_x import ApiClient

    body = f'{{"v": {LONG}, "n": {BIG}, "f": 1.5}}'.encode()
    http_server.route("GET", "/plain", lambda req: (200, {"Content-Type": "text/plain"}, body))
    with ApiClient(http_server.url, hooks=[]) as api:
        data = api.get("/plain").data
    assert data == {"v": Decimal(LONG), "n": int(BIG), "f": 1.5} and type(data["f"]) is float
