"""Our binary COPY decoder (``adapters/sql/_pgcopy.c``, ``adapters/sql/pgcopy.py``) against the ADBC
PostgreSQL driver it stands in for (real PostgreSQL): a table of every type it reads, with edge values
and NULLs everywhere, gives the same Arrow table (schema with its metadata, every value, NaNs bit for
bit) through both; the stream split anywhere decodes the same; a malformed stream is one error naming
the stream; a type it does not read leaves the read to ADBC; the adapter's reads (one COPY and page
ranges) use it and give the same records as with ``DCAPIX_PG_COPY=0``."""

from __future__ import annotations

import random

import pytest

from dc_api_x.adapters.sql import pg_ranges, pgcopy
from dc_api_x.plugins import create_adapter

from .conftest import plain_pg

pytestmark = pytest.mark.postgres

if not pgcopy.status()[0]:  # pragma: no cover - a build without a C compiler
    pytest.skip(f"the COPY decoder is not available: {pgcopy.status()[1]}", allow_module_level=True)

COLUMNS = (
    "i2 int2, i4 int4, i8 int8, f4 float4, f8 float8, b bool, t text, v varchar(12), bp char(5), "
    'nm name, ch "char", ba bytea, n numeric, n2 numeric(12,3), u uuid, j json, jb jsonb, o oid, '
    "d date, ts timestamp, ts3 timestamp(3), tz timestamptz, tm time"
)
N_COLS = len(COLUMNS.split(", "))

ROWS = [
    # minimum values, before 1970 (and before the year 1), empty strings and bytes
    "(-32768, -2147483648, -9223372036854775808, '-Infinity', '-Infinity', false, '', '', '', '', "
    "'a', '', '-Infinity', -999999999.999, '00000000-0000-0000-0000-000000000000', '[]', '[]', 0, "
    "'4713-01-01 BC', '4713-01-01 00:00:00 BC', '1900-01-01 00:00:00.001', "
    "'1969-12-31 23:59:59.999999+00', '00:00')",
    # maximum values, far future
    "(32767, 2147483647, 9223372036854775807, 'Infinity', 'Infinity', true, 'ação ✓ 🎉 日本', 'çççççç', "
    "'ab', 'name_ü', 'z', '\\x00ff10', 'Infinity', 999999999.999, 'ffffffff-ffff-ffff-ffff-ffffffffffff', "
    '\'{"a": [1, "ü", null], "b": {"c": 1.5e300}}\', \'{"a": [1, "ü", null], "b": {"c": 1.5e300}}\', '
    "4294967295, '5874897-12-31', '200000-12-31 23:59:59.999999', '9999-12-31 23:59:59.999', "
    "'200000-01-01 00:00:00+00', '24:00:00')",
    # NaN, -0.0, denormals, numerics of many digits and scales
    "(0, 0, 0, 'NaN', 'NaN', NULL, repeat('x', 20000), NULL, NULL, NULL, NULL, '\\x', 'NaN', 0, "
    "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'null', 'null', 1, '1970-01-01', '1970-01-01', "
    "'1970-01-01', '1970-01-01 00:00:00+00', '12:34:56.789012')",
    "(-1, -1, -1, '-0', '-0', true, E'tab\\there\\nnewline \\\\ \"q\"', 'x', 'x', 'x', 'x', NULL, "
    "'123456789012345678901234567890.123456789012345678901234567890', -0.001, NULL, NULL, NULL, NULL, "
    "'2000-01-01', '2000-01-01', NULL, '2000-01-01 00:00:00+05', NULL)",
    "(1, 1, 1, '1e-45', '5e-324', false, 'a', NULL, NULL, NULL, NULL, NULL, '0.0000000001', 1.5, "
    "NULL, '1', '1', NULL, NULL, NULL, NULL, NULL, NULL)",
    "(NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '-0.00', NULL, NULL, NULL, "
    "NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
    "(NULL, NULL, NULL, '3.4028235e38', '1.7976931348623157e308', NULL, NULL, NULL, NULL, NULL, NULL, "
    "NULL, '-1e-30', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
    "(NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '1e100', NULL, NULL, NULL, "
    "NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
    "(NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '10000', 10000, NULL, NULL, "
    "NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
    "(NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '9999.99990000', 0.1, "
    "NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
    "(NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '-0.00010000', -0.5, "
    "NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
    "(NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, "
    "'-12345678.000000000000000000000000001', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
]


