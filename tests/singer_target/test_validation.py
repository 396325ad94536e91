"""The compiled record validator agrees with jsonschema and names the failing field."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from target_dcapix.validation import compile_record_validator

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "integer", "minimum": 1},
        "name": {"type": ["string", "null"], "maxLength": 5, "pattern": "^[a-z]*$"},
        "price": {"type": ["number", "null"], "exclusiveMaximum": 100},
        "flag": {"type": "boolean"},
        "kind": {"enum": ["a", "b", None]},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2},
        "dims": {
            "type": "object",
            "properties": {"w": {"type": "integer"}},
            "required": ["w"],
            "additionalProperties": False,
        },
        "either": {"anyOf": [{"type": "integer"}, {"type": "string", "format": "date-time"}]},
        "blob": {"type": ["object", "null"], "additionalProperties": True},
        "ts": {"type": "string", "format": "date-time"},
    },
    "required": ["id"],
}

CASES = [
    {"id": 1},
    {"id": 1.0},
    {"id": 1.5},
    {"id": True},
    {"id": "1"},
    {"id": 0},
    {"name": "ab"},
    {"id": 2, "name": None},
    {"id": 2, "name": "abcdef"},
    {"id": 2, "name": "AB"},
    {"id": 2, "price": 100},
    {"id": 2, "price": 99.5},
    {"id": 2, "price": True},
    {"id": 2, "flag": 1},
    {"id": 2, "flag": False},
    {"id": 2, "kind": "c"},
    {"id": 2, "kind": None},
    {"id": 2, "kind": "a"},
    {"id": 2, "tags": ["x", 1]},
    {"id": 2, "tags": ["x", "y", "z"]},
    {"id": 2, "tags": []},
    {"id": 2, "dims": {"w": 1}},
    {"id": 2, "dims": {}},
    {"id": 2, "dims": {"w": 1, "h": 2}},
    {"id": 2, "either": 3},
    {"id": 2, "either": "x"},
    {"id": 2, "either": 1.5},
    {"id": 2, "blob": {"any": [1, {"x": None}]}},
    {"id": 2, "blob": []},
    {"id": 2, "ts": "not a date"},
    {"id": 2, "extra": object.__name__},
]


@pytest.mark.parametrize("record", CASES, ids=[str(c) for c in CASES])
def test_agrees_with_jsonschema(record: dict[str, Any]) -> None:
    expected = jsonschema.Draft202012Validator(SCHEMA).is_valid(record)
    assert (compile_record_validator(SCHEMA)(record) is None) is expected


def test_names_the_nested_field() -> None:
    check = compile_record_validator(SCHEMA)
    assert check({"id": 2, "dims": {"w": "x"}}) == ("dims.w", "'x' is not of type integer")
    assert check({"id": 2, "tags": ["a", 3]}) == ("tags[1]", "3 is not of type string")
    assert check({"name": "a"}) == ("id", "required property is missing")


def test_type_only_schemas_are_marked_cacheable() -> None:
    plain = compile_record_validator(
        {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": ["number", "null"]}}}
    )
    assert plain.type_only is True and plain.int_only == ("a",)  # type: ignore[attr-defined]
    assert compile_record_validator(SCHEMA).type_only is False  # type: ignore[attr-defined]


def test_a_cached_shape_never_lets_a_fractional_integer_through(run_target) -> None:
    schema = {"type": "object", "properties": {"id": {"type": "integer"}}}
    msgs = [
        {"type": "SCHEMA", "stream": "s", "schema": schema, "key_properties": ["id"]},
        {"type": "RECORD", "stream": "s", "record": {"id": 1}},
        {"type": "RECORD", "stream": "s", "record": {"id": 2.0}},
        {"type": "RECORD", "stream": "s", "record": {"id": 2.5}},
    ]
    run = run_target(msgs, inprocess=True)
    assert run.rc == 1
    assert "line 4" in run.error_lines[0] and "field 'id'" in run.error_lines[0]
