"""The ``tap-dcapix`` console script as Meltano runs it, on the built-in SQL adapter: discovery on
real SQLite and PostgreSQL, ``--about``, state round trips, and one-line errors."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.singer_tap.conftest import last_state, make_items, parse_messages, records_of, run_cli


def _sqlite_cfg(db: Path, tmp: Path, **extra: Any) -> Path:
    cfg = {
        "adapter": "sql",
        "url": f"sqlite:///{db}",
        "streams": [
            {"name": "items", "table": "items", "primary_keys": ["id"], "replication_key": "updated_at"}
        ],
        **extra,
    }
    p = tmp / f"tap-{uuid.uuid4().hex[:6]}.json"
    p.write_text(json.dumps(cfg), encoding="utf-8")
    return p


def _ok(proc: Any) -> Any:
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _one_error_line(proc: Any, *needles: str) -> str:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    errors = [ln for ln in proc.stderr.splitlines() if "error" in ln.lower()]
    assert len(errors) == 1, proc.stderr[-3000:]
    for n in needles:
        assert n in errors[0], errors[0]
    return errors[0]


def test_discover_sqlite(tmp_path: Path) -> None:
    db = tmp_path / "src.sqlite"
    make_items(db, range(1, 5))
    cat = json.loads(_ok(run_cli("--config", str(_sqlite_cfg(db, tmp_path)), "--discover")).stdout)
    (entry,) = cat["streams"]
    assert entry["tap_stream_id"] == "items"
    assert entry["key_properties"] == ["id"]
    assert entry["replication_key"] == "updated_at"
    props = entry["schema"]["properties"]
    assert set(props) == {"id", "name", "amount", "updated_at"}
    assert "integer" in json.dumps(props["id"]) and "number" in json.dumps(props["amount"])


def test_sync_and_state_round_trip_sqlite_boundary(tmp_path: Path) -> None:
    db = tmp_path / "src.sqlite"
    make_items(db, range(1, 21))
    cfg = _sqlite_cfg(db, tmp_path)
    first = parse_messages(_ok(run_cli("--config", str(cfg))).stdout)
    assert [r["id"] for r in records_of(first)] == list(range(1, 21))
    assert first[-1]["type"] == "STATE"
    state = last_state(first)
    bm = state["bookmarks"]["items"]
    assert bm["replication_key"] == "updated_at"
    assert bm["replication_key_value"] == "2024-01-01T00:00:05+00:00"
    (tmp_path / "state.json").write_text(json.dumps(state), encoding="utf-8")
    # 21..23 share the bookmark's replication-key value (20 is at 00:00:05, so are 21-23), 24.. are newer
    make_items(db, range(21, 30))
    st1, st2 = str(tmp_path / "state.json"), str(tmp_path / "state2.json")
    second = parse_messages(_ok(run_cli("--config", str(cfg), "--state", st1)).stdout)
    assert [r["id"] for r in records_of(second)] == list(range(21, 30))
    (tmp_path / "state2.json").write_text(json.dumps(last_state(second)), encoding="utf-8")
    third = parse_messages(_ok(run_cli("--config", str(cfg), "--state", st2)).stdout)
    assert records_of(third) == []


def test_catalog_selection_cli(tmp_path: Path) -> None:
    db = tmp_path / "src.sqlite"
    make_items(db, range(1, 4))
    cfg = _sqlite_cfg(db, tmp_path)
    cat = json.loads(_ok(run_cli("--config", str(cfg), "--discover")).stdout)
    for md in cat["streams"][0]["metadata"]:
        if md["breadcrumb"] == []:
            md["metadata"]["selected"] = True
        elif md["breadcrumb"][-1] == "amount":
            md["metadata"]["selected"] = False
    (tmp_path / "catalog.json").write_text(json.dumps(cat), encoding="utf-8")
    catalog = str(tmp_path / "catalog.json")
    msgs = parse_messages(_ok(run_cli("--config", str(cfg), "--catalog", catalog)).stdout)
    recs = records_of(msgs)
    assert len(recs) == 3 and all("amount" not in r and "name" in r for r in recs)


def test_unknown_catalog_stream_one_line(tmp_path: Path) -> None:
    db = tmp_path / "src.sqlite"
    make_items(db, range(1, 4))
    cfg = _sqlite_cfg(db, tmp_path)
    cat = json.loads(_ok(run_cli("--config", str(cfg), "--discover")).stdout)
    ghost = json.loads(json.dumps(cat["streams"][0]))
    ghost["tap_stream_id"] = ghost["stream"] = "no_such_table"
    for md in ghost["metadata"]:
        if md["breadcrumb"] == []:
            md["metadata"]["selected"] = True
    cat["streams"].append(ghost)
    (tmp_path / "catalog.json").write_text(json.dumps(cat), encoding="utf-8")
    proc = run_cli("--config", str(cfg), "--catalog", str(tmp_path / "catalog.json"))
    _one_error_line(proc, "no_such_table")
    assert '"type":"RECORD"' not in proc.stdout


@pytest.mark.parametrize(
    ("cfg", "field", "mode"),
    [
        ({"adapter": "sql"}, "url", []),
        ({"adapter": "sql", "url": "sqlite:///x.db", "batch_size": -5}, "batch_size", ["--discover"]),
        ({"adapter": "sql", "url": "sqlite:///x.db", "stremas": []}, "stremas", []),
        ({"url": "sqlite:///x.db"}, "adapter", ["--discover"]),
    ],
)
def test_bad_config_one_line(tmp_path: Path, cfg: dict, field: str, mode: list[str]) -> None:
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(cfg), encoding="utf-8")
    _one_error_line(run_cli("--config", str(p), *mode), field)


def test_secret_not_in_error(tmp_path: Path) -> None:
    p = tmp_path / "bad.json"
    p.write_text(
        json.dumps(
            {"adapter": "sql", "url": "postgresql://u:hunter2secret@127.0.0.1:1/db", "streams": ["public.t"]}
        ),
        encoding="utf-8",
    )
    proc = run_cli("--config", str(p), "--discover")
    assert proc.returncode != 0
    assert "hunter2secret" not in proc.stderr


def test_about_json_lists_every_setting_with_secrets() -> None:
    from dc_api_x import enable_plugins

    about = json.loads(_ok(run_cli("--about", "--format", "json")).stdout)
    assert {
        "catalog",
        "discover",
        "state",
        "about",
        "stream-maps",
        "schema-flattening",
        "batch",
        "test",
    } <= set(about["capabilities"])
    assert about["version"] != "[could not be detected]"
    props = about["settings"]["properties"]
    ps = enable_plugins(entry_points=True)
    try:
        assert set(props["adapter"]["enum"]) == set(ps.adapters.names())
        for name in ps.adapters.names():
            cls = ps.adapters.get(name)
            for fname, finfo in cls.Options.model_fields.items():
                key = finfo.alias or fname
                assert key in props, f"{name}: option {key!r} not in --about settings"
            for secret in cls.secret_options:
                assert props[secret].get("secret") is True, (name, secret)
                assert props[secret].get("writeOnly") is True, (name, secret)
    finally:
        ps.close()
    for builtin in ("stream_maps", "flattening_enabled", "batch_config", "transforms"):
        assert builtin in props
    md = _ok(run_cli("--about", "--format", "markdown")).stdout
    assert "| adapter" in md or "adapter" in md
    assert "url" in md


@pytest.mark.postgres
def test_discover_and_sync_postgres(tmp_path: Path, pg_url: str, pg_schema: str) -> None:
    import psycopg

    plain = pg_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(
            f'CREATE TABLE "{pg_schema}".orders (id bigint PRIMARY KEY, '
            "amount numeric(12,2) NOT NULL, note text, paid boolean, doc jsonb, "
            "updated_at timestamptz NOT NULL)"
        )
        conn.execute(
            f'INSERT INTO "{pg_schema}".orders SELECT g, g * 1.25, CASE WHEN g % 3 = 0 THEN NULL '
            "ELSE 'n' || g END, g % 2 = 0, jsonb_build_object('g', g), "
            "timestamptz '2024-01-01 00:00:00+00' + (g / 3) * interval '1 second' "
            "FROM generate_series(1, 30) g"
        )
    cfg = {
        "adapter": "sql",
        "url": pg_url,
        "schema": pg_schema,
        "streams": [
            {"name": "orders", "table": "orders", "schema": pg_schema, "replication_key": "updated_at"}
        ],
    }
    p = tmp_path / "pg.json"
    p.write_text(json.dumps(cfg), encoding="utf-8")
    cat = json.loads(_ok(run_cli("--config", str(p), "--discover")).stdout)
    (entry,) = cat["streams"]
    assert entry["key_properties"] == ["id"]
    props = entry["schema"]["properties"]
    assert props["amount"].get("format") == "decimal"
    assert props["updated_at"].get("format") == "date-time"
    first = parse_messages(_ok(run_cli("--config", str(p))).stdout)
    recs = records_of(first)
    assert sorted(r["id"] for r in recs) == list(range(1, 31))
    r5 = next(r for r in recs if r["id"] == 5)
    assert r5["amount"] == "6.25" and r5["doc"] == {"g": 5} and r5["paid"] is False
    (tmp_path / "state.json").write_text(json.dumps(last_state(first)), encoding="utf-8")
    with psycopg.connect(plain, autocommit=True) as conn:  # 31 shares the last value (id 30: +10 s)
        conn.execute(
            f'INSERT INTO "{pg_schema}".orders SELECT g, g, NULL, NULL, NULL, '
            "timestamptz '2024-01-01 00:00:00+00' + (g / 3) * interval '1 second' "
            "FROM generate_series(31, 35) g"
        )
    second = parse_messages(_ok(run_cli("--config", str(p), "--state", str(tmp_path / "state.json"))).stdout)
    assert sorted(r["id"] for r in records_of(second)) == [31, 32, 33, 34, 35]


def test_python_m_entry(tmp_path: Path) -> None:
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "tap_dcapix", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0 and "tap-dcapix" in proc.stdout


def test_unreadable_inputs_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    _one_error_line(run_cli("--config", str(tmp_path / "missing.json")), "missing.json")
    _one_error_line(run_cli("--config", str(bad)), "not valid JSON")


def test_the_console_script_starts_without_the_cyclic_gc(tmp_path: Path) -> None:
    """``tap-dcapix`` runs its start-up (imports, config, discovery) with the cyclic collector off
    and turns it back on, with the start-up's objects frozen, before the sync: no collection before
    ``sync_all``, the collector on in it, the rows all there."""
    import subprocess
    import sys

    db = tmp_path / "src.sqlite"
    make_items(db, range(1, 21))
    probe = (
        "import gc, sys\n"
        "seen = {'collections': 0}\n"
        "def count(phase, info):\n"
        "    seen['collections'] += phase == 'stop'\n"
        "gc.callbacks.append(count)\n"
        "import tap_dcapix.cli as cli\n"
        "done, off = cli.startup_done, cli.gc_off_for_startup\n"
        "def start():\n"
        "    off()\n"
        "    seen['collections'] = 0\n"
        "def probe():\n"
        "    before = seen['collections']\n"
        "    done()\n"
        "    print('BEFORE', before, gc.isenabled(), gc.get_freeze_count() > 0, file=sys.stderr)\n"
        "cli.gc_off_for_startup, cli.startup_done = start, probe\n"
        "sys.argv = ['tap-dcapix', '--config', sys.argv[1]]\n"
        "cli.main()\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe, str(_sqlite_cfg(db, tmp_path))],
        capture_output=True,
        text=True,
        timeout=120,
    )
    _ok(proc)
    assert "BEFORE 0 True True" in proc.stderr, proc.stderr[-2000:]
    assert [r["id"] for r in records_of(parse_messages(proc.stdout))] == list(range(1, 21))
