"""Start-up cost: ``python -X importtime`` of the commands users run most, in a fresh interpreter.

Each path may import only the heavy libraries it needs on the way to its first row (issue 15): the
help and a cached ``tap-dcapix --about`` none of them (not even pydantic or singer-sdk), a SQLite →
Parquet run (a small file) no SQLAlchemy, ADBC, ``pyarrow.compute``, HTTP client, Singer SDK or
dataframe library, an HTTP → JSON-lines run no SQL toolkit, database driver, Singer SDK or dataframe
library (the file adapters write through Arrow).
A failure names the library and the chain of imports that brought it in.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.httpserver import LocalHTTPServer

#: Libraries no path may import unless it needs them.
HEAVY = frozenset(
    {
        "httpx",
        "httpcore",
        "h2",
        "sqlalchemy",
        "pyarrow",
        "adbc_driver_manager",
        "adbc_driver_sqlite",
        "adbc_driver_postgresql",
        "psycopg",
        "psycopg2",
        "singer_sdk",
        "pandas",
        "polars",
        "numpy",
        "dask",
        "distributed",
        "ldap3",
        "redis",
        "fsspec",
        "pydantic",
        "yaml",
        "rich",
    }
)

#: Parts of a library a path may need without them (listed by full name when imported).
HEAVY_SUBMODULES = frozenset(
    {
        "pyarrow.compute",  # wraps ~300 kernels in Python at import: ~60 ms (pyarrow._compute: ~10 ms)
        "pyarrow.dataset",
        # pyarrow.fs with its S3, GCS, Azure and HDFS bindings and ssl: ~45 M instructions; a run
        # writes Parquet through pyarrow._parquet's writer (adapters/files/parquet.py)
        "pyarrow.parquet",
        "pyarrow.fs",
    }
)

#: What an ADBC driver package's own library lookup imports (``_driver_path``: importlib.resources with
#: its readers, zipfile, tempfile; ~30 M instructions): a run finds the wheel's bundled library
#: itself (adapters/sql/preopen.py ``bundled_driver_path``). Its ``readers`` module, which only
#: ``importlib.resources.files()`` loads: the package itself also comes with ``importlib.metadata``
#: (a cold entry-point cache in a fresh venv reads the installed plugins with it).
DRIVER_LOOKUP = frozenset({"importlib.resources.readers"})

#: Built-in plugins a path imports only when it uses their registry (``plugins.BUILTIN_HOOKS``): a SQL →
#: Parquet run needs no paginator, auth provider or request hook, nor the schema providers (the file
#: adapters import ``dc_api_x.schemas`` only for a stream with a ``schema`` override).
LAZY_BUILTINS = frozenset(
    {"dc_api_x.pagination", "dc_api_x.auth", "dc_api_x.request_hooks", "dc_api_x.schemas"}
)


_WRAP = """
import atexit, json, runpy, sys
out, kind, target, args = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
atexit.register(lambda: open(out, "w").write(json.dumps(sorted(sys.modules))))
sys.argv = [target, *args]
if kind == "module":
    runpy.run_module(target, run_name="__main__", alter_sys=True)
else:
    __import__(target)
"""


def _importtime(
    kind: str, target: str, args: list[str], cwd: Path, env: dict[str, str] | None = None
) -> dict[str, list[str]]:
    """Run module ``target`` (``kind="module"``, with ``args``) or ``import target`` under
    ``python -X importtime``: ``{top-level package: import chain}`` of every package it imported."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("DC_API_X_")}
    # pydantic loads the plugins of every installed distribution (logfire's, in the dev extra) when a
    # model is built: the environment's business, not an import of ours
    full_env["PYDANTIC_DISABLE_PLUGINS"] = "__all__"
    full_env.update(env or {})
    dump = cwd / "modules.json"
    res = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", _WRAP, str(dump), kind, target, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=full_env,
        timeout=300,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    loaded = {m.split(".")[0] for m in json.loads(dump.read_text())}  # (importtime also lists misses)
    # importtime lists a module after its imports, indented by depth: the chain of a module is the
    # next less indented entries below it
    rows = []
    for line in res.stderr.splitlines():
        if line.startswith("import time:") and "|" in line and "cumulative" not in line:
            name = line.rsplit("|", 1)[1]
            rows.append((len(name) - len(name.lstrip()), name.strip()))
    out: dict[str, list[str]] = {}
    modules = set(json.loads(dump.read_text()))
    for i, (depth, name) in enumerate(rows):
        top = name if name in HEAVY_SUBMODULES | LAZY_BUILTINS | DRIVER_LOOKUP else name.split(".")[0]
        if top in out or (top not in loaded and top not in modules):
            continue
        chain, d = [name], depth
        for dj, nj in rows[i + 1 :]:
            if dj < d:
                chain.append(nj)
                d = dj
        out[top] = chain
    return out


