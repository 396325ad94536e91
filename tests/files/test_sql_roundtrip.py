"""SQL → Parquet → SQL and SQL → JSONL → SQL on real SQLite and real PostgreSQL: every type unchanged."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from dc_api_x import Batch, StreamSpec, create_adapter

from .conftest import SCHEMA, sample_records

SQL_FIELDS = ["id", "big", "amount", "score", "ts", "naive", "day", "flag", "txt", "doc", "raw"]

PG_DDL = """CREATE TABLE "{schema}".items (
    id BIGINT PRIMARY KEY, big BIGINT, amount NUMERIC(38,10), score DOUBLE PRECISION,
    ts TIMESTAMPTZ, naive TIMESTAMP, day DATE, flag BOOLEAN, txt TEXT, doc JSONB, raw BYTEA)"""

SQLITE_DDL = """CREATE TABLE items (
    id INTEGER PRIMARY KEY, big BIGINT, amount DECIMAL_TEXT(38,10), score REAL, ts TIMESTAMPTZ,
    naive TIMESTAMP, day DATE, flag BOOLEAN, txt TEXT, doc JSON, raw BLOB)"""


def _sql_records() -> list[dict]:
    return [{k: r[k] for k in SQL_FIELDS} for r in sample_records()]


def _rows(engine: sa.Engine, table: str, schema: str | None) -> list[dict]:
    """The rows as the database driver returns them (SQLite: the stored values themselves)."""
    name = f'"{schema}"."{table}"' if schema else f'"{table}"'
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.exec_driver_sql(f"SELECT * FROM {name} ORDER BY id")]
    for r in rows:  # drivers differ only in the container type of bytes
        if isinstance(r.get("raw"), memoryview):
            r["raw"] = bytes(r["raw"])
    return rows


def _move(
    src: dict, dst: dict, stream: str, *, rename: str | None = None, load_method: str = "append"
) -> int:
    """Read every batch of ``stream`` from ``src`` and write it to ``dst`` (the runner's loop)."""
    n = 0
    with create_adapter(src) as a, create_adapter(dst) as b:
        spec = a.get_stream(stream)
        out = spec.with_(name=rename) if rename else spec
        b.start_write(out, load_method=load_method)
        for batch in a.read(spec):
            b.write(out, batch)
            n += len(batch)
        b.finish_write(out)
    return n


def _stream_name(sql: dict, table: str) -> str:
    """The SQL adapter's stream name of ``table`` (possibly prefixed by its schema)."""
    with create_adapter(sql) as a:
        names = [s.name for s in a.discover()]
    (name,) = [n for n in names if n == table or n.endswith(f"-{table}")]
    return name


def _round_trip(tmp_path, sql: dict, schema: str | None, fmt: str, engine: sa.Engine) -> None:
    stream = _stream_name(sql, "items")
    files = {"adapter": fmt, "path": str(tmp_path / fmt)}
    assert _move(sql, files, stream) == 3
    produced = sorted(p.relative_to(tmp_path / fmt).as_posix() for p in (tmp_path / fmt).rglob(f"*.{fmt}"))
    assert produced and all(p.startswith(f"{stream}/part-") for p in produced)
    assert _move(files, sql, stream, rename="items_copy") == 3
    before = _rows(engine, "items", schema)
    after = _rows(engine, "items_copy", schema)
    assert after == before
    # and, read back through the SQL adapter, the values are the ones inserted (nothing shifted,
    # rounded or truncated on the way)
    with create_adapter(sql) as a:
        copy = a.get_stream(_stream_name(sql, "items_copy"))
        got_records = [r for b in a.read(copy) for r in b.records]
    got_records.sort(key=lambda r: r["id"])
    for got, want in zip(got_records, _sql_records(), strict=True):
        for k in SQL_FIELDS:
            assert got[k] == want[k], (k, got[k], want[k])
    # the copy was created with the same types
    with create_adapter(sql) as a:
        src_props = a.get_stream(stream).properties
        dst_props = a.get_stream(copy.name).properties
    for k in SQL_FIELDS:
        want = {x: v for x, v in src_props[k].items() if x != "type"}
        got = {x: v for x, v in dst_props[k].items() if x != "type"}
        assert got == want, k


@pytest.fixture
def sqlite_items(tmp_path) -> tuple[dict, sa.Engine]:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(SQLITE_DDL)
    sql = {"adapter": "sql", "url": url}
    props = {k: SCHEMA["properties"][k] for k in SQL_FIELDS}
    spec = StreamSpec("items", schema={"type": "object", "properties": props}, key_properties=("id",))
    with create_adapter(sql) as a:
        a.start_write(spec, load_method="append")
        a.write(spec, Batch.from_records(_sql_records(), schema=spec.schema))
        a.finish_write(spec)
    yield sql, engine
    engine.dispose()


@pytest.fixture
def pg_items(pg_url, pg_schema) -> tuple[dict, sa.Engine, str]:
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(PG_DDL.format(schema=pg_schema))
        t = sa.Table("items", sa.MetaData(), schema=pg_schema, autoload_with=conn)
        conn.execute(t.insert(), _sql_records())
    yield {"adapter": "sql", "url": pg_url, "schema": pg_schema}, engine, pg_schema
    engine.dispose()


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
def test_sqlite_round_trip(tmp_path, plugins, sqlite_items, fmt):
    sql, engine = sqlite_items
    assert _rows(engine, "items", None)[0]["amount"] == str(sample_records()[0]["amount"])  # stored exactly
    _round_trip(tmp_path, sql, None, fmt, engine)


@pytest.mark.postgres
@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
def test_postgres_round_trip(tmp_path, plugins, pg_items, fmt):
    sql, engine, schema = pg_items
    _round_trip(tmp_path, sql, schema, fmt, engine)


@pytest.mark.postgres
def test_postgres_parquet_keeps_real_types(tmp_path, plugins, pg_items):
    """The Parquet file holds typed columns (zone-aware timestamps, decimals), not strings."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sql, _engine, _schema = pg_items
    stream = _stream_name(sql, "items")
    _move(sql, {"adapter": "parquet", "path": str(tmp_path)}, stream)
    (part,) = (tmp_path / stream).glob("*.parquet")
    schema = pq.read_schema(part)
    assert schema.field("ts").type == pa.timestamp("us", tz="UTC")
    assert schema.field("naive").type == pa.timestamp("us")
    assert schema.field("amount").type == pa.decimal128(38, 10)
    assert schema.field("day").type == pa.date32()
    assert schema.field("raw").type == pa.binary()
    assert schema.field("flag").type == pa.bool_()
    assert schema.field("big").type == pa.int64()
    assert schema.field("doc").metadata == {b"dcapix.json": b"true"}
