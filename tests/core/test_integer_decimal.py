"""An ``integer`` declared ``format: decimal`` (or with an ``x-precision`` beyond an int64's 18 full
digits) is an exact decimal column, ``decimal128(p, 0)`` (``p`` = ``x-precision``, else 38): integers
beyond 64 bits keep every digit in Arrow, Parquet, SQLite and PostgreSQL ``numeric``; a fraction or a
value beyond the precision is refused, never rounded."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.singer_target.support import target_in_process

BIG = 123456789012345678901234567890  # 30 digits: beyond int64 (and float64)


def test_integer_decimal_maps_to_an_exact_decimal_type() -> None:
    import pyarrow as pa

    from dc_api_x.arrow import ConversionError, arrow_to_jsonschema, jsonschema_to_arrow, records_to_arrow

    schema = jsonschema_to_arrow(
        {
            "properties": {
                "a": {"type": ["integer", "null"], "format": "decimal"},
                "b": {"type": "integer", "x-precision": 30},
                "c": {"type": "integer", "x-precision": 18},
                "d": {"type": "integer", "format": "decimal", "x-precision": 50},
                "e": {"type": "integer"},
            }
        }
    )
    assert [f.type for f in schema] == [
        pa.decimal128(38, 0),
        pa.decimal128(30, 0),
        pa.int64(),
        pa.decimal256(50, 0),
        pa.int64(),
    ]
    back = arrow_to_jsonschema(schema)["properties"]["a"]
    assert back == {"type": ["string", "null"], "format": "decimal", "x-precision": 38, "x-scale": 0}
    table = records_to_arrow([{"a": BIG, "b": str(BIG), "d": -(10**49)}], arrow_schema=schema)
    assert table.to_pylist()[0]["a"] == Decimal(BIG) and table.column("b")[0].as_py() == Decimal(BIG)
    assert table.column("d")[0].as_py() == Decimal(-(10**49))
    for bad in (1.5, 10**38):
        with pytest.raises(ConversionError, match="field 'a'"):
            records_to_arrow([{"a": bad}], arrow_schema=schema)


def test_sql_column_type_of_an_integer_decimal() -> None:
    import sqlalchemy as sa
    from sqlalchemy.dialects import postgresql, sqlite

    from dc_api_x.adapters.sql.typemap import jsonschema_to_sqltype

    pg = jsonschema_to_sqltype({"type": "integer", "format": "decimal"}, postgresql.dialect())
    assert isinstance(pg, sa.Numeric) and (pg.precision, pg.scale) == (38, 0)
    lite = jsonschema_to_sqltype({"type": "integer", "x-precision": 25}, sqlite.dialect())
    assert str(lite.compile(dialect=sqlite.dialect())) == "DECIMAL_TEXT(25,0)"
    assert isinstance(jsonschema_to_sqltype({"type": "integer"}, postgresql.dialect()), sa.BigInteger)


def _messages() -> list[Any]:
    props = {"id": {"type": "integer"}, "n": {"type": ["integer", "null"], "format": "decimal"}}
    return [
        {
            "type": "SCHEMA",
            "stream": "s",
            "schema": {"type": "object", "properties": props},
            "key_properties": ["id"],
        },
        {"type": "RECORD", "stream": "s", "record": {"id": 1, "n": 7}},
        f'{{"type":"RECORD","stream":"s","record":{{"id":2,"n":{BIG}}}}}',
        {"type": "STATE", "value": {"n": 2}},
    ]


def test_singer_integer_decimal_reaches_sqlite_exactly(plugins: Any, tmp_path: Path) -> None:
    db = tmp_path / "dst.sqlite"
    rc, _, err = target_in_process(_messages(), adapter="sql", url=f"sqlite:///{db}")
    assert rc == 0, err
    con = sqlite3.connect(db)
    try:
        rows = con.execute("SELECT id, n FROM s ORDER BY id").fetchall()
    finally:
        con.close()
    assert [Decimal(r[1]) for r in rows] == [Decimal(7), Decimal(BIG)]


@pytest.mark.postgres
def test_singer_integer_decimal_reaches_postgresql_numeric(plugins: Any, pg_url: str, pg_schema: str) -> None:
    import psycopg

    rc, _, err = target_in_process(_messages(), adapter="sql", url=pg_url, schema=pg_schema)
    assert rc == 0, err
    plain = pg_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(plain) as conn:
        rows = conn.execute(f'SELECT n::text FROM "{pg_schema}".s ORDER BY id').fetchall()
        (kind,) = conn.execute(
            "SELECT data_type FROM information_schema.columns WHERE table_schema = %s AND column_name = 'n'",
            (pg_schema,),
        ).fetchone()
    assert [r[0] for r in rows] == ["7", str(BIG)] and kind == "numeric"
