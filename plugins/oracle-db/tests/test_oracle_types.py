"""Oracle types ⇄ JSON Schema, and values as python-oracledb fetches and binds them."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import oracledb
import pytest
import sqlalchemy as sa
from dc_api_x_oracle_db.backend import number_output_handler
from dc_api_x_oracle_db.typemap import (
    bind_value,
    description_property,
    fetch_value,
    iso_duration,
    oracle_column_property,
)
from sqlalchemy.dialects import oracle

DEC = "decimal"


# the types SQLAlchemy's Oracle reflection builds from ALL_TAB_COLUMNS (data_type, precision, scale)
@pytest.mark.parametrize(
    ("typ", "expected"),
    [
        (oracle.NUMBER(12, 2), {"type": ["string", "null"], "format": DEC, "x-precision": 12, "x-scale": 2}),
        (oracle.NUMBER(10, 0), {"type": ["integer", "null"]}),
        (oracle.NUMBER(19, 0), {"type": ["integer", "null"]}),
        (oracle.NUMBER(25, 0), {"type": ["string", "null"], "format": DEC, "x-precision": 25, "x-scale": 0}),
        (oracle.NUMBER(5, -2), {"type": ["integer", "null"]}),  # hundreds: integers of 7 digits
        (oracle.NUMBER(3, 5), {"type": ["string", "null"], "format": DEC, "x-precision": 5, "x-scale": 5}),
        (
            oracle.NUMBER(None, None),
            {"type": ["string", "null"], "format": DEC},
        ),  # NUMBER: 38 digits, any scale
        (sa.INTEGER(), {"type": ["integer", "null"]}),  # INTEGER = NUMBER(*,0)
        (oracle.FLOAT(binary_precision=126), {"type": ["string", "null"], "format": DEC}),
        (sa.DOUBLE_PRECISION(), {"type": ["string", "null"], "format": DEC}),  # FLOAT(126): a decimal NUMBER
        (oracle.BINARY_DOUBLE(), {"type": ["number", "null"]}),
        (oracle.BINARY_FLOAT(), {"type": ["number", "null"]}),
        (oracle.DATE(), {"type": ["string", "null"], "format": "date-time", "x-timezone": False}),
        (oracle.TIMESTAMP(), {"type": ["string", "null"], "format": "date-time", "x-timezone": False}),
        (oracle.TIMESTAMP(timezone=True), {"type": ["string", "null"], "format": "date-time"}),
        (oracle.TIMESTAMP(local_timezone=True), {"type": ["string", "null"], "format": "date-time"}),
        (oracle.INTERVAL(), {"type": ["string", "null"], "format": "duration"}),
        (oracle.VARCHAR2(40), {"type": ["string", "null"], "maxLength": 40}),
        (oracle.NVARCHAR2(10), {"type": ["string", "null"], "maxLength": 10}),
        (oracle.CLOB(), {"type": ["string", "null"]}),
        (oracle.NCLOB(), {"type": ["string", "null"]}),
        (oracle.RAW(16), {"type": ["string", "null"], "contentEncoding": "base64"}),
        (oracle.BLOB(), {"type": ["string", "null"], "contentEncoding": "base64"}),
        (oracle.ROWID(), {"type": ["string", "null"]}),
    ],
    ids=lambda v: repr(v) if not isinstance(v, dict) else "",
)
def test_reflected_types(typ: Any, expected: dict[str, Any]) -> None:
    assert oracle_column_property(typ, True) == expected


def test_not_null_columns() -> None:
    assert oracle_column_property(oracle.NUMBER(12, 2), False)["type"] == "string"
    assert oracle_column_property(oracle.DATE(), False)["type"] == "string"


def _desc(type_code: Any, precision: int = 0, scale: int = 0, null_ok: bool = True) -> Any:
    # the fields of a DB-API description entry python-oracledb fills (FetchInfo)
    return SimpleNamespace(name="C", type_code=type_code, precision=precision, scale=scale, null_ok=null_ok)


@pytest.mark.parametrize(
    ("desc", "expected"),
    [
        (
            _desc(oracledb.DB_TYPE_NUMBER, 12, 2),
            {"type": ["string", "null"], "format": DEC, "x-precision": 12, "x-scale": 2},
        ),
        (_desc(oracledb.DB_TYPE_NUMBER, 9, 0), {"type": ["integer", "null"]}),
        (_desc(oracledb.DB_TYPE_NUMBER, 0, -127), {"type": ["string", "null"], "format": DEC}),  # NUMBER
        (_desc(oracledb.DB_TYPE_NUMBER, 126, -127), {"type": ["string", "null"], "format": DEC}),  # FLOAT
        (_desc(oracledb.DB_TYPE_BINARY_DOUBLE), {"type": ["number", "null"]}),
        (_desc(oracledb.DB_TYPE_BOOLEAN), {"type": ["boolean", "null"]}),
        (
            _desc(oracledb.DB_TYPE_DATE),
            {"type": ["string", "null"], "format": "date-time", "x-timezone": False},
        ),
        (
            _desc(oracledb.DB_TYPE_TIMESTAMP_TZ),
            {"type": ["string", "null"], "format": "date-time", "x-timezone": False},
        ),
        (_desc(oracledb.DB_TYPE_INTERVAL_DS), {"type": ["string", "null"], "format": "duration"}),
        (_desc(oracledb.DB_TYPE_BLOB), {"type": ["string", "null"], "contentEncoding": "base64"}),
        (_desc(oracledb.DB_TYPE_VARCHAR, null_ok=False), {"type": "string"}),
        (_desc(oracledb.DB_TYPE_CLOB), {"type": ["string", "null"]}),
        (
            _desc(oracledb.DB_TYPE_JSON),
            {"type": ["object", "array", "string", "number", "boolean", "null"], "x-json": True},
        ),
    ],
)
def test_result_columns_of_queries_and_ref_cursors(desc: Any, expected: dict[str, Any]) -> None:
    assert description_property(desc) == expected


class _VarRecorder:
    """Records the ``cursor.var`` calls an output type handler makes (its only use of the cursor)."""

    arraysize = 500

    def __init__(self) -> None:
        self.calls: list[tuple[Any, dict[str, Any]]] = []

    def var(self, typ: Any, **kw: Any) -> str:
        self.calls.append((typ, kw))
        return "var"


def test_number_output_handler_fetches_every_non_integer_number_as_decimal() -> None:
    fallback_calls: list[Any] = []

    def fallback(cursor: Any, name: Any, default_type: Any, size: Any, precision: Any, scale: Any) -> Any:
        fallback_calls.append(default_type)
        return "lob-as-str"

    h = number_output_handler(fallback)
    cur = _VarRecorder()
    assert h(cur, "A", oracledb.DB_TYPE_NUMBER, 22, 12, 2) == "var"  # NUMBER(12,2)
    assert h(cur, "B", oracledb.DB_TYPE_NUMBER, 22, 0, -127) == "var"  # NUMBER
    assert h(cur, "C", oracledb.DB_TYPE_NUMBER, 22, 126, -127) == "var"  # FLOAT(126)
    assert cur.calls == [(Decimal, {"arraysize": 500})] * 3
    assert h(cur, "D", oracledb.DB_TYPE_NUMBER, 22, 10, 0) is None  # NUMBER(10): int, exact already
    assert h(cur, "E", oracledb.DB_TYPE_CLOB, 0, 0, 0) == "lob-as-str" and fallback_calls == [
        oracledb.DB_TYPE_CLOB
    ]
    assert number_output_handler(None)(cur, "E", oracledb.DB_TYPE_CLOB, 0, 0, 0) is None


def test_fetched_values() -> None:
    aware = {"type": "string", "format": "date-time"}
    naive = {"type": "string", "format": "date-time", "x-timezone": False}
    t = dt.datetime(2024, 2, 29, 23, 59, 59, 999999)
    assert fetch_value(t, aware) == t.replace(tzinfo=dt.timezone.utc)  # SYS_EXTRACT_UTC gave UTC
    assert fetch_value(t, naive) == t
    assert fetch_value(Decimal("12345678901234567890.12"), {"format": DEC}) == Decimal(
        "12345678901234567890.12"
    )
    assert (
        fetch_value(dt.timedelta(days=1, hours=2, minutes=3, seconds=4, microseconds=500000), {})
        == "P1DT2H3M4.5S"
    )
    assert iso_duration(-dt.timedelta(seconds=1)) == "-P0DT0H0M1S"
    assert fetch_value(None, aware) is None


def test_bound_values() -> None:
    plus2 = dt.timezone(dt.timedelta(hours=2))
    assert bind_value(dt.datetime(2024, 1, 1, 1, 0, tzinfo=plus2), {}, False) == dt.datetime(
        2023, 12, 31, 23, 0
    )
    assert bind_value(dt.datetime(2024, 1, 1, 1, 0), {}, False) == dt.datetime(2024, 1, 1, 1, 0)
    assert (
        bind_value(True, {"type": "boolean"}, False) == 1
        and bind_value(True, {"type": "boolean"}, True) is True
    )
    assert bind_value("x", {"x-json": True}, False) == '"x"'  # a JSON document, not bare text
    assert bind_value([1, Decimal("1.10")], {"type": "array"}, False) == '[1,"1.10"]'
    assert bind_value(Decimal("1.10"), {"format": DEC}, False) == Decimal("1.10")
    assert bind_value(None, {"x-json": True}, False) is None