#: Imports a third-party package makes on its own (not on our way to the first row): httpx imports
#: its command-line client (click, rich, pygments) whenever those are installed.
THIRD_PARTY_CHAINS = ("httpx._main",)


def _orders_db(tmp_path: Path, rows: int) -> Path:
    """``shop.db`` with an ``orders`` table of ``rows`` rows (ids 1..rows, status ``new``)."""
    db = tmp_path / "shop.db"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, status TEXT)")
        con.executemany("INSERT INTO orders VALUES (?, ?)", [(i, "new") for i in range(1, rows + 1)])
    con.close()
    return db


def _assert_none(imported: dict[str, list[str]], forbidden: set[str], what: str) -> None:
    bad = sorted(
        b for b in forbidden & set(imported) if not any(c in imported[b] for c in THIRD_PARTY_CHAINS)
    )
    assert not bad, f"{what} imported " + "; ".join(f"{b} (via {' <- '.join(imported[b][:6])})" for b in bad)


def test_help_imports_no_heavy_library(tmp_path: Path) -> None:
    imported = _importtime("module", "dc_api_x.cli", ["--help"], tmp_path)
    assert "dc_api_x" in imported
    _assert_none(imported, set(HEAVY), "dcapix --help")


def test_cached_tap_about_imports_no_heavy_library(tmp_path: Path) -> None:
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    first = _importtime("module", "tap_dcapix", ["--about", "--format", "json"], tmp_path, env)
    assert "singer_sdk" in first  # the first answer comes from the SDK's command ...
    again = _importtime("module", "tap_dcapix", ["--about", "--format", "json"], tmp_path, env)
    _assert_none(again, set(HEAVY), "tap-dcapix --about (cached)")  # ... and is reused


def _run(
    tmp_path: Path, source: dict, destination: dict, env: dict[str, str] | None = None
) -> dict[str, list[str]]:
    (tmp_path / "src.json").write_text(json.dumps(source))
    (tmp_path / "dst.json").write_text(json.dumps(destination))
    return _importtime(
        "module",
        "dc_api_x.cli",
        [
            "run", "--no-progress", "--state-db", str(tmp_path / "state.db"),
            "--source", str(tmp_path / "src.json"), "--destination", str(tmp_path / "dst.json"),
        ],
        tmp_path,
        env,
    )  # fmt: skip


def test_sqlite_to_parquet_run_imports_no_http_singer_or_dataframe_library(tmp_path: Path) -> None:
    db = tmp_path / "shop.db"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, amount REAL, status TEXT)")
        con.executemany("INSERT INTO orders VALUES (?, ?, ?)", [(i, i * 1.5, "new") for i in range(1, 101)])
    con.close()
    out = tmp_path / "out"
    # (dc-api-x-sqlalchemy, when installed, instruments every engine: its extension sends SQLite
    # reads through SQLAlchemy; without it a plain file is read with the stdlib sqlite3)
    imported = _run(
        tmp_path,
        {"adapter": "sql", "url": f"sqlite:///{db}", "streams": ["orders"]},
        {"adapter": "parquet", "path": str(out)},
        {"DC_API_X_BLOCKED_PLUGINS": "sqlalchemy"},
    )
    assert list(out.rglob("*.parquet"))  # the run moved the rows
    # a small file: discovered and read with sqlite3, no SQLAlchemy, no ADBC, and the Parquet
    # writer without pyarrow.compute (issue 15)
    needed = {"pyarrow", "numpy", "pydantic", "fsspec"}
    _assert_none(imported, set(HEAVY) - needed, "dcapix run sqlite -> parquet")
    _assert_none(imported, set(HEAVY_SUBMODULES), "dcapix run sqlite -> parquet")


