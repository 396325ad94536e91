"""Writes of the SQL adapter on real SQLite and PostgreSQL: exact round trips of every supported type,
load methods, schema evolution, hostile identifiers, errors that roll the batch back."""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from decimal import Decimal

import pytest

from dc_api_x.exceptions import AdapterError, SchemaError
from dc_api_x.plugins import create_adapter
from dc_api_x.testing import isolated_plugins
from dc_api_x.types import Batch, StreamSpec

from .conftest import read_all


def PG(value: str) -> object:
    """A parameter that needs the PostgreSQL server (marked ``postgres``)."""
    return pytest.param(value, marks=pytest.mark.postgres)


UTC = dt.timezone.utc
U1 = uuid.UUID("12345678-1234-5678-1234-567812345678")

PG_DDL = """
CREATE TABLE {s}.alltypes (
    id bigint PRIMARY KEY, i2 smallint, i4 integer, f8 double precision,
    dec numeric(38,10), dec_free numeric, b boolean, d date, t time, ts timestamp, tstz timestamptz,
    j json, jb jsonb, txt text, vc varchar(20), bin bytea, u uuid, arr_i integer[], arr_t text[]
)"""
PG_ROWS = [
    (
        1,
        -32768,
        2147483647,
        0.5,
        Decimal("1234567890123456789012345678.0123456789"),
        Decimal("3.14159265358979323846264338327950288419716939937510"),
        True,
        dt.date(1900, 1, 1),
        dt.time(23, 59, 59, 999999),
        dt.datetime(1999, 12, 31, 23, 59, 59, 999999),
        dt.datetime(2024, 2, 29, 23, 59, 59, 123456, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30))),
        '{"a": [1, 2, {"b": null}], "u": "\u00e9"}',
        '{"k": 1.50, "z": "\u65e5\u672c"}',
        "h\u00e9llo \u2713 \u65e5\u672c \U0001f600",
        "short",
        b"\x00\xff\x10",
        U1,
        [1, None, 3],
        ["a", "b,c", '"q"', "\\"],
    ),
    (2,) + (None,) * 18,
    (
        3,
        0,
        -1,
        -1e300,
        Decimal("-0.0000000001"),
        Decimal("0"),
        False,
        dt.date(2262, 4, 11),
        dt.time(0, 0),
        dt.datetime(1970, 1, 1),
        dt.datetime(1900, 1, 1, tzinfo=UTC),
        '"just a string"',
        "[]",
        "",
        "",
        b"",
        uuid.UUID(int=0),
        [],
        [],
    ),
]

SQLITE_DDL = """CREATE TABLE alltypes (id INTEGER PRIMARY KEY, i INTEGER, f REAL, dec DECIMAL_TEXT(38,10),
    b BOOLEAN, d DATE, t TIME, ts TIMESTAMP, tstz TIMESTAMPTZ, j JSON, txt TEXT, vc VARCHAR(20), bin BLOB,
    u UUID)"""
SQLITE_ROWS = [
    (
        1,
        9223372036854775807,
        0.5,
        "1234567890123456789012345678.0123456789",
        1,
        "1900-01-01",
        "23:59:59.999999",
        "1999-12-31 23:59:59.999999",
        "2024-02-29T18:29:59.123456+00:00",
        '{"a": [1, 2, {"b": null}], "u": "\u00e9"}',
        "h\u00e9llo \u2713 \U0001f600",
        "short",
        b"\x00\xff\x10",
        str(U1),
    ),
    (2,) + (None,) * 13,
    (
        3,
        -1,
        -1e300,
        "-0.0000000001",
        0,
        "2262-04-11",
        "00:00:00",
        "1970-01-01 00:00:00.000000",
        "1900-01-01T00:00:00.000000+00:00",
        '"just a string"',
        "",
        "",
        b"",
        str(uuid.UUID(int=0)),
    ),
]


