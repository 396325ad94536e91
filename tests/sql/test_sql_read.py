"""Reads of the SQL adapter: full table, columns, limit, batches, incremental bookmarks with boundary dedup,
custom queries — on real SQLite and real PostgreSQL, through the Arrow fast paths and the generic path."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pyarrow as pa
import pytest

from dc_api_x.exceptions import AdapterError
from dc_api_x.plugins import create_adapter
from dc_api_x.testing import isolated_plugins

from .conftest import read_all


def PG(value: str) -> object:
    """A parameter that needs the PostgreSQL server (marked ``postgres``)."""
    return pytest.param(value, marks=pytest.mark.postgres)


UTC = dt.timezone.utc
T0 = dt.datetime(2024, 1, 1, tzinfo=UTC)


def _t(i: int) -> dt.datetime:
    return T0 + dt.timedelta(hours=i)


def _norm(bookmark):
    out = dict(bookmark)
    assert isinstance(out["replication_key_value"], str)
    out["replication_key_value"] = dt.datetime.fromisoformat(out["replication_key_value"])
    return out


# rows (id, updated_at, v): three rows share each timestamp
ROWS = [(i, _t((i - 1) // 3), f"v{i}") for i in range(1, 11)]


@pytest.fixture(params=[PG("pg-adbc"), PG("pg-generic"), "sqlite-adbc", "sqlite-sqlite3"])
def events(request, monkeypatch):
    """``(config, insert(rows))`` of an ``events(id, updated_at, v)`` table on each engine and path."""
    kind = request.param
    if kind.startswith("pg"):
        pg_url = request.getfixturevalue("pg_url")
        schema = request.getfixturevalue("pg_schema")
        run = request.getfixturevalue("pg_exec")
        run(
            f"CREATE TABLE {schema}.events (id bigint PRIMARY KEY, updated_at timestamptz, v text, "
            f"amount numeric(12,2))"
        )

        def insert(rows):
            for i, ts, v in rows:
                run(f"INSERT INTO {schema}.events VALUES (%s, %s, %s, %s)", (i, ts, v, Decimal(i) / 4))

        cfg = {
            "adapter": "sql",
            "url": pg_url,
            "arrow": kind == "pg-adbc",
            "streams": [
                {"name": "events", "table": "events", "schema": schema, "replication_key": "updated_at"}
            ],
        }
    else:
        url, run = request.getfixturevalue("sqlite_db")
        run(
            "CREATE TABLE events (id INTEGER PRIMARY KEY, updated_at TIMESTAMPTZ, v TEXT, "
            "amount DECIMAL_TEXT(12,2))"
        )

        def insert(rows):
            run(
                "INSERT INTO events VALUES (?, ?, ?, ?)",
                [
                    (
                        i,
                        ts.isoformat(timespec="microseconds"),
                        v,
                        str((Decimal(i) / 4).quantize(Decimal("0.01"))),
                    )
                    for i, ts, v in rows
                ],
            )

        from dc_api_x.adapters.sql import sqlite as sqlite_backend

        if kind == "sqlite-sqlite3":
            monkeypatch.setattr(sqlite_backend, "_adbc_installed", lambda: False)
            monkeypatch.setattr(sqlite_backend, "_adbc_findable", lambda: False)
        else:  # ADBC for every file, however small
            monkeypatch.setattr(sqlite_backend, "ADBC_MIN_BYTES", 0)
        cfg = {
            "adapter": "sql",
            "url": url,
            "streams": [{"table": "events", "replication_key": "updated_at"}],
        }
    insert(ROWS)
    return cfg, insert


def test_full_and_incremental_reads_with_boundary_dedup(events):
    cfg, insert = events
    with create_adapter(cfg) as ad:
        (spec,) = ad.discover()
        assert spec.name == "events" and spec.replication_key == "updated_at"
        assert spec.key_properties == ("id",)
        ad.options.batch_size = 4
        records, batches = read_all(ad, spec)
        assert [r["id"] for r in records] == list(range(1, 11))
        assert [len(b) for b in batches] == [4, 4, 2]
        assert records[0]["updated_at"] == T0 and records[0]["updated_at"].utcoffset() == dt.timedelta(0)
        assert records[3]["amount"] == Decimal("1.00") and str(records[2]["amount"]) == "0.75"
        # every batch carries the state after it; the rows already delivered at the value are listed
        # (SQLite keeps the stored text of the value, PostgreSQL an ISO string: both parse back)
        first = batches[0].bookmark
        assert _norm(first) == {
            "replication_key": "updated_at",
            "replication_key_value": _t(1),
            "keys_at_value": [[4]],
        }
        last = batches[-1].bookmark
        assert _norm(last)["replication_key_value"] == _t(3) and last["keys_at_value"] == [[10]]
        assert batches[1].bookmark["keys_at_value"] == [[7], [8]]
        json.dumps(last)  # JSON-serialisable as is

        # resuming after the first batch: rows 5.. exactly once (row 4 shares its timestamp with 5, 6)
        again, _ = read_all(ad, spec, state=json.loads(json.dumps(first)))
        assert [r["id"] for r in again] == list(range(5, 11))

        # nothing new: nothing read
        assert read_all(ad, spec, state=last)[0] == []

        # later rows, one WITH THE SAME replication-key value as the bookmark, one newer
        insert([(11, _t(3), "late"), (12, _t(4), "new")])
        new, nb = read_all(ad, spec, state=last)
        assert [r["id"] for r in new] == [11, 12]
        assert _norm(nb[-1].bookmark) == {
            "replication_key": "updated_at",
            "replication_key_value": _t(4),
            "keys_at_value": [[12]],
        }
        # and the bookmark after row 11 alone remembers both rows at that value
        part, pb = read_all(ad, spec, state=last, limit=1)
        assert [r["id"] for r in part] == [11]
        assert pb[-1].bookmark["keys_at_value"] == [[10], [11]]


def test_limit_columns_and_batches(events):
    cfg, _ = events
    cfg = {**cfg, "streams": [{k: v for k, v in cfg["streams"][0].items() if k != "replication_key"}]}
    with create_adapter(cfg) as ad:
        (spec,) = ad.discover()
        assert spec.replication_key is None
        records, batches = read_all(ad, spec, columns=["v"], limit=7)
        assert len(records) == 7
        # key properties are always part of the records
        assert set(records[0]) == {"v", "id"}
        assert all(b.bookmark is None for b in batches)
        with pytest.raises(AdapterError, match=r"stream 'events', field 'nope'"):
            list(ad.read(spec, columns=["nope"]))


def test_full_read_limit_then_resume_never_loses_rows(events):
    cfg, _ = events
    with create_adapter(cfg) as ad:
        (spec,) = ad.discover()
        seen, state = [], None
        for _ in range(20):
            recs, batches = read_all(ad, spec, state=state, limit=2)
            if not recs:
                break
            seen += [r["id"] for r in recs]
            state = batches[-1].bookmark
        assert seen == list(range(1, 11))


def test_arrow_types_of_the_fast_path(events):
    cfg, _ = events
    with create_adapter(cfg) as ad:
        (spec,) = ad.discover()
        batch = next(iter(ad.read(spec)))
        table = batch.to_arrow()
        assert table.schema.field("updated_at").type == pa.timestamp("us", tz="UTC")
        assert table.schema.field("amount").type == pa.decimal128(12, 2)
        assert table.schema.field("id").type == pa.int64()


@pytest.mark.postgres
def test_custom_query_stream_incremental(pg_url, pg_schema, pg_exec):
    pg_exec(f"CREATE TABLE {pg_schema}.events (id bigint PRIMARY KEY, updated_at timestamptz, v text)")
    for i, ts, v in ROWS:
        pg_exec(f"INSERT INTO {pg_schema}.events VALUES (%s, %s, %s)", (i, ts, v))
    query = f"SELECT id, updated_at, upper(v) AS big FROM {pg_schema}.events WHERE v LIKE 'v%'"
    for arrow in (True, False):
        cfg = {
            "adapter": "sql",
            "url": pg_url,
            "arrow": arrow,
            "streams": [
                {"name": "q", "query": query, "primary_keys": ["id"], "replication_key": "updated_at"}
            ],
        }
        with create_adapter(cfg) as ad:
            (spec,) = ad.discover()
            recs, _batches = read_all(ad, spec)
            assert [r["big"] for r in recs] == [f"V{i}" for i in range(1, 11)]
            state = {
                "replication_key": "updated_at",
                "replication_key_value": "2024-01-01T02:00:00Z",
                "keys_at_value": [[7]],
            }
            recs, _ = read_all(ad, spec, state=state)
            assert [r["id"] for r in recs] == [8, 9, 10]


def test_sqlite_offset_timestamps_in_naive_column(sqlite_db):
    """The benchmark's SQLite file stores ISO strings with offsets in TIMESTAMP columns."""
    url, run = sqlite_db
    run("CREATE TABLE r (id INTEGER PRIMARY KEY, at TIMESTAMP, flag BOOLEAN, j JSON)")
    run(
        "INSERT INTO r VALUES (?, ?, ?, ?)",
        [
            (1, "2021-03-04T05:06:07+00:00", 1, '{"a": 1}'),
            (2, "2021-03-04T07:06:07+02:00", 0, "[1, 2]"),
            (3, None, None, None),
        ],
    )
    with create_adapter({"adapter": "sql", "url": url}) as ad:
        (spec,) = ad.discover()
        recs, _ = read_all(ad, spec)
    assert recs[0]["at"] == recs[1]["at"] == dt.datetime(2021, 3, 4, 5, 6, 7)
    assert [r["flag"] for r in recs] == [True, False, None]
    assert [r["j"] for r in recs] == [{"a": 1}, [1, 2], None]


