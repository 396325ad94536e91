"""Discovery of the SQL adapter: JSON Schema from real column types, keys, bulk reflection, errors."""

from __future__ import annotations

import subprocess
import sys

import pytest
import sqlalchemy as sa

from dc_api_x.exceptions import AdapterError, ConfigError
from dc_api_x.plugins import create_adapter, create_plugin

PG_TYPES = """
CREATE TABLE {s}.alltypes (
    id bigint PRIMARY KEY,
    i2 smallint NOT NULL, i4 integer, f4 real, f8 double precision,
    dec numeric(38,10), dec_free numeric,
    b boolean, d date, t time, ts timestamp, tstz timestamptz,
    j json, jb jsonb, txt text, vc varchar(20), bin bytea, u uuid,
    arr_i integer[], arr_t text[]
);
CREATE VIEW {s}.v_alltypes AS SELECT id, dec, tstz FROM {s}.alltypes;
CREATE TABLE {s}.other (k1 text, k2 integer, PRIMARY KEY (k1, k2));
"""


@pytest.mark.postgres
def test_pg_discover_types(pg_url, pg_schema, pg_exec):
    pg_exec(PG_TYPES.format(s=pg_schema))
    with create_adapter({"adapter": "sql", "url": pg_url, "schema": pg_schema}) as ad:
        specs = {s.name: s for s in ad.discover()}
    # tables of the adapter's schema are streams named like the table
    assert set(specs) == {"alltypes", "v_alltypes", "other"}
    spec = specs["alltypes"]
    p = spec.properties
    assert spec.key_properties == ("id",)
    assert p["id"] == {"type": "integer"}
    assert p["i2"] == {"type": "integer"}
    assert p["i4"] == {"type": ["integer", "null"]}
    assert p["f4"] == p["f8"] == {"type": ["number", "null"]}
    assert p["dec"] == {"type": ["string", "null"], "format": "decimal", "x-precision": 38, "x-scale": 10}
    assert p["dec_free"] == {"type": ["string", "null"], "format": "decimal"}
    assert p["b"] == {"type": ["boolean", "null"]}
    assert p["d"] == {"type": ["string", "null"], "format": "date"}
    assert p["t"] == {"type": ["string", "null"], "format": "time"}
    assert p["ts"] == {"type": ["string", "null"], "format": "date-time", "x-timezone": False}
    assert p["tstz"] == {"type": ["string", "null"], "format": "date-time"}
    assert p["j"]["x-json"] is True and p["jb"]["x-json"] is True
    assert p["txt"] == {"type": ["string", "null"]}
    assert p["vc"] == {"type": ["string", "null"], "maxLength": 20}
    assert p["bin"] == {"type": ["string", "null"], "contentEncoding": "base64"}
    assert p["u"] == {"type": ["string", "null"], "format": "uuid"}
    assert p["arr_i"] == {"type": ["array", "null"], "items": {"type": ["integer", "null"]}}
    assert p["arr_t"] == {"type": ["array", "null"], "items": {"type": ["string", "null"]}}
    assert set(spec.replication_keys) == {"id", "i2", "i4", "dec", "dec_free", "d", "ts", "tstz"}
    assert spec.replication_key is None
    assert specs["other"].key_properties == ("k1", "k2")
    view = specs["v_alltypes"]
    assert list(view.properties) == ["id", "dec", "tstz"] and view.key_properties == ()


