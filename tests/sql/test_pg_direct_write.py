"""PostgreSQL writes set up without SQLAlchemy (``adapters/sql/pg_write.py``, real PostgreSQL): for
a plain ``postgresql://`` destination URL the tables ``append`` and ``overwrite`` create, widen and
fill are those of the SQLAlchemy path (a ``postgresql+psycopg://`` URL) — column types, nullability,
defaults, primary key and every value — on the type-edge table of ``test_pg_direct_path``; ``upsert``
and views fall back to SQLAlchemy; and a small PostgreSQL → PostgreSQL ``dcapix run`` imports
neither SQLAlchemy, psycopg, ADBC's DB-API module nor ``pyarrow.dataset``."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from dc_api_x.adapters.sql.pg_write import DirectTable, column_type
from dc_api_x.exceptions import AdapterError, SchemaError
from dc_api_x.plugins import create_adapter
from dc_api_x.testing import isolated_plugins
from dc_api_x.types import StreamSpec

from .test_pg_direct_path import EVERY_TYPE, ROWS, _urls

pytestmark = pytest.mark.postgres

TABLE = 'Every "Type"'


@pytest.fixture(autouse=True)
def _without_sqlalchemy_plugin() -> Any:
    """dc-api-x-sqlalchemy's SQL extension sends every PostgreSQL URL through SQLAlchemy."""
    with isolated_plugins(entry_points=True, blocked=["sqlalchemy"]):
        yield


@pytest.fixture
def schemas(pg_url: str, pg_schema: str, pg_exec: Any) -> Any:
    """(source schema with the type-edge table, destination schemas for the two paths)."""
    pg_exec(EVERY_TYPE.format(s=pg_schema))
    pg_exec(ROWS.format(s=pg_schema))
    pg_exec(f'INSERT INTO {pg_schema}."Every ""Type""" (b, bi, vc, tz) VALUES (true, 0, \'nulls\', now())')
    made = [f"{pg_schema}_d", f"{pg_schema}_s"]
    yield pg_schema, made
    for s in made:
        pg_exec(f'DROP SCHEMA IF EXISTS "{s}" CASCADE')


def _copy(src_url: str, src_schema: str, dst_url: str, dst_schema: str, method: str, **spec_kw: Any) -> Any:
    with create_adapter({"adapter": "sql", "url": src_url, "schema": src_schema, "streams": [TABLE]}) as src:
        spec = src.discover()[0]
        batches = list(src.read(spec))
    out = StreamSpec(name="copy", schema=spec.schema, key_properties=spec.key_properties, **spec_kw)
    cfg = {"adapter": "sql", "url": dst_url, "schema": dst_schema, "batch_size": 100}
    with create_adapter(cfg) as dst:
        dst.start_write(out, load_method=method)
        direct = isinstance(dst._writes["copy"].table, DirectTable)
        for b in batches:
            dst.write(out, b)
        dst.finish_write(out)
        engine = dst._engine is not None
    return direct, engine


def _catalog(pg_exec: Any, schema: str, table: str = "copy", made: bool = True) -> Any:
    cols = pg_exec(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, "
        "pg_get_expr(d.adbin, d.adrelid) FROM pg_attribute a "
        "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
        "WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
        (schema, table),
    )
    cols = [(n, t, nn, (d or "").replace(schema, "<s>")) for n, t, nn, d in cols]
    pk = pg_exec(
        "SELECT con.conname, (SELECT array_agg(a.attname ORDER BY k.i) FROM unnest(con.conkey) "
        "WITH ORDINALITY k(n, i) JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n) "
        "FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s",
        (schema, table),
    )
    assert not made or all(re.fullmatch(r"pk_[0-9a-f]{16}", name) for name, _ in pk), pk
    return cols, [keys for _, keys in pk]


def _rows(pg_exec: Any, schema: str, table: str = "copy") -> Any:
    return pg_exec(f'SELECT to_jsonb(t)::text FROM "{schema}"."{table}" t ORDER BY vc, bi')


@pytest.mark.parametrize("method", ["append", "overwrite"])
def test_tables_and_values_equal_the_sqlalchemy_path(
    pg_url: str, pg_exec: Any, schemas: Any, method: str
) -> None:
    src, (d, s) = schemas
    plain, psycopg = _urls(pg_url)
    for again in (False, True):  # created, then written again into the existing table
        if again and method == "append":  # (emptied: the rows would repeat the primary key)
            pg_exec(f'TRUNCATE "{d}".copy, "{s}".copy')
        assert _copy(plain, src, plain, d, method) == (True, False)  # no engine: no SQLAlchemy
        assert _copy(plain, src, psycopg, s, method) == (False, True)
        assert _catalog(pg_exec, d) == _catalog(pg_exec, s)
        assert _rows(pg_exec, d) == _rows(pg_exec, s)
    cols, pk = _catalog(pg_exec, d)
    assert pk == [["vc", "bi"]] and len(cols) == 36
    assert len(_rows(pg_exec, d)) == 301
    if method == "overwrite":  # the stage table is gone
        assert not pg_exec(f"SELECT 1 FROM pg_tables WHERE schemaname = '{d}' AND tablename <> 'copy'")