def _copy(src_cfg, dst_cfg, stream_name, dst_name, load_method="append"):
    """Read ``stream_name`` with one adapter and write it as ``dst_name`` with another."""
    with create_adapter(src_cfg) as src, create_adapter(dst_cfg) as dst:
        spec = src.get_stream(stream_name)
        out = StreamSpec(name=dst_name, schema=spec.schema, key_properties=spec.key_properties)
        dst.start_write(out, load_method=load_method)
        total = 0
        for batch in src.read(spec):
            res = dst.write(out, batch)
            assert res.committed
            total += res.rows
        dst.finish_write(out)
        return spec, total


def _records(cfg, name):
    with create_adapter(cfg) as ad:
        return sorted(read_all(ad, ad.get_stream(name))[0], key=lambda r: r["id"])


def _pg_source(pg_url, pg_schema, pg_exec, **extra):
    pg_exec(PG_DDL.format(s=pg_schema))
    for row in PG_ROWS:
        pg_exec(f"INSERT INTO {pg_schema}.alltypes VALUES ({', '.join(['%s'] * len(row))})", row)
    return {"adapter": "sql", "url": pg_url, "schema": pg_schema, **extra}


@pytest.mark.parametrize("arrow", [True, False], ids=["adbc", "generic"])
@pytest.mark.postgres
def test_pg_round_trip_every_type(pg_url, pg_schema, pg_exec, arrow):
    cfg = _pg_source(pg_url, pg_schema, pg_exec, arrow=arrow)
    src_name = "alltypes"
    _spec, n = _copy(cfg, cfg, src_name, "copy")
    assert n == 3
    before, after = _records(cfg, src_name), _records(cfg, "copy")
    assert after == before
    r = after[0]
    assert r["dec"] == Decimal("1234567890123456789012345678.0123456789")
    assert str(r["dec_free"]) == "3.14159265358979323846264338327950288419716939937510"
    assert r["tstz"] == dt.datetime(2024, 2, 29, 18, 29, 59, 123456, tzinfo=UTC)
    assert r["ts"] == dt.datetime(1999, 12, 31, 23, 59, 59, 999999) and r["ts"].tzinfo is None
    assert r["j"] == {"a": [1, 2, {"b": None}], "u": "\u00e9"} and r["jb"] == {"k": 1.5, "z": "\u65e5\u672c"}
    assert r["bin"] == b"\x00\xff\x10" and r["u"] == str(U1)
    assert r["arr_i"] == [1, None, 3] and r["arr_t"] == ["a", "b,c", '"q"', "\\"]
    assert after[1] == {k: (2 if k == "id" else None) for k in after[1]}
    assert after[2]["j"] == "just a string" and after[2]["jb"] == [] and after[2]["arr_i"] == []
    # the destination table has the types of the conventions
    types = dict(
        pg_exec(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = 'copy'",
            (pg_schema,),
        )
    )
    assert types["dec"] == "numeric" and types["tstz"] == "timestamp with time zone"
    assert types["ts"] == "timestamp without time zone" and types["jb"] == "jsonb"
    assert types["u"] == "uuid" and types["arr_i"] == "ARRAY" and types["bin"] == "bytea"
    assert pg_exec(
        f"SELECT numeric_precision, numeric_scale FROM information_schema.columns "
        f"WHERE table_schema = '{pg_schema}' AND table_name = 'copy' AND column_name = 'dec'"
    ) == [(38, 10)]


def test_sqlite_round_trip_every_type(sqlite_db, tmp_path):
    url, run = sqlite_db
    run(SQLITE_DDL)
    run(f"INSERT INTO alltypes VALUES ({', '.join(['?'] * 14)})", SQLITE_ROWS)
    cfg = {"adapter": "sql", "url": url}
    _copy(cfg, cfg, "alltypes", "copy")
    before, after = _records(cfg, "alltypes"), _records(cfg, "copy")
    assert after == before
    r = after[0]
    assert r["i"] == 9223372036854775807
    assert r["dec"] == Decimal("1234567890123456789012345678.0123456789")
    assert r["tstz"] == dt.datetime(2024, 2, 29, 18, 29, 59, 123456, tzinfo=UTC)
    assert r["ts"] == dt.datetime(1999, 12, 31, 23, 59, 59, 999999)
    assert r["j"] == {"a": [1, 2, {"b": None}], "u": "\u00e9"} and r["bin"] == b"\x00\xff\x10"
    assert r["txt"] == "h\u00e9llo \u2713 \U0001f600" and r["b"] is True
    assert r["t"] == dt.time(23, 59, 59, 999999)
    # decimals are stored as text: exact
    assert run("SELECT dec, typeof(dec) FROM copy WHERE id = 3") == [("-0.0000000001", "text")]
    # and SQLite -> another SQLite file -> same values
    other = {"adapter": "sql", "url": f"sqlite:///{tmp_path / 'other.sqlite'}"}
    _copy(cfg, other, "alltypes", "alltypes")
    assert _records(other, "alltypes") == before


