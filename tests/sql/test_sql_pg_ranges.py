"""Parallel page-range reads of one large PostgreSQL table (``adapters/sql/pg_ranges.py``, real
PostgreSQL): the same rows, values and order as one COPY, one snapshot for every range,
workers and connections gone after an early stop or a failing range, and one COPY for whatever does
not qualify. The size threshold and range size are lowered so a few thousand rows split."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal

import pytest

from dc_api_x.adapters.sql import pg_ranges
from dc_api_x.plugins import create_adapter

pytestmark = pytest.mark.postgres

N = 3000


@pytest.fixture(params=["adbc", "decoder"])
def reader(request, monkeypatch):
    """The read through the ADBC driver's COPY and through our own decoder (adapters/sql/pgcopy.py)."""
    from dc_api_x.adapters.sql import pgcopy

    if request.param == "adbc":
        monkeypatch.setenv(pgcopy.ENV, "0")
    elif not pgcopy.status()[0]:
        pytest.skip(pgcopy.status()[1])
    monkeypatch.setattr(pgcopy, "MIN_ROWS", 0)  # (one COPY of these small tables too)
    return request.param


@pytest.fixture(params=["postgresql+psycopg", "postgresql"])
def table(request, reader, pg_url, pg_schema, pg_exec, monkeypatch):
    """``(config, schema)`` of ``items``: N rows of every kind of column, analyzed (reltuples set).
    Twice: a ``postgresql+psycopg://`` URL (statements compiled by SQLAlchemy) and a plain
    ``postgresql://`` one (discovered and read without SQLAlchemy, adapters/sql/pg_direct.py)."""
    pg_exec(
        f"CREATE TABLE {pg_schema}.items (id bigint PRIMARY KEY, name text, amount numeric(20,6), "
        f"ts timestamptz, d date, doc jsonb, flag boolean, u uuid, small int)"
    )
    pg_exec(
        f"INSERT INTO {pg_schema}.items SELECT i, CASE WHEN i % 7 = 0 THEN NULL ELSE 'n' || i END, "
        f"i * 1.000001 + 12345678901234.5, timestamptz '2024-01-01 00:00:00+02' + i * interval '1 second', "
        f"date '2000-01-01' + i, jsonb_build_object('i', i, 'big', 12345678901234567890), i % 2 = 0, "
        f"md5(i::text)::uuid, i % 100 FROM generate_series(1, {N}) i ORDER BY random()"
    )
    pg_exec(f"ANALYZE {pg_schema}.items")
    monkeypatch.setattr(pg_ranges, "MIN_ROWS", 1000)
    monkeypatch.setattr(pg_ranges, "RANGE_BYTES", 16 << 10)  # ~20 ranges
    url = request.param + "://" + pg_url.split("://", 1)[1]
    cfg = {"adapter": "sql", "url": url, "schema": pg_schema, "streams": ["items"], "batch_size": 100}
    return cfg, pg_schema


def _read(cfg, *, stop_after=None, between=None):
    with create_adapter(cfg) as ad:
        spec = ad.discover()[0]
        rows = []
        it = ad.read(spec)
        for k, batch in enumerate(it):
            rows.extend(batch.records)
            if between is not None and k == 0:
                between()
            if stop_after is not None and k + 1 >= stop_after:
                it.close()
                break
        return rows


def _spy(monkeypatch):
    calls = []
    real = pg_ranges.read_ranges

    def spy(connect, first, sqls, connections, name="dcapix-pg-range"):
        calls.append((len(sqls), connections))
        return real(connect, first, sqls, connections, name)

    from dc_api_x.adapters.sql import postgresql

    monkeypatch.setattr(postgresql, "read_ranges", spy)
    return calls


def test_ranges_read_the_same_rows_and_values_as_one_copy(table, monkeypatch):
    cfg, _ = table
    calls = _spy(monkeypatch)
    one = _read({**cfg, "read_connections": 1})
    assert calls == []  # read_connections 1: one COPY
    par = _read(cfg)
    assert len(calls) == 1 and calls[0][0] >= 10 and calls[0][1] == 2
    assert len(par) == N
    assert sorted(r["id"] for r in par) == list(range(1, N + 1))
    assert par == one  # every value, and the heap order of one COPY (the ids are shuffled in it)
    assert [r["id"] for r in par] != sorted(r["id"] for r in par)
    r = next(r for r in par if r["id"] == 7)  # NULL name
    assert r["name"] is None
    assert r["amount"] == Decimal("12345678901241.500007")
    assert r["ts"] == dt.datetime(2023, 12, 31, 22, 0, 7, tzinfo=dt.timezone.utc)
    assert r["d"] == dt.date(2000, 1, 8)
    assert r["doc"] == {"i": 7, "big": 12345678901234567890}  # JSON decoded, the big integer exact
    assert r["u"] == "8f14e45f-ceea-167a-5a36-dedd4bea2543"


