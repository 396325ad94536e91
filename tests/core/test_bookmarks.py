"""The shared incremental bookmark (:mod:`dc_api_x.bookmarks`)."""

from __future__ import annotations

import datetime as _dt
import json
import random
import subprocess
import sys
import uuid
from collections import Counter
from decimal import Decimal

import pyarrow as pa
import pytest

from dc_api_x.bookmarks import BoundaryBookmark, OrderError, row_hash
from dc_api_x.values import json_form

UTC = _dt.timezone.utc


def test_json_forms():
    assert json_form(_dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2024-01-02T03:04:05+00:00"
    assert json_form(_dt.date(2024, 1, 2)) == "2024-01-02"
    assert json_form(_dt.time(1, 2, 3)) == "01:02:03"
    assert json_form(Decimal("1.50")) == "1.50"
    assert json_form(Decimal("1E+3")) == "1000"
    assert json_form(b"\x00\xff") == "AP8="
    u = uuid.UUID(int=1)
    assert json_form(u) == str(u)
    assert json_form(7) == 7 and json_form("x") == "x" and json_form(None) is None


def test_module_imports_nothing_heavy():
    code = (
        "import sys, dc_api_x.bookmarks, dc_api_x.inference; "
        "print(sorted(m for m in ('pyarrow', 'sqlalchemy', 'httpx') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_from_state_forms():
    st = {"replication_key": "u", "replication_key_value": 5, "keys_at_value": [[1], 2]}
    bm = BoundaryBookmark.from_state(st, "u", ["id"])
    assert bm.has_start and bm.start_value == 5 and bm.start_keys == {(1,), (2,)}
    assert bm.to_state() == {"replication_key": "u", "replication_key_value": 5, "keys_at_value": [[1], [2]]}
    # a whole Singer state, with the stream name
    whole = BoundaryBookmark.from_state({"bookmarks": {"s": st}}, "u", ["id"], stream="s")
    assert whole.start_value == 5 and whole.start_keys == {(1,), (2,)}
    assert not BoundaryBookmark.from_state({"bookmarks": {"t": st}}, "u", ["id"], stream="s").has_start
    # another replication key, no value, no state: read everything
    assert not BoundaryBookmark.from_state(st, "other", ["id"]).has_start
    null_value = {"replication_key": "u", "replication_key_value": None}
    assert not BoundaryBookmark.from_state(null_value, "u").has_start
    assert BoundaryBookmark.from_state(None, "u").to_state() is None
    # without keys_at_value: start_keys is None (the ties policy decides)
    assert BoundaryBookmark.from_state({"replication_key_value": 5}, "u", ["id"]).start_keys is None
    # convert: the value in the adapter's form; its errors reach the caller
    conv = BoundaryBookmark.from_state(
        {"replication_key_value": "2024-01-01"}, "u", convert=_dt.date.fromisoformat
    )
    assert conv.start_value == _dt.date(2024, 1, 1)
    assert conv.to_state() == {
        "replication_key": "u",
        "replication_key_value": "2024-01-01",
        "keys_at_value": [],
    }
    with pytest.raises(ValueError):
        BoundaryBookmark.from_state({"replication_key_value": "nope"}, "u", convert=_dt.date.fromisoformat)


@pytest.mark.parametrize(
    ("keys", "ties", "expected"),
    [
        ([[1]], "keep", [2, 3, 4, 5]),  # listed keys: only those dropped at the value
        ([[1]], "drop", [2, 3, 4, 5]),  # the ties policy only applies without keys
        ([], "drop", [1, 2, 3, 4, 5]),  # an empty list: nothing was delivered at the value
        (None, "keep", [1, 2, 3, 4, 5]),  # no keys_at_value: at-least-once
        (None, "drop", [2, 4, 5]),  # no keys_at_value: the value is exclusive
    ],
)
def test_is_new_at_the_value(keys, ties, expected):
    state = {"replication_key": "u", "replication_key_value": 10}
    if keys is not None:
        state["keys_at_value"] = keys
    bm = BoundaryBookmark.from_state(state, "u", ["id"], ties=ties)
    rows = [
        {"id": 0, "u": 9},
        {"id": 1, "u": 10},
        {"id": 2, "u": 11},
        {"id": 3, "u": 10},
        {"id": 4, "u": 12},
        {"id": 5, "u": None},
    ]
    assert [r["id"] for r in bm.filter_records(rows)] == expected


def test_inclusive_lower_bound_and_nulls():
    bm = BoundaryBookmark("u", ["id"], ties="drop")
    bm.set_lower_bound(3)
    rows = [{"id": i, "u": i} for i in range(5)] + [{"id": 9, "u": None}]
    assert [r["id"] for r in bm.filter_records(rows)] == [3, 4, 9]
    assert bm.to_state() == {"replication_key": "u", "replication_key_value": 4, "keys_at_value": [[4]]}
    bm2 = BoundaryBookmark("u", ["id"])
    bm2.set_lower_bound(3)
    assert [r["id"] for r in bm2.filter_records(rows, keep_nulls=False)] == [3, 4]
    assert bm2.is_new(None) and not bm2.is_new(None, keep_nulls=False)


def test_filter_records_limit_max_keys_and_order():
    bm = BoundaryBookmark("u", ["id"])
    rows = [{"id": 1, "u": 5}, {"id": 2, "u": 3}, {"id": 3, "u": 5}, {"id": 3, "u": 5}, {"id": 4, "u": 6}]
    assert [r["id"] for r in bm.filter_records(rows, limit=4)] == [1, 2, 3, 3]
    # max semantics, keys in delivery order without duplicates; the undelivered row does not count
    assert bm.to_state() == {"replication_key": "u", "replication_key_value": 5, "keys_at_value": [[1], [3]]}
    with pytest.raises(OrderError) as ei:
        BoundaryBookmark("u", ["id"]).filter_records(rows, strict_order=True)
    assert ei.value.value == 3 and ei.value.previous == 5
    with pytest.raises(TypeError):
        BoundaryBookmark("u").filter_records([{"u": 1}, {"u": "a"}])
    # without primary keys: the value only, no keys
    nk = BoundaryBookmark("u")
    nk.filter_records(rows)
    assert nk.to_state(with_keys=False) == {"replication_key": "u", "replication_key_value": 6}


def test_state_is_json_safe_and_sortable():
    bm = BoundaryBookmark("t", ["k", "d"])
    t = _dt.datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    bm.advance_records(
        [
            {"t": t, "k": b"\x01", "d": Decimal("2.50")},
            {"t": t, "k": b"\x00", "d": Decimal("1.0")},
            {"t": None, "k": b"\x02", "d": Decimal(0)},
        ]
    )
    state = bm.to_state()
    assert json.loads(json.dumps(state)) == state
    assert state["replication_key_value"] == "2024-05-01T12:00:00+00:00"
    assert state["keys_at_value"] == [["AQ==", "2.50"], ["AA==", "1.0"]]
    assert bm.to_state(sort_keys=True)["keys_at_value"] == [["AA==", "1.0"], ["AQ==", "2.50"]]
    # the stored state resumes: both keys at the value are dropped, a third one is new
    again = BoundaryBookmark.from_state(state, "t", ["k", "d"])
    assert not again.is_new("2024-05-01T12:00:00+00:00", ("AA==", "1.0"))
    assert again.is_new("2024-05-01T12:00:00+00:00", ("Ag==", "1.0"))


def test_advance_to_sorted_reads():
    bm = BoundaryBookmark("u", ["id"], 5, [[1]])
    bm.advance_to(5, [(2,), (1,)])
    assert bm.keys == [(1,), (2,)]
    bm.advance_to(7, [(9,)])
    assert bm.to_state() == {"replication_key": "u", "replication_key_value": 7, "keys_at_value": [[9]]}
    empty = BoundaryBookmark("u")  # no primary key: the empty key stands for "every row at the value"
    empty.advance_to(3, [()])
    assert empty.to_state()["keys_at_value"] == [[]]


def test_arrow_filter_and_advance():
    t0 = _dt.datetime(2024, 1, 1, tzinfo=UTC)
    ts = [t0 + _dt.timedelta(hours=h) for h in (1, 2, 2, 3)] + [None]
    table = pa.table(
        {"id": pa.array([1, 2, 3, 4, 5], pa.int64()), "t": pa.array(ts, pa.timestamp("us", "UTC"))}
    )
    state = {"replication_key": "t", "replication_key_value": ts[1].isoformat(), "keys_at_value": [[2]]}
    bm = BoundaryBookmark.from_state(state, "t", ["id"], convert=_dt.datetime.fromisoformat)
    out = bm.filter_arrow(table)
    assert out.column("id").to_pylist() == [3, 4]  # < value dropped, key 2 dropped, null dropped
    # an explicit start scalar gives the same answer
    assert bm.filter_arrow(table, pa.scalar(ts[1], pa.timestamp("us", "UTC"))).equals(out)
    no_keys = BoundaryBookmark.from_state(
        {**state, "keys_at_value": []}, "t", ["id"], convert=_dt.datetime.fromisoformat
    )
    assert no_keys.filter_arrow(table).column("id").to_pylist() == [2, 3, 4]
    dropping = BoundaryBookmark.from_state({"replication_key_value": ts[1]}, "t", ["id"], ties="drop")
    assert dropping.filter_arrow(table).column("id").to_pylist() == [4]
    assert BoundaryBookmark("t").filter_arrow(table).num_rows == 5  # no start: untouched

    lo, hi = bm.advance_arrow(out.slice(0, 1))
    assert (lo, hi) == (ts[2], ts[2])
    assert bm.to_state() == {
        "replication_key": "t",
        "replication_key_value": ts[2].isoformat(),
        "keys_at_value": [[2], [3]],
    }  # same value: the keys accumulate
    bm.advance_arrow(out)
    assert bm.to_state()["keys_at_value"] == [[4]]
    assert bm.advance_arrow(table.slice(4)) == (None, None)  # only nulls: unchanged
    assert bm.to_state()["replication_key_value"] == ts[3].isoformat()


@pytest.mark.parametrize("seed", range(5))
def test_resume_after_any_batch_loses_and_repeats_nothing(seed):
    """Sorted reads cut at random batch boundaries, resumed from each batch's state: every row
    exactly once, also when a run of equal values straddles a boundary."""
    rnd = random.Random(seed)
    rows = sorted(({"id": i, "u": rnd.randint(0, 8)} for i in range(60)), key=lambda r: (r["u"], r["id"]))
    delivered: list[int] = []
    state = None
    for _ in range(200):  # bounded: a resume that repeats rows must fail, not spin
        bm = BoundaryBookmark.from_state(state, "u", ["id"])
        size = rnd.randint(1, 7)
        batch = bm.filter_records(rows, limit=size, strict_order=True)
        if not batch:
            break
        delivered += [r["id"] for r in batch]
        state = json.loads(json.dumps(bm.to_state()))
    else:
        pytest.fail("the resumed reads never ended (rows delivered again)")
    assert sorted(delivered) == list(range(60)) and len(delivered) == 60


# ------------------------------------------------------------------ streams without primary key
def test_row_hash_is_canonical_and_content_based():
    t = _dt.datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    row = {
        "t": t,
        "d": Decimal("2.50"),
        "b": b"\x00\xff",
        "day": _dt.date(2024, 5, 1),
        "u": uuid.UUID(int=7),
        "j": {"z": 1, "a": [1, None]},
        "s": "x",
        "f": 0.1,
        "n": None,
    }
    h = row_hash(row)
    assert len(h) == 32 and int(h, 16) >= 0
    # field order and the offset of an aware date-time (same instant) do not matter
    shuffled = dict(reversed(list(row.items())))
    shuffled["t"] = t.astimezone(_dt.timezone(_dt.timedelta(hours=2)))
    shuffled["j"] = {"a": [1, None], "z": 1}
    assert row_hash(shuffled) == h
    # any other content does
    for field, other in [
        ("t", t + _dt.timedelta(microseconds=1)),
        ("d", Decimal("2.5")),
        ("b", b"\x00"),
        ("s", "y"),
        ("n", 0),
        ("j", {"z": 2, "a": [1, None]}),
        ("f", 0.2),
    ]:
        assert row_hash({**row, field: other}) != h, field
    assert row_hash({k: v for k, v in row.items() if k != "n"}) != h  # a missing field differs from null
    # a value orjson cannot encode (beyond 64 bits) still hashes, stably
    assert row_hash({"big": 2**70}) == row_hash({"big": 2**70}) != row_hash({"big": 2**70 + 1})


def test_keyless_state_lists_row_hashes_as_a_multiset():
    rows = [{"u": 1, "v": "a"}, {"u": 2, "v": "b"}, {"u": 2, "v": "c"}, {"u": 2, "v": "b"}]
    bm = BoundaryBookmark("u")
    assert bm.hashed
    assert bm.filter_records(rows, limit=3) == rows[:3]
    state = bm.to_state()
    # one-element keys holding the hashes of the rows delivered at the max value (row 0 not hashed)
    assert state == {
        "replication_key": "u",
        "replication_key_value": 2,
        "keys_at_value": [[row_hash(rows[1])], [row_hash(rows[2])]],
    }
    # resume: the identical duplicate of a delivered row is delivered once more, the others not
    again = BoundaryBookmark.from_state(json.loads(json.dumps(state)), "u")
    assert again.filter_records(rows) == [rows[3]]
    assert sorted(again.to_state()["keys_at_value"]) == sorted(
        [[row_hash(rows[1])], [row_hash(rows[2])], [row_hash(rows[3])]]
    )
    # a resume from the state after all four drops every row
    final = BoundaryBookmark.from_state(again.to_state(), "u")
    assert final.filter_records(rows) == []
    # keyed streams keep their format: primary keys, deduplicated
    keyed = BoundaryBookmark("u", ["v"])
    keyed.filter_records(rows)
    assert keyed.to_state()["keys_at_value"] == [["b"], ["c"]]


@pytest.mark.parametrize(
    "state",
    [
        {"replication_key": "u", "replication_key_value": 2, "keys_at_value": [[]]},  # old SQL state
        {"replication_key": "u", "replication_key_value": 2},  # old HTTP/files state
        {"replication_key": "u", "replication_key_value": 2, "keys_at_value": []},
    ],
)
@pytest.mark.parametrize("ties", ["keep", "drop"])
def test_legacy_keyless_state_redelivers_rows_at_the_value(state, ties):
    rows = [{"u": 1, "v": "a"}, {"u": 2, "v": "b"}, {"u": 2, "v": "c"}, {"u": 3, "v": "d"}]
    bm = BoundaryBookmark.from_state(state, "u", ties=ties)
    assert bm.keeps_ties() and not bm.drops_ties()
    assert bm.filter_records(rows) == rows[1:]  # at-least-once, never a loss
    table = pa.table({"u": [1, 2, 2, 3], "v": ["a", "b", "c", "d"]})
    assert BoundaryBookmark.from_state(state, "u", ties=ties).filter_arrow(table).column("v").to_pylist() == [
        "b",
        "c",
        "d",
    ]
    # the legacy empty key is not carried into the new state
    assert bm.to_state()["keys_at_value"] == [[row_hash(rows[3])]]


def _runs(rnd: random.Random, n: int) -> list[dict]:
    """Keyless rows with long runs of equal values and some identical duplicates."""
    rows = [{"u": rnd.randint(0, 5), "v": rnd.randint(0, 12)} for _ in range(n)]
    return rows + [dict(r) for r in rows[: n // 6]]


@pytest.mark.parametrize("seed", range(5))
def test_keyless_resume_after_any_batch_loses_and_repeats_nothing(seed):
    """A sorted keyless read, re-sorted differently among equal values on every run (like SQL
    without ORDER BY on a key), cut at random batches, resumed from each batch's state."""
    rnd = random.Random(seed)
    rows = _runs(rnd, 60)
    delivered: list[tuple[int, int]] = []
    state = None
    for _ in range(300):
        source = sorted(rows, key=lambda r: (r["u"], rnd.random()))
        bm = BoundaryBookmark.from_state(state, "u")
        batch = bm.filter_records(source, limit=rnd.randint(1, 7), strict_order=True)
        if not batch:
            break
        delivered += [(r["u"], r["v"]) for r in batch]
        state = json.loads(json.dumps(bm.to_state()))
    else:
        pytest.fail("the resumed reads never ended (rows delivered again)")
    assert Counter(delivered) == Counter((r["u"], r["v"]) for r in rows)


@pytest.mark.parametrize("seed", range(3))
def test_keyless_arrow_resume_after_any_batch(seed):
    rnd = random.Random(seed)
    rows = sorted(_runs(rnd, 50), key=lambda r: r["u"])
    table = pa.table(
        {"u": pa.array([r["u"] for r in rows], pa.int64()), "v": pa.array([r["v"] for r in rows], pa.int64())}
    )
    delivered: list[tuple[int, int]] = []
    state = None
    for _ in range(300):
        bm = BoundaryBookmark.from_state(state, "u", convert=int)
        rest = bm.filter_arrow(table)
        part = rest.slice(0, rnd.randint(1, 6))
        if part.num_rows == 0:
            break
        bm.advance_arrow(part)
        delivered += [(r["u"], r["v"]) for r in part.to_pylist()]
        state = json.loads(json.dumps(bm.to_state(sort_keys=True)))
        # only the rows at the max value are hashed into the state
        at_max = sum(1 for r in delivered if r[0] == state["replication_key_value"])
        assert len(state["keys_at_value"]) == at_max
    else:
        pytest.fail("the resumed reads never ended (rows delivered again)")
    assert Counter(delivered) == Counter((r["u"], r["v"]) for r in rows)


def test_keyless_advance_records_and_advance_to():
    rows = [{"u": 1, "v": 1}, {"u": 3, "v": 2}, {"u": None, "v": 3}, {"u": 3, "v": 2}, {"u": 2, "v": 4}]
    bm = BoundaryBookmark("u")
    bm.advance_records(rows)
    assert bm.to_state()["keys_at_value"] == [[row_hash(rows[1])]] * 2
    bm.advance_to(3, [(row_hash({"u": 3, "v": 9}),)])
    assert len(bm.keys) == 3
    bm.advance_to(4, [("h",)])
    assert bm.to_state()["keys_at_value"] == [["h"]]


def test_to_state_keys_are_json_forms_whatever_their_types():
    """``to_state`` copies keys of JSON scalars as they are and renders the others with
    ``json_form`` (date-times, decimals, bytes, UUIDs, str subclasses), key by key."""
    import enum

    class Color(str, enum.Enum):
        RED = "red"

    at = _dt.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    keys = [
        ("uid=a,ou=people",),
        (1, "x", None, True, 2.5),
        (at, "y"),
        ("z", Decimal("1.50")),
        (b"\x00\xff", 3),
        (uuid.UUID(int=5),),
        (Color.RED,),
        (),
    ]
    bm = BoundaryBookmark("modifyTimestamp", ("dn",))
    bm.advance_to(at, keys)
    state = bm.to_state()
    assert state is not None
    assert state["keys_at_value"] == [[json_form(v) for v in k] for k in keys]
    assert state["keys_at_value"][3] == ["z", "1.50"] and state["keys_at_value"][4] == ["AP8=", 3]
    assert all(type(k) is list for k in state["keys_at_value"])
    state["keys_at_value"][0].append("changed")  # the state is a copy: the bookmark is unchanged
    assert bm.keys[0] == ("uid=a,ou=people",)
