"""The fixed cost of a ``dcapix run`` (issue 15 goal 1): what the start-up does ahead or leaves out.

* an ad-hoc run (``--source`` / ``--destination``) builds its pipeline without pydantic's validators
  and serializers, with the same pipeline name and models as before;
* the ADBC PostgreSQL database handles of plain ``postgresql://`` endpoints are opened in a thread
  while the run imports its modules (``adapters/sql/preopen.py``), and taken by the backend;
* the console script keeps the cyclic garbage collector off while the command's modules load.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import hashlib
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dc_api_x import cli
from dc_api_x.adapters.sql import pg_direct, preopen
from dc_api_x.runner import cli as runner_cli
from dc_api_x.runner import config as rc
from dc_api_x.runner import startup as runner_startup


# ------------------------------------------------------------------------------- ad-hoc pipeline
def _adhoc_args(tmp_path: Path, src: dict[str, Any], dst: dict[str, Any], **kw: Any) -> argparse.Namespace:
    (tmp_path / "src.json").write_text(json.dumps(src))
    (tmp_path / "dst.json").write_text(json.dumps(dst))
    base = {"source": str(tmp_path / "src.json"), "destination": str(tmp_path / "dst.json"), "name": None}
    base.update({"pipeline": None, "config": None, "load_method": None})
    base.update(kw)
    return argparse.Namespace(**base)


@pytest.mark.parametrize("load_method", [None, "overwrite"])
def test_adhoc_pipeline_equals_the_validated_one(tmp_path: Path, load_method: str | None) -> None:
    src = {"adapter": "sql", "url": "sqlite:///x.db", "streams": ["a", "b"], "batch_size": 10}
    dst = {"adapter": "parquet", "path": "out", "transforms": [{"type": "rename", "x": 1.5}]}
    name, pipe, project = runner_cli._load_pipeline(_adhoc_args(tmp_path, src, dst, load_method=load_method))
    # what the validators gave (the name is stored with every run's state and history: unchanged)
    s, d = rc.Endpoint.model_validate(src), rc.Endpoint.model_validate(dst)
    if load_method:
        d.load_method = load_method
    want = hashlib.sha1(json.dumps([s.model_dump(), d.model_dump()], sort_keys=True, default=str).encode())
    assert name == "adhoc-" + want.hexdigest()[:10]
    ref = rc.PipelineConfig(source=s, destination=d)
    assert type(pipe) is rc.PipelineConfig and pipe.model_dump() == ref.model_dump()
    assert pipe.model_fields_set == ref.model_fields_set
    assert pipe.source.model_fields_set == s.model_fields_set
    assert pipe.destination.model_fields_set == d.model_fields_set
    assert project.model_dump() == rc.ProjectConfig().model_dump()
    assert project.model_fields_set == rc.ProjectConfig().model_fields_set == set()


def test_endpoint_dump_equals_model_dump() -> None:
    plain = rc.Endpoint.model_validate({"adapter": "sql", "url": "u", "n": [1, 2.5, None, True, {"k": "v"}]})
    odd = rc.Endpoint.model_validate({"adapter": "sql", "since": dt.date(2026, 1, 2), "s": {1, 2}})
    for ep in (plain, odd):  # (the second, not plain JSON, goes through model_dump)
        got = rc.endpoint_dump(ep)
        assert got == ep.model_dump()
        assert json.dumps(got, sort_keys=True, default=str) == json.dumps(
            ep.model_dump(), sort_keys=True, default=str
        )


def test_adhoc_run_errors_stay_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "src.json").write_text(json.dumps({"adapter": "sql", "url": "sqlite:///x.db", "select": 3}))
    (tmp_path / "dst.json").write_text(json.dumps({"adapter": "parquet", "path": str(tmp_path / "o")}))
    args = ["run", "--no-progress", "--no-state", "--source", str(tmp_path / "src.json")]
    rc_ = cli.main([*args, "--destination", str(tmp_path / "dst.json")])
    err = capsys.readouterr().err.strip()
    assert rc_ == 1 and "\n" not in err
    assert err.startswith(f"dcapix: error: source {str(tmp_path / 'src.json')!r}: 'select':"), err


# ------------------------------------------------------------------------------- pre-opened handles
class _FakeDB:
    def __init__(self, uri: str) -> None:
        self.uri, self.closed = uri, False

    def close(self) -> None:
        self.closed = True


class _FakeConn:
    def __init__(self, db: _FakeDB) -> None:
        self.db, self.closed, self.autocommit = db, False, True

    def set_autocommit(self, on: bool) -> None:
        self.autocommit = on

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def fake_driver(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """``preopen.open_pg_database`` (the driver's ``connect``) replaced by a fake recording (uri,
    thread name, handle), and ``adbc_driver_manager.AdbcConnection`` by a fake connection."""
    import adbc_driver_manager

    calls: list[Any] = []

    def connect(uri: str, db_kwargs: dict[str, str] | None = None) -> _FakeDB:
        if "refused" in uri:
            raise OSError("connection refused")
        db = _FakeDB(uri)
        calls.append((uri, threading.current_thread().name, db))
        return db

    monkeypatch.setattr(preopen, "open_pg_database", connect)
    monkeypatch.setattr(adbc_driver_manager, "AdbcConnection", _FakeConn)
    # (the question pg_direct.open_handle asks the server: no types of the database's own)
    monkeypatch.setattr(pg_direct, "_has_user_types", lambda conn: False)
    yield calls
    preopen.close_all()


def test_a_preopened_handle_is_taken_once(fake_driver: list[Any]) -> None:
    assert preopen.preopen("postgresql://h/a") is True
    assert preopen.preopen("postgresql://h/a") is False  # one per URI
    opened = preopen.take("postgresql://h/a")
    assert opened is not None
    db, conn = opened
    assert isinstance(db, _FakeDB) and db.uri == "postgresql://h/a" and not db.closed
    assert isinstance(conn, _FakeConn) and conn.db is db and not conn.closed
    assert fake_driver[0][1] == "dcapix-pg-preopen"  # opened in its own thread
    assert preopen.take("postgresql://h/a") is None and preopen.take("postgresql://h/b") is None


def test_untaken_and_failed_handles(fake_driver: list[Any]) -> None:
    preopen.preopen("postgresql://h/a")
    preopen.preopen("postgresql://refused/b")
    assert preopen.take("postgresql://refused/b") is None  # the backend opens it and words the error
    preopen.close_all()
    assert preopen.pending() == []
    assert [c[2].closed for c in fake_driver] == [True]  # (and its connection: below)


def test_a_handle_still_opening_is_closed_by_its_thread(monkeypatch: pytest.MonkeyPatch) -> None:

    go = threading.Event()
    made: list[_FakeDB] = []

    def slow(uri: str, db_kwargs: dict[str, str] | None = None) -> _FakeDB:
        go.wait(10)
        made.append(_FakeDB(uri))
        return made[-1]

    monkeypatch.setattr(preopen, "open_pg_database", slow)
    preopen.preopen("postgresql://slow/a")
    opener = preopen._opening["postgresql://slow/a"]
    preopen.close_all()  # returns without waiting for the server
    assert opener.is_alive()
    go.set()
    opener.join(10)
    assert made and made[0].closed


@pytest.mark.parametrize("autocommit", [True, False])
def test_direct_database_takes_the_preopened_handle_and_connection(
    fake_driver: list[Any], autocommit: bool
) -> None:
    from dc_api_x.adapters.sql.pg_direct import DirectDatabase

    preopen.preopen("postgresql://h/a")
    db = DirectDatabase(lambda: "postgresql://h/a")
    first = db.connect(autocommit=autocommit)  # the connection opened ahead, in the mode asked for
    assert db.handle() is fake_driver[0][2] and first._conn.db is fake_driver[0][2]
    assert first._conn.autocommit is autocommit
    assert len(fake_driver) == 1
    second = db.connect()  # a new one of the same handle
    assert second._conn is not first._conn and isinstance(second._conn, _FakeConn)
    other = DirectDatabase(lambda: "postgresql://h/a")  # (taken already: opened as before)
    assert other.handle() is fake_driver[1][2] and fake_driver[1][1] == threading.current_thread().name
    # an untaken connection opened ahead is closed with the database
    preopen.preopen("postgresql://h/c")
    third = DirectDatabase(lambda: "postgresql://h/c")
    third.handle()
    fresh = third._fresh
    assert fresh is not None
    third.close()
    assert fresh._conn.closed and fake_driver[2][2].closed


def test_only_plain_postgresql_sql_endpoints_are_opened_ahead(fake_driver: list[Any]) -> None:
    def pipe(src: dict[str, Any], dst: dict[str, Any]) -> Any:
        return rc.adhoc_pipeline(rc.Endpoint.model_validate(src), rc.Endpoint.model_validate(dst))

    pg = "postgresql://u:p@h:5432/db"
    assert runner_startup.prepare_adapters(pipe({"adapter": "sql", "url": pg}, {"adapter": "parquet"}))
    assert preopen.pending() == [pg]
    preopen.close_all()
    for src in (
        {"adapter": "sql", "url": "sqlite:///x.db"},
        {"adapter": "sql", "url": "postgresql+psycopg://u:p@h/db"},
        {"adapter": "sql", "url": pg, "engine_options": {"pool_size": 1}},
        {"adapter": "sql", "url": pg, "arrow": False},
        {"adapter": "jsonl", "url": pg},
        {"adapter": "no-such-adapter", "url": pg},  # (the run words that error)
    ):
        assert runner_startup.prepare_adapters(pipe(src, {"adapter": "parquet"})) == [], src
    assert preopen.pending() == []
    # both ends of a PostgreSQL -> PostgreSQL run: one handle per database, one clean-up
    two = pipe({"adapter": "sql", "url": pg}, {"adapter": "sql", "url": pg.replace("/db", "/dst")})
    assert runner_startup.prepare_adapters(two) == [preopen.close_all]
    assert sorted(preopen.pending()) == sorted([pg, pg.replace("/db", "/dst")])


def test_each_head_start_is_told_its_endpoint_role(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """``open_ahead(options, role=…)`` and a registered ``ahead=`` function learn whether the options
    are the source's or the destination's (the LDAP plugin reads ahead only for a source)."""
    seen: list[tuple[str, str]] = []
    monkeypatch.setattr(preopen, "open_ahead", lambda config, role="?": seen.append((config["url"], role)))
    src = {"adapter": "sql", "url": "postgresql://u:p@h:5432/src", "streams": ["public.t"]}
    dst = {"adapter": "sql", "url": "postgresql://u:p@h:5432/dst"}
    two = rc.adhoc_pipeline(rc.Endpoint.model_validate(src), rc.Endpoint.model_validate(dst))
    runner_startup.prepare_adapters(two)
    assert seen == [(src["url"], "source"), (dst["url"], "destination")]
    seen.clear()
    args = _source_args(tmp_path, src)
    (tmp_path / "dst.json").write_text(json.dumps(dst))
    runner_startup.open_endpoints_ahead(args)
    assert seen == [(src["url"], "source"), (dst["url"], "destination")]


def test_open_ahead_is_an_optional_adapter_classmethod_starting_nothing_by_default() -> None:
    from dc_api_x.ext.adapters import ProtocolAdapter
    from dc_api_x.plugins import get_plugins

    assert ProtocolAdapter.open_ahead({"url": "postgresql://u:p@h/db"}) is None
    # every built-in adapter but SQL keeps the default, so a run of them starts nothing ahead
    adapters = get_plugins().adapters
    default = ProtocolAdapter.open_ahead.__func__  # type: ignore[attr-defined]
    names = ("parquet", "jsonl", "csv")
    assert [n for n in names if adapters.get(n).open_ahead.__func__ is default] == list(names)
    assert adapters.get("sql").open_ahead.__func__ is not default


def _source_args(tmp_path: Path, src: Any, name: str = "src.json", **kw: Any) -> argparse.Namespace:
    path = tmp_path / name
    path.write_text(src if isinstance(src, str) else json.dumps(src))
    base = {"source": str(path), "destination": str(tmp_path / "dst.json"), "pipeline": None, "config": None}
    base.update({"dry_run": False, "via_singer": False})
    base.update(kw)
    return argparse.Namespace(**base)


def test_an_adhoc_postgresql_source_is_opened_before_the_run_imports(
    fake_driver: list[Any], tmp_path: Path
) -> None:
    """``dcapix run --source FILE.json`` of a plain ``postgresql://`` SQL endpoint: its handle is
    being opened before the pipeline's models are loaded (``startup.open_endpoints_ahead``); the later
    ``prepare_adapters`` finds it being opened and starts no second one."""
    pg = "postgresql://u:p@h:5432/db"
    src = {"adapter": "sql", "url": pg, "streams": ["public.t"]}
    assert runner_startup.open_endpoints_ahead(_source_args(tmp_path, src)) == [preopen.close_all]
    assert preopen.pending() == [pg]
    later = rc.adhoc_pipeline(
        rc.Endpoint.model_validate(src), rc.Endpoint.model_validate({"adapter": "parquet"})
    )
    assert runner_startup.prepare_adapters(later) == []  # (being opened: the same handle)
    assert preopen.take(pg, builtin=True) is not None and len(fake_driver) == 1
    # a custom query stream: opened for the server's type resolver, as prepare_adapters would
    q = {"adapter": "sql", "url": pg, "streams": [{"name": "q", "query": "SELECT 1"}]}
    assert runner_startup.open_endpoints_ahead(_source_args(tmp_path, q)) == [preopen.close_all]
    assert preopen._opening[pg].builtin is False
    preopen.close_all()


@pytest.mark.parametrize(
    "case",
    [
        "env reference",
        "yaml file",
        "not json",
        "a list",
        "other adapter",
        "sqlite",
        "psycopg url",
        "engine options",
        "arrow off",
        "no destination",
        "named pipeline",
        "config file",
        "dry run",
        "via singer",
        "missing file",
    ],
)
def test_only_a_plain_json_postgresql_source_is_opened_before_the_imports(
    fake_driver: list[Any], tmp_path: Path, case: str
) -> None:
    pg = "postgresql://u:p@h:5432/db"
    src: Any = {"adapter": "sql", "url": pg}
    name, kw = "src.json", {}
    if case == "env reference":
        src["url"] = "postgresql://u:${PGPASS}@h/db"
    elif case == "yaml file":
        name = "src.yml"
    elif case == "not json":
        src = "{not json"
    elif case == "a list":
        src = [src]
    elif case == "other adapter":
        src["adapter"] = "jsonl"
    elif case == "sqlite":
        src["url"] = "sqlite:///x.db"
    elif case == "psycopg url":
        src["url"] = "postgresql+psycopg://u:p@h/db"
    elif case == "engine options":
        src["engine_options"] = {"pool_size": 1}
    elif case == "arrow off":
        src["arrow"] = False
    elif case == "no destination":
        kw["destination"] = None
    elif case == "named pipeline":
        kw["pipeline"] = "p"
    elif case == "config file":
        kw["config"] = "dcapix.yml"
    elif case == "dry run":
        kw["dry_run"] = True
    elif case == "via singer":
        kw["via_singer"] = True
    args = _source_args(tmp_path, src, name, **kw)
    if case == "missing file":
        args.source = str(tmp_path / "nope.json")
    assert runner_startup.open_endpoints_ahead(args) == []
    assert preopen.pending() == [] and fake_driver == []


def test_an_adhoc_postgresql_destination_is_opened_before_the_run_imports(
    fake_driver: list[Any], tmp_path: Path
) -> None:
    """PostgreSQL → PostgreSQL (W1): both handles are being opened before the imports, one clean-up."""
    src = {"adapter": "sql", "url": "postgresql://u:p@h:5432/src", "streams": ["public.t"]}
    dst = {"adapter": "sql", "url": "postgresql://u:p@h:5432/dst", "schema": "out"}
    args = _source_args(tmp_path, src)
    (tmp_path / "dst.json").write_text(json.dumps(dst))
    assert runner_startup.open_endpoints_ahead(args) == [preopen.close_all]
    assert sorted(preopen.pending()) == ["postgresql://u:p@h:5432/dst", "postgresql://u:p@h:5432/src"]
    # a Parquet destination has no head start; a PostgreSQL one beside a file source is opened alone
    preopen.close_all()
    args = _source_args(tmp_path, {"adapter": "jsonl", "path": "in"})
    (tmp_path / "dst.json").write_text(json.dumps(dst))
    assert runner_startup.open_endpoints_ahead(args) == [preopen.close_all]
    assert preopen.pending() == ["postgresql://u:p@h:5432/dst"]
    preopen.close_all()


def test_cmd_run_closes_a_handle_opened_before_an_error(fake_driver: list[Any], tmp_path: Path) -> None:
    """A run that fails after its source's handle was started (here: an unknown destination adapter)
    closes it: nothing stays pending."""
    args = _source_args(tmp_path, {"adapter": "sql", "url": "postgresql://u:p@h/db"})
    (tmp_path / "dst.json").write_text(json.dumps({"adapter": "no-such-adapter"}))
    argv = ["run", "--no-progress", "--no-state", "--source", args.source, "--destination", args.destination]
    assert cli.main(argv) != 0
    assert preopen.pending() == []
    assert fake_driver and all(c[2].closed for c in fake_driver)


@pytest.mark.postgres
def test_dcapix_run_reads_with_the_preopened_handle(
    pg_url: str, pg_schema: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psycopg
    import pyarrow.parquet as pq

    from dc_api_x.testing import isolated_plugins

    plain = pg_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(plain, autocommit=True) as con:
        con.execute(f'CREATE TABLE "{pg_schema}".t (id bigint PRIMARY KEY, s text)')
        con.execute(f"INSERT INTO \"{pg_schema}\".t SELECT g, 'r' || g FROM generate_series(1, 500) g")
    opened: list[str] = []
    real = preopen.open_pg_database

    def spy(uri: str, *a: Any, **kw: Any) -> Any:
        opened.append(threading.current_thread().name)
        return real(uri, *a, **kw)

    monkeypatch.setattr(preopen, "open_pg_database", spy)
    import adbc_driver_manager

    conns: list[str] = []
    real_conn = adbc_driver_manager.AdbcConnection

    def conn_spy(*a: Any, **kw: Any) -> Any:
        conns.append(threading.current_thread().name)
        return real_conn(*a, **kw)

    monkeypatch.setattr(adbc_driver_manager, "AdbcConnection", conn_spy)
    monkeypatch.setenv("DC_API_X_BLOCKED_PLUGINS", "sqlalchemy")
    out = tmp_path / "out"
    src = {"adapter": "sql", "url": plain, "schema": pg_schema, "streams": ["t"]}
    args = _adhoc_args(tmp_path, src, {"adapter": "parquet", "path": str(out)})
    argv = ["run", "--no-progress", "--no-state", "--source", args.source, "--destination", args.destination]
    with isolated_plugins(entry_points=True, blocked=["sqlalchemy"]):
        assert cli.main(argv) == 0
    # one handle, opened ahead, taken by discovery (opened twice, both ahead, when the session's
    # database holds another test's enum or the like: the server's type resolver, pg_direct.open_handle)
    assert opened in (["dcapix-pg-preopen"], ["dcapix-pg-preopen"] * 2), opened
    # the connection opened ahead serves discovery and (handed over) the read: no other one
    assert conns == ["dcapix-pg-preopen"] * len(opened), conns
    assert preopen.pending() == []
    assert sum(pq.read_table(f).num_rows for f in out.rglob("*.parquet")) == 500


# ------------------------------------------------------------------------------- the collector
@pytest.fixture
def paused_gc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(cli, "_gc_paused", False)
    yield
    cli.resume_gc()
    gc.enable()


def test_console_script_loads_with_the_collector_off(
    paused_gc: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dc_api_x import process_exit

    seen = []
    monkeypatch.setattr(process_exit, "freeze_at_exit", lambda: None)
    monkeypatch.setattr(cli, "main", lambda: seen.append(gc.isenabled()) or 0)
    with pytest.raises(SystemExit):
        cli.console_main()
    assert seen == [False]
    cli.resume_gc()
    assert gc.isenabled()


def test_main_turns_the_collector_on_before_other_commands(
    paused_gc: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    gc.disable()
    monkeypatch.setattr(cli, "_gc_paused", True)
    assert cli.main(["plugins", "--no-entry-points", "--json"]) == 0
    assert gc.isenabled()


def test_dcapix_run_turns_it_on_once_its_modules_are_loaded(
    paused_gc: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import sqlite3

    db = tmp_path / "s.db"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
        con.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(5)])
    con.close()
    states = []
    real = runner_startup.tune_gc

    def spy() -> None:
        states.append(gc.isenabled())
        real()
        states.append(gc.isenabled())

    monkeypatch.setattr(runner_startup, "tune_gc", spy)
    monkeypatch.setattr(gc, "freeze", lambda: None)  # (not the test process's objects)
    monkeypatch.setattr(gc, "set_threshold", lambda *a: None)
    gc.disable()
    monkeypatch.setattr(cli, "_gc_paused", True)
    args = _adhoc_args(
        tmp_path, {"adapter": "sql", "url": f"sqlite:///{db}"}, {"adapter": "jsonl", "path": "o"}
    )
    argv = ["run", "--no-progress", "--no-state", "--source", args.source, "--destination", args.destination]
    monkeypatch.chdir(tmp_path)
    assert cli.main(argv) == 0
    assert states == [False, True]
    assert gc.isenabled()
    # a dry run (no startup.tune_gc) turns it on too
    gc.disable()
    monkeypatch.setattr(cli, "_gc_paused", True)
    assert cli.main([*argv, "--dry-run"]) == 0
    assert gc.isenabled()


# ------------------------------------------------------------------------------- the parser
def _choices(parser: argparse.ArgumentParser) -> list[str]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return list(sub.choices)


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "-c", "x.yml", "demo", "--full-refresh", "--no-progress"],
        ["-v", "run", "--source", "s.json", "--destination", "d.json", "--dry-run"],
        ["schedule", "list", "--json"],
        ["state", "show", "demo"],
        ["plugins", "--json"],
        ["meltano-snippet", "--help"],
    ],
)
def test_a_named_command_gets_only_its_parser_and_the_same_arguments(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    lazy = cli.build_parser(argv)
    assert _choices(lazy) == [argv[1] if argv[0] == "-v" else argv[0]]
    full = cli._build_parser(argv, None)
    assert full is not None and len(_choices(full)) > 5
    if "--help" in argv:
        for parser in (lazy, full):
            with pytest.raises(SystemExit):
                parser.parse_args(argv)
        helps = capsys.readouterr().out.split("usage:")
        assert len(helps) == 3 and helps[1] == helps[2]  # the same help text
        return
    got, want = vars(lazy.parse_args(argv)), vars(full.parse_args(argv))
    assert got.keys() == want.keys()
    assert {k: v for k, v in got.items() if k != "func"} == {k: v for k, v in want.items() if k != "func"}
    assert getattr(got.get("func"), "__qualname__", None) == getattr(want.get("func"), "__qualname__", None)


@pytest.mark.parametrize("argv", [[], ["--help"], ["-h", "run"], ["nosuch"], ["--version"], ["-v"]])
def test_the_help_and_unknown_commands_get_every_parser(argv: list[str]) -> None:
    assert {"plugins", "run", "schedule", "state", "meltano-snippet"} <= set(_choices(cli.build_parser(argv)))


def test_a_handle_opened_ahead_uses_the_driver_build_named_in_the_environment(
    fake_driver: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """DCAPIX_ADBC_POSTGRESQL_DRIVER (pg_direct.DRIVER_ENV) names the driver library the backend loads;
    a handle opened ahead is of the same library."""
    import adbc_driver_manager

    from dc_api_x.adapters.sql.pg_direct import DRIVER_ENV

    made: list[dict[str, Any]] = []

    def database(**kw: Any) -> _FakeDB:
        made.append(kw)
        return _FakeDB(kw["uri"])

    monkeypatch.setattr(adbc_driver_manager, "AdbcDatabase", database)
    monkeypatch.setenv(DRIVER_ENV, "/opt/adbc/libadbc_driver_postgresql.so")
    preopen.preopen("postgresql://h/a")
    opened = preopen.take("postgresql://h/a")
    assert opened is not None and isinstance(opened[0], _FakeDB)
    assert made == [{"driver": "/opt/adbc/libadbc_driver_postgresql.so", "uri": "postgresql://h/a"}]
    assert fake_driver == []  # (not the wheel's library)
