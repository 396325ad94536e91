"""The PostgreSQL connections a write opens (real PostgreSQL, issue 15): the first parallel COPY batch
borrows the destination's sequential connection (the one the table was created on) instead of opening
one more, so a 20,000-row PostgreSQL → PostgreSQL ``dcapix run`` authenticates once less; the
connection comes back to the sequential writes without the workers' lock timeout, a batch that fails
on it is rolled back as before, and another stream writing meanwhile opens its own.

Counted by the server: ``pg_stat_database.sessions`` of a database only the run under test uses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from dc_api_x.adapters.sql import postgresql
from dc_api_x.exceptions import SchemaError
from dc_api_x.plugins import create_adapter
from dc_api_x.testing import isolated_plugins
from dc_api_x.types import Batch, StreamSpec

pytestmark = pytest.mark.postgres

N = postgresql._PARALLEL_MIN_ROWS  # rows of a batch that takes the parallel path

SPEC = StreamSpec(
    name="items",
    schema={
        "type": "object",
        "properties": {"id": {"type": "integer"}, "name": {"type": ["string", "null"]}},
    },
    key_properties=("id",),
)


def _batch(start: int, n: int = N, name: str = "n", bad_row: int | None = None) -> Batch:
    names = [name] * n
    if bad_row is not None:
        names[bad_row] = "much too long"
    table = pa.table(
        {"id": pa.array(range(start, start + n), pa.int64()), "name": pa.array(names, pa.string())}
    )
    return Batch.from_arrow(table, schema=SPEC.schema)


def _admin(pg_admin_url: str, sql: str) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        cur = conn.execute(sql)
        return cur.fetchall() if cur.description else []


def _sessions(pg_admin_url: str, db: str) -> int:
    """The sessions the server counted for database ``db``, once none of them is open any more."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        busy = _admin(pg_admin_url, f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{db}'")
        if busy == [(0,)]:
            break
        time.sleep(0.05)
    got = _admin(pg_admin_url, f"SELECT sessions FROM pg_stat_database WHERE datname = '{db}'")
    return int(got[0][0])