def test_every_range_reads_one_snapshot(table, pg_exec, monkeypatch):
    """Rows changed by another transaction after the first connection exported its snapshot and
    before the second one began (and after the first batch was delivered) are not seen: every range
    reads the first connection's snapshot."""
    cfg, schema = table
    from dc_api_x.adapters.sql.postgresql import PostgreSQLBackend

    def change():  # touches every range, whichever connection reads it
        pg_exec(f"DELETE FROM {schema}.items WHERE id % 10 = 0")
        pg_exec(f"UPDATE {schema}.items SET name = 'changed' WHERE id % 10 = 1")
        pg_exec(f"INSERT INTO {schema}.items (id, name) VALUES ({N + 1}, 'late'), ({-(N // 2)}, 'neg')")

    real = PostgreSQLBackend.connect_reader
    changed = []

    def connect_then_change(self, *args):
        if not changed:
            changed.append(change())
        return real(self, *args)

    monkeypatch.setattr(PostgreSQLBackend, "connect_reader", connect_then_change)
    rows = _read(cfg)
    assert changed
    assert sorted(r["id"] for r in rows) == list(range(1, N + 1))
    assert "changed" not in {r["name"] for r in rows}
    # the changes are there for the next read (a new snapshot)
    again = {r["id"]: r["name"] for r in _read(cfg)}
    assert len(again) == N - N // 10 + 2 and again[N + 1] == "late" and again[-(N // 2)] == "neg"
    assert again[11] == again[N - 9] == "changed" and 10 not in again


def test_the_first_range_does_not_wait_for_the_further_connections(table, monkeypatch):
    """The first connection starts reading as soon as it has exported its snapshot; a further
    connection is opened, joins the snapshot and reads in its own worker. Here the second connection
    opens only once the first batch has been delivered: before, read_ranges opened every connection
    before starting any worker, so this connect waited in vain (5 s) and the read had no batch yet."""
    cfg, _ = table
    from dc_api_x.adapters.sql.postgresql import PostgreSQLBackend

    one = _read({**cfg, "read_connections": 1})
    real = PostgreSQLBackend.connect_reader
    delivered = threading.Event()
    waited = []

    def after_first_batch(self, *args):
        waited.append(delivered.wait(5))
        return real(self, *args)

    monkeypatch.setattr(PostgreSQLBackend, "connect_reader", after_first_batch)
    rows = _read(cfg, between=delivered.set)
    assert waited == [True]
    assert rows == one  # the same rows, values and order as one COPY
    assert not [t for t in threading.enumerate() if t.name.startswith("dcapix-pg-range")]


def test_a_further_connection_that_fails_only_lowers_the_parallelism(table, monkeypatch, caplog):
    cfg, _ = table
    from dc_api_x.adapters.sql.postgresql import PostgreSQLBackend

    one = _read({**cfg, "read_connections": 1})

    def refuse(self, *args):
        raise RuntimeError("no more connections")

    monkeypatch.setattr(PostgreSQLBackend, "connect_reader", refuse)
    with caplog.at_level("INFO", logger="dc_api_x.adapters.sql"):
        rows = _read(cfg)
    assert rows == one
    assert "a further read connection failed (no more connections)" in caplog.text
    assert not [t for t in threading.enumerate() if t.name.startswith("dcapix-pg-range")]


def test_early_stop_and_failing_range_leave_no_worker_or_connection(table, pg_exec, monkeypatch):
    cfg, _ = table

    def backends():
        return pg_exec(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND query LIKE '%items%'"
        )[0][0]

    rows = _read(cfg, stop_after=2)
    assert 0 < len(rows) < N
    assert not [t for t in threading.enumerate() if t.name.startswith("dcapix-pg-range")]
    assert backends() == 0

    real = pg_ranges.range_select
    from dc_api_x.adapters.sql import postgresql

    def bad(stmt, start, stop):
        out = real(stmt, start, stop)
        if start is not None and stop is not None and start > 10:  # the ranges past page 10 fail
            import sqlalchemy as sa

            out = out.where(sa.literal_column("1 / (id - id)") > 0)
        return out

    real_where = postgresql.range_where

    def bad_where(sql, start, stop):  # the same on the statements written without SQLAlchemy
        out = real_where(sql, start, stop)
        if start is not None and stop is not None and start > 10:
            out += " AND 1 / (id - id) > 0"
        return out

    monkeypatch.setattr(postgresql, "range_select", bad)
    monkeypatch.setattr(postgresql, "range_where", bad_where)
    with pytest.raises(Exception, match="division by zero"):
        _read(cfg)
    assert not [t for t in threading.enumerate() if t.name.startswith("dcapix-pg-range")]
    assert backends() == 0


def test_what_does_not_qualify_reads_with_one_copy(table, pg_exec, monkeypatch):
    cfg, schema = table
    calls = _spy(monkeypatch)
    # an incremental stream, a limit, a custom query
    inc = {**cfg, "streams": [{"table": "items", "replication_key": "ts"}]}
    assert len(_read(inc)) == N
    with create_adapter(cfg) as ad:
        spec = ad.discover()[0]
        assert sum(len(b) for b in ad.read(spec, limit=250)) == 250
    q = {**cfg, "streams": [{"name": "q", "query": f"SELECT id, name FROM {schema}.items"}]}
    assert len(_read(q)) == N
    # a small table (estimate below MIN_ROWS)
    monkeypatch.setattr(pg_ranges, "MIN_ROWS", N + 1)
    assert len(_read(cfg)) == N
    assert calls == []


def test_a_table_without_key_splits_too(table, pg_exec, monkeypatch):
    """Page ranges need no key: a table without primary key or index reads in ranges, same rows."""
    cfg, schema = table
    pg_exec(f"CREATE TABLE {schema}.nokey AS SELECT name, small FROM {schema}.items")
    pg_exec(f"INSERT INTO {schema}.nokey SELECT name, small FROM {schema}.nokey")  # duplicates
    pg_exec(f"ANALYZE {schema}.nokey")
    calls = _spy(monkeypatch)
    one = _read({**cfg, "streams": ["nokey"], "read_connections": 1})
    par = _read({**cfg, "streams": ["nokey"]})
    assert len(calls) == 1 and len(par) == 2 * N and par == one