def test_bad_value_in_sqlite_column_names_field(sqlite_db):
    url, run = sqlite_db
    run("CREATE TABLE r (id INTEGER PRIMARY KEY, at TIMESTAMPTZ)")
    run("INSERT INTO r VALUES (?, ?)", [(1, "2021-03-04T05:06:07+00:00"), (2, "not a time")])
    with create_adapter({"adapter": "sql", "url": url}) as ad:
        (spec,) = ad.discover()
        with pytest.raises(AdapterError, match=r"adapter 'sql', stream 'r', field 'at'"):
            read_all(ad, spec)


@pytest.mark.postgres
def test_read_of_a_dropped_table_names_it(pg_url, pg_schema, pg_exec):
    pg_exec(f"CREATE TABLE {pg_schema}.gone (id bigint)")
    with create_adapter({"adapter": "sql", "url": pg_url, "streams": [f"{pg_schema}.gone"]}) as ad:
        (spec,) = ad.discover()
        pg_exec(f"DROP TABLE {pg_schema}.gone")
        with pytest.raises(AdapterError) as ei:
            read_all(ad, spec)
    assert f"table '{pg_schema}.gone' not found" in str(ei.value) and "adapter 'sql'" in str(ei.value)


@pytest.mark.parametrize("adbc", [True, False], ids=["sqlite-adbc", "sqlite-sqlite3"])
def test_sqlite_null_first_batches_and_dynamic_types(sqlite_db, monkeypatch, adbc):
    """adbc-driver-sqlite infers types from a batch's values: NULL-only first batches and numbers in
    text columns must not break (or change) a read."""
    from dc_api_x.adapters.sql import sqlite as sqlite_backend

    if not adbc:
        monkeypatch.setattr(sqlite_backend, "_adbc_installed", lambda: False)
        monkeypatch.setattr(sqlite_backend, "_adbc_findable", lambda: False)
    else:
        monkeypatch.setattr(sqlite_backend, "ADBC_MIN_BYTES", 0)
    url, run = sqlite_db
    run(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, b INTEGER, f REAL, d DECIMAL_TEXT(10,2), "
        "ts TIMESTAMPTZ, bin BLOB)"
    )
    run(
        "INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(i, None, None, None, None, None, None) for i in range(1, 6)]
        + [
            (6, "x", 7, 0.1, "1.25", "2020-01-01T00:00:00+00:00", b"\x01"),
            (7, 12, 8, 2.5, 3, "2020-01-02", None),
        ],
    )
    with create_adapter({"adapter": "sql", "url": url, "batch_size": 2}) as ad:
        assert type(ad.backend).__name__ == "SQLiteBackend" and ad.backend.adbc is adbc
        (spec,) = ad.discover()
        recs, batches = read_all(ad, spec)
    assert [len(b) for b in batches] == [2, 2, 2, 1]
    assert recs[5] == {
        "id": 6,
        "a": "x",
        "b": 7,
        "f": 0.1,
        "d": Decimal("1.25"),
        "ts": dt.datetime(2020, 1, 1, tzinfo=UTC),
        "bin": b"\x01",
    }
    assert recs[6] == {
        "id": 7,
        "a": "12",
        "b": 8,
        "f": 2.5,
        "d": Decimal("3.00"),
        "ts": dt.datetime(2020, 1, 2, tzinfo=UTC),
        "bin": None,
    }


