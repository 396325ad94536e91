"""Discovery output, catalog selection, stream maps, catalog and config errors (in-process)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from dc_api_x.exceptions import ConfigError
from tests.singer_tap.conftest import make_items, records_of


def _cfg(db: Path, **kw: object) -> dict:
    return {"adapter": "lite", "path": str(db), "table": "items", "replication_key": "updated_at", **kw}


def _catalog(db: Path) -> dict:
    from tap_dcapix.tap import TapDcApiX

    tap = TapDcApiX(config=_cfg(db))
    try:
        return copy.deepcopy(tap.catalog_dict)
    finally:
        tap.close()


def test_discovery_catalog(tmp_path: Path, lite_plugins) -> None:
    db = tmp_path / "src.sqlite"
    make_items(db, range(1, 3))
    cat = _catalog(db)
    (entry,) = cat["streams"]
    assert entry["tap_stream_id"] == "items"
    assert entry["key_properties"] == ["id"]
    assert entry["replication_key"] == "updated_at"
    assert entry["replication_method"] == "INCREMENTAL"
    assert set(entry["schema"]["properties"]) == {"id", "name", "amount", "updated_at"}
    root = next(m for m in entry["metadata"] if m["breadcrumb"] == [])
    assert root["metadata"]["table-key-properties"] == ["id"]
    assert root["metadata"]["valid-replication-keys"] == ["updated_at"]


def _select(cat: dict, *, stream: bool = True, deselect: tuple[str, ...] = ()) -> dict:
    for entry in cat["streams"]:
        for md in entry["metadata"]:
            if md["breadcrumb"] == []:
                md["metadata"]["selected"] = stream
            elif md["breadcrumb"][-1] in deselect:
                md["metadata"]["selected"] = False
                md["metadata"]["inclusion"] = "available"
    return cat


def test_catalog_column_selection(tmp_path: Path, run_tap) -> None:
    db = tmp_path / "src.sqlite"
    make_items(db, range(1, 6))
    cat = _select(_catalog(db), deselect=("name", "amount"))
    msgs = run_tap(_cfg(db), catalog=cat)
    recs = records_of(msgs)
    assert len(recs) == 5
    assert all(set(r) == {"id", "updated_at"} for r in recs)
    schema_msg = next(m for m in msgs if m["type"] == "SCHEMA")
    assert set(schema_msg["schema"]["properties"]) == {"id", "updated_at"}


def test_catalog_stream_deselected(tmp_path: Path, run_tap) -> None:
    db = tmp_path / "src.sqlite"
    make_items(db, range(1, 4))
    msgs = run_tap(_cfg(db), catalog=_select(_catalog(db), stream=False))
    assert records_of(msgs) == []
    assert not [m for m in msgs if m["type"] == "SCHEMA"]


def test_catalog_unknown_stream_is_an_error(tmp_path: Path, run_tap) -> None:
    db = tmp_path / "src.sqlite"
    make_items(db, range(1, 4))
    cat = _select(_catalog(db))
    ghost = copy.deepcopy(cat["streams"][0])
    ghost["tap_stream_id"] = ghost["stream"] = "ghost_table"
    cat["streams"].append(ghost)
    with pytest.raises(ConfigError, match="ghost_table"):
        run_tap(_cfg(db), catalog=cat)


def test_stream_maps_transform_and_alias(tmp_path: Path, run_tap) -> None:
    db = tmp_path / "src.sqlite"
    make_items(db, range(1, 5))
    maps = {
        "items": {"name_upper": "name.upper()", "amount": None},
        "items_copy": {"__source__": "items", "id": "id", "__else__": None},
    }
    msgs = run_tap(_cfg(db, stream_maps=maps))
    main = records_of(msgs, "items")
    assert [r["name_upper"] for r in main] == [f"NAME-{i}" for i in range(1, 5)]
    assert all("amount" not in r for r in main)
    copies = records_of(msgs, "items_copy")
    assert copies == [{"id": i} for i in range(1, 5)]
    # state is still the adapter bookmark of the source stream
    states = [m["value"] for m in msgs if m["type"] == "STATE"]
    assert states[-1]["bookmarks"]["items"]["replication_key_value"] == "2024-01-01T00:00:01+00:00"


def test_stream_map_filter(tmp_path: Path, run_tap) -> None:
    db = tmp_path / "src.sqlite"
    make_items(db, range(1, 9))
    msgs = run_tap(_cfg(db, stream_maps={"items": {"__filter__": "id % 2 == 0"}}))
    assert [r["id"] for r in records_of(msgs)] == [2, 4, 6, 8]


def test_flattening(tmp_path: Path, run_tap) -> None:
    db = tmp_path / "src.sqlite"
    make_items(db, range(1, 3))
    msgs = run_tap(_cfg(db, flattening_enabled=True, flattening_max_depth=1))
    assert [r["id"] for r in records_of(msgs)] == [1, 2]


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"adapter": "lite", "table": "items"}, "path"),
        ({"adapter": "lite", "path": "x", "table": "items", "batch_size": "many"}, "batch_size"),
        ({"adapter": "lite", "path": "x", "table": "items", "tabel": "typo"}, "tabel"),
        ({"path": "x"}, "adapter"),
        ({"adapter": "lite", "path": "x", "table": "items", "transforms": "rename"}, "transforms"),
    ],
)
def test_bad_config_names_the_field(lite_plugins, config: dict, field: str) -> None:
    from tap_dcapix.tap import TapDcApiX

    with pytest.raises(ConfigError) as info:
        TapDcApiX(config=config)
    assert field in str(info.value)
    assert "\n" not in str(info.value)


def test_unknown_adapter_lists_known(lite_plugins) -> None:
    from tap_dcapix.tap import TapDcApiX

    from dc_api_x.exceptions import UnknownPluginError

    with pytest.raises(UnknownPluginError, match="lite"):
        TapDcApiX(config={"adapter": "nope"})


def test_about_settings_cover_adapter_options_and_secrets(lite_plugins, capsys) -> None:
    import json

    from tap_dcapix.tap import TapDcApiX, full_settings

    try:
        TapDcApiX.print_about("json")  # what `tap-dcapix --about --format json` prints
    finally:
        full_settings(False)
    info = json.loads(capsys.readouterr().out)
    props = info["settings"]["properties"]
    for name in (
        "adapter",
        "path",
        "table",
        "primary_key",
        "replication_key",
        "batch_size",
        "password",
        "transforms",
        "stream_maps",
        "flattening_enabled",
        "batch_config",
    ):
        assert name in props, name
    assert "lite" in props["adapter"]["enum"]
    assert props["password"]["secret"] is True and props["password"]["writeOnly"] is True
    assert not props["path"].get("secret")
    assert {"catalog", "discover", "state", "about", "stream-maps", "schema-flattening", "batch", "test"} <= {
        str(c) for c in info["capabilities"]
    }


def test_batch_messages_carry_all_rows_and_state(tmp_path: Path, run_tap) -> None:
    """With ``batch_config`` the SDK writes BATCH files from the tap's records; the bookmark
    after them is the adapter's."""
    import gzip
    import json
    from urllib.parse import urlparse

    db = tmp_path / "src.sqlite"
    make_items(db, range(1, 12))
    out = tmp_path / "batches"
    out.mkdir()
    cfg = _cfg(
        db,
        batch_config={
            "encoding": {"format": "jsonl", "compression": "gzip"},
            "storage": {"root": f"file://{out}", "prefix": "b-"},
        },
    )
    msgs = run_tap(cfg)
    batches = [m for m in msgs if m["type"] == "BATCH"]
    assert batches and not records_of(msgs)
    rows = []
    for m in batches:
        for uri in m["manifest"]:
            with gzip.open(urlparse(uri).path, "rt", encoding="utf-8") as fh:
                rows += [json.loads(line) for line in fh]
    assert sorted(r["id"] for r in rows) == list(range(1, 12))
    state = [m for m in msgs if m["type"] == "STATE"][-1]["value"]
    assert sorted(k[0] for k in state["bookmarks"]["items"]["keys_at_value"]) == [8, 9, 10, 11]