def test_appends_into_a_table_of_every_type_equal_the_sqlalchemy_path(
    pg_url: str, pg_exec: Any, schemas: Any
) -> None:
    """A destination table made by someone else, with the source's own column types (int4, real,
    varchar(n), char(n), timetz, interval, uuid, inet, json, arrays …): each column is COPYed
    straight in or cast by the stage INSERT exactly as on the SQLAlchemy path."""
    src, (d, s) = schemas
    plain, psycopg = _urls(pg_url)
    for schema in (d, s):
        pg_exec(f'CREATE SCHEMA "{schema}"')
        pg_exec(f'CREATE TABLE "{schema}".copy (LIKE "{src}"."Every ""Type""" INCLUDING ALL)')
    assert _copy(plain, src, psycopg, s, "append") == (False, True)
    assert _copy(plain, src, plain, d, "append") == (True, False)
    assert _catalog(pg_exec, d, made=False) == _catalog(pg_exec, s, made=False)
    got = _rows(pg_exec, d)
    assert got == _rows(pg_exec, s)
    assert got == pg_exec(f'SELECT to_jsonb(t)::text FROM "{src}"."Every ""Type""" t ORDER BY vc, bi')


def test_a_single_bigint_key_is_bigserial_as_sqlalchemy_creates_it(
    pg_url: str, pg_exec: Any, schemas: Any
) -> None:
    _, (d, s) = schemas
    plain, psycopg = _urls(pg_url)
    spec = StreamSpec(
        name="copy",
        schema={
            "type": "object",
            "properties": {
                "id": {"type": "integer"},
                "vc": {"type": ["string", "null"], "maxLength": 7},
                "bi": {"type": ["integer", "null"]},
                "n": {"type": ["number", "null"]},
            },
        },
        key_properties=("id",),
    )
    rows = [{"id": i, "vc": f"v{i}", "bi": i * 3, "n": i / 3} for i in range(1, 6)]
    from dc_api_x.types import Batch

    for url, schema in ((plain, d), (psycopg, s)):
        with create_adapter({"adapter": "sql", "url": url, "schema": schema}) as ad:
            ad.start_write(spec)
            ad.write(spec, Batch.from_records(rows, schema=spec.schema))
            ad.finish_write(spec)
    assert _catalog(pg_exec, d) == _catalog(pg_exec, s)
    assert _catalog(pg_exec, d)[0][0] == ("id", "bigint", True, "nextval('<s>.copy_id_seq'::regclass)")
    assert _rows(pg_exec, d) == _rows(pg_exec, s)


def test_schema_evolution_adds_the_same_columns(pg_url: str, pg_exec: Any, schemas: Any) -> None:
    from dc_api_x.types import Batch

    _, (d, s) = schemas
    plain, psycopg = _urls(pg_url)
    props: dict[str, Any] = {"k": {"type": "integer"}, "a": {"type": ["string", "null"]}}
    spec = StreamSpec(name="copy", schema={"type": "object", "properties": props}, key_properties=("k",))
    grown = StreamSpec(
        name="copy",
        schema={
            "type": "object",
            "properties": {
                **props,
                "d": {"type": ["string", "null"], "format": "decimal", "x-precision": 9, "x-scale": 3},
                "ts": {"type": ["string", "null"], "format": "date-time", "x-timezone": False},
            },
        },
        key_properties=("k",),
    )
    for url, schema in ((plain, d), (psycopg, s)):
        with create_adapter({"adapter": "sql", "url": url, "schema": schema}) as ad:
            ad.start_write(spec)
            ad.write(spec, Batch.from_records([{"k": 1, "a": "x"}], schema=spec.schema))
            # a batch with a new field: widened in the middle of the write
            more = Batch.from_records(
                [{"k": 2, "a": "y", "extra": 1.5}],
                schema={"properties": {**props, "extra": {"type": ["number", "null"]}}},
            )
            more.to_arrow()
            ad.write(spec, more)
            ad.finish_write(spec)
        with create_adapter({"adapter": "sql", "url": url, "schema": schema}) as ad:
            ad.start_write(grown)  # an existing table gains columns
            row = {"k": 3, "a": "z", "d": "1.125", "ts": "2024-01-02T03:04:05.123456"}
            ad.write(grown, Batch.from_records([row], schema=grown.schema))
            ad.finish_write(grown)
    assert _catalog(pg_exec, d) == _catalog(pg_exec, s)
    got = pg_exec(f'SELECT to_jsonb(t)::text FROM "{d}".copy t ORDER BY k')
    assert got == pg_exec(f'SELECT to_jsonb(t)::text FROM "{s}".copy t ORDER BY k')
    assert len(got) == 3