@pytest.mark.postgres
def test_pg_streams_config_and_include_exclude(pg_url, pg_schema, pg_exec):
    pg_exec(PG_TYPES.format(s=pg_schema))
    cfg = {"adapter": "sql", "url": pg_url, "schema": pg_schema, "include": ["*types"], "exclude": ["v_*"]}
    with create_adapter(cfg) as ad:
        assert [s.name for s in ad.discover()] == ["alltypes"]
    cfg = {
        "adapter": "sql",
        "url": pg_url,
        "stream_name_separator": ".",
        "streams": [
            f"{pg_schema}.other",
            {
                "name": "picked",
                "table": "alltypes",
                "schema": pg_schema,
                "columns": ["id", "tstz"],
                "replication_key": "tstz",
            },
            {"name": "q", "query": f"SELECT id, dec, tstz, u FROM {pg_schema}.alltypes", "primary_key": "id"},
        ],
    }
    with create_adapter(cfg) as ad:
        specs = {s.name: s for s in ad.discover()}
    assert set(specs) == {f"{pg_schema}.other", "picked", "q"}
    assert list(specs["picked"].properties) == ["id", "tstz"]
    assert specs["picked"].replication_key == "tstz"
    q = specs["q"]
    assert q.key_properties == ("id",)
    assert q.properties["dec"] == {
        "type": ["string", "null"],
        "format": "decimal",
        "x-precision": 38,
        "x-scale": 10,
    }
    assert q.properties["tstz"] == {"type": ["string", "null"], "format": "date-time"}
    assert q.properties["u"]["format"] == "uuid"


def test_sqlite_discover_types(sqlite_db):
    url, run = sqlite_db
    run("""CREATE TABLE items (id INTEGER PRIMARY KEY, n INT NOT NULL, f REAL, dec DECIMAL_TEXT(12,3),
           num NUMERIC, b BOOLEAN, d DATE, t TIME, ts TIMESTAMP, tstz TIMESTAMPTZ, dt DATETIME,
           j JSON, txt TEXT, vc VARCHAR(7), bin BLOB, u UUID, anything)""")
    run("CREATE VIEW v_items AS SELECT id, txt FROM items")
    with create_adapter({"adapter": "sql", "url": url}) as ad:
        specs = {s.name: s for s in ad.discover()}
    assert set(specs) == {"items", "v_items"}
    p = specs["items"].properties
    assert specs["items"].key_properties == ("id",)
    assert p["id"] == {"type": "integer"} and p["n"] == {"type": "integer"}
    assert p["f"] == {"type": ["number", "null"]}
    assert p["dec"] == {"type": ["string", "null"], "format": "decimal", "x-precision": 12, "x-scale": 3}
    assert p["num"] == {"type": ["string", "null"], "format": "decimal"}
    assert p["b"] == {"type": ["boolean", "null"]}
    assert p["d"]["format"] == "date" and p["t"]["format"] == "time"
    assert p["ts"] == {"type": ["string", "null"], "format": "date-time", "x-timezone": False}
    assert p["dt"] == p["ts"]
    assert p["tstz"] == {"type": ["string", "null"], "format": "date-time"}
    assert p["j"]["x-json"] is True
    assert p["vc"] == {"type": ["string", "null"], "maxLength": 7}
    assert p["bin"] == {"type": ["string", "null"], "contentEncoding": "base64"}
    assert p["u"]["format"] == "uuid"
    assert p["anything"] == {"type": ["string", "null"]}


def _count_queries(ad):
    seen = []
    sa.event.listen(ad.engine, "before_cursor_execute", lambda *a, **k: seen.append(a[2]))
    return seen


@pytest.mark.postgres
def test_pg_discovery_is_bulk_200_tables(pg_url, pg_schema, pg_exec):
    ddl = ";".join(
        f"CREATE TABLE {pg_schema}.t{i:03d} (id bigint PRIMARY KEY, a text, b numeric(10,2), "
        f"c timestamptz, d jsonb)"
        for i in range(200)
    )
    pg_exec(ddl)
    with create_adapter({"adapter": "sql", "url": pg_url, "schema": pg_schema}) as ad:
        seen = _count_queries(ad)
        specs = ad.discover()
    assert len(specs) == 200
    assert all(s.key_properties == ("id",) and len(s.properties) == 5 for s in specs)
    # one round trip per table would be >= 200; bulk reflection is a handful of catalog queries
    assert len(seen) <= 6, len(seen)  # measured: 3


def test_sqlite_discovery_is_bulk_200_tables(sqlite_db):
    url, run = sqlite_db
    for i in range(200):
        run(f"CREATE TABLE t{i:03d} (id INTEGER PRIMARY KEY, a TEXT, b DECIMAL_TEXT(10,2), c TIMESTAMPTZ)")
    with create_adapter({"adapter": "sql", "url": url}) as ad:
        seen = _count_queries(ad)
        specs = ad.discover()
    assert len(specs) == 200 and all(s.key_properties == ("id",) for s in specs)
    assert len(seen) <= 3, seen


