"""State round trips: bookmarks from the adapter, resumed with no gap and no duplicate."""

from __future__ import annotations

from pathlib import Path

from tests.singer_tap.conftest import last_state, make_items, records_of


def _cfg(db: Path, **kw: object) -> dict:
    return {"adapter": "lite", "path": str(db), "table": "items", "replication_key": "updated_at", **kw}


def test_state_round_trip_boundary_exactly_once(tmp_path: Path, run_tap) -> None:
    db = tmp_path / "src.sqlite"
    make_items(db, range(1, 11))  # updated_at groups of 4 rows per second: 1-3 | 4-7 | 8-11 …
    first = run_tap(_cfg(db))
    ids1 = [r["id"] for r in records_of(first)]
    assert ids1 == list(range(1, 11))
    state = last_state(first)
    bm = state["bookmarks"]["items"]
    assert bm["replication_key"] == "updated_at"
    assert bm["replication_key_value"] == "2024-01-01T00:00:02+00:00"
    assert sorted(k[0] for k in bm["keys_at_value"]) == [8, 9, 10]
    # STATE never runs ahead of RECORDs: every STATE follows the records it covers
    seen: set[int] = set()
    for m in first:
        if m["type"] == "RECORD":
            seen.add(m["record"]["id"])
        elif m["type"] == "STATE" and "items" in m["value"].get("bookmarks", {}):
            for k in m["value"]["bookmarks"]["items"].get("keys_at_value", []):
                assert k[0] in seen

    # rows 11 (same updated_at as the bookmark: the boundary) and 12..14 (newer) arrive
    make_items(db, range(11, 15))
    second = run_tap(_cfg(db), state=state)
    ids2 = [r["id"] for r in records_of(second)]
    assert ids2 == [11, 12, 13, 14], ids2
    assert not set(ids2) & set(ids1)

    # nothing new: nothing emitted, the bookmark stays
    third = run_tap(_cfg(db), state=last_state(second))
    assert records_of(third) == []
    assert (
        last_state(third)["bookmarks"]["items"]["replication_key_value"]
        == last_state(second)["bookmarks"]["items"]["replication_key_value"]
    )


def test_state_with_sdk_markers_is_ignored_by_adapter(tmp_path: Path, run_tap) -> None:
    db = tmp_path / "src.sqlite"
    make_items(db, range(1, 6))
    state = {
        "bookmarks": {
            "items": {
                "replication_key": "updated_at",
                "replication_key_value": "2024-01-01T00:00:00+00:00",
                "keys_at_value": [[1], [2], [3]],
                "starting_replication_value": "x",
                "progress_markers": {"Note": "x"},
            }
        }
    }
    ids = [r["id"] for r in records_of(run_tap(_cfg(db), state=state))]
    assert ids == [4, 5]


def test_full_table_stream_has_no_bookmark(tmp_path: Path, run_tap) -> None:
    db = tmp_path / "src.sqlite"
    make_items(db, range(1, 8))
    msgs = run_tap({"adapter": "lite", "path": str(db), "table": "items"})
    assert [r["id"] for r in records_of(msgs)] == list(range(1, 8))
    again = run_tap({"adapter": "lite", "path": str(db), "table": "items"}, state=last_state(msgs))
    assert len(records_of(again)) == 7  # full table: everything again
    assert "replication_key_value" not in last_state(msgs).get("bookmarks", {}).get("items", {})


def test_changed_replication_key_reads_from_start(tmp_path: Path, run_tap) -> None:
    db = tmp_path / "src.sqlite"
    make_items(db, range(1, 6))
    state = {"bookmarks": {"items": {"replication_key": "other", "replication_key_value": "zzz"}}}
    assert len(records_of(run_tap(_cfg(db), state=state))) == 5


def test_dry_run_limit(tmp_path: Path, lite_plugins) -> None:
    import io
    from contextlib import redirect_stdout

    from tap_dcapix.tap import TapDcApiX

    from tests.singer_tap.conftest import parse_messages

    db = tmp_path / "src.sqlite"
    make_items(db, range(1, 21))
    buf = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    with redirect_stdout(buf):
        tap = TapDcApiX(config=_cfg(db))
        assert tap.run_sync_dry_run(dry_run_record_limit=7)
    buf.flush()
    buf.seek(0)
    msgs = parse_messages(buf.read())
    assert [r["id"] for r in records_of(msgs)] == list(range(1, 8))
    # the state never covers a record that was not emitted
    bm = last_state(msgs)["bookmarks"]["items"]
    assert all(k[0] <= 7 for k in bm.get("keys_at_value", []))


def test_transforms_rename_mask_filter_keep_state(tmp_path: Path, run_tap) -> None:
    """dc-api-x transforms run on every batch: the SCHEMA, keys and replication key follow the
    renamed fields, and the state is still the adapter's bookmark (resume works)."""
    db = tmp_path / "src.sqlite"
    make_items(db, range(1, 11))
    cfg = _cfg(
        db,
        transforms=[
            {"type": "rename", "fields": {"updated_at": "changed_at", "id": "item_id"}},
            {"type": "mask", "fields": ["name"]},
            {"type": "filter", "expression": "item_id != 3"},
        ],
    )
    msgs = run_tap(cfg)
    schema = next(m for m in msgs if m["type"] == "SCHEMA")
    assert set(schema["schema"]["properties"]) == {"item_id", "name", "amount", "changed_at"}
    assert schema["key_properties"] == ["item_id"]
    assert schema["bookmark_properties"] == ["changed_at"]
    recs = records_of(msgs)
    assert [r["item_id"] for r in recs] == [1, 2, 4, 5, 6, 7, 8, 9, 10]
    assert all(r["name"] != f"name-{r['item_id']}" for r in recs)
    bm = last_state(msgs)["bookmarks"]["items"]
    assert bm["replication_key_value"] == "2024-01-01T00:00:02+00:00"
    make_items(db, range(11, 13))
    again = records_of(run_tap(cfg, state=last_state(msgs)))
    assert [r["item_id"] for r in again] == [11, 12]


def test_transforms_unknown_field_is_config_error(tmp_path: Path, run_tap) -> None:
    import pytest

    from dc_api_x.exceptions import ConfigError

    db = tmp_path / "src.sqlite"
    make_items(db, range(1, 3))
    with pytest.raises(ConfigError, match="nope"):
        run_tap(_cfg(db, transforms=[{"type": "rename", "fields": {"nope": "x"}}]))