def test_upserts_equal_the_sqlalchemy_path(pg_url: str, pg_exec: Any, schemas: Any) -> None:
    src, (d, s) = schemas
    plain, psycopg = _urls(pg_url)
    for _ in range(2):  # created, then merged (the same rows: nothing changes)
        assert _copy(plain, src, plain, d, "upsert") == (True, False)
        assert _copy(plain, src, psycopg, s, "upsert") == (False, True)
        assert _catalog(pg_exec, d) == _catalog(pg_exec, s)
        assert _rows(pg_exec, d) == _rows(pg_exec, s)
    assert len(_rows(pg_exec, d)) == 301
    for schema in (d, s):  # changed rows are updated, the others keep their row version
        pg_exec(f"UPDATE \"{schema}\".copy SET t = 'changed' WHERE bi <= 10")
    xmin = [
        pg_exec(f'SELECT bi, xmin::text FROM "{schema}".copy WHERE bi > 10 ORDER BY bi') for schema in (d, s)
    ]
    assert _copy(plain, src, plain, d, "upsert") == (True, False)
    assert _copy(plain, src, psycopg, s, "upsert") == (False, True)
    assert _rows(pg_exec, d) == _rows(pg_exec, s)
    assert not pg_exec(f"SELECT 1 FROM \"{d}\".copy WHERE t = 'changed'")
    assert xmin == [
        pg_exec(f'SELECT bi, xmin::text FROM "{schema}".copy WHERE bi > 10 ORDER BY bi') for schema in (d, s)
    ]


def test_upsert_keys_need_a_unique_constraint_as_on_the_sqlalchemy_path(
    pg_url: str, pg_exec: Any, schemas: Any
) -> None:

    _, (d, s) = schemas
    plain, psycopg = _urls(pg_url)
    props = {"a": {"type": "integer"}, "b": {"type": "integer"}, "v": {"type": ["string", "null"]}}
    spec = StreamSpec(name="u", schema={"type": "object", "properties": props}, key_properties=("b", "a"))
    messages = []
    for url, schema in ((plain, d), (psycopg, s)):
        pg_exec(f'CREATE SCHEMA "{schema}"')
        pg_exec(f'CREATE TABLE "{schema}".u (a bigint, b bigint, v text, PRIMARY KEY (b, v))')
        with create_adapter({"adapter": "sql", "url": url, "schema": schema}) as ad:
            with pytest.raises(AdapterError) as err:
                ad.start_write(spec, load_method="upsert")
            messages.append(str(err.value))
        # a unique index on the keys (an expression column besides them is not counted, as the
        # inspector reports it) makes the upsert possible
        pg_exec(f'CREATE UNIQUE INDEX ON "{schema}".u (a, b, lower(v)) INCLUDE (v)')
        with create_adapter({"adapter": "sql", "url": url, "schema": schema}) as ad:
            ad.start_write(spec, load_method="upsert")
            assert isinstance(ad._writes["u"].table, DirectTable) == (url == plain)
    assert messages[0] == messages[1].replace("postgresql+psycopg", "postgresql+psycopg"), messages
    assert "(it has primary key ['b', 'v'])" in messages[0]


def test_a_view_of_that_name_is_left_to_sqlalchemy(pg_url: str, pg_exec: Any, schemas: Any) -> None:
    _, (d, _) = schemas
    plain, _ = _urls(pg_url)
    pg_exec(f'CREATE SCHEMA "{d}"')
    pg_exec(f'CREATE VIEW "{d}".v AS SELECT 1 AS x')
    spec = StreamSpec(name="v", schema={"type": "object", "properties": {"x": {"type": "integer"}}})
    with create_adapter({"adapter": "sql", "url": plain, "schema": d}) as ad:
        try:
            ad.start_write(spec)
        except AdapterError:
            pass  # (whatever SQLAlchemy's path makes of it)
        assert ad._engine is not None