def test_catalog_spec_without_options_and_plain_singer_state(events):
    """A spec rebuilt from a Singer catalog (no adapter options) and a bookmark without keys_at_value."""
    from dc_api_x.types import StreamSpec

    cfg, _ = events
    with create_adapter(cfg) as ad:
        bare = StreamSpec(name="events", replication_key="updated_at", key_properties=("id",))
        state = {
            "bookmarks": {
                "events": {"replication_key": "updated_at", "replication_key_value": _t(2).isoformat()}
            }
        }
        recs, batches = read_all(ad, bare, state=state)
    # inclusive: the rows at the bookmark value come again (never lost), then the newer ones
    assert [r["id"] for r in recs] == [7, 8, 9, 10]
    assert batches[-1].bookmark["keys_at_value"] == [[10]]


def test_sqlite_query_stream(sqlite_db):
    url, run = sqlite_db
    run("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT, n REAL)")
    run("INSERT INTO t VALUES (?, ?, ?)", [(i, f"v{i}", i / 2) for i in range(1, 6)])
    cfg = {
        "adapter": "sql",
        "url": url,
        "streams": [
            {
                "name": "q",
                "query": "SELECT id, v || '!' AS w, n FROM t WHERE id > 1",
                "primary_key": "id",
                "replication_key": "id",
            }
        ],
    }
    with create_adapter(cfg) as ad:
        (spec,) = ad.discover()
        assert spec.properties["id"] == {"type": "integer"}  # a key: never null
        assert spec.properties["n"] == {"type": ["number", "null"]}
        recs, batches = read_all(ad, spec)
        assert [(r["id"], r["w"], r["n"]) for r in recs] == [(i, f"v{i}!", i / 2) for i in range(2, 6)]
        assert batches[-1].bookmark == {
            "replication_key": "id",
            "replication_key_value": 5,
            "keys_at_value": [[5]],
        }
        again, _ = read_all(
            ad, spec, state={"replication_key": "id", "replication_key_value": 3, "keys_at_value": [[3]]}
        )
        assert [r["id"] for r in again] == [4, 5]


