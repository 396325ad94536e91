"""The SQL the ``oracle_db`` adapter sends, compiled by SQLAlchemy's Oracle dialect (no server here:
these are the statements python-oracledb would run, checked as text and bind parameters)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa
from dc_api_x_oracle_db.backend import compile_sql

from dc_api_x.bookmarks import SortedBoundary
from dc_api_x.ext.sql import SQLRead, SQLSource, SQLWrite
from dc_api_x.types import StreamSpec

PROPS: dict[str, Any] = {
    "id": {"type": "integer"},
    "amount": {"type": ["string", "null"], "format": "decimal", "x-precision": 12, "x-scale": 2},
    "updated_at": {"type": "string", "format": "date-time"},
    "booked_on": {"type": ["string", "null"], "format": "date-time", "x-timezone": False},
}


def as_server(adapter: Any, version: tuple[int, ...]) -> Any:
    """The adapter's dialect in the state ``OracleDialect.initialize`` leaves it in after connecting
    to a server of ``version`` (the attributes it sets from the version; nothing is connected)."""
    d = adapter.engine.dialect
    d.server_version_info = version
    d.supports_native_boolean = version >= (23,)
    d._supports_oracle_json = version >= (21,)
    d._supports_offset_fetch = version >= (12,)
    return d


def a_read(
    limit: int | None = None, value: Any = None, keys: list[list[Any]] | None = None, rk: bool = True
) -> SQLRead:
    spec = StreamSpec(
        name="orders",
        schema={"type": "object", "properties": PROPS},
        key_properties=("id",),
        replication_key="updated_at" if rk else None,
    )
    boundary = SortedBoundary("updated_at", ["id"], value, keys or []) if rk else None
    return SQLRead(
        spec, SQLSource("orders", table="orders", schema="sales"), dict(PROPS), boundary, limit, None
    )


def test_an_incremental_read_selects_instants_in_utc_and_limits_with_fetch_first(make_adapter: Any) -> None:
    ad = make_adapter(schema="sales")
    d = as_server(ad, (19, 0))
    read = a_read(limit=10, value="2024-03-01T12:00:00+02:00", keys=[[7]])
    start = ad.backend.start_param(read)
    assert start == dt.datetime(2024, 3, 1, 10, 0)  # naive UTC: python-oracledb drops a zone
    sql, params = compile_sql(ad.backend.read_statement(read, start), d)
    assert " ".join(sql.split()) == (
        "SELECT sales.orders.id, sales.orders.amount, "
        "sys_extract_utc(sales.orders.updated_at) AS updated_at, sales.orders.booked_on "
        "FROM sales.orders WHERE sales.orders.updated_at >= :rk_value "
        "ORDER BY sales.orders.updated_at ASC, sales.orders.id ASC FETCH FIRST 11 ROWS ONLY"
    )  # 10 rows + the 1 row delivered before at the bookmark value, dropped by the boundary
    assert params == {"rk_value": dt.datetime(2024, 3, 1, 10, 0)}


def test_a_full_read_has_no_filter_and_no_order(make_adapter: Any) -> None:
    ad = make_adapter(schema="sales")
    read = a_read(rk=False)
    assert ad.backend.start_param(read) is None
    sql, params = compile_sql(ad.backend.read_statement(read, None), as_server(ad, (19, 0)))
    assert "WHERE" not in sql and "ORDER BY" not in sql and "FETCH" not in sql and params == {}


def test_page_size_reads_pages_with_offset_fetch_next(make_adapter: Any) -> None:
    ad = make_adapter(schema="sales", page_size=4)
    d = as_server(ad, (19, 0))
    read = a_read(rk=False, limit=10)
    pages = [compile_sql(s, d) for s in ad.backend.paged_statements(read, None, 4)]
    tails = [" ".join(sql.split()[-9:]) for sql, _ in pages]
    assert tails == [
        "sales.orders.id OFFSET 0 ROWS FETCH FIRST 4 ROWS ONLY",
        "sales.orders.id OFFSET 4 ROWS FETCH FIRST 4 ROWS ONLY",
        "sales.orders.id OFFSET 8 ROWS FETCH FIRST 2 ROWS ONLY",
    ]
    assert all("ORDER BY sales.orders.id" in sql for sql, _ in pages)  # a stable order for OFFSET
    # unbounded: pages go on until the reader sees a short page
    unbounded = ad.backend.paged_statements(a_read(rk=False), None, 4)
    third = [next(unbounded) for _ in range(3)][-1]
    assert " ".join(compile_sql(third, d)[0].split()[-8:]) == "OFFSET 8 ROWS FETCH FIRST 4 ROWS ONLY"
    # incremental: ordered by (replication key, primary key), the bookmark filter on every page
    inc = [
        compile_sql(s, d)
        for s in ad.backend.paged_statements(
            a_read(limit=5, value="2024-01-01T00:00:00Z"), dt.datetime(2024, 1, 1), 4
        )
    ]
    assert len(inc) == 2 and all(
        ":rk_value" in sql and "ORDER BY sales.orders.updated_at ASC, sales.orders.id ASC" in sql
        for sql, _ in inc
    )


def test_offset_paging_needs_an_order(make_adapter: Any) -> None:
    from dc_api_x.exceptions import AdapterError

    ad = make_adapter(page_size=4)
    spec = StreamSpec(name="log", schema={"type": "object", "properties": {"line": {"type": "string"}}})
    read = SQLRead(spec, SQLSource("log", table="log"), {"line": {"type": "string"}}, None, None, None)
    with pytest.raises(AdapterError) as ei:
        next(ad.backend.paged_statements(read, None, 4))
    msg = str(ei.value)
    assert "'page_size'" in msg and "primary key" in msg and "'log'" in msg and "\n" not in msg


def _table(ad: Any, version: tuple[int, ...]) -> str:
    d = as_server(ad, version)
    props = {
        "code": {"type": "string"},
        "id": {"type": "integer"},
        "amount": {"type": ["string", "null"], "format": "decimal", "x-precision": 12, "x-scale": 2},
        "rate": {"type": ["string", "null"], "format": "decimal"},
        "price": {"type": ["number", "null"]},
        "created": {"type": ["string", "null"], "format": "date-time"},
        "local": {"type": ["string", "null"], "format": "date-time", "x-timezone": False},
        "day": {"type": ["string", "null"], "format": "date"},
        "name": {"type": ["string", "null"], "maxLength": 40},
        "notes": {"type": ["string", "null"]},
        "doc": {"type": ["object", "null"]},
        "flag": {"type": ["boolean", "null"]},
        "blob": {"type": ["string", "null"], "contentEncoding": "base64"},
        "uid": {"type": ["string", "null"], "format": "uuid"},
    }
    table = ad._table_obj("sales", "orders", props, ["code", "id"])
    return " ".join(str(sa.schema.CreateTable(table).compile(dialect=d)).split())


def test_tables_are_created_with_exact_oracle_types(make_adapter: Any) -> None:
    ddl = _table(make_adapter(), (19, 0))
    for col in (
        "code VARCHAR2(1000 CHAR) NOT NULL",  # a key cannot be a CLOB
        "id NUMBER(19, 0) NOT NULL",
        "amount NUMBER(12, 2)",
        "rate NUMBER,",
        "price BINARY_DOUBLE",
        "local TIMESTAMP,",
        "created TIMESTAMP WITH TIME ZONE",
        "day DATE",
        "name VARCHAR2(40 CHAR)",
        "notes CLOB",
        "doc CLOB",
        "flag SMALLINT",  # no BOOLEAN before 23ai
        "blob BLOB",
        '"uid" VARCHAR2(36 CHAR)',  # UID is reserved in Oracle: quoted by the dialect
    ):
        assert col in ddl, (col, ddl)
    assert ddl.startswith("CREATE TABLE sales.orders (") and "PRIMARY KEY (code, id)" in ddl
    assert "flag BOOLEAN" in _table(make_adapter(), (23, 4))


def test_a_decimal_wider_than_number_is_refused_naming_the_field(make_adapter: Any) -> None:
    ad = make_adapter()
    with pytest.raises(ValueError) as ei:
        ad._table_obj(
            None, "t", {"big": {"type": "string", "format": "decimal", "x-precision": 40, "x-scale": 2}}, []
        )
    assert getattr(ei.value, "field", None) == "big" and "at most 38 digits" in str(ei.value)


def test_ddl_statements(make_adapter: Any) -> None:
    ad = make_adapter()
    as_server(ad, (19, 0))
    be = ad.backend
    t = sa.Table("orders", sa.MetaData(), sa.Column("id", sa.Integer), schema="sales")
    stage = sa.Table("orders__dcapix_stage", sa.MetaData(), sa.Column("id", sa.Integer), schema="sales")
    col = sa.Column("note", be.column_type({"type": ["string", "null"]}))
    assert be.add_column_statement(t, col) == "ALTER TABLE sales.orders ADD (note CLOB)"
    drop, rename = be.replace_statements(stage, t)
    assert drop == (
        "BEGIN EXECUTE IMMEDIATE 'DROP TABLE sales.orders PURGE'; "
        "EXCEPTION WHEN OTHERS THEN IF SQLCODE != -942 THEN RAISE; END IF; END;"
    )
    assert rename == "ALTER TABLE sales.orders__dcapix_stage RENAME TO orders"
    quoted = sa.Table("O'Brien", sa.MetaData(), sa.Column("id", sa.Integer))
    assert "'DROP TABLE \"O''Brien\" PURGE'" in be.drop_statement(quoted)  # quotes doubled in the literal


def test_writes_are_one_array_bound_executemany(make_adapter: Any) -> None:
    ad = make_adapter()
    d = as_server(ad, (19, 0))
    props = {
        "id": {"type": "integer"},
        "at": {"type": ["string", "null"], "format": "date-time"},
        "doc": {"type": ["object", "null"]},
        "ok": {"type": ["boolean", "null"]},
    }
    table = ad._table_obj(None, "events", props, ["id"])
    # SQLAlchemy hands a list of parameter sets for this single-row INSERT to the driver's
    # executemany (not "insertmanyvalues"): python-oracledb binds each column as one array
    assert d.use_insertmanyvalues is False
    assert (
        str(table.insert().compile(dialect=d))
        == "INSERT INTO events (id, at, doc, ok) VALUES (:id, :at, :doc, :ok)"
    )
    stream = StreamSpec(name="events", schema={"type": "object", "properties": props}, key_properties=("id",))
    write = SQLWrite(stream=stream, table=table, target=table, load_method="append", props=props, keys=["id"])
    at = dt.datetime(2024, 3, 1, 12, 30, 0, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    rows = ad.backend.bind_records(write, [{"id": 1, "at": at, "doc": {"a": [1, "é"]}, "ok": True}])
    assert rows == [
        {"id": 1, "at": dt.datetime(2024, 3, 1, 10, 30, 0, 123456), "doc": '{"a":[1,"é"]}', "ok": 1}
    ]