@pytest.fixture
def edge(pg_url, pg_schema, pg_exec):
    """``(libpq url, schema)`` of ``edge``: every type the decoder reads, edge values, NULL rows."""
    pg_exec(f"CREATE TABLE {pg_schema}.edge (k serial, {COLUMNS})")
    names = ", ".join(c.split()[0] for c in COLUMNS.split(", "))
    pg_exec(f"INSERT INTO {pg_schema}.edge ({names}) VALUES " + ", ".join(ROWS))
    # many rows with NULLs in varying places (validity bitmaps across bytes and batches)
    pg_exec(
        f"INSERT INTO {pg_schema}.edge ({names}) SELECT "
        + ", ".join(
            f"CASE WHEN (g * {p}) % 7 < 3 THEN NULL ELSE {expr} END"
            for p, expr in enumerate(
                [
                    "g::int2 % 1000",
                    "g",
                    "g::int8 * 1000003",
                    "g / 7.0",
                    "g / 3.0",
                    "g % 2 = 0",
                    "repeat('é', g % 5)",
                    "'v' || g",
                    "'b'",
                    "'n' || g",
                    "'c'",
                    "decode(md5(g::text), 'hex')",
                    "(g * 1.0001)::numeric",
                    "g / 1000.0",
                    "md5(g::text)::uuid",
                    "json_build_object('g', g)",
                    "jsonb_build_object('g', g)",
                    "g::oid",
                    "date '1960-01-01' + g",
                    "timestamp '1960-01-01' + g * interval '1 minute'",
                    "timestamp '1960-01-01' + g * interval '1 ms'",
                    "timestamptz '1960-01-01 00:00+03' + g * interval '1 second'",
                    "time '00:00' + g * interval '1 second'",
                ],
                start=1,
            )
        )
        + " FROM generate_series(1, 5000) g"
    )
    return plain_pg(pg_url), pg_schema


def _adbc_table(url, sql):
    import adbc_driver_postgresql.dbapi as adbc

    with adbc.connect(url) as conn:
        cur = conn.cursor()
        cur.execute(sql)
        return cur.fetch_arrow_table()


def _ours(url, sql, name="edge"):
    import pyarrow as pa

    conn = pgcopy.CopyConnection(url, name=name)
    try:
        layout = conn.describe(sql)
        assert layout is not None
        return pa.Table.from_batches(list(conn.record_batches(sql)), schema=layout.schema)
    finally:
        conn.close()


def _assert_same(ours, theirs):
    """Equal schemas with metadata and equal values; floats compared bit for bit (NaN, -0.0)."""
    import pyarrow as pa

    assert ours.schema.equals(theirs.schema, check_metadata=True), (ours.schema, theirs.schema)
    assert ours.num_rows == theirs.num_rows
    for name in ours.column_names:
        a, b = ours[name].combine_chunks(), theirs[name].combine_chunks()
        if pa.types.is_floating(a.type):
            bits = pa.int32() if a.type == pa.float32() else pa.int64()
            assert a.is_null().equals(b.is_null()), name
            a, b = a.fill_null(0).view(bits), b.fill_null(0).view(bits)
        assert a.equals(b), (name, a, b)