@pytest.mark.postgres
def test_query_with_colons_runs_as_written(pg_url, sqlite_db):
    pg_q = """SELECT 1::bigint AS id, '{"a":1}'::jsonb AS j, '10:30'::time AS t, ':x' AS s"""
    sq_q = """SELECT 1 AS id, '{"a":1}' AS j, '10:30' AS t, ':x' AS s"""
    for url, q, j in ((pg_url, pg_q, {"a": 1}), (sqlite_db[0], sq_q, '{"a":1}')):
        cfg = {"adapter": "sql", "url": url, "streams": [{"name": "q", "query": q, "primary_key": "id"}]}
        with create_adapter(cfg) as ad:
            recs, _ = read_all(ad, ad.get_stream("q"))
        assert recs[0]["s"] == ":x" and recs[0]["id"] == 1
        assert recs[0]["j"] == j  # a JSON value on PostgreSQL, text on SQLite


@pytest.mark.postgres
@pytest.mark.parametrize("arrow", [True, False], ids=["adbc", "generic"])
def test_decimal_bookmark_is_never_rounded(pg_url, pg_schema, pg_exec, arrow):
    """A bookmark decimal with more places than the column has is refused (naming the stream and the
    field), not rounded to the column's scale; a state written by dc-api-x 0.2.0 with ``str()``
    decimals (``1E-10``) resumes at the same value."""
    pg_exec(f"CREATE TABLE {pg_schema}.m (id bigint PRIMARY KEY, amount numeric(20,10))")
    pg_exec(f"INSERT INTO {pg_schema}.m VALUES (1, 0), (2, 0.0000000001), (3, 0.0000000002), (4, 1.005)")
    cfg = {
        "adapter": "sql",
        "url": pg_url,
        "arrow": arrow,
        "streams": [{"name": "m", "table": "m", "schema": pg_schema, "replication_key": "amount"}],
    }
    with create_adapter(cfg) as ad:
        spec = ad.get_stream("m")
        old = {"replication_key": "amount", "replication_key_value": "1E-10", "keys_at_value": [[2]]}
        recs, batches = read_all(ad, spec, state=old)
        assert [r["id"] for r in recs] == [3, 4]
        assert batches[-1].bookmark["replication_key_value"] == "1.0050000000"
        bad = {"replication_key": "amount", "replication_key_value": "0.00000000015", "keys_at_value": []}
        with pytest.raises(AdapterError) as ei:
            read_all(ad, spec, state=bad)
    msg = str(ei.value)
    assert "stream 'm'" in msg and "field 'amount'" in msg and "would be rounded" in msg
    assert len(msg.splitlines()) == 1


