"""The Arrow fast path emits the same values as the dict path (exact decimals, instants, JSON)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import orjson
import pytest
from tap_dcapix.fastjson import arrow_json_records

from dc_api_x.arrow import arrow_to_records, records_to_arrow
from dc_api_x.values import singer_json_default as json_default

SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": ["integer"]},
        "ts": {"type": ["string", "null"], "format": "date-time"},
        "naive": {"type": ["string", "null"], "format": "date-time", "x-timezone": False},
        "day": {"type": ["string", "null"], "format": "date"},
        "amount": {"type": ["string", "null"], "format": "decimal", "x-precision": 38, "x-scale": 9},
        "doc": {"type": ["object", "null"], "x-json": True},
        "raw": {"type": ["string", "null"], "contentEncoding": "base64"},
        "ratio": {"type": ["number", "null"]},
        "flag": {"type": ["boolean", "null"]},
        "name": {"type": ["string", "null"]},
    },
}


def _norm(rec: dict) -> dict:
    out = dict(rec)
    for k in ("ts", "naive"):
        if out[k] is not None:
            out[k] = dt.datetime.fromisoformat(out[k])
    if out["amount"] is not None:
        out["amount"] = Decimal(out["amount"])
    return out


def test_arrow_path_equals_dict_path() -> None:
    berlin = dt.timezone(dt.timedelta(hours=1))
    recs = [
        {
            "id": 1,
            "ts": dt.datetime(2024, 3, 1, 12, 0, 0, 123456, tzinfo=dt.timezone.utc),
            "naive": dt.datetime(1999, 12, 31, 23, 59, 59),
            "day": dt.date(2024, 2, 29),
            "amount": Decimal("12345678901234567890.123456789"),
            "doc": {"a": [1, "x", None], "b": {"c": 1.5}},
            "raw": b"\x00\xffbin",
            "ratio": 0.1,
            "flag": True,
            "name": 'ünïcode "q"',
        },
        {
            "id": 2,
            "ts": dt.datetime(2024, 3, 1, 13, 0, tzinfo=berlin),
            "naive": None,
            "day": None,
            "amount": Decimal("-0.000000001"),
            "doc": "just a string",
            "raw": None,
            "ratio": None,
            "flag": False,
            "name": None,
        },
        {k: None for k in SCHEMA["properties"]} | {"id": 3},
    ]
    table = records_to_arrow(recs, SCHEMA)
    fast = orjson.loads(orjson.dumps(arrow_json_records(table, SCHEMA)))
    slow = orjson.loads(orjson.dumps(arrow_to_records(table, SCHEMA), default=json_default))
    assert [_norm(r) for r in fast] == [_norm(r) for r in slow]
    assert fast[0]["amount"] == "12345678901234567890.123456789"
    assert fast[1]["ts"].endswith("+00:00") and fast[1]["ts"].startswith("2024-03-01T12:00:00")
    assert fast[1]["doc"] == "just a string"


def test_arrow_lines_equal_orjson_lines() -> None:
    """The Arrow-kernel line builder gives the same JSON documents as orjson on the records path,
    including strings that need escaping, control characters, floats and nulls."""
    import pyarrow as pa
    from tap_dcapix.fastjson import arrow_json_lines

    tricky = [
        "plain",
        'quote " and \\ backslash',
        "new\nline\ttab\rcr",
        "bell\x07 and \x00 nul",
        "ünïcode ☃ \u2028",
        "",
        None,
        '{"not": "json"}',
        '},{"id":1',
    ]
    n = len(tricky)
    table = pa.table(
        {
            "id": pa.array(range(n), pa.int64()),
            "s": pa.array(tricky, pa.string()),
            "f": pa.array(
                [5.0, 0.1, 1e16, -0.0, float("nan"), float("inf"), None, 2.5e-320, 123.125], pa.float64()
            ),
            "f32": pa.array([0.1] * n, pa.float32()),
            "b": pa.array([True, False, None] * 3),
            "ts": pa.array(
                [dt.datetime(2024, 1, 1, 0, 0, i, tzinfo=dt.timezone.utc) for i in range(n - 1)] + [None],
                pa.timestamp("us", tz="UTC"),
            ),
            "d": pa.array([Decimal("1.10")] * (n - 1) + [None], pa.decimal128(10, 2)),
            "j": pa.array(['{"a": [1, 2]}', "null", '"x"'] * 3, pa.string()),
            "lst": pa.array([[1, 2]] * n, pa.list_(pa.int64())),
            "raw": pa.array([b"\x00\x01"] * n, pa.binary()),
        }
    )
    schema = {"type": "object", "properties": {"j": {"type": ["object", "null"], "x-json": True}}}
    head = b'{"type":"RECORD","stream":"s","record":'
    tail = b',"time_extracted":"2024-01-01T00:00:00+00:00"}\n'
    fast = arrow_json_lines(table, schema, head, tail)
    lines = fast.split(b"\n")
    assert lines[-1] == b"" and len(lines) == n + 1
    got = [orjson.loads(x) for x in lines[:-1]]
    want = [
        orjson.loads(head + orjson.dumps(r) + tail.rstrip(b"\n")) for r in arrow_json_records(table, schema)
    ]
    assert got == want
    assert got[3]["record"]["s"] == "bell\x07 and \x00 nul"
    assert got[0]["record"]["f"] == 5.0 and isinstance(got[0]["record"]["f"], float)
    assert got[4]["record"]["f"] is None and got[5]["record"]["f"] is None


def test_arrow_lines_without_nulls() -> None:
    """Columns without nulls take the quotes-in-the-constant-parts path; same JSON either way."""
    import pyarrow as pa
    from tap_dcapix.fastjson import arrow_json_lines

    table = pa.table(
        {
            "plain": pa.array(["a", "b c", ""]),
            "esc": pa.array(['x"y', "back\\slash", "line\nbreak"]),
            "ts": pa.array(
                [dt.datetime(2024, 5, 6, 7, 8, 9, 10, tzinfo=dt.timezone.utc)] * 3,
                pa.timestamp("us", tz="UTC"),
            ),
            "day": pa.array([dt.date(2024, 1, 2)] * 3),
            "n": pa.array([1, 2, 3], pa.int32()),
        }
    )
    out = arrow_json_lines(table, None, b"", b"\n")
    got = [orjson.loads(x) for x in out.splitlines()]
    want = orjson.loads(orjson.dumps(arrow_json_records(table, None)))
    assert got == want
    assert got[1]["esc"] == "back\\slash" and got[2]["esc"] == "line\nbreak"


def test_emitted_record_forms_are_unchanged(capsysbinary) -> None:
    """The JSON forms of RECORD messages (the same as dc-api-x 0.2.0 wrote): decimals in plain
    notation, base64 bytes, ISO dates and times, intervals as seconds."""
    import datetime as dt
    import uuid
    from decimal import Decimal

    from tap_dcapix.writer import FastSingerWriter

    w = FastSingerWriter()
    record = {
        "d": Decimal("1E-10"),
        "d2": Decimal("12.50"),
        "b": b"\x00\xff",
        "day": dt.date(2024, 2, 29),
        "ts": dt.datetime(2024, 2, 29, 1, 2, 3, 4, tzinfo=dt.timezone.utc),
        "t": dt.time(1, 2, 3),
        "iv": dt.timedelta(minutes=1, microseconds=5),
        "u": uuid.UUID(int=1),
    }
    w.write_records("s", [record])
    w.flush()
    line = capsysbinary.readouterr().out
    assert line == (
        b'{"type":"RECORD","stream":"s","record":{"d":"0.0000000001","d2":"12.50","b":"AP8=",'
        b'"day":"2024-02-29","ts":"2024-02-29T01:02:03.000004+00:00","t":"01:02:03","iv":60.000005,'
        b'"u":"00000000-0000-0000-0000-000000000001"}}\n'
    )


def test_kernels_give_what_pyarrow_compute_gives() -> None:
    """``tap_dcapix.kernels`` (the kernels by name, without importing ``pyarrow.compute``) returns
    the same arrays as the ``pyarrow.compute`` functions and ``Array`` methods it stands for."""
    import pyarrow as pa
    import pyarrow.compute as pc
    from tap_dcapix import kernels as k

    text = pa.array(['a"b', None, "x\\y", "", "line\nnext"])
    chunked = pa.chunked_array([["1", None], ["3"]])
    ts = pa.array([dt.datetime(2026, 1, 2, 3, 4, 5, 600000), None], pa.timestamp("ns", tz="UTC"))
    nums = pa.array([1.5, None, float("inf"), 2.0])
    cases = [
        (k.cast(ts, pa.timestamp("us", tz="UTC")), ts.cast(pa.timestamp("us", tz="UTC"))),
        (k.cast(nums, pa.string()), nums.cast(pa.string())),
        (k.cast(pa.array([1, None]), pa.string()), pa.array([1, None]).cast(pa.string())),
        (k.cast(chunked, pa.large_string()), chunked.cast(pa.large_string())),
        (k.fill_null(text, "null"), text.fill_null("null")),
        (k.utf8_replace_slice(text, 1, 2, "T"), pc.utf8_replace_slice(text, 1, 2, "T")),
        (
            k.binary_join_element_wise(text, pa.scalar("+"), pa.scalar("")),
            pc.binary_join_element_wise(text, pa.scalar("+"), pa.scalar("")),
        ),
        (k.any_true(pc.is_null(text)), pc.any(pc.is_null(text))),
        (k.any_true(pa.array([None, False], pa.bool_())), pc.any(pa.array([None, False], pa.bool_()))),
        (k.match_substring_regex(text, r'["\\]'), pc.match_substring_regex(text, r'["\\]')),
        (k.replace_substring(text, "\\", "\\\\"), pc.replace_substring(text, "\\", "\\\\")),
        (k.is_finite(nums), pc.is_finite(nums)),
        (
            k.if_else(pc.is_finite(nums), nums, pa.scalar(None, pa.float64())),
            pc.if_else(pc.is_finite(nums), nums, pa.scalar(None, pa.float64())),
        ),
    ]
    for got, want in cases:
        assert got.type == want.type and got.equals(want), (got, want)
    with pytest.raises(pa.ArrowInvalid):  # a safe cast, as Array.cast's default
        k.cast(pa.array([1.5]), pa.int64())