def test_every_type_and_edge_value_reads_as_the_adbc_driver_reads_it(edge):
    url, schema = edge
    sql = f"SELECT * FROM {schema}.edge ORDER BY k"
    theirs = _adbc_table(url, sql)
    ours = _ours(url, sql)
    _assert_same(ours, theirs)
    assert ours.num_rows == len(ROWS) + 5000
    rows = ours.select(["t", "bp", "ba", "n", "o"]).slice(0, len(ROWS)).to_pylist()
    assert rows[1]["t"] == "ação ✓ 🎉 日本" and rows[0]["t"] == "" and rows[2]["t"] == "x" * 20000
    assert rows[1]["bp"] == "ab   " and rows[0]["ba"] == b"" and rows[1]["ba"] == b"\x00\xff\x10"
    # numeric as ADBC spells it (compared above); a few spellings spelled out
    assert [r["n"] for r in rows[:3]] == ["-inf", "inf", "nan"]
    assert rows[4]["n"] == "0.0000000001" and rows[5]["n"] == "0.00" and rows[7]["n"] == "1" + "0" * 100
    assert rows[9]["n"] == "9999.99990000" and rows[10]["n"] == "-0.00010000"
    assert rows[11]["n"] == "-12345678.000000000000000000000000001"
    assert rows[3]["n"] == "123456789012345678901234567890.123456789012345678901234567890"
    assert rows[2]["n"] == "nan" and rows[1]["n"] == "inf" and rows[0]["n"] == "-inf"
    assert rows[1]["o"] == -1  # oid 4294967295 as ADBC's int32


def test_a_stream_split_anywhere_decodes_the_same(edge):
    """The raw COPY stream fed in chunks of 1, 2, 3, 7, 4096 and random sizes: a row (and the header)
    cut anywhere waits for the rest."""
    import psycopg
    import pyarrow as pa

    url, schema = edge
    sql = f"SELECT * FROM {schema}.edge ORDER BY k"
    layout = pgcopy.CopyConnection(url).describe(sql)
    assert layout is not None
    with psycopg.connect(url) as conn, conn.cursor().copy(f"COPY ({sql}) TO STDOUT (FORMAT binary)") as cp:
        data = b"".join(bytes(chunk) for chunk in cp)
    expected = _ours(url, sql)
    rnd = random.Random(15)
    for sizes in ([1], [2], [3], [7], [4096], None):
        dec = pgcopy._module().Decoder(layout.kinds, "edge")
        pos = k = 0
        while pos < len(data):
            step = sizes[k % len(sizes)] if sizes else rnd.randint(1, 300)
            dec.feed(data[pos : pos + step])
            pos, k = pos + step, k + 1
        dec.finish()
        rows, cols = dec.take()
        got = pa.Table.from_batches([pgcopy.batch_of(layout, rows, cols)])
        _assert_same(got, expected)


def test_small_batches_give_the_same_table(edge, monkeypatch):
    url, schema = edge
    sql = f"SELECT * FROM {schema}.edge ORDER BY k"
    whole = _ours(url, sql)
    monkeypatch.setattr(pgcopy, "BATCH_BYTES", 16000)  # (a batch: tens of rows; few enough batches held)
    conn = pgcopy.CopyConnection(url, name="edge")
    try:
        conn.describe(sql)
        batches = list(conn.record_batches(sql))
    finally:
        conn.close()
    assert len(batches) > 20
    import pyarrow as pa

    _assert_same(pa.Table.from_batches(batches), whole)


def _decoder(kinds=None):
    mod = pgcopy._module()
    return mod.Decoder(kinds or bytes([mod.K_I32]), "public.s")


HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8
ROW = b"\x00\x01\x00\x00\x00\x04\x00\x00\x00\x2a"  # one int4 field: 42
TRAILER = b"\xff\xff"


def test_a_well_formed_stream():
    dec = _decoder()
    dec.feed(HEADER + ROW + ROW + TRAILER)
    dec.finish()
    rows, cols = dec.take()
    assert rows == 2 and cols[0][0] == 0 and cols[0][1] is None
    assert bytes(cols[0][2]) == (42).to_bytes(4, "little") * 2


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"PGCOPZ\n\xff\r\n\x00" + b"\x00" * 8 + ROW, "no PGCOPY signature"),
        (HEADER + b"\x00\x02" + ROW[2:], "2 fields where 1 columns are expected"),
        (HEADER + b"\x00\x01\x00\x00\x00\x02\x00\x2a", "a field of 2 bytes where 4 are expected"),
        (HEADER + ROW + TRAILER + ROW, "bytes after the end of the stream"),
        (HEADER + b"\x00\x01\xff\xff\xff\xf0", "a field length of -16"),
    ],
)
def test_a_malformed_stream_is_an_error_naming_the_stream(data, message):
    dec = _decoder()
    with pytest.raises(ValueError, match=r"stream public\.s: malformed binary COPY data: row .*" + message):
        dec.feed(data)
    with pytest.raises(ValueError, match=r"public\.s"):  # and stays failed
        dec.take()


