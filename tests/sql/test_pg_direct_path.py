"""PostgreSQL tables discovered and read without SQLAlchemy (``adapters/sql/pg_direct.py``, real
PostgreSQL): for a plain ``postgresql://`` URL the stream specs, Arrow batches, bookmarks and the
Parquet files ``dcapix run`` writes are those of the SQLAlchemy path (a ``postgresql+psycopg://``
URL), for every type the catalog mapping covers; the other types fall back to SQLAlchemy's
reflection; and such a run imports neither SQLAlchemy, psycopg, ADBC's DB-API module nor
``pyarrow.dataset`` / ``pyarrow.compute``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dc_api_x.adapters.sql.pg_direct import format_type_property, plain_url
from dc_api_x.exceptions import AdapterError
from dc_api_x.plugins import create_adapter
from dc_api_x.testing import isolated_plugins

pytestmark = pytest.mark.postgres

#: every type the catalog mapping covers, quoted and mixed-case names, a key in another column order
EVERY_TYPE = '''
CREATE TABLE {s}."Every ""Type""" (
  b boolean NOT NULL, sm smallint, i integer, bi bigint NOT NULL, r real, d double precision,
  n numeric(12,3), nn numeric, t text, vc varchar(20) NOT NULL, vcn varchar, ch char(5), dt date,
  ts timestamp, ts3 timestamp(3), tz timestamptz NOT NULL, tz0 timestamp(0) with time zone, tm time,
  tm6 time(6), tmz timetz, iv interval, iv2 interval day to second, ba bytea, u uuid, ip inet,
  j json, jb jsonb, ai integer[], at text[], an numeric(8,2)[], au uuid[], ad date[], aip inet[],
  ajb jsonb[], "Mixed Case" text, "q""c" integer,
  PRIMARY KEY (vc, bi)
)
'''
ROWS = '''
INSERT INTO {s}."Every ""Type""" SELECT
  g % 2 = 0, g % 100, g * 7, g, g / 3.0, g / 7.0, g * 1.125, g * 10.5, 't' || g, 'v' || g,
  CASE WHEN g % 3 = 0 THEN NULL ELSE 'w' || g END, 'c' || (g % 10), date '2000-01-01' + g,
  timestamp '2020-01-01 00:00:00.123456' + g * interval '1 minute',
  timestamp '2020-01-01 00:00:00.5' + g * interval '1 hour',
  timestamptz '2021-06-01 12:00:00+02' + g * interval '1 second',
  timestamptz '2021-06-01 12:00:00+02' + g * interval '1 day', time '10:00:00.25' + g * interval '1 s',
  time '01:02:03.456789', timetz '10:00:00+02', g * interval '1 hour 2 minutes',
  interval '1 day 2 hours', decode(lpad(to_hex(g), 4, '0'), 'hex'), md5(g::text)::uuid,
  ('10.0.' || (g % 256) || '.1/' || (CASE WHEN g % 2 = 0 THEN 32 ELSE 24 END))::inet,
  json_build_object('g', g), jsonb_build_object('g', g, 'big', 123456789012345678901234),
  ARRAY[g, NULL, -g], ARRAY['a' || g, NULL], ARRAY[g * 1.25, NULL]::numeric(8,2)[],
  ARRAY[md5(g::text)::uuid], ARRAY[date '2000-01-01' + g], ARRAY['::1'::inet, '10.0.0.0/8'],
  ARRAY[jsonb_build_object('k', g)], 'mc' || g, -g