@pytest.mark.postgres
def test_inet_reads_as_postgresql_prints_it_on_both_paths(pg_url, pg_schema, pg_exec):
    """``inet`` on the ADBC path (read through the ``inet::text`` cast: ``10.0.0.1/32``) and the
    psycopg path (``10.0.0.1``) alike: PostgreSQL's text output, a /32 (/128) host without its
    prefix, other prefixes kept; arrays of inet too; ``cidr`` always with its prefix."""
    pg_exec(f"CREATE TABLE {pg_schema}.h (id int PRIMARY KEY, a inet, n cidr, arr inet[])")
    pg_exec(
        f"INSERT INTO {pg_schema}.h VALUES (1, '10.0.0.1', '10.0.0.0/8', '{{10.0.0.1,10.1.0.0/16}}'), "
        "(2, '10.1.2.0/24', '10.1.2.0/24', NULL), (3, '::1', '2001:db8::/32', NULL), "
        "(4, '2001:db8::1/64', NULL, '{}'), (5, NULL, NULL, '{NULL,::1/128}')"
    )
    printed = pg_exec(f"SELECT a::varchar IS NOT NULL, format('%s', a) FROM {pg_schema}.h ORDER BY id")
    want_a = [r[1] if r[0] else None for r in printed]
    assert want_a == ["10.0.0.1", "10.1.2.0/24", "::1", "2001:db8::1/64", None]
    want = {
        "a": want_a,
        "n": ["10.0.0.0/8", "10.1.2.0/24", "2001:db8::/32", None, None],
        "arr": [["10.0.0.1", "10.1.0.0/16"], None, None, [], [None, "::1"]],
    }
    query = f"SELECT id, a, n, arr FROM {pg_schema}.h"
    for arrow in (True, False):
        for stream in ({"name": "h", "table": "h", "schema": pg_schema}, {"name": "h", "query": query}):
            cfg = {"adapter": "sql", "url": pg_url, "arrow": arrow, "streams": [stream]}
            with create_adapter(cfg) as ad:
                (spec,) = ad.discover()
                assert spec.schema["properties"]["a"]["format"] == "inet"
                recs, _ = read_all(ad, spec)
            recs.sort(key=lambda r: r["id"])
            # (the psycopg path's records hold ipaddress objects: their text is compared)
            got = {k: [_text(r[k]) for r in recs] for k in want}
            assert got == want, (arrow, stream)


def _text(value: object) -> object:
    if isinstance(value, list):
        return [_text(v) for v in value]
    return None if value is None else str(value)


