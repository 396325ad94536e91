"""The ADBC PostgreSQL handle's type resolver (``pg_direct.open_handle``, issue 15).

A handle is opened with the driver's built-in type resolver (no read of ``pg_type``: ~0.02 CPU-s of
every handle) only when the database has no types of its own; these tests pin that every built-in
type reads alike under both resolvers, and that a database with an enum, a composite or a range type
gets the server's (its values keep their types)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

pytestmark = pytest.mark.postgres

pytest.importorskip("adbc_driver_postgresql")


@pytest.fixture
def fresh_db(pg_admin_url: str) -> Iterator[tuple[str, Any]]:
    """``(libpq URI, run-SQL function)`` of a new empty database, dropped after the test."""
    import psycopg

    name = f"dcapix_resolver_{uuid.uuid4().hex[:10]}"
    admin = pg_admin_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    uri = f"{admin.rsplit('/', 1)[0]}/{name}"

    def run(sql: str) -> None:
        with psycopg.connect(uri, autocommit=True) as conn:
            conn.execute(sql)

    yield uri, run
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _read(conn: Any, sql: str) -> Any:
    from dc_api_x.adapters.sql.pg_direct import DirectCursor

    cur = DirectCursor(conn)
    try:
        cur.execute(sql)
        return cur.fetch_record_batch().read_all()
    finally:
        cur.close()


def _open(uri: str, mode: str) -> tuple[Any, Any]:
    import adbc_driver_manager
    import adbc_driver_postgresql

    db = adbc_driver_postgresql.connect(uri, db_kwargs={"adbc.postgresql.type_resolver_mode": mode})
    return db, adbc_driver_manager.AdbcConnection(db)


def test_every_builtin_type_reads_alike_under_both_resolvers(fresh_db: tuple[str, Any]) -> None:
    """Types (fields, Arrow types, metadata) and values of every built-in type of this server (and
    its arrays), as the server's resolver and the built-in one give them."""
    uri, _ = fresh_db
    sdb, sconn = _open(uri, "server")
    names = (
        _read(
            sconn,
            "SELECT format('%I.%I', n.nspname, t.typname) FROM pg_catalog.pg_type t"
            " JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace"
            " LEFT JOIN pg_catalog.pg_type e ON e.oid = t.typelem"  # (arrays of row types: USER_TYPES_SQL)
            " WHERE t.oid < 10000 AND t.typtype IN ('b', 'e', 'r', 'm', 'd') AND t.typisdefined"
            " AND t.typsend <> 0"
            " AND e.typtype IS DISTINCT FROM 'c'"
            " AND NOT t.typname IN ('unknown', 'cstring') ORDER BY t.oid",
        )
        .column(0)
        .to_pylist()
    )
    assert len(names) > 150
    cols = ", ".join(f'NULL::{n} AS "c{i}"' for i, n in enumerate(names))
    values = (
        "SELECT 1::int2, 2::int4, 3::int8, 1.5::float4, 2.5::float8, 12.345::numeric(10,3), 'x'::text,"
        " 'y'::varchar(3), 'z'::bpchar, true, '2026-01-02'::date, '10:11:12'::time,"
        " '2026-01-02 03:04:05'::timestamp, '2026-01-02 03:04:05+00'::timestamptz, '1 day'::interval,"
        " 'ab'::bytea, '{\"a\": 1}'::json, '{\"a\": 1}'::jsonb, ARRAY[1, 2]::int4[], ARRAY['a']::text[],"
        " 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid, '10.0.0.1'::inet, 'pg_class'::regclass::oid,"
        " 'n'::name"
    )
    bdb, bconn = _open(uri, "builtin")
    try:
        for sql in (f"SELECT {cols}", values):
            server, builtin = _read(sconn, sql), _read(bconn, sql)
            assert builtin.schema.equals(server.schema, check_metadata=True)
            assert builtin.equals(server)
    finally:
        for h in (sconn, sdb, bconn, bdb):
            h.close()


def test_a_database_of_tables_only_gets_the_builtin_resolver(fresh_db: tuple[str, Any]) -> None:
    from dc_api_x.adapters.sql import pg_direct

    uri, run = fresh_db
    run("CREATE TABLE t (a int, b text); CREATE VIEW v AS SELECT * FROM t")  # (row types: not ours)
    db, conn = pg_direct.open_handle(uri)
    try:
        assert conn is not None and pg_direct._has_user_types(conn) is False
        # the built-in resolver: a value of a type it does not know is opaque bytes
        run("CREATE TYPE mood AS ENUM ('sad', 'happy')")
        got = _read(conn, "SELECT 'happy'::mood AS m")
        assert got.schema.field("m").metadata[b"POSTGRESQL:type"].startswith(b"unnamed<oid:")
    finally:
        conn.close()
        db.close()