@pytest.fixture
def databases(pg_admin_url: str) -> Iterator[tuple[str, str]]:
    """(source, destination): two fresh databases (plain ``postgresql://`` URLs), dropped afterwards."""
    names = [f"dcapix_test_conn_{uuid.uuid4().hex[:8]}_{r}" for r in ("src", "dst")]
    for name in names:
        _admin(pg_admin_url, f'CREATE DATABASE "{name}"')
    base = pg_admin_url.rsplit("/", 1)[0]
    yield f"{base}/{names[0]}", f"{base}/{names[1]}"
    for name in names:
        _admin(pg_admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def direct() -> Iterator[None]:
    """dc-api-x-sqlalchemy's SQL extension sends every PostgreSQL URL through SQLAlchemy."""
    with isolated_plugins(entry_points=True, blocked=["sqlalchemy"]):
        yield


def _rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(sql)
        return cur.fetchall() if cur.description else []


def test_a_20000_row_pg_to_pg_run_authenticates_once_at_the_destination(
    databases: tuple[str, str], pg_admin_url: str, tmp_path: Path
) -> None:
    """``dcapix run`` of a 20,000-row table (one batch, written by a parallel COPY worker): the
    destination counts the database handle's session and one connection — it was three (a worker
    opened its own connection at the first write)."""
    src, dst = databases
    _rows(
        src,
        "CREATE TABLE bench_rows (id bigint PRIMARY KEY, name text NOT NULL, amount double precision,"
        " created_at timestamptz, attrs jsonb, note text);"
        " INSERT INTO bench_rows SELECT g, 'name ' || g, g * 0.25,"
        " '2024-01-01'::timestamptz + g * interval '1 s',"
        " jsonb_build_object('k', g), CASE WHEN g % 7 = 0 THEN NULL ELSE 'n' || g END"
        " FROM generate_series(1, 20000) g",
    )
    (tmp_path / "src.json").write_text(
        json.dumps({"adapter": "sql", "url": src, "streams": ["public.bench_rows"]})
    )
    (tmp_path / "dst.json").write_text(json.dumps({"adapter": "sql", "url": dst, "schema": "w1"}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("DC_API_X_")}
    env["DC_API_X_BLOCKED_PLUGINS"] = "sqlalchemy"
    dst_db = dst.rsplit("/", 1)[1]
    before = _sessions(pg_admin_url, dst_db)
    res = subprocess.run(
        [
            sys.executable, "-m", "dc_api_x.cli", "run", "--no-progress", "--no-state",
            "--source", str(tmp_path / "src.json"), "--destination", str(tmp_path / "dst.json"),
        ],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    opened = _sessions(pg_admin_url, dst_db) - before
    assert opened <= 2, f"the run opened {opened} sessions at the destination"
    # every value as the source has it (EXCEPT both ways: the two lists are equal as multisets)
    q = "SELECT id, name, amount, created_at, attrs::text, note FROM {} ORDER BY id"
    assert _rows(dst, q.format("w1.bench_rows")) == _rows(src, q.format("bench_rows"))
    assert len(_rows(dst, "SELECT id FROM w1.bench_rows")) == 20000


def test_the_first_parallel_batch_borrows_the_sequential_connection(
    direct: None, databases: tuple[str, str], pg_admin_url: str
) -> None:
    _, dst = databases
    dst_db = dst.rsplit("/", 1)[1]
    before = _sessions(pg_admin_url, dst_db)
    with create_adapter({"adapter": "sql", "url": dst, "schema": "s"}) as ad:
        ad.start_write(SPEC)
        backend = ad.backend
        seq = backend._conn
        assert seq is not None  # the table was created on it
        assert not ad.write(SPEC, _batch(1)).committed  # in flight on the lent connection
        assert backend._conn is None
        ad.flush(SPEC)
        assert backend._conn is seq  # handed back
        assert not backend._parallel.conns  # no worker connection was opened
        # without the workers' lock timeout (it was SET LOCAL: the batch's transaction only)
        assert seq.rows("SELECT current_setting('lock_timeout')") == [("0",)]
        seq.rollback()
        small = ad.write(SPEC, _batch(N + 1, n=5))  # a sequential write on it
        assert small.committed
        ad.finish_write(SPEC)
    assert _sessions(pg_admin_url, dst_db) - before <= 2  # the handle's and one connection (was 3)
    assert _rows(dst, "SELECT id, name FROM s.items ORDER BY id") == [(i, "n") for i in range(1, N + 6)]


def test_several_batches_use_the_lent_connection_and_one_worker(
    direct: None, databases: tuple[str, str]
) -> None:
    _, dst = databases
    with create_adapter({"adapter": "sql", "url": dst, "schema": "s"}) as ad:
        ad.start_write(SPEC)
        for i in range(5):
            assert not ad.write(SPEC, _batch(1 + i * N)).committed
        ad.finish_write(SPEC)
        assert len(ad.backend._parallel.conns) <= 1  # at most two batches in flight: lent + one
        assert ad.backend._conn is not None
    assert _rows(dst, "SELECT count(*), count(DISTINCT id), min(id), max(id) FROM s.items") == [
        (5 * N, 5 * N, 1, 5 * N)
    ]


def test_a_batch_failing_on_the_lent_connection_is_rolled_back(
    direct: None, databases: tuple[str, str]
) -> None:
    """The first batch (on the borrowed connection) fails: nothing of it or of the batch after it is
    committed, the error is the sequential one, and the connection writes the next batches."""
    _, dst = databases
    _rows(dst, "CREATE SCHEMA s; CREATE TABLE s.items (id bigint PRIMARY KEY, name varchar(3))")
    with create_adapter({"adapter": "sql", "url": dst, "schema": "s"}) as ad:
        ad.start_write(SPEC)
        seq = ad.backend._conn
        with pytest.raises(SchemaError, match=r"stream 'items', field 'name'.*rolled back"):
            ad.write(SPEC, _batch(1, bad_row=7))
            ad.write(SPEC, _batch(1 + N))
            ad.flush(SPEC)
        assert _rows(dst, "SELECT count(*) FROM s.items") == [(0,)]
        assert ad.backend._conn is seq
        assert not ad.write(SPEC, _batch(1)).committed
        ad.finish_write(SPEC)
    assert _rows(dst, "SELECT count(*), min(id), max(id) FROM s.items") == [(N, 1, N)]


def test_another_stream_writing_while_the_connection_is_lent_opens_its_own(
    direct: None, databases: tuple[str, str]
) -> None:
    _, dst = databases
    other = StreamSpec(name="others", schema=SPEC.schema, key_properties=("id",))
    with create_adapter({"adapter": "sql", "url": dst, "schema": "s"}) as ad:
        ad.start_write(SPEC)
        ad.start_write(other)
        assert not ad.write(SPEC, _batch(1)).committed  # lent to this batch
        assert ad.write(other, _batch(1, n=3, name="o")).committed  # sequential, on a new connection
        ad.finish_write(other)
        ad.finish_write(SPEC)
        assert ad.backend._conn is not None
    assert _rows(dst, "SELECT count(*), count(DISTINCT id) FROM s.items") == [(N, N)]
    assert _rows(dst, "SELECT id, name FROM s.others ORDER BY id") == [(1, "o"), (2, "o"), (3, "o")]


def test_upsert_batches_stay_sequential_on_one_connection(direct: None, databases: tuple[str, str]) -> None:
    _, dst = databases
    with create_adapter({"adapter": "sql", "url": dst, "schema": "s", "load_method": "upsert"}) as ad:
        ad.start_write(SPEC)
        assert ad.write(SPEC, _batch(1)).committed
        assert ad.write(SPEC, _batch(N // 2, name="u")).committed
        ad.finish_write(SPEC)
        assert not ad.backend._parallel.conns
    assert _rows(dst, "SELECT name, count(*) FROM s.items GROUP BY name ORDER BY name") == [
        ("n", N // 2 - 1),
        ("u", N),
    ]


@pytest.mark.parametrize("kind", ["direct", "sqlalchemy"])
def test_a_large_batch_after_a_small_one_borrows_its_connection(
    kind: str, databases: tuple[str, str], pg_admin_url: str
) -> None:
    """A small batch is written on the sequential connection (an ADBC DB-API one when the table was
    set up through SQLAlchemy); the large batch after it borrows that connection."""
    _, dst = databases
    url = dst if kind == "direct" else dst.replace("postgresql://", "postgresql+psycopg://", 1)
    blocked = ["sqlalchemy"] if kind == "direct" else []
    cfg = {"adapter": "sql", "url": url, "schema": "s"}
    with isolated_plugins(entry_points=True, blocked=blocked), create_adapter(cfg) as ad:
        ad.start_write(SPEC)
        assert ad.write(SPEC, _batch(1, n=3)).committed
        seq = ad.backend._conn
        assert seq is not None
        assert not ad.write(SPEC, _batch(4)).committed
        assert ad.backend._conn is None  # lent
        ad.finish_write(SPEC)
        assert ad.backend._conn is seq and not ad.backend._parallel.conns
    assert _rows(dst, "SELECT count(*), count(DISTINCT id), min(id), max(id) FROM s.items") == [
        (N + 3, N + 3, 1, N + 3)
    ]
