"""JSON error messages: what is wrong, named for what it is, at line, column and byte."""

from __future__ import annotations

import json

import orjson
import pytest

from dc_api_x.json_errors import describe_json_error, json_error_byte


@pytest.mark.parametrize(
    ("data", "what", "column", "byte"),
    [
        # a lone LOW surrogate: orjson says "invalid high surrogate"
        (b'{"a":"\xc3\xa9\\udc81"}', "lone low surrogate \\udc81 (no high surrogate before it)", 8, 8),
        (
            b'{"a":"x\\ud800\\udc00\\udc00"}',
            "lone low surrogate \\udc00 (no high surrogate before it)",
            20,
            19,
        ),
        (b'{"a":"\\ud800"}', "lone high surrogate \\ud800 (no low surrogate after it)", 7, 6),
        (b'["\\ud800\\u0041"]', "high surrogate \\ud800 followed by \\u0041, not by a low surrogate", 3, 2),
        (b'{"\xc3\xa9": [1', "unexpected end of data", 9, 9),
        (b'{"a": 1,\n"b": x}', "unexpected character, expected a JSON value", 6, 14),
    ],
)
def test_describe_json_error(data: bytes, what: str, column: int, byte: int) -> None:
    with pytest.raises(orjson.JSONDecodeError) as ei:
        orjson.loads(data)
    line = data[:byte].count(b"\n") + 1
    assert describe_json_error(ei.value, data) == f"{what} at line {line} column {column} (byte {byte})"
    assert json_error_byte(ei.value, data) == byte


def test_describe_json_error_of_a_str_and_of_the_stdlib_decoder() -> None:
    text = '{"a": "\u20ac", "b": }'
    with pytest.raises(json.JSONDecodeError) as ei:
        json.loads(text)
    assert (
        describe_json_error(ei.value, text) == "Expecting value at line 1 column 17 (byte 18)"
    )  # € is 3 bytes