@pytest.mark.parametrize("cut", [HEADER[:5], HEADER + ROW[:7], HEADER + ROW])
def test_a_stream_without_its_trailer_is_an_error(cut):
    dec = _decoder()
    dec.feed(cut)
    with pytest.raises(
        ValueError, match=r"stream public\.s: malformed binary COPY data: it ends without its trailer"
    ):
        dec.finish()


def test_server_errors_and_infinities_are_copy_errors(pg_url):
    url = plain_pg(pg_url)
    with pytest.raises(pgcopy.CopyError, match="division by zero"):
        _ours(url, "SELECT 1 / (5 - g) AS x FROM generate_series(1, 10) g")
    for value in ("'infinity'::timestamp", "'-infinity'::timestamptz", "'infinity'::date"):
        with pytest.raises(
            pgcopy.CopyError, match=r"stream edge: a value Arrow cannot hold: row 2: a (date|timestamp) 'inf"
        ):
            _ours(url, f"SELECT CASE WHEN g = 2 THEN {value} END AS x FROM generate_series(1, 3) g")
    with pytest.raises(pgcopy.CopyError, match="past Arrow's microsecond range"):
        _ours(url, "SELECT timestamp '294276-12-31 23:59:59' AS x")
    # types it does not read: no layout (the read goes to ADBC)
    conn = pgcopy.CopyConnection(url)
    try:
        assert conn.describe("SELECT interval '1 day' AS i, 1 AS k") is None
        assert conn.describe("SELECT ARRAY[1] AS a") is None
        assert conn.describe("SELECT 1::money AS m") is None
    finally:
        conn.close()


# ------------------------------------------------------------------------------------- the adapter


def _records(cfg):
    with create_adapter(cfg) as ad:
        spec = next(s for s in ad.discover() if s.name.endswith("edge"))
        return [r for b in ad.read(spec) for r in b.records]


def _spy(monkeypatch):
    used = []
    real = pgcopy.CopyConnection.record_batches

    def spy(self, sql):
        used.append(sql)
        return real(self, sql)

    monkeypatch.setattr(pgcopy.CopyConnection, "record_batches", spy)
    return used


@pytest.mark.parametrize("scheme", ["postgresql", "postgresql+psycopg"])
@pytest.mark.parametrize("connections", [1, 2])
def test_the_adapter_reads_through_the_decoder_as_through_adbc(edge, scheme, connections, monkeypatch):
    """One COPY and page ranges (two connections in one snapshot), plain and SQLAlchemy URLs: the
    same records as the ADBC reader's, and the decoder did read them."""
    url, schema = edge
    monkeypatch.setattr(pg_ranges, "MIN_ROWS", 1000)
    monkeypatch.setattr(pg_ranges, "RANGE_BYTES", 64 << 10)
    monkeypatch.setattr(pgcopy, "MIN_ROWS", 1000)
    cfg = {
        "adapter": "sql",
        "url": scheme + "://" + url.split("://", 1)[1],
        "schema": schema,
        "streams": ["edge"],
        "read_connections": connections,
    }
    import psycopg

    with psycopg.connect(url, autocommit=True) as c:  # (no Python date for the years -4712, 5874897)
        c.execute(f"DELETE FROM {schema}.edge WHERE k <= 2")
        c.execute(f"ANALYZE {schema}.edge")
    used = _spy(monkeypatch)
    ours = _records(cfg)
    assert used and (len(used) > 2) == (connections == 2)
    monkeypatch.setenv(pgcopy.ENV, "0")
    n = len(used)
    theirs = _records(cfg)
    assert len(used) == n  # ADBC's
    assert len(ours) == len(ROWS) - 2 + 5000 and repr(ours) == repr(theirs)  # (NaN != NaN)