def test_a_value_the_column_refuses_names_the_same_field(pg_url: str, pg_exec: Any, schemas: Any) -> None:
    from dc_api_x.types import Batch

    _, (d, s) = schemas
    plain, psycopg = _urls(pg_url)
    spec = StreamSpec(
        name="copy",
        schema={"type": "object", "properties": {"k": {"type": "integer"}, "v": {"type": "string"}}},
    )
    messages = []
    for url, schema in ((plain, d), (psycopg, s)):
        pg_exec(f'CREATE SCHEMA "{schema}"')
        pg_exec(f'CREATE TABLE "{schema}".copy (k integer, v varchar(3))')
        with create_adapter({"adapter": "sql", "url": url, "schema": schema}) as ad:
            ad.start_write(spec)
            with pytest.raises(SchemaError) as err:
                ad.write(
                    spec,
                    Batch.from_records([{"k": 1, "v": "abc"}, {"k": 2, "v": "abcd"}], schema=spec.schema),
                )
            messages.append(str(err.value))
            ad.write(
                spec, Batch.from_records([{"k": 3, "v": "ok"}], schema=spec.schema)
            )  # the connection is usable again
            ad.finish_write(spec)
        assert pg_exec(f'SELECT k, v FROM "{schema}".copy') == [(3, "ok")]
    assert all("field 'v'" in m and "rolled back" in m for m in messages), messages


@pytest.mark.parametrize(
    "prop,ftype",
    [
        ({}, "text"),
        ({"type": "integer"}, "bigint"),
        ({"type": ["number", "null"]}, "double precision"),
        ({"type": ["integer", "number"]}, "double precision"),
        ({"type": "number", "format": "decimal", "x-precision": 38, "x-scale": 10}, "numeric(38,10)"),
        ({"type": "string", "format": "decimal"}, "numeric"),
        ({"type": "string", "format": "date-time"}, "timestamp with time zone"),
        ({"type": "string", "format": "date-time", "x-timezone": False}, "timestamp without time zone"),
        ({"type": "string", "format": "time"}, "time without time zone"),
        ({"type": "string", "maxLength": 20}, "character varying(20)"),
        ({"type": "string", "format": "uuid"}, "uuid"),
        ({"type": "string", "format": "inet"}, "text"),
        ({"type": "array", "items": {"type": "integer"}}, "bigint[]"),
        ({"type": "array", "items": {"type": "string", "format": "decimal", "x-precision": 8, "x-scale": 2}},
         "numeric(8,2)[]"),
        ({"type": "array", "items": {"type": "array", "items": {"type": "integer"}}}, "jsonb"),
        ({"type": "array", "items": {"type": "object"}}, "jsonb"),
        ({"type": "array"}, "jsonb"),
        ({"type": ["string", "integer"]}, "jsonb"),
        ({"anyOf": [{"type": "string", "format": "date"}, {"type": "null"}]}, "date"),
    ],
)  # fmt: skip
def test_column_type_is_what_sqlalchemy_compiles(
    prop: Any, ftype: str, pg_url: str, pg_exec: Any, pg_schema: str
) -> None:
    assert column_type(prop) == ftype
    from sqlalchemy.dialects import postgresql

    from dc_api_x.adapters.sql.typemap import jsonschema_to_sqltype

    compiled = jsonschema_to_sqltype(prop, postgresql.dialect()).compile(dialect=postgresql.dialect())
    pg_exec(f'CREATE TABLE "{pg_schema}".t (c {compiled})')
    got = pg_exec(
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
        f"WHERE attrelid = '\"{pg_schema}\".t'::regclass AND attname = 'c'"
    )
    assert got == [(ftype,)]