@pytest.mark.postgres
def test_cross_engine_round_trip(pg_url, pg_schema, pg_exec, sqlite_db):
    cfg = _pg_source(pg_url, pg_schema, pg_exec)
    sq = {"adapter": "sql", "url": sqlite_db[0]}
    _copy(cfg, sq, "alltypes", "alltypes")
    back = {"adapter": "sql", "url": pg_url, "schema": pg_schema}
    _copy(sq, back, "alltypes", "back")
    orig = _records(cfg, "alltypes")
    via_sqlite = _records(sq, "alltypes")
    final = _records(back, "back")
    # SQLite stores arrays and JSON as JSON documents: compare the scalar columns exactly
    scalar = [k for k in orig[0] if not k.startswith("arr_")]
    assert [{k: r[k] for k in scalar} for r in via_sqlite] == [{k: r[k] for k in scalar} for r in orig]
    assert [{k: r[k] for k in scalar} for r in final] == [{k: r[k] for k in scalar} for r in orig]
    assert via_sqlite[0]["arr_i"] == [1, None, 3] and final[0]["arr_t"] == ["a", "b,c", '"q"', "\\"]


SPEC = StreamSpec(
    name="items",
    schema={
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": ["string", "null"]},
            "price": {"type": ["string", "null"], "format": "decimal", "x-precision": 10, "x-scale": 2},
            "at": {"type": ["string", "null"], "format": "date-time"},
            "blob": {"type": ["string", "null"], "contentEncoding": "base64"},
            "meta": {"type": ["object", "null"]},
        },
    },
    key_properties=("id",),
)


def _singer_records(n, start=1, suffix=""):
    """Records as the Singer target hands them over: JSON forms (ISO, decimal strings, base64)."""
    return [
        {
            "id": i,
            "name": f"n{i}{suffix}",
            "price": f"{i}.50",
            "at": f"2024-03-0{1 + i % 5}T10:00:00+02:00",
            "blob": base64.b64encode(bytes([i % 256, 0])).decode(),
            "meta": {"i": i},
        }
        for i in range(start, start + n)
    ]


@pytest.fixture(params=[PG("pg"), PG("pg-generic"), PG("pg-direct"), "sqlite"])
def dest(request):
    """``(config, run_sql, qualified_table_name)`` of an empty destination. ``pg-direct``: a plain
    ``postgresql://`` URL, whose append and overwrite writes are set up without SQLAlchemy
    (``adapters/sql/pg_write.py``; the dc-api-x-sqlalchemy plugin, which would turn it off, blocked)."""
    if request.param.startswith("pg"):
        schema = request.getfixturevalue("pg_schema")
        url = request.getfixturevalue("pg_url")
        if request.param == "pg-direct":
            url = url.replace("postgresql+psycopg://", "postgresql://", 1)
            blocked = isolated_plugins(entry_points=True, blocked=["sqlalchemy"])
            blocked.__enter__()
            request.addfinalizer(lambda: blocked.__exit__(None, None, None))
        cfg = {
            "adapter": "sql",
            "url": url,
            "schema": schema,
            "arrow": request.param != "pg-generic",
        }
        return cfg, request.getfixturevalue("pg_exec"), f'"{schema}".'
    url, run = request.getfixturevalue("sqlite_db")
    return {"adapter": "sql", "url": url}, run, ""


