"""dc_api_x.values: the one owner of JSON forms, ISO date-time parsing, decimals and Arrow errors."""

from __future__ import annotations

import datetime as _dt
import json
import uuid
from decimal import Decimal

import orjson
import pytest

from dc_api_x.values import (
    arrow_errors,
    decimal_text,
    error_line,
    fit_decimal,
    json_default,
    json_form,
    parse_datetime,
    parse_time,
    singer_json_default,
)

UTC = _dt.timezone.utc


def test_json_forms():
    assert json_form(_dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2024-01-02T03:04:05+00:00"
    assert json_form(_dt.date(2024, 1, 2)) == "2024-01-02"
    assert json_form(_dt.time(1, 2, 3, 4)) == "01:02:03.000004"
    assert json_form(Decimal("1.50")) == "1.50"
    assert json_form(Decimal("1E-10")) == "0.0000000001"  # never an exponent
    assert json_form(Decimal("1E+3")) == "1000"
    assert decimal_text(Decimal("-12.345E-2")) == "-0.12345"
    assert json_form(b"\x00\xff") == json_form(bytearray(b"\x00\xff")) == json_form(memoryview(b"\x00\xff"))
    assert json_form(b"\x00\xff") == "AP8="
    u = uuid.UUID(int=1)
    assert json_form(u) == str(u)
    assert json_form(7) == 7 and json_form("x") == "x" and json_form(None) is None


def test_stored_and_emitted_defaults_differ_only_where_documented():
    values = [Decimal("1E-10"), b"\x01", _dt.date(2024, 1, 1), uuid.UUID(int=2)]
    for v in values:
        assert json_default(v) == singer_json_default(v) == json_form(v)
    # stdlib json and orjson give the same stored text
    doc = {"d": Decimal("2.50"), "b": b"\x00", "t": _dt.datetime(2024, 1, 1, tzinfo=UTC)}
    assert orjson.loads(orjson.dumps(doc, default=json_default)) == json.loads(
        json.dumps(doc, default=json_default)
    )
    # emitted Singer records carry intervals and sets; stored data refuses them (never lossy state)
    assert singer_json_default(_dt.timedelta(minutes=1, microseconds=5)) == 60.000005
    assert singer_json_default({3}) == [3]
    for bad in (_dt.timedelta(seconds=1), {3}, object()):
        with pytest.raises(TypeError):
            json_default(bad)
    with pytest.raises(TypeError):
        singer_json_default(object())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-01T00:00:00Z", _dt.datetime(2024, 1, 1, tzinfo=UTC)),
        ("2024-01-01T00:00:00z", _dt.datetime(2024, 1, 1, tzinfo=UTC)),
        (
            " 2024-01-01 02:00:00+02:00 ",
            _dt.datetime(2024, 1, 1, 2, tzinfo=_dt.timezone(_dt.timedelta(hours=2))),
        ),
        ("2024-01-01T00:00:00.123456000Z", _dt.datetime(2024, 1, 1, 0, 0, 0, 123456, tzinfo=UTC)),
        ("2024-01-01T00:00:00.5", _dt.datetime(2024, 1, 1, 0, 0, 0, 500000)),
    ],
)
def test_parse_datetime(text, expected):
    assert parse_datetime(text) == expected
    assert (parse_datetime(text).tzinfo is None) == (expected.tzinfo is None)


def test_parse_datetime_and_time_refuse_truncation():
    with pytest.raises(ValueError, match="sub-microsecond"):
        parse_datetime("2024-01-01T00:00:00.1234567Z")
    with pytest.raises(ValueError, match="sub-microsecond"):
        parse_time("10:00:00.1234567")
    assert parse_time("10:00:00.1234560") == _dt.time(10, 0, 0, 123456)
    with pytest.raises(ValueError):
        parse_datetime("yesterday")


def test_fit_decimal_pads_and_never_rounds():
    assert fit_decimal(Decimal("1.5"), 2) == Decimal("1.50")
    assert str(fit_decimal(Decimal("1.5"), 2)) == "1.50"
    assert fit_decimal(Decimal("1.2300"), 2, 10) == Decimal("1.23")
    big = Decimal("1234567890123456789012345678901234.5678")  # 38 digits: Python's 28 would round
    assert fit_decimal(big, 4, 38) == big
    with pytest.raises(ValueError, match="more than 2 decimal places"):
        fit_decimal(Decimal("1.234"), 2)
    with pytest.raises(ValueError, match=r"does not fit decimal\(10,2\)"):
        fit_decimal(Decimal("123456789012"), 2, 10)
    with pytest.raises(ValueError, match="finite"):
        fit_decimal(Decimal("NaN"), 2)


def test_arrow_errors_and_error_line():
    import pyarrow as pa

    errors = arrow_errors()
    with pytest.raises(errors):
        pa.array(["x"], pa.int64())
    with pytest.raises(errors):
        orjson.loads(b"{")
    assert error_line(ValueError("first\nsecond")) == "first"
    assert error_line(ValueError()) == "ValueError"
    assert len(error_line(ValueError("x" * 1000))) == 300


def test_numbers_beyond_float64s_range_take_the_exact_path() -> None:
    from decimal import Decimal

    from dc_api_x.values import has_long_digit_run, json_loads, may_change_numbers

    assert json_loads(b'{"x": 1e-400}')["x"] == Decimal("1e-400")  # orjson alone: 0.0
    assert json_loads(b"[-1E-400]")[0] == Decimal("-1e-400")
    assert may_change_numbers(b'{"x": 1e-400}') and has_long_digit_run(b"[1e-400]")
    # three-digit exponents a float64 holds stay floats
    assert json_loads(b'{"x": 1e308, "y": 1.5e-300}') == {"x": 1e308, "y": 1.5e-300}
    assert not may_change_numbers(b'{"x": 1e308, "y": 1.5e-300}')


def test_long_digit_run_check_finds_every_big_exponent_the_pattern_finds():
    """``has_long_digit_run`` tells a three-digit exponent by a byte translation and substring
    searches, not a regex scan: it must say True wherever the pattern matches (and for a 16-digit
    run), on crafted and random inputs; False on plain data."""
    import random
    import re

    from dc_api_x.values import has_long_digit_run

    pattern = re.compile(rb"[0-9.][eE][-+]?[0-9]{3}")
    long_run = re.compile(rb"[0-9.]{16}")
    for text in [b"1e400", b"1E-400", b"[.5e+308]", b'{"a": 2e-1000}', b"9e999 ", b"x1e3000"]:
        assert has_long_digit_run(text), text
    for text in [b"1e40", b"1e-40", b"e400", b"1x400", b'{"note": "see 1e 400"}', b"1e+40"]:
        assert not has_long_digit_run(text), text
    assert has_long_digit_run(b"12345678.01234567") and not has_long_digit_run(b"123456789012345")
    rng = random.Random(15)
    alphabet = b'0123456789.eE+-x" '
    for _ in range(20_000):
        data = bytes(rng.choice(alphabet) for _ in range(rng.randint(1, 24)))
        expected = bool(pattern.search(data) or long_run.search(data))
        if expected:
            assert has_long_digit_run(data), data
    plain = b'{"type":"RECORD","stream":"s","record":{"id":12,"amount":250.11,"name":"e 400"}}\n' * 1000
    assert not has_long_digit_run(plain)