def test_dcapix_run_pg_to_pg_imports_no_sqlalchemy(
    pg_url: str, pg_exec: Any, schemas: Any, tmp_path: Path
) -> None:
    src, (d, s) = schemas
    plain, psycopg = _urls(pg_url)
    pg_exec(
        f'CREATE VIEW "{src}".small AS SELECT b, bi, vc, n, nn, t, dt, ts, tz, tm, ba, u, jb, ai, an '
        f'FROM "{src}"."Every ""Type"""'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("DC_API_X_")}
    env["DC_API_X_BLOCKED_PLUGINS"] = "sqlalchemy"
    for url, schema in ((plain, d), (psycopg, s)):
        (tmp_path / "src.json").write_text(
            json.dumps(
                {"adapter": "sql", "url": plain, "schema": src, "streams": ["small"], "batch_size": 100}
            )
        )
        (tmp_path / "dst.json").write_text(json.dumps({"adapter": "sql", "url": url, "schema": schema}))
        res = subprocess.run(
            [
                sys.executable, "-X", "importtime", "-m", "dc_api_x.cli", "run", "--no-progress",
                "--no-state", "--source", str(tmp_path / "src.json"),
                "--destination", str(tmp_path / "dst.json"),
            ],
            capture_output=True, text=True, env=env,
        )  # fmt: skip
        assert res.returncode == 0, res.stderr[-3000:]
        imported = {line.rsplit("|", 1)[-1].strip() for line in res.stderr.splitlines() if "|" in line}
        imported |= {m.split(".")[0] for m in imported}
        heavy = {"sqlalchemy", "psycopg", "adbc_driver_manager.dbapi", "pyarrow.dataset"}
        if url == plain:
            assert not heavy & imported, sorted(heavy & imported)
        else:
            assert "sqlalchemy" in imported
    assert _catalog(pg_exec, d, "small") == _catalog(pg_exec, s, "small")
    q = 'SELECT to_jsonb(t)::text FROM "{}".small t ORDER BY vc, bi'
    assert pg_exec(q.format(d)) == pg_exec(q.format(s))
    assert len(pg_exec(q.format(d))) == 301


def test_json_array_elements_are_written_as_json_text(pg_exec: Any) -> None:
    """An element of a json[] / jsonb[] column goes into the array literal as its JSON text (it was
    Python's repr, which the server refused: ``{'k': 1}``)."""
    from dc_api_x.adapters.sql.postgresql import _array_literal

    values = [{"k": 'a "quoted" \\ back\u00e9', "n": [1, None]}, None, {}]
    got = pg_exec("SELECT to_jsonb(%s::jsonb[])::text", (_array_literal(values),))
    assert json.loads(got[0][0]) == values


def test_without_a_schema_the_search_path_decides_as_on_the_sqlalchemy_path(
    pg_url: str, pg_exec: Any
) -> None:
    """No ``schema`` option: the table is looked up through the search path (``has_table``) and
    created unqualified, in the first schema of the path."""
    import uuid

    from dc_api_x.types import Batch

    plain, psycopg = _urls(pg_url)
    names = [f"pgsmall_{uuid.uuid4().hex[:8]}_{k}" for k in ("d", "s")]
    props = {"id": {"type": "integer"}, "v": {"type": ["string", "null"], "format": "date-time"}}
    try:
        for url, name in zip((plain, psycopg), names, strict=True):
            spec = StreamSpec(
                name=name, schema={"type": "object", "properties": props}, key_properties=("id",)
            )
            for _ in range(2):  # created, then found again
                with create_adapter({"adapter": "sql", "url": url}) as ad:
                    ad.start_write(spec, load_method="overwrite")
                    assert isinstance(ad._writes[name].table, DirectTable) == (url == plain)
                    ad.write(
                        spec, Batch.from_records([{"id": 1, "v": "2024-01-01T00:00:00Z"}], schema=spec.schema)
                    )
                    ad.finish_write(spec)
        schema = pg_exec("SELECT current_schema()")[0][0]
        d, s = (_catalog(pg_exec, schema, n) for n in names)
        assert [c[:3] for c in d[0]] == [c[:3] for c in s[0]] and d[1] == s[1] == [["id"]]
        assert [_rows_k(pg_exec, schema, n) for n in names] == [[(1, "2024-01-01 00:00:00+00")]] * 2
    finally:
        for n in names:
            pg_exec(f'DROP TABLE IF EXISTS "{n}"')


def _rows_k(pg_exec: Any, schema: str, table: str) -> Any:
    return pg_exec(
        "SELECT id, to_char(v AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || '+00' "
        f'FROM "{schema}"."{table}"'
    )


def test_an_integer_beyond_int64_names_the_column_type_as_on_the_sqlalchemy_path(
    pg_url: str, pg_exec: Any, schemas: Any
) -> None:
    from dc_api_x.types import Batch

    _, (d, s) = schemas
    plain, psycopg = _urls(pg_url)
    props = {"id": {"type": "integer"}, "qty": {"type": ["integer", "null"]}}
    spec = StreamSpec(name="stock", schema={"type": "object", "properties": props}, key_properties=("id",))
    messages = []
    for url, schema in ((plain, d), (psycopg, s)):
        with create_adapter({"adapter": "sql", "url": url, "schema": schema}) as ad:
            ad.start_write(spec)
            with pytest.raises(SchemaError) as err:
                ad.write(spec, Batch.from_records([{"id": 3, "qty": 2**63}], schema=spec.schema))
            messages.append(str(err.value))
    assert messages[0] == messages[1]
    assert messages[0].endswith("(column 'qty' is BIGINT)")