def test_dict_batches_json_forms(dest):
    cfg, _run, _q = dest
    with create_adapter(cfg) as ad:
        ad.start_write(SPEC, load_method="append")
        assert ad.write(SPEC, Batch.from_records(_singer_records(3), schema=SPEC.schema)).rows == 3
        ad.finish_write(SPEC)
        recs, _ = read_all(ad, ad.get_stream("items"))
    recs.sort(key=lambda r: r["id"])
    assert recs[0]["price"] == Decimal("1.50") and recs[0]["at"] == dt.datetime(2024, 3, 2, 8, 0, tzinfo=UTC)
    assert recs[2]["blob"] == bytes([3, 0]) and recs[1]["meta"] == {"i": 2}


def test_upsert_rerun_changes_no_row_and_updates_changed(dest):
    cfg, run, q = dest
    pg = not cfg["url"].startswith("sqlite")
    with create_adapter({**cfg, "load_method": "upsert"}) as ad:
        for _ in range(2):
            ad.start_write(SPEC)
            ad.write(SPEC, Batch.from_records(_singer_records(5), schema=SPEC.schema))
            ad.finish_write(SPEC)
        if pg:
            versions = run(f"SELECT id, xmin::text FROM {q}items ORDER BY id")
        ad.start_write(SPEC)
        res = ad.write(SPEC, Batch.from_records(_singer_records(5), schema=SPEC.schema))  # same again
        assert res.committed and res.rows == 5
        # (executemany through psycopg does not report a count: -1)
        assert res.details["affected"] in ((0,) if cfg.get("arrow", True) else (0, -1))
        if pg:
            assert run(f"SELECT id, xmin::text FROM {q}items ORDER BY id") == versions  # not even rewritten
        # changed rows + new rows, with a key repeated inside the batch (the last one wins)
        changed = _singer_records(2, start=4, suffix="-new") + _singer_records(1, start=6)
        changed.append({**changed[0], "name": "last wins"})
        ad.write(SPEC, Batch.from_records(changed, schema=SPEC.schema))
        ad.finish_write(SPEC)
    rows = run(f"SELECT id, name FROM {q}items ORDER BY id")
    assert rows == [(1, "n1"), (2, "n2"), (3, "n3"), (4, "last wins"), (5, "n5-new"), (6, "n6")]


def test_overwrite_replaces_and_a_crash_keeps_the_old_table(dest):
    cfg, run, q = dest
    with create_adapter(cfg) as ad:
        ad.start_write(SPEC, load_method="append")
        ad.write(SPEC, Batch.from_records(_singer_records(5), schema=SPEC.schema))
        ad.finish_write(SPEC)
    # an overwrite that never finishes (a crash) leaves the old table as it was
    with create_adapter(cfg) as ad:
        ad.start_write(SPEC, load_method="overwrite")
        ad.write(SPEC, Batch.from_records(_singer_records(2, start=100), schema=SPEC.schema))
    assert [r[0] for r in run(f"SELECT id FROM {q}items ORDER BY id")] == [1, 2, 3, 4, 5]
    with create_adapter({**cfg, "load_method": "overwrite"}) as ad:
        ad.start_write(SPEC)
        ad.write(SPEC, Batch.from_records(_singer_records(2, start=10), schema=SPEC.schema))
        ad.write(SPEC, Batch.from_records(_singer_records(1, start=20), schema=SPEC.schema))
        assert [r[0] for r in run(f"SELECT id FROM {q}items ORDER BY id")] == [1, 2, 3, 4, 5]
        ad.finish_write(SPEC)
    assert [r[0] for r in run(f"SELECT id FROM {q}items ORDER BY id")] == [10, 11, 20]
    # and it can run again (constraint and stage names do not clash)
    with create_adapter({**cfg, "load_method": "overwrite"}) as ad:
        ad.start_write(SPEC)
        ad.write(SPEC, Batch.from_records(_singer_records(1, start=30), schema=SPEC.schema))
        ad.finish_write(SPEC)
    assert [r[0] for r in run(f"SELECT id FROM {q}items ORDER BY id")] == [30]


