"""Configuration of the ``oracle_db`` adapter: URL and driver, the pool, procedure streams — and the
ref-cursor call they make."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from dc_api_x_oracle_db.adapter import SESSION_SETUP, _session_setup
from dc_api_x_oracle_db.procedures import ProcedureCall

from dc_api_x.exceptions import ConfigError

#: the conftest's URL (a port no server answers on)
URL = "oracle+oracledb://scott:s3cret-tiger@127.0.0.1:1/?service_name=FREEPDB1"


def _config_error(make_adapter: Any, **options: Any) -> str:
    with pytest.raises(ConfigError) as ei:
        make_adapter(**options)
    msg = str(ei.value)
    assert "\n" not in msg and "oracle_db" in msg and "s3cret-tiger" not in msg, msg
    return msg


def test_url_scheme_and_driver(make_adapter: Any) -> None:
    ad = make_adapter(url=URL.replace("oracle+oracledb://", "oracle://"))
    assert ad.url.drivername == "oracle+oracledb" and ad.safe_url.startswith("oracle+oracledb://scott:***@")
    assert type(ad.backend).__name__ == "OracleBackend"
    msg = _config_error(make_adapter, url=URL.replace("oracle+oracledb", "oracle+cx_oracle"))
    assert "'oracle+cx_oracle' is not supported" in msg and "python-oracledb" in msg
    assert "'url'" in _config_error(make_adapter, url="postgresql://scott:s3cret-tiger@127.0.0.1/x")


def test_url_from_the_environment(make_adapter: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from dc_api_x import create_adapter

    monkeypatch.setenv("DC_API_X_ORACLE_URL", URL.replace("127.0.0.1:1", "127.0.0.1:2"))
    with create_adapter({"adapter": "oracle_db"}) as ad:
        assert ad.url.port == 2
    monkeypatch.delenv("DC_API_X_ORACLE_URL")
    with pytest.raises(ConfigError) as ei:
        create_adapter({"adapter": "oracle_db"})
    assert "DC_API_X_ORACLE_URL" in str(ei.value) and "\n" not in str(ei.value)


def test_pool_options_reach_the_engine(make_adapter: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    ad = make_adapter(pool_size=3, max_overflow=2, pool_timeout=7, pool_recycle=600, pool_pre_ping=False)
    pool = ad.engine.pool
    assert isinstance(pool, sa.pool.QueuePool)
    assert (pool.size(), pool._max_overflow, pool._timeout, pool._recycle, pool._pre_ping) == (
        3,
        2,
        7,
        600,
        False,
    )
    assert sa.event.contains(ad.engine, "connect", _session_setup)  # every session in UTC
    assert SESSION_SETUP == "ALTER SESSION SET TIME_ZONE = '+00:00'"
    assert ad.engine.dialect.driver == "oracledb"
    kw = ad.options.engine_kwargs()
    assert kw["connect_args"] == {"tcp_connect_timeout": 20.0}
    # defaults, the environment, and engine_options winning over the pool options
    assert make_adapter().engine.pool.size() == 5
    monkeypatch.setenv("DC_API_X_ORACLE_POOL_SIZE", "8")
    assert make_adapter().engine.pool.size() == 8
    over = make_adapter(
        engine_options={"pool_size": 2, "connect_args": {"expire_time": 1}}
    ).options.engine_kwargs()
    assert over["pool_size"] == 2 and over["connect_args"] == {"tcp_connect_timeout": 20.0, "expire_time": 1}
    monkeypatch.setenv("DC_API_X_ORACLE_POOL_SIZE", "none")
    assert "DC_API_X_ORACLE_POOL_SIZE" in _config_error(make_adapter)
    monkeypatch.delenv("DC_API_X_ORACLE_POOL_SIZE")
    assert "pool_size" in _config_error(make_adapter, pool_size=0)
    assert "max_overflow" in _config_error(make_adapter, max_overflow=-1)


def test_thin_mode_only(make_adapter: Any) -> None:
    import oracledb

    ad = make_adapter()
    assert ad.engine.dialect.dbapi is oracledb
    assert oracledb.is_thin_mode()  # nothing here loads the Oracle Client libraries


@pytest.mark.parametrize(
    ("stream", "fragment"),
    [
        ({"procedure": "sales.open_orders"}, "needs a 'name'"),
        ({"name": "x", "procedure": "p; DROP TABLE t"}, "is not a procedure name"),
        ({"name": "x", "procedure": "p", "table": "t"}, "not several"),
        ({"name": "x", "procedure": "p", "replication_key": "id"}, "no replication_key"),
        ({"name": "x", "procedure": "p", "parameters": {"p_year": 1}}, "cursor_parameter"),
        ({"name": "x", "table": "t", "parameters": [1]}, "belong to a 'procedure' stream"),
    ],
)
def test_procedure_streams_are_validated(make_adapter: Any, stream: dict[str, Any], fragment: str) -> None:
    assert fragment in _config_error(make_adapter, streams=[stream])


def test_the_ref_cursor_call() -> None:
    ref = object()  # python-oracledb passes a Cursor object as the OUT SYS_REFCURSOR
    positional = ProcedureCall("sales.open_orders", [2024, "EU"])
    assert positional.arguments(ref) == ([2024, "EU", ref], {})
    assert positional.plsql() == "BEGIN sales.open_orders(:1, :2, :3); END;"
    named = ProcedureCall('owner."Pkg".open_orders', {"p_year": 2024}, "p_rows")
    assert named.arguments(ref) == ([], {"p_year": 2024, "p_rows": ref})
    assert named.plsql() == 'BEGIN owner."Pkg".open_orders(p_year => :p_year, p_rows => :p_rows); END;'
    assert ProcedureCall("p", []).arguments(ref) == ([ref], {})


def test_configured_procedures_are_the_adapters_own_streams(make_adapter: Any) -> None:
    ad = make_adapter(
        streams=[
            "sales.orders",
            {"name": "open", "procedure": "sales.open_orders", "parameters": [2024], "primary_keys": ["id"]},
        ]
    )
    assert ad.procedures() == {"open": ProcedureCall("sales.open_orders", [2024], None)}
    assert [s.name for s in ad._configured("scott")] == ["sales-orders"]  # the table stream only
    assert len(ad.options.streams) == 2


def test_an_unreachable_server_is_one_line_through_dcapix_run(cli: Any, tmp_path: Path) -> None:
    (tmp_path / "src.json").write_text(
        json.dumps({"adapter": "oracle_db", "url": URL, "streams": ["orders"]})
    )
    (tmp_path / "dst.json").write_text(json.dumps({"adapter": "jsonl", "path": str(tmp_path / "out")}))
    res = cli(
        "dcapix",
        "run",
        "--source",
        "src.json",
        "--destination",
        "dst.json",
        "--no-state",
        "--no-progress",
        cwd=tmp_path,
    )
    assert res.returncode != 0
    err = res.stderr.strip()
    assert "oracle_db" in err and "DPY-6005" in err and "127.0.0.1:1" in err, err
    assert "s3cret-tiger" not in err and "Traceback" not in err
    assert len(err.splitlines()) == 1, err


def test_an_unreachable_server_is_one_line_through_tap_and_target(cli: Any, tmp_path: Path) -> None:
    cfg = tmp_path / "oracle.json"
    cfg.write_text(json.dumps({"adapter": "oracle_db", "url": URL, "streams": ["orders"]}))
    tap = cli("tap-dcapix", "--config", str(cfg), "--discover", cwd=tmp_path)
    assert tap.returncode == 1
    messages = [line for line in tap.stderr.splitlines() if " | INFO " not in line]
    assert messages == [messages[0]] and messages[0].startswith(
        "tap-dcapix: error: adapter 'oracle_db': discover"
    )
    schema = {
        "type": "SCHEMA",
        "stream": "orders",
        "schema": {"type": "object", "properties": {"id": {"type": "integer"}}},
        "key_properties": ["id"],
    }
    lines = (
        json.dumps(schema)
        + "\n"
        + json.dumps({"type": "RECORD", "stream": "orders", "record": {"id": 1}})
        + "\n"
    )
    target = cli("target-dcapix", "--config", str(cfg), cwd=tmp_path, input=lines)
    assert target.returncode == 1
    errors = [line for line in target.stderr.splitlines() if " | INFO " not in line]
    assert (
        len(errors) == 1 and "adapter 'oracle_db', stream 'orders'" in errors[0] and "DPY-6005" in errors[0]
    )
    assert "s3cret-tiger" not in tap.stderr + target.stderr and "Traceback" not in tap.stderr + target.stderr