def test_repeated_yaml_pipeline_run_imports_no_yaml_and_only_the_adapter_plugins(tmp_path: Path) -> None:
    """The README's shape: a YAML pipeline file with the default state store. From the second run
    on, the file's parse comes from its cache (no PyYAML); no run imports the built-in plugins whose
    registries a SQL -> Parquet run does not use."""
    db = _orders_db(tmp_path, 100)
    out = tmp_path / "out"
    (tmp_path / "dcapix.yml").write_text(
        "# a pipeline\n"
        "pipelines:\n"
        "  demo:\n"
        f"    source: {{adapter: sql, url: 'sqlite:///{db}', streams: [orders]}}\n"
        f"    destination: {{adapter: parquet, path: '{out}', load_method: overwrite}}\n"
    )
    args = ["run", "--no-progress", "-c", str(tmp_path / "dcapix.yml"), "demo"]
    env = {"DC_API_X_BLOCKED_PLUGINS": "sqlalchemy", "XDG_CACHE_HOME": str(tmp_path / "cache")}
    first = _importtime("module", "dc_api_x.cli", args, tmp_path, env)
    assert "yaml" in first and (tmp_path / ".dcapix" / "state.db").exists()
    assert list((tmp_path / "cache" / "dc-api-x" / "config").glob("dcapix.yml-*.json"))
    again = _importtime("module", "dc_api_x.cli", args, tmp_path, env)
    assert len(pq_rows := list(out.rglob("*.parquet"))) >= 1, pq_rows
    _assert_none(again, {"yaml"}, "a repeated YAML pipeline run")
    _assert_none(first, set(LAZY_BUILTINS), "dcapix run sqlite -> parquet")
    _assert_none(again, set(LAZY_BUILTINS), "dcapix run sqlite -> parquet")
    # a serial run starts no thread pool (runner/pipeline.py imports it for parallel streams only)
    _assert_none(again, {"concurrent"}, "dcapix run sqlite -> parquet")


def test_larger_sqlite_file_is_read_through_adbc_without_pyarrow_dataset(tmp_path: Path) -> None:
    db = tmp_path / "big.db"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, pad TEXT)")
        con.executemany("INSERT INTO t VALUES (?, ?)", [(i, "x" * 100) for i in range(1, 5_001)])
    con.close()
    from dc_api_x.adapters.sql.sqlite import ADBC_MIN_BYTES

    assert db.stat().st_size >= ADBC_MIN_BYTES
    out = tmp_path / "out"
    imported = _run(
        tmp_path,
        {"adapter": "sql", "url": f"sqlite:///{db}", "streams": ["t"]},
        {"adapter": "parquet", "path": str(out)},
        {"DC_API_X_BLOCKED_PLUGINS": "sqlalchemy"},
    )
    assert list(out.rglob("*.parquet"))
    assert "adbc_driver_sqlite" in imported  # the ADBC read ...
    # ... through the driver manager's low-level API: no DB-API module, no pyarrow.dataset
    needed = {"pyarrow", "numpy", "pydantic", "fsspec", "adbc_driver_manager", "adbc_driver_sqlite"}
    _assert_none(imported, set(HEAVY) - needed, "dcapix run sqlite (ADBC) -> parquet")
    _assert_none(imported, set(HEAVY_SUBMODULES), "dcapix run sqlite (ADBC) -> parquet")
    _assert_none(imported, set(DRIVER_LOOKUP), "dcapix run sqlite (ADBC) -> parquet")
    _assert_none(imported, set(LAZY_BUILTINS), "dcapix run sqlite (ADBC) -> parquet")