@pytest.mark.postgres
def test_missing_table_one_line_error(pg_url, pg_schema, sqlite_db):
    for url, name, stream in (
        (pg_url, f"{pg_schema}.nope", f"{pg_schema}-nope"),
        (sqlite_db[0], "nope", "nope"),
    ):
        with (
            create_adapter({"adapter": "sql", "url": url, "streams": [name]}) as ad,
            pytest.raises(AdapterError) as ei,
        ):
            ad.discover()
        msg = str(ei.value)
        assert "\n" not in msg
        assert "adapter 'sql'" in msg and f"stream {stream!r}" in msg and f"table {name!r}" in msg


def test_unknown_configured_column_names_field(sqlite_db):
    url, run = sqlite_db
    run("CREATE TABLE items (id INTEGER PRIMARY KEY, a TEXT)")
    cfg = {"adapter": "sql", "url": url, "streams": [{"table": "items", "columns": ["id", "zzz"]}]}
    with create_adapter(cfg) as ad, pytest.raises(AdapterError, match=r"stream 'items', field 'zzz'"):
        ad.discover()


def test_password_redacted_in_errors():
    url = "postgresql://postgres:S3cretPassw0rd@127.0.0.1:5432/dcapix_no_such_database_here"
    with (
        create_adapter({"adapter": "sql", "url": url, "streams": ["t"]}) as ad,
        pytest.raises(AdapterError) as ei,
    ):
        ad.discover()
    assert "S3cretPassw0rd" not in str(ei.value)
    assert "adapter 'sql'" in str(ei.value) and "127.0.0.1" in str(ei.value)


def test_options_are_validated():
    with pytest.raises(ConfigError, match=r"adapter 'sql'.*'bogus'"):
        create_adapter({"adapter": "sql", "url": "sqlite://", "bogus": 1})
    with pytest.raises(ConfigError, match=r"load_method"):
        create_adapter({"adapter": "sql", "url": "sqlite://", "load_method": "merge"})
    ad = create_adapter({"adapter": "sql", "url": "postgresql://u:p@h/db"})
    assert ad.url.drivername == "postgresql+psycopg"


def test_plugin_module_stays_light():
    code = (
        "import sys, dc_api_x; dc_api_x.enable_plugins(); dc_api_x.get_plugins().adapters.names(); "
        "bad = [m for m in ('sqlalchemy', 'pyarrow', 'psycopg', 'adbc_driver_manager') "
        "if m in sys.modules]; "
        "print(bad); assert not bad"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr


def test_sql_reflection_schema_provider(sqlite_db):
    url, run = sqlite_db
    run("CREATE TABLE items (id INTEGER PRIMARY KEY, amount DECIMAL_TEXT(9,2), at TIMESTAMPTZ)")
    provider = create_plugin("schema_providers", {"type": "sql_reflection", "url": url})
    schema = provider.schema(table="items")
    assert schema["properties"]["amount"] == {
        "type": ["string", "null"],
        "format": "decimal",
        "x-precision": 9,
        "x-scale": 2,
    }
    assert schema["properties"]["at"]["format"] == "date-time"
    assert schema["properties"]["id"] == {"type": "integer"}


@pytest.mark.postgres
def test_sql_reflection_with_an_engine_in_the_context(pg_url, pg_schema, pg_exec):
    pg_exec(f"CREATE TABLE {pg_schema}.items (id bigint PRIMARY KEY, at timestamp)")
    provider = create_plugin("schema_providers", {"type": "sql_reflection"})
    engine = sa.create_engine(pg_url)
    try:
        schema = provider.schema(engine=engine, table="items", schema=pg_schema)
    finally:
        engine.dispose()
    assert schema["properties"] == {
        "id": {"type": "integer"},
        "at": {"type": ["string", "null"], "format": "date-time", "x-timezone": False},
    }
