"""The safe expression grammar: what it accepts, what it rejects (never eval), null logic."""

from __future__ import annotations

import pytest

from dc_api_x import ConfigError, SchemaError
from dc_api_x.ext.transforms import build_transforms
from dc_api_x.transforms.expressions import parse_expression

from .helpers import arrow_batch, dict_batch, run_both

pytestmark = pytest.mark.usefixtures("plugins")

SCHEMA = {
    "type": "object",
    "properties": {
        "a": {"type": ["integer", "null"]},
        "b": {"type": ["boolean", "null"]},
        "s": {"type": ["string", "null"]},
    },
}


@pytest.mark.parametrize(
    "expr",
    [
        "__import__('os')",
        "__import__('os').system('touch /tmp/pwned')",
        "open('/etc/passwd')",
        "a.__class__",
        "().__class__.__bases__[0].__subclasses__()",
        "s[0] == 'x'",
        "(lambda: 1)()",
        "[x for x in a]",
        "a if b else 1",
        "a := 1",
        "__builtins__",
        "f'{a}'",
        "a ** 2 > 1",
        "s.upper() == 'X'",
        "a is 1",
        "a in s",
        "{'k': 1}",
        "",
        "a >",
    ],
)
def test_grammar_rejects(expr: str) -> None:
    with pytest.raises(ConfigError) as ei:
        parse_expression(expr, arithmetic=True, where="transform 'filter'")
    assert "transform 'filter'" in str(ei.value)
    with pytest.raises(ConfigError):
        build_transforms([{"type": "filter", "expression": expr}], SCHEMA)


def test_rejected_code_is_never_run(tmp_path) -> None:
    marker = tmp_path / "pwned"
    for expr in (f"__import__('pathlib').Path({str(marker)!r}).touch()", f"open({str(marker)!r}, 'w')"):
        with pytest.raises(ConfigError):
            build_transforms([{"type": "filter", "expression": expr}], SCHEMA)
        with pytest.raises(ConfigError):
            build_transforms([{"type": "add_field", "name": "x", "expression": expr}], SCHEMA)
    assert not marker.exists()


def test_arithmetic_only_in_add_field() -> None:
    assert parse_expression("a + 1", arithmetic=True).fields == ["a"]
    with pytest.raises(ConfigError, match="operator Add is not allowed"):
        parse_expression("a + 1 > 2")
    e = parse_expression("a > -1 and s in ['x', 'y'] and not b or s is None")
    assert e.fields == ["a", "s", "b"]


def test_kleene_null_logic_same_on_both_paths() -> None:
    rows = [
        {"a": None, "b": True, "s": "x"},
        {"a": None, "b": False, "s": None},
        {"a": 5, "b": None, "s": "y"},
        {"a": 1, "b": True, "s": "z"},
    ]
    cases = {
        "a > 2 or b": [0, 2, 3],  # null or true = true
        "a > 2 and b": [],  # true and null = null -> dropped
        "not (a > 2)": [3],  # not null = null
        "b or a > 2": [0, 2, 3],
        "s not in ['x']": [2, 3],  # null not in [...] is unknown
        "a is None": [0, 1],
        "a is not None and s in ['y', 'z']": [2, 3],
    }
    for expr, kept in cases.items():
        configs = [
            {"type": "add_field", "name": "row", "expression": "a", "overwrite": False, "cast": "string"},
            {"type": "filter", "expression": expr},
        ]
        _, out_d, out_a = run_both(configs, rows, SCHEMA)
        want = [rows[i] for i in kept]
        assert [(r["a"], r["b"], r["s"]) for r in out_d.records] == [
            (r["a"], r["b"], r["s"]) for r in want
        ], expr
        assert out_a.num_rows == len(kept)


def test_bad_data_type_in_filter_is_schema_error() -> None:
    """A schema that says boolean but data that is not: a clear error, not a silent drop."""
    schema = {"type": "object", "properties": {"b": {}}}
    chain = build_transforms([{"type": "filter", "expression": "b and True"}], schema, stream="st")
    with pytest.raises(SchemaError, match="expected a boolean"):
        chain(dict_batch([{"b": "yes"}], schema))
    with pytest.raises(SchemaError, match="expected a boolean"):
        chain(arrow_batch([{"b": "yes"}], schema))


def test_in_with_mixed_numbers_and_offset_constants() -> None:
    import datetime as dt

    schema = {
        "type": "object",
        "properties": {
            "a": {"type": ["integer", "null"]},
            "t": {"type": ["string", "null"], "format": "date-time"},
            "n": {"type": ["string", "null"], "format": "date-time", "x-timezone": False},
        },
    }
    utc = dt.timezone.utc
    rows = [
        {"a": 1, "t": dt.datetime(2024, 1, 1, 10, tzinfo=utc), "n": dt.datetime(2024, 1, 1, 10)},
        {"a": 2, "t": dt.datetime(2024, 1, 1, 12, tzinfo=utc), "n": dt.datetime(2024, 1, 1, 12)},
        {"a": 3, "t": None, "n": None},
    ]
    for expr, want in {
        "a in [1, 2.5, 3]": [1, 3],
        "t > '2024-01-01T12:30:00+02:00'": [2],  # 10:30 UTC
        "t < '2024-01-01T12:30:00+02:00'": [1],
        "n >= '2024-01-01T11:00:00Z'": [2],
        "t == '2024-01-01T10:00:00Z' or n == '2024-01-01T12:00:00'": [1, 2],
    }.items():
        _, out_d, out_a = run_both([{"type": "filter", "expression": expr}], rows, schema)
        assert [r["a"] for r in out_d.records] == want, expr
        assert out_a.to_arrow().column("a").to_pylist() == want, expr