@pytest.mark.postgres
@pytest.mark.parametrize("destination", ["parquet", "postgresql"])
def test_small_postgresql_run_imports_no_sqlalchemy(
    tmp_path: Path, pg_url: str, pg_schema: str, destination: str
) -> None:
    """A plain ``postgresql://`` source (and destination) at a small sync's size: discovered, read
    and written over ADBC's low-level API (adapters/sql/pg_direct.py, pg_write.py) — no SQLAlchemy,
    psycopg, ADBC DB-API module, ``pyarrow.dataset`` or ``pyarrow.compute``."""
    import psycopg

    plain = pg_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(plain, autocommit=True) as con:
        con.execute(
            f'CREATE TABLE "{pg_schema}".orders (id bigint PRIMARY KEY, amount double precision, '
            "status text, at timestamptz, meta jsonb)"
        )
        con.execute(
            f"INSERT INTO \"{pg_schema}\".orders SELECT g, g * 1.5, 'new', now(), "
            "jsonb_build_object('g', g) FROM generate_series(1, 20000) g"
        )
    out = tmp_path / "out"
    dst: dict = {"adapter": "parquet", "path": str(out)}
    if destination == "postgresql":
        dst = {"adapter": "sql", "url": plain, "schema": f"{pg_schema}_dst"}
    try:
        imported = _run(
            tmp_path,
            {"adapter": "sql", "url": plain, "schema": pg_schema, "streams": ["orders"]},
            dst,
            {"DC_API_X_BLOCKED_PLUGINS": "sqlalchemy"},
        )
        if destination == "parquet":
            assert list(out.rglob("*.parquet"))  # the run moved the rows
        else:
            with psycopg.connect(plain) as con:
                got = con.execute(f'SELECT count(*) FROM "{pg_schema}_dst".orders').fetchone()
            assert got == (20000,)
    finally:
        with psycopg.connect(plain, autocommit=True) as con:
            con.execute(f'DROP SCHEMA IF EXISTS "{pg_schema}_dst" CASCADE')
    needed = {"pyarrow", "numpy", "pydantic", "fsspec", "adbc_driver_manager", "adbc_driver_postgresql"}
    what = f"dcapix run postgresql -> {destination}"
    _assert_none(imported, set(HEAVY) - needed, what)
    _assert_none(imported, set(HEAVY_SUBMODULES), what)
    _assert_none(imported, set(DRIVER_LOOKUP), what)
    _assert_none(imported, set(LAZY_BUILTINS), what)
    if destination == "parquet":
        # the COPY workers' thread pool (adapters/sql/postgresql.py) starts with a PostgreSQL write
        _assert_none(imported, {"concurrent"}, what)