def test_schema_evolution_adds_columns(dest):
    cfg, _run, _q = dest
    with create_adapter(cfg) as ad:
        ad.start_write(SPEC)
        ad.write(SPEC, Batch.from_records(_singer_records(2), schema=SPEC.schema))
        ad.finish_write(SPEC)
        grown = SPEC.with_(
            schema={"type": "object", "properties": {**SPEC.properties, "qty": {"type": ["integer", "null"]}}}
        )
        ad.start_write(grown)
        ad.write(
            grown, Batch.from_records([{**_singer_records(1, start=3)[0], "qty": 7}], schema=grown.schema)
        )
        # a batch bringing a column its stream schema did not announce (Arrow view)
        more = Batch.from_records(
            [{"id": 4, "flag": True}],
            schema={"properties": {"id": {"type": "integer"}, "flag": {"type": ["boolean", "null"]}}},
        )
        more.to_arrow()
        ad.write(grown, more)
        ad.finish_write(grown)
        recs, _ = read_all(ad, ad.get_stream("items"))
    recs.sort(key=lambda r: r["id"])
    assert [r["qty"] for r in recs] == [None, None, 7, None]
    assert [r["flag"] for r in recs] == [None, None, None, True]


HOSTILE = 'x"; DROP TABLE t; --'


@pytest.mark.parametrize("engine", [PG("pg"), PG("pg-direct"), "sqlite"])
def test_hostile_identifiers(engine, request):
    if engine.startswith("pg"):
        run = request.getfixturevalue("pg_exec")
        schema = 's"; DROP TABLE t; --'
        url = request.getfixturevalue("pg_url")
        if engine == "pg-direct":  # set up without SQLAlchemy: the identifiers quoted by pg_write
            url = url.replace("postgresql+psycopg://", "postgresql://", 1)
            blocked = isolated_plugins(entry_points=True, blocked=["sqlalchemy"])
            blocked.__enter__()
            request.addfinalizer(lambda: blocked.__exit__(None, None, None))
        cfg = {"adapter": "sql", "url": url, "schema": schema}
        canary = f'"{request.getfixturevalue("pg_schema")}".t'
        run(f"CREATE TABLE {canary} (id int)")
    else:
        url, run = request.getfixturevalue("sqlite_db")
        cfg, canary = {"adapter": "sql", "url": url}, "t"
        run("CREATE TABLE t (id int)")
    col = 'c"; DROP TABLE t; --'
    spec = StreamSpec(
        name=HOSTILE,
        key_properties=(col,),
        schema={
            "type": "object",
            "properties": {
                col: {"type": "integer"},
                "\u00dcn\u00ef C\u00f4d\u00e9 'q'": {"type": ["string", "null"]},
            },
        },
    )
    try:
        for method in ("append", "upsert", "overwrite"):
            with create_adapter(cfg) as ad:
                ad.start_write(spec, load_method=method)
                ad.write(
                    spec,
                    Batch.from_records(
                        [{col: 1, "\u00dcn\u00ef C\u00f4d\u00e9 'q'": method}], schema=spec.schema
                    ),
                )
                ad.finish_write(spec)
        with create_adapter(cfg) as ad:
            streams = {s.name: s for s in ad.discover()}
            got = streams[HOSTILE]
            assert got.key_properties == (col,)
            recs, _ = read_all(ad, got, columns=["\u00dcn\u00ef C\u00f4d\u00e9 'q'"])
            assert recs == [{col: 1, "\u00dcn\u00ef C\u00f4d\u00e9 'q'": "overwrite"}]
            inc, _ = read_all(ad, got.with_(replication_key=col))
            assert len(inc) == 1
        run(f"SELECT count(*) FROM {canary}")  # still there
    finally:
        if engine.startswith("pg"):
            run('DROP SCHEMA IF EXISTS "s""; DROP TABLE t; --" CASCADE')