def test_settings_follow_the_current_plugin_set() -> None:
    """The settings schema is cached per plugin set: a new set (even at the address of a freed one,
    which ``id()`` would confuse) gets its own."""
    import gc

    from tap_dcapix.tap import TapDcApiX, full_settings

    from dc_api_x import enable_plugins

    from .conftest import LitePlugin

    full_settings()
    try:
        for _ in range(3):
            ps = enable_plugins(entry_points=False, plugins=[LitePlugin])
            assert "lite" in TapDcApiX.config_jsonschema["properties"]["adapter"]["enum"]
            ps.close()
            del ps
            gc.collect()
            ps = enable_plugins(entry_points=False)
            assert "lite" not in TapDcApiX.config_jsonschema["properties"]["adapter"]["enum"]
            ps.close()
            del ps
            gc.collect()
    finally:
        full_settings(False)
    # a run validates with the tap's own settings only (no other adapter's defaults injected)
    assert set(TapDcApiX.config_jsonschema["properties"]) == {
        "adapter",
        "transforms",
        "concurrency",
        "partitions",
    }


def test_config_env_keeps_the_config_as_given(tmp_path: Path, monkeypatch) -> None:
    """With ``--config ENV`` (the SDK test runners use it) the settings schema is the union of every
    adapter's options; validating against it would copy other adapters' defaults into the config
    (the HTTP adapter's stream defaults into SQL stream objects). The adapter's model validates."""
    from tap_dcapix.tap import TapDcApiX, full_settings

    from dc_api_x import enable_plugins

    ps = enable_plugins(entry_points=False)
    streams = [{"name": "items", "table": "items", "primary_keys": ["id"], "replication_key": "updated_at"}]
    cfg = {"adapter": "sql", "url": f"sqlite:///{tmp_path / 'x.db'}", "streams": streams}
    monkeypatch.setenv("TAP_DCAPIX_BATCH_SIZE", "7")
    try:
        tap = TapDcApiX(config=cfg, parse_env_config=True, validate_config=True, setup_mapper=False)
        assert tap.config["streams"] == streams
        assert tap.config["batch_size"] == 7  # read from the environment: a documented setting
    finally:
        full_settings(False)
        ps.close()