def test_tap_records_without_pyarrow_compute(tmp_path: Path) -> None:
    """``tap-dcapix`` writing RECORD lines of a Parquet file with zoned timestamps, dates, decimals,
    floats, integers, booleans, text needing escapes and nulls: its JSON kernels are called without
    importing ``pyarrow.compute`` (``Array.cast`` / ``fill_null`` import it; the tap goes through
    ``tap_dcapix.kernels``)."""
    import datetime as dt
    from decimal import Decimal

    import pyarrow as pa
    import pyarrow.parquet as pq

    n = 50
    table = pa.table(
        {
            "id": pa.array(range(n), pa.int64()),
            "at": pa.array(
                [dt.datetime(2026, 1, 1, 10, i, tzinfo=dt.timezone.utc) for i in range(n - 1)] + [None],
                pa.timestamp("us", tz="UTC"),
            ),
            "day": pa.array([dt.date(2026, 1, 1 + i % 28) for i in range(n)]),
            "price": pa.array([Decimal(f"{i}.25") for i in range(n)], pa.decimal128(10, 2)),
            "amount": pa.array([i * 1.5 for i in range(n - 1)] + [None]),
            "note": pa.array([f'say "hi"\n{i}' if i % 2 else None for i in range(n)]),
            "flag": pa.array([bool(i % 2) for i in range(n)]),
        }
    )
    (tmp_path / "in").mkdir()
    pq.write_table(table, tmp_path / "in" / "t.parquet")
    (tmp_path / "tap.json").write_text(json.dumps({"adapter": "parquet", "path": str(tmp_path / "in")}))
    res = subprocess.run(
        [sys.executable, "-m", "tap_dcapix", "--config", str(tmp_path / "tap.json")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    records = [json.loads(x)["record"] for x in res.stdout.splitlines() if '"RECORD"' in x]
    assert len(records) == n, res.stderr[-2000:]
    assert records[1]["at"] == "2026-01-01T10:01:00.000000+00:00" and records[1]["note"] == 'say "hi"\n1'
    imported = _importtime("module", "tap_dcapix", ["--config", str(tmp_path / "tap.json")], tmp_path)
    assert "singer_sdk" in imported and "pyarrow" in imported
    # (it reads a Parquet file: pyarrow.parquet it needs)
    _assert_none(
        imported, set(HEAVY_SUBMODULES) - {"pyarrow.parquet", "pyarrow.fs"}, "tap-dcapix RECORD lines"
    )


def test_http_to_jsonl_run_imports_no_sql_singer_or_dataframe_library(
    tmp_path: Path, http_server: LocalHTTPServer
) -> None:
    http_server.route(
        "GET", "/items", lambda req: (200, {}, [{"id": i, "name": f"n{i}"} for i in range(1, 51)])
    )
    out = tmp_path / "out"
    imported = _run(
        tmp_path,
        {"adapter": "http", "base_url": http_server.url, "streams": [{"name": "items", "path": "/items"}]},
        {"adapter": "jsonl", "path": str(out)},
    )
    assert list(out.rglob("*.jsonl*"))
    needed = {"httpx", "httpcore", "h2", "pydantic", "fsspec", "pyarrow", "numpy"}
    _assert_none(imported, set(HEAVY) - needed, "dcapix run http -> jsonl")


@pytest.mark.parametrize("module", ["dc_api_x", "dc_api_x.singer_about"])
def test_import_imports_no_heavy_library(tmp_path: Path, module: str) -> None:
    imported = _importtime("import", module, [], tmp_path)
    _assert_none(imported, set(HEAVY), f"import {module}")


_TOKENIZE_WRAP = """
import atexit, json, runpy, sys, tokenize
out = sys.argv[1]
def report():
    import pydantic
    def subs(c):
        for s in c.__subclasses__():
            yield s
            yield from subs(s)
    built = sorted({s.__qualname__ for s in subs(pydantic.BaseModel) if s.__pydantic_complete__})
    open(out, "w").write(json.dumps({"tokenize": tokenize._compile.cache_info().currsize, "built": built,
                                     "metadata": "importlib.metadata" in sys.modules}))
atexit.register(report)
sys.argv = ["dcapix", *sys.argv[2:]]
runpy.run_module("dc_api_x.cli", run_name="__main__", alter_sys=True)
"""


def test_sqlite_to_parquet_run_parses_no_builtin_text_signature(tmp_path: Path) -> None:
    """pydantic reads the signature of a field's ``default_factory``; for a builtin (``list``,
    ``dict``) that parses its text signature with ``tokenize``, whose large regular expression costs
    ~14 M instructions to compile (1.3 % of the demo run, issue 15). The models a small run builds
    use :func:`dc_api_x.config.new_list` / ``new_dict`` instead."""
    db = _orders_db(tmp_path, 10)
    (tmp_path / "dcapix.json").write_text(
        json.dumps(
            {
                "pipelines": {
                    "demo": {
                        "source": {"adapter": "sql", "url": f"sqlite:///{db}", "streams": ["orders"]},
                        "destination": {"adapter": "parquet", "path": str(tmp_path / "out")},
                    }
                }
            }
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("DC_API_X_")}
    env["DC_API_X_BLOCKED_PLUGINS"] = "sqlalchemy"
    env["PYDANTIC_DISABLE_PLUGINS"] = "__all__"  # logfire's pydantic plugin (dev extra) reads source
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    out = tmp_path / "report.json"
    args = ["run", "--no-progress", "-c", str(tmp_path / "dcapix.json"), "demo"]
    reports = []
    for _ in range(2):
        res = subprocess.run(
            [sys.executable, "-c", _TOKENIZE_WRAP, str(out), *args],
            capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300,
        )  # fmt: skip
        assert res.returncode == 0, res.stdout + res.stderr
        assert list((tmp_path / "out").rglob("*.parquet"))
        reports.append(json.loads(out.read_text()))
        time.sleep(2.1)  # the entry-point snapshot trusts modification times older than 2 s
    assert reports[0]["tokenize"] == 0, "tokenize compiled its patterns during a small run"
    # the options and the pipeline file are of exact types: no pydantic validator is built
    # (dc_api_x.config.construct_exact, runner/config.py's fast path)
    assert reports[0]["built"] == [] and reports[1]["built"] == [], reports
    # the second run reads the plugin entry points and dc-api-x's version from the snapshot
    # (plugins.py): importlib.metadata is not imported
    assert reports[1]["metadata"] is False, reports


def test_small_run_models_have_no_builtin_default_factory() -> None:
    from dc_api_x.adapters.files.base import FilesOptions, FileStreamOptions
    from dc_api_x.adapters.sql.adapter import SQLOptions, SQLStreamOptions
    from dc_api_x.config import new_dict, new_list
    from dc_api_x.runner import config as rc

    models = [FileStreamOptions, FilesOptions, SQLOptions, SQLStreamOptions, rc.Endpoint, rc.SingerConfig]
    models += [rc.ScheduleConfig, rc.SchedulerConfig, rc.PipelineConfig, rc.ProjectConfig]
    for model in models:
        for name, field in model.model_fields.items():
            factory = field.default_factory
            assert factory is None or not isinstance(factory, type(len)), (model.__name__, name)
            assert factory not in (list, dict), (model.__name__, name)
    # a fresh empty list / dict per instance, as list / dict gave
    a, b = FilesOptions(), FilesOptions()
    assert a.primary_keys == [] and a.primary_keys is not b.primary_keys
    assert a.storage_options == {} and a.storage_options is not b.storage_options
    assert new_list() is not new_list() and new_dict() is not new_dict()
    assert rc.SingerConfig().tap_args == [] and rc.Endpoint(adapter="x").stream_maps == {}


def test_adhoc_run_builds_no_pydantic_validator(tmp_path: Path) -> None:
    """An ad-hoc run (``--source`` / ``--destination`` files, the shape of the W1/W2 benchmarks) builds
    its pipeline and names it without pydantic's validators or serializers (runner/config.py:
    ``adhoc_pipeline``, ``empty_project``, ``endpoint_dump``): building them cost ~25 ms of CPU."""
    db = _orders_db(tmp_path, 10)
    (tmp_path / "src.json").write_text(
        json.dumps({"adapter": "sql", "url": f"sqlite:///{db}", "streams": ["orders"]})
    )
    (tmp_path / "dst.json").write_text(json.dumps({"adapter": "parquet", "path": str(tmp_path / "out")}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("DC_API_X_")}
    env["DC_API_X_BLOCKED_PLUGINS"] = "sqlalchemy"
    env["PYDANTIC_DISABLE_PLUGINS"] = "__all__"
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    out = tmp_path / "report.json"
    args = ["run", "--no-progress", "--no-state", "--source", str(tmp_path / "src.json")]
    args += ["--destination", str(tmp_path / "dst.json")]
    res = subprocess.run(
        [sys.executable, "-c", _TOKENIZE_WRAP, str(out), *args],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300,
    )  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    assert list((tmp_path / "out").rglob("*.parquet"))
    assert json.loads(out.read_text())["built"] == []