@pytest.mark.postgres
@pytest.mark.parametrize("plain", [False, True], ids=["sqlalchemy", "direct"])
def test_pg_names_past_63_bytes_are_refused_not_cut(pg_url, pg_schema, pg_exec, plain):
    """F4 (docs/reliability.md): PostgreSQL cuts an identifier at 63 bytes without an error, so two
    columns (or streams) sharing their first 63 bytes became one, and a single long column was stored
    under a cut name and refused on the next run ("already exists"). Now refused up front, in one
    line naming the stream and the field; 63 bytes still load, twice. ``direct``: a plain URL, whose
    tables are set up without SQLAlchemy (the limit is the dialect's constant, no engine)."""
    if plain:
        pg_url = pg_url.replace("postgresql+psycopg://", "postgresql://", 1)
    cfg = {"adapter": "sql", "url": pg_url, "schema": pg_schema}
    head = "c" * 63
    a, b = head + "_alpha", head + "_beta"

    def spec(name, *cols):
        props = {"id": {"type": "integer"}, **{c: {"type": ["string", "null"]} for c in cols}}
        return StreamSpec(name=name, key_properties=("id",), schema={"type": "object", "properties": props})

    for bad, field in ((spec("s1", a, b), a), (spec("s2", a), a), (spec("\u00e9" * 32 + "x", "v"), None)):
        with create_adapter(cfg) as ad, pytest.raises(AdapterError) as ei:
            ad.start_write(bad)
        msg = str(ei.value)
        assert "\n" not in msg and f"stream {bad.name!r}" in msg and "postgresql keeps 63" in msg, msg
        assert (f"field {field!r}" in msg) if field else ("table name" in msg and "65 bytes" in msg), msg
    # a column added later by a new SCHEMA (widening) is checked too
    with create_adapter(cfg) as ad:
        ad.start_write(spec("s3", "v"))
        ad.write(spec("s3", "v"), Batch.from_records([{"id": 1, "v": "x"}]))
        with pytest.raises(AdapterError, match="the column name is 68 bytes"):
            ad.start_write(spec("s3", "v", b))
    for run in (1, 2):
        with create_adapter(cfg) as ad:
            ok = spec("s4", head)
            ad.start_write(ok)
            ad.write(ok, Batch.from_records([{"id": run, head: f"r{run}"}], schema=ok.schema))
            ad.finish_write(ok)
    assert pg_exec(f'SELECT id, "{head}" FROM "{pg_schema}".s4 ORDER BY id') == [(1, "r1"), (2, "r2")]
    tables = pg_exec(f"SELECT table_name FROM information_schema.tables WHERE table_schema = '{pg_schema}'")
    assert sorted(t for (t,) in tables) == ["s3", "s4"]


def test_uncastable_value_rolls_the_batch_back(dest):
    cfg, run, q = dest
    with create_adapter(cfg) as ad:
        ad.start_write(SPEC)
        ad.write(SPEC, Batch.from_records(_singer_records(2), schema=SPEC.schema))
        bad = _singer_records(3, start=10)
        bad[2]["price"] = "12.345"  # does not fit numeric(10,2): never rounded
        with pytest.raises(SchemaError) as ei:
            ad.write(SPEC, Batch.from_records(bad, schema=SPEC.schema))
        assert "adapter 'sql', stream 'items', field 'price'" in str(ei.value)
        bad[2]["price"], bad[1]["at"] = "1.00", "yesterday"
        with pytest.raises(SchemaError, match=r"stream 'items', field 'at'"):
            ad.write(SPEC, Batch.from_records(bad, schema=SPEC.schema))
        ad.finish_write(SPEC)
    assert [r[0] for r in run(f"SELECT id FROM {q}items ORDER BY id")] == [1, 2]