def test_a_small_table_reads_through_adbc(edge, monkeypatch):
    """Below MIN_ROWS (estimated) a full-table read stays with ADBC (its connection is open already);
    a read of unknown size (an incremental one) uses the decoder."""
    import psycopg

    url, schema = edge
    with psycopg.connect(url, autocommit=True) as c:  # (no Python date for the years -4712, 5874897)
        c.execute(f"DELETE FROM {schema}.edge WHERE k <= 2")
        c.execute(f"ANALYZE {schema}.edge")
    n = len(ROWS) - 2 + 5000
    used = _spy(monkeypatch)
    monkeypatch.setattr(pgcopy, "MIN_ROWS", n + 1)
    cfg = {"adapter": "sql", "url": url, "schema": schema, "streams": ["edge"], "read_connections": 1}
    with create_adapter(cfg) as ad:
        spec = ad.discover()[0]
        assert len([r for b in ad.read(spec) for r in b.records]) == n
        assert used == []
        monkeypatch.setattr(pgcopy, "MIN_ROWS", n)
        assert len([r for b in ad.read(spec) for r in b.records]) == n
        assert len(used) == 1


def test_a_stream_with_another_type_reads_through_adbc(pg_url, pg_schema, pg_exec, monkeypatch):
    monkeypatch.setattr(pgcopy, "MIN_ROWS", 0)
    pg_exec(f"CREATE TABLE {pg_schema}.edge (k int, i int4[])")
    pg_exec(f"INSERT INTO {pg_schema}.edge VALUES (1, ARRAY[1, 2]), (2, NULL)")
    used = _spy(monkeypatch)
    rows = _records({"adapter": "sql", "url": plain_pg(pg_url), "schema": pg_schema, "streams": ["edge"]})
    assert used == [] and [r["k"] for r in rows] == [1, 2]


def test_an_infinite_timestamp_is_one_clear_error(pg_url, pg_schema, pg_exec, monkeypatch):
    from dc_api_x.exceptions import AdapterError

    monkeypatch.setattr(pgcopy, "MIN_ROWS", 0)
    pg_exec(f"CREATE TABLE {pg_schema}.edge (k int, ts timestamp)")
    pg_exec(f"INSERT INTO {pg_schema}.edge VALUES (1, '2020-01-01'), (2, 'infinity')")
    with pytest.raises(AdapterError) as info:
        _records({"adapter": "sql", "url": plain_pg(pg_url), "schema": pg_schema, "streams": ["edge"]})
    msg = str(info.value)
    assert "\n" not in msg and "row 2: a timestamp 'infinity'" in msg and "edge" in msg


def test_a_query_stream_and_an_incremental_read_use_the_decoder(edge, monkeypatch):
    """Reads of unknown size: a custom query (compiled by SQLAlchemy) and an incremental read (the
    bookmark value in a session setting of the decoder's own connection) give ADBC's records."""
    import psycopg

    url, schema = edge
    with psycopg.connect(url, autocommit=True) as c:  # (no Python date for the years -4712, 5874897)
        c.execute(f"DELETE FROM {schema}.edge WHERE k <= 2")
    streams = [
        {"name": "q", "query": f"SELECT k, t, n, jb, tz FROM {schema}.edge WHERE k % 3 = 0"},
        {"name": "inc", "table": "edge", "schema": schema, "replication_key": "k"},
    ]
    used = _spy(monkeypatch)

    def read_both():
        out = {}
        with create_adapter({"adapter": "sql", "url": url, "streams": streams}) as ad:
            for spec in ad.discover():
                state = {"replication_key_value": 4000} if spec.name == "inc" else None
                out[spec.name] = [r for b in ad.read(spec, state=state) for r in b.records]
        return out

    ours = read_both()
    assert len(used) == 2
    monkeypatch.setenv(pgcopy.ENV, "0")
    theirs = read_both()
    assert len(used) == 2
    assert len(ours["q"]) == len([k for k in range(3, len(ROWS) + 5001) if k % 3 == 0])
    assert [r["k"] for r in ours["inc"]] == list(range(4000, len(ROWS) + 5001))
    assert repr(ours) == repr(theirs)