FROM generate_series(1, 300) g
'''


def _urls(pg_url: str) -> tuple[str, str]:
    rest = pg_url.split("://", 1)[1]
    return "postgresql://" + rest, "postgresql+psycopg://" + rest


@pytest.fixture(autouse=True)
def _without_sqlalchemy_plugin() -> Any:
    """The installed plugins minus dc-api-x-sqlalchemy: its SQL extension instruments an engine, so
    with it installed every PostgreSQL URL takes the SQLAlchemy path (as documented)."""
    with isolated_plugins(entry_points=True, blocked=["sqlalchemy"]):
        yield


@pytest.fixture
def every_type(pg_url: str, pg_schema: str, pg_exec: Any) -> tuple[str, str, str]:
    pg_exec(EVERY_TYPE.format(s=pg_schema))
    pg_exec(ROWS.format(s=pg_schema))
    pg_exec(f'INSERT INTO {pg_schema}."Every ""Type""" (b, bi, vc, tz) VALUES (true, 0, \'nulls\', now())')
    pg_exec(f'CREATE VIEW {pg_schema}.every_view AS SELECT bi, vc, n, jb FROM {pg_schema}."Every ""Type"""')
    pg_exec(
        f"CREATE VIEW {pg_schema}.no_inet AS SELECT b, bi, vc, n, nn, t, dt, ts, tz, tm, iv2, u, jb, ai, an "
        f'FROM {pg_schema}."Every ""Type"""'
    )
    plain, psycopg = _urls(pg_url)
    return plain, psycopg, pg_schema


def _spec_text(specs: list[Any]) -> str:
    """Everything of the specs, key order included (it is what reaches stored schemas)."""
    return json.dumps(
        [
            [s.name, s.schema, s.key_properties, s.replication_key, s.replication_keys, s.options]
            for s in specs
        ]
    )


def _read(url: str, schema: str, streams: Any, **kw: Any) -> tuple[list[Any], pa.Table, list[Any]]:
    with create_adapter({"adapter": "sql", "url": url, "schema": schema, "streams": streams}) as ad:
        if url.startswith("postgresql://"):
            assert ad.backend.plain is not None  # the path under test
        specs = ad.discover()
        if url.startswith("postgresql://"):  # discovered without SQLAlchemy unless a type needs it
            assert (ad._engine is None) == (specs[0].name != "odd")
        per_stream = [list(ad.read(s, **kw)) for s in specs]
    tables = [pa.concat_tables([b.to_arrow() for b in batches]) for batches in per_stream if batches]
    table = tables[0] if len(tables) == 1 else pa.table({"streams": [t.to_pylist() for t in tables]})
    return specs, table, [b.bookmark for batches in per_stream for b in batches]


def test_discovery_and_reads_equal_the_sqlalchemy_path(every_type: tuple[str, str, str]) -> None:
    plain, psycopg, schema = every_type
    streams = ['Every "Type"', "every_view"]
    direct_specs, direct, _ = _read(plain, schema, streams)
    ref_specs, ref, _ = _read(psycopg, schema, streams)
    assert _spec_text(direct_specs) == _spec_text(ref_specs)
    assert direct_specs[0].key_properties == ("vc", "bi")  # the constraint's order, not the columns'
    assert [len(t) for t in direct.column("streams").to_pylist()] == [301, 301]
    assert direct.equals(ref)
    direct, ref = _read(plain, schema, streams[:1])[1], _read(psycopg, schema, streams[:1])[1]
    assert direct.schema.equals(ref.schema, check_metadata=True)
    assert direct.equals(ref)
    # every configured table of the schema discovered (no streams listed): the same
    with create_adapter({"adapter": "sql", "url": plain, "schema": schema}) as ad:
        every = ad.discover()
    with create_adapter({"adapter": "sql", "url": psycopg, "schema": schema}) as ad:
        assert _spec_text(every) == _spec_text(ad.discover())


@pytest.mark.filterwarnings("ignore:Did not recognize type")  # SQLAlchemy's, for xml and bpchar
def test_types_outside_the_mapping_fall_back_to_reflection(pg_url: str, pg_schema: str, pg_exec: Any) -> None:
    pg_exec(f"CREATE TYPE {pg_schema}.mood AS ENUM ('sad', 'ok', 'happy')")
    pg_exec(f"CREATE DOMAIN {pg_schema}.pos AS integer CHECK (VALUE > 0)")
    pg_exec(
        f"CREATE TABLE {pg_schema}.odd (id int PRIMARY KEY, m {pg_schema}.mood, p {pg_schema}.pos, "
        "mo money, c cidr, x xml, bp bpchar)"
    )
    pg_exec(f"INSERT INTO {pg_schema}.odd VALUES (1, 'ok', 5, 1.5, '10.0.0.0/8', '<a/>', 'z')")
    plain, psycopg = _urls(pg_url)
    direct_specs, direct, _ = _read(plain, pg_schema, ["odd"])
    ref_specs, ref, _ = _read(psycopg, pg_schema, ["odd"])
    assert _spec_text(direct_specs) == _spec_text(ref_specs)
    assert direct_specs[0].schema["properties"]["m"]["enum"] == ["sad", "ok", "happy", None]
    assert direct.equals(ref)


@pytest.mark.parametrize("rk", ["bi", "tz", "ts", "dt", "n"])
def test_incremental_reads_and_limits_equal_the_sqlalchemy_path(
    every_type: tuple[str, str, str], rk: str
) -> None:
    plain, psycopg, schema = every_type
    streams = [{"table": 'Every "Type"', "replication_key": rk}]
    _, full, marks = _read(plain, schema, streams)
    assert full.num_rows == 301 and marks[-1]["replication_key"] == rk
    middle = full.column(rk).to_pylist()[150]
    from dc_api_x.values import json_form

    state = {"replication_key": rk, "replication_key_value": json_form(middle)}
    for kw in ({"state": state}, {"state": state, "limit": 7}, {"limit": 5}):
        _, direct, dmarks = _read(plain, schema, streams, **kw)
        _, ref, rmarks = _read(psycopg, schema, streams, **kw)
        assert direct.equals(ref) and dmarks == rmarks, kw
        assert 0 < direct.num_rows < 301


def test_dcapix_run_writes_the_same_parquet_and_imports_no_sqlalchemy(
    every_type: tuple[str, str, str], tmp_path: Path
) -> None:
    plain, psycopg, schema = every_type
    env = {k: v for k, v in os.environ.items() if not k.startswith("DC_API_X_")}
    env["DC_API_X_BLOCKED_PLUGINS"] = "sqlalchemy"  # the optional plugin's SQL extension, if installed
    outs = []
    runs = [
        ("direct", plain, 'Every "Type"'),
        ("sqlalchemy", psycopg, 'Every "Type"'),
        ("no inet", plain, "no_inet"),
    ]
    for name, url, stream in runs:
        out = tmp_path / f"out-{name}"
        src = {"adapter": "sql", "url": url, "schema": schema, "streams": [stream], "batch_size": 100}
        (tmp_path / "src.json").write_text(json.dumps(src))
        (tmp_path / "dst.json").write_text(json.dumps({"adapter": "parquet", "path": str(out)}))
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
        imported |= {m.split(".")[0] for m in imported}  # (a package may show as its submodules only)
        heavy = {"sqlalchemy", "psycopg", "adbc_driver_manager.dbapi", "pyarrow.dataset", "pyarrow.compute"}
        if name == "sqlalchemy":
            assert "sqlalchemy" in imported  # (the checks below can fail)
        elif name == "direct":  # inet values are rewritten as PostgreSQL prints them: pyarrow.compute
            assert not heavy - {"pyarrow.compute"} & imported, sorted(heavy & imported)
        else:
            assert not heavy & imported, sorted(heavy & imported)
        files = sorted(out.rglob("*.parquet"))
        assert len(files) == 1
        outs.append(pq.read_table(files[0]))
    assert outs[2].num_rows == 301
    direct, ref = outs[:2]
    assert direct.num_rows == 301
    assert direct.schema.equals(ref.schema, check_metadata=True)
    assert direct.equals(ref)


def test_errors_mask_the_password_and_name_the_table(pg_url: str, pg_schema: str) -> None:
    plain, _ = _urls(pg_url)
    with pytest.raises(
        AdapterError, match=r"table '\S+\.missing' not found on postgresql\+psycopg://\S*\*\*\*@"
    ):
        _read(plain, pg_schema, ["missing"])
    bad = plain.rsplit("/", 1)[0] + "/bulkpg_no_such_database"
    with pytest.raises(AdapterError) as info:
        _read(bad, pg_schema, ["x"])
    assert "bulkpg_no_such_database" in str(info.value)
    password = plain_url(plain).password  # type: ignore[union-attr]
    assert password and f":{password}@" not in str(info.value)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:p%40ss@h:5433/db",
        "postgres://u@h/db?sslmode=disable",
        "postgresql://u:secret@h/db?application_name=x",
        "postgresql://h",
    ],
)
def test_plain_url_renders_as_sqlalchemy_does(url: str) -> None:
    import sqlalchemy as sa

    from dc_api_x.adapters.sql.adapter import normalize_url

    got = plain_url(url)
    assert got is not None
    ref = normalize_url(url)
    assert got.safe == ref.render_as_string(hide_password=True)
    assert got.password == (ref.password or "")
    assert sa.make_url(got.uri).set(drivername="postgresql+psycopg") == ref


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://u@h/db",
        "postgresql://u@h:port/db",
        "mysql://u@h/db",
        "postgresql://h/db?user=u&password=secret",
    ],
)
def test_other_urls_are_left_to_sqlalchemy(url: str) -> None:
    assert plain_url(url) is None


@pytest.mark.parametrize(
    ("ftype", "prop"),
    [
        ("numeric(10,2)", {"format": "decimal", "x-precision": 10, "x-scale": 2, "type": ["string", "null"]}),
        ("character varying(5)[]", {"items": {"maxLength": 5, "type": ["string", "null"]}, "type": "array"}),
        ("timestamp(3) without time zone", {"format": "date-time", "x-timezone": False, "type": "string"}),
        ("interval day to second", {"type": "string"}),
        ("money", None),
        ("character", None),
        ("bit(3)", None),
    ],
)
def test_format_type_mapping(ftype: str, prop: Any) -> None:
    nullable = ftype == "numeric(10,2)"
    got = format_type_property(ftype, nullable)
    assert got == prop and json.dumps(got) == json.dumps(prop)


def test_one_database_handle_for_discovery_and_every_read_connection(
    every_type: tuple[str, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Opening an ADBC database handle costs a server connection and a pg_type read; discovery, the
    read and the range readers share one."""
    from dc_api_x.adapters.sql import pg_ranges, preopen

    plain, _, schema = every_type
    opened = []
    real = preopen.open_pg_database

    def counting(*a: Any, **kw: Any) -> Any:
        opened.append(a)
        return real(*a, **kw)

    monkeypatch.setattr(preopen, "open_pg_database", counting)
    monkeypatch.setattr(pg_ranges, "MIN_ROWS", 100)
    monkeypatch.setattr(pg_ranges, "RANGE_BYTES", 8 << 10)
    calls = []
    real_ranges = pg_ranges.read_ranges

    def spy(*a: Any, **kw: Any) -> Any:
        calls.append(a[3])
        return real_ranges(*a, **kw)

    from dc_api_x.adapters.sql import postgresql

    monkeypatch.setattr(postgresql, "read_ranges", spy)
    with create_adapter({"adapter": "sql", "url": plain, "schema": schema, "streams": ["no_inet"]}) as ad:
        spec = ad.discover()[0]
        assert sum(len(b) for b in ad.read(spec)) == 301
        assert sum(len(b) for b in ad.read(spec, limit=3)) == 3
    assert calls == [] or calls == [2]  # (a view is read with one COPY; the table below in ranges)
    with create_adapter(
        {"adapter": "sql", "url": plain, "schema": schema, "streams": ['Every "Type"']}
    ) as ad:
        spec = ad.discover()[0]
        assert sum(len(b) for b in ad.read(spec)) == 301
    assert calls[-1:] == [2]
    assert len(opened) == 2  # one per adapter


def test_the_first_read_takes_over_the_discovery_connection(
    every_type: tuple[str, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A small sync opens one server connection for discovery and its first read (each costs a
    backend start on the server); later reads open their own, and close() closes the kept one."""
    from dc_api_x.adapters.sql import pg_direct

    plain, _, schema = every_type
    opened: list[Any] = []
    real = pg_direct.DirectConnection.__init__

    def counting(self: Any, *a: Any, **kw: Any) -> None:
        opened.append(self)
        real(self, *a, **kw)

    real_adopt = pg_direct.DirectConnection.adopt

    def adopting(conn: Any) -> Any:  # (the handle's first connection: pg_direct.open_handle)
        opened.append(conn)
        return real_adopt(conn)

    monkeypatch.setattr(pg_direct.DirectConnection, "__init__", counting)
    monkeypatch.setattr(pg_direct.DirectConnection, "adopt", adopting)
    with create_adapter({"adapter": "sql", "url": plain, "schema": schema, "streams": ["no_inet"]}) as ad:
        spec = ad.discover()[0]
        assert len(opened) == 1
        assert sum(len(b) for b in ad.read(spec)) == 301
        assert len(opened) == 1  # the discovery's connection
        assert sum(len(b) for b in ad.read(spec, limit=3)) == 3
        assert len(opened) == 2
        ad.discover()  # kept again, then closed with the adapter
        assert ad.backend._database._spare is not None
    assert ad.backend._database._spare is None


def test_the_driver_library_can_be_chosen(
    pg_url: str, pg_schema: str, pg_exec: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``DCAPIX_ADBC_POSTGRESQL_DRIVER`` names the ADBC PostgreSQL driver library the reads load (an
    optimised build; docs/sql.md): a path that is no driver fails the connect in one line naming it,
    the wheel's own library named there reads the same table."""
    import adbc_driver_postgresql

    from dc_api_x.adapters.sql.pg_direct import DRIVER_ENV

    pg_exec(f"CREATE TABLE {pg_schema}.drv (id bigint PRIMARY KEY, t text, j jsonb)")
    pg_exec(f"""INSERT INTO {pg_schema}.drv VALUES (1, 'a', '{{"x": 1}}'), (2, NULL, NULL)""")
    plain, _ = _urls(pg_url)
    ref = _read(plain, pg_schema, ["drv"])[1]
    monkeypatch.setenv(DRIVER_ENV, str(tmp_path / "no_driver.so"))
    with pytest.raises(AdapterError, match=r"connect \(ADBC\) failed .*no_driver\.so") as info:
        _read(plain, pg_schema, ["drv"])
    assert "\n" not in str(info.value).strip()
    monkeypatch.setenv(DRIVER_ENV, adbc_driver_postgresql._driver_path())
    assert _read(plain, pg_schema, ["drv"])[1].equals(ref)