@pytest.mark.postgres
def test_database_rejection_names_field_and_writes_nothing(pg_url, pg_schema, pg_exec):
    pg_exec(
        f"CREATE TABLE {pg_schema}.items (id bigint PRIMARY KEY, name varchar(3), price numeric(10,2), "
        f"at timestamptz, blob bytea, meta jsonb)"
    )
    for arrow in (True, False):
        with create_adapter({"adapter": "sql", "url": pg_url, "schema": pg_schema, "arrow": arrow}) as ad:
            ad.start_write(SPEC)
            recs = _singer_records(3)
            recs[2]["name"] = "much too long"  # varchar(3): PostgreSQL refuses, nothing is truncated
            with pytest.raises(SchemaError) as ei:
                ad.write(SPEC, Batch.from_records(recs, schema=SPEC.schema))
            msg = str(ei.value)
            assert "stream 'items'" in msg and "too long" in msg
            if arrow:
                assert "field 'name'" in msg
    assert pg_exec(f"SELECT count(*) FROM {pg_schema}.items") == [(0,)]


def test_sqlite_not_null_violation_names_field(sqlite_db):
    url, run = sqlite_db
    run(
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, price DECIMAL_TEXT(10,2), "
        "at TIMESTAMPTZ, blob BLOB, meta JSON)"
    )
    with create_adapter({"adapter": "sql", "url": url}) as ad:
        ad.start_write(SPEC)
        recs = _singer_records(3)
        recs[1]["name"] = None
        with pytest.raises(SchemaError, match=r"stream 'items', field 'name'.*rolled back"):
            ad.write(SPEC, Batch.from_records(recs, schema=SPEC.schema))
    assert run("SELECT count(*) FROM items") == [(0,)]


def test_upsert_needs_keys(sqlite_db):
    with (
        create_adapter({"adapter": "sql", "url": sqlite_db[0]}) as ad,
        pytest.raises(AdapterError, match=r"stream 'items'.*key_properties"),
    ):
        ad.start_write(SPEC.with_(key_properties=()), load_method="upsert")


@pytest.mark.parametrize("method", ["overwrite", "append", "upsert"])
def test_start_write_again_keeps_what_was_written(dest, method):
    """A Singer target starts a stream again on every SCHEMA message: nothing written may be lost."""
    cfg, run, q = dest
    grown = SPEC.with_(
        schema={"type": "object", "properties": {**SPEC.properties, "extra": {"type": ["string", "null"]}}}
    )
    with create_adapter(cfg) as ad:
        ad.start_write(SPEC, load_method=method)
        ad.write(SPEC, Batch.from_records(_singer_records(2), schema=SPEC.schema))
        ad.start_write(grown, load_method=method)
        ad.write(
            grown, Batch.from_records([{**_singer_records(1, start=3)[0], "extra": "x"}], schema=grown.schema)
        )
        ad.finish_write(grown)
    assert run(f"SELECT id, extra FROM {q}items ORDER BY id") == [(1, None), (2, None), (3, "x")]


def test_value_errors_name_the_field_once_and_an_integer_beyond_int64_names_the_range(sqlite_db):
    url, run = sqlite_db
    spec = StreamSpec(
        "stock",
        {"type": "object", "properties": {"id": {"type": "integer"}, "qty": {"type": ["integer", "null"]}}},
        key_properties=("id",),
    )
    with create_adapter({"adapter": "sql", "url": url}) as ad:
        ad.start_write(spec)
        ad.write(spec, Batch.from_records([{"id": 1, "qty": 5}], schema=spec.schema))
        with pytest.raises(SchemaError) as ei:
            ad.write(spec, Batch.from_records([{"id": 2, "qty": "abc"}], schema=spec.schema))
        assert str(ei.value) == "adapter 'sql', stream 'stock', field 'qty': 'abc' is not an integer"
        for big in (2**63, -(2**63) - 1, 2**70):
            with pytest.raises(SchemaError) as ei:
                ad.write(spec, Batch.from_records([{"id": 3, "qty": big}], schema=spec.schema))
            msg = str(ei.value)
            assert msg == (
                f"adapter 'sql', stream 'stock', field 'qty': integer {big} is outside the range of "
                "int64 (-9223372036854775808 to 9223372036854775807) (column 'qty' is BIGINT)"
            )
            assert "C long" not in msg
        ad.finish_write(spec)
    assert run("SELECT id, qty FROM stock") == [(1, 5)]  # nothing of the refused batches