@pytest.mark.parametrize("engine", [False, True], ids=["own-statement", "sqlalchemy-statement"])
@pytest.mark.parametrize("adbc", [True, False], ids=["sqlite-adbc", "sqlite-sqlite3"])
def test_sqlite_batches_end_at_batch_bytes(sqlite_db, monkeypatch, adbc, engine):
    """A read batch also ends at ``batch_bytes`` of text/binary values (H1 in docs/reliability.md):
    ten 40 KB values with ``batch_size: 500`` are not one batch; small rows still fill ``batch_size``;
    ``batch_bytes: 0`` counts rows only. Every row read once, in order. The same when SQLAlchemy
    compiles the statement (``engine_options``, or dc-api-x-sqlalchemy's engine plugins)."""
    from dc_api_x.adapters.sql import sqlite as sqlite_backend

    if not adbc:
        monkeypatch.setattr(sqlite_backend, "_adbc_installed", lambda: False)
        monkeypatch.setattr(sqlite_backend, "_adbc_findable", lambda: False)
    else:
        monkeypatch.setattr(sqlite_backend, "ADBC_MIN_BYTES", 0)
    url, run = sqlite_db
    run("CREATE TABLE big (id INTEGER PRIMARY KEY, v TEXT, b BLOB)")
    run(
        "INSERT INTO big VALUES (?, ?, ?)",
        [(i, f"{i}" * 40_000 if i < 10 else "é" * 40_000, None) for i in range(1, 11)],
    )
    run("CREATE TABLE small (id INTEGER PRIMARY KEY, v TEXT)")
    run("INSERT INTO small VALUES (?, ?)", [(i, "x" * 10) for i in range(1, 1201)])
    cfg = {"adapter": "sql", "url": url, "batch_size": 500, "batch_bytes": 100_000}
    if engine:
        cfg["engine_options"] = {"pool_pre_ping": True}
    plugins = isolated_plugins(entry_points=True, blocked=["sqlalchemy"])  # its engine plugins
    with plugins, create_adapter(cfg) as ad:
        assert ad.backend.adbc is adbc
        assert (ad.backend.file is None) is engine
        specs = {s.name: s for s in ad.discover()}
        recs, batches = read_all(ad, specs["big"])
        assert [r["id"] for r in recs] == list(range(1, 11))
        assert recs[9]["v"] == "é" * 40_000 and recs[0]["v"] == "1" * 40_000
        assert max(len(b) for b in batches) <= 3, [len(b) for b in batches]  # 3 x 40 KB > 100 KB
        recs, batches = read_all(ad, specs["small"])
        assert [len(b) for b in batches] == [500, 500, 200] and len({r["id"] for r in recs}) == 1200
    with (
        isolated_plugins(entry_points=True, blocked=["sqlalchemy"]),
        create_adapter({**cfg, "batch_bytes": 0}) as ad,
    ):
        (big,) = [s for s in ad.discover() if s.name == "big"]
        assert [len(b) for b in read_all(ad, big)[1]] == [10]


def test_fetch_ends_a_chunk_at_batch_bytes_and_measures_every_fetch():
    """:meth:`SQLRead.fetch` on a cursor whose rows grow: small rows first, then 5 KB ones — a chunk
    is never more than one fetch step past the limit; mixed values in a text column are measured."""
    import sqlite3

    from dc_api_x.ext.sql import FETCH_STEP, SQLRead, SQLSource, value_bytes

    con = sqlite3.connect(":memory:")
    con.execute("CREATE TABLE t (id INTEGER, v)")
    rows = [(i, "s") for i in range(3000)] + [(3000 + i, "y" * 5_000) for i in range(2000)] + [(9999, 7)]
    con.executemany("INSERT INTO t VALUES (?, ?)", rows)
    read = SQLRead(
        spec=None,
        source=SQLSource("t", table="t"),
        props={},
        boundary=None,
        limit=None,
        batch_size=5000,
        batch_bytes=20_000,
    )  # type: ignore[arg-type]
    chunks = list(read.fetch(con.execute("SELECT id, v FROM t ORDER BY id"), 5000, [1]))
    assert [r for c in chunks for r in c] == rows
    assert all(value_bytes(c, [1]) <= 20_000 + FETCH_STEP * 5_000 for c in chunks)
    # the chunk after the size jump may take one more fetch at the old mean; then each ≤ the limit
    assert max(value_bytes(c, [1]) for c in chunks[2:]) <= 20_000, [value_bytes(c, [1]) for c in chunks[:4]]
    assert len(chunks) > 100
    assert value_bytes([(1, "ab"), (2, None), (3, 5), (4, b"xyz")], [1]) == 5
    read.batch_bytes = None
    assert [len(c) for c in read.fetch(con.execute("SELECT id, v FROM t"), 5000, [1])] == [5000, 1]