@pytest.mark.parametrize(
    "ddl, sql, arrow_type, value",
    [
        ("CREATE TYPE mood AS ENUM ('sad', 'happy')", "SELECT 'happy'::mood AS m", "string", "happy"),
        (
            "CREATE TYPE pair AS (a int, b text)",
            "SELECT ROW(1, 'x')::pair AS m",
            "struct",
            {"a": 1, "b": "x"},
        ),
        ("CREATE TYPE mood AS ENUM ('sad')", "SELECT ARRAY['sad']::mood[] AS m", "list", ["sad"]),
        ("CREATE DOMAIN pos AS int CHECK (VALUE > 0)", "SELECT 3::pos AS m", "int32", 3),
        (  # a built-in type the built-in resolver does not know, in a column
            "CREATE TABLE t (m information_schema.sql_identifier[])",
            "SELECT ARRAY['a']::information_schema.sql_identifier[] AS m",
            "list",
            ["a"],
        ),
        (
            "CREATE TABLE t (m pg_catalog.pg_am[])",
            "SELECT ARRAY[NULL]::pg_catalog.pg_am[] AS m",
            "list",
            [None],
        ),
    ],
)
def test_a_database_with_types_of_its_own_gets_the_server_resolver(
    fresh_db: tuple[str, Any], ddl: str, sql: str, arrow_type: str, value: Any
) -> None:
    """Its values read as they always have (not opaque bytes), through a handle opened ahead too;
    so do those of a handle whose adapter has a custom query (any result type)."""
    from dc_api_x.adapters.sql import pg_direct, preopen

    uri, run = fresh_db
    run(ddl)
    assert preopen.preopen(uri)
    for db, conn in (pg_direct.open_handle(uri), preopen.take(uri)):
        assert conn is not None
        try:
            assert pg_direct._has_user_types(conn) is True
            got = _read(conn, sql)
            assert str(got.schema.field("m").type).startswith(arrow_type)
            assert got.column("m").to_pylist() == [value]
        finally:
            conn.close()
            db.close()


def test_a_server_that_refuses_is_reported_as_before(pg_admin_url: str) -> None:
    import adbc_driver_manager

    from dc_api_x.adapters.sql import pg_direct

    admin = pg_admin_url.replace("postgresql+psycopg://", "postgresql://", 1)
    bad = admin.rsplit("/", 1)[0] + f"/dcapix_no_such_{uuid.uuid4().hex[:8]}"
    with pytest.raises(adbc_driver_manager.Error) as new:
        pg_direct.open_handle(bad)
    with pytest.raises(adbc_driver_manager.Error) as old:
        pg_direct.open_database(bad)
    assert type(new.value) is type(old.value) and str(new.value) == str(old.value)


def test_an_adapter_with_a_query_stream_gets_the_server_resolver(fresh_db: tuple[str, Any]) -> None:
    """A custom query may return any type (a whole row, an array of a domain …): its handle, and one
    opened ahead for its URL, read ``pg_type`` whatever the database holds."""
    from dc_api_x.adapters.sql import SQLAdapter, pg_direct, preopen

    uri, _ = fresh_db
    sql = "SELECT ARRAY['a']::information_schema.sql_identifier[] AS m"
    db, conn = pg_direct.open_handle(uri, builtin=False)
    try:
        got = _read(conn, sql)
        assert str(got.schema.field("m").type).startswith("list") and got.column("m").to_pylist() == [["a"]]
    finally:
        conn.close()
        db.close()
    cfg = {"url": uri, "streams": [{"name": "q", "query": "SELECT 1"}]}
    assert SQLAdapter.open_ahead(cfg) is not None
    assert preopen._opening[uri].builtin is False
    assert preopen.take(uri, builtin=True) is not None  # (closed below)
    assert SQLAdapter.open_ahead({"url": uri, "streams": ["public.t"]}) is not None
    assert preopen._opening[uri].builtin is True
    assert preopen.take(uri, builtin=False) is None  # a query stream's backend opens its own
    preopen.close_all()
