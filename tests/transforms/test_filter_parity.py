"""Differential test: random filter / add_field expressions give the same rows on dicts and on Arrow."""

from __future__ import annotations

import random

import pytest

from dc_api_x import SchemaError
from dc_api_x.ext.transforms import build_transforms

from .helpers import arrow_batch, dict_batch

pytestmark = pytest.mark.usefixtures("plugins")

SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "a": {"type": ["integer", "null"]},
        "x": {"type": ["number", "null"]},
        "b": {"type": ["boolean", "null"]},
        "s": {"type": ["string", "null"]},
    },
}


def rows(rng: random.Random, n: int) -> list[dict]:
    out = []
    for i in range(n):
        out.append(
            {
                "id": i,
                "a": rng.choice([None, -2, 0, 1, 3, 7, 100]),
                "x": rng.choice([None, -1.5, 0.0, 0.5, 3.0, 1e6]),
                "b": rng.choice([None, True, False]),
                "s": rng.choice([None, "", "a", "b", "abc", "é"]),
            }
        )
    return out


def cond(rng: random.Random, depth: int = 0) -> str:
    if depth > 2 or rng.random() < 0.35:
        kind = rng.randrange(7)
        if kind == 0:
            return f"a {rng.choice(['==', '!=', '<', '<=', '>', '>='])} {rng.choice([-2, 0, 1, 3, 2.5])}"
        if kind == 1:
            return f"x {rng.choice(['<', '>=', '=='])} {rng.choice([0, 0.5, 3])}"
        if kind == 2:
            return f"s {rng.choice(['in', 'not in'])} {rng.sample(['a', 'b', 'abc', ''], 2)}"
        if kind == 3:
            return f"{rng.choice(['a', 'x', 'b', 's'])} is {rng.choice(['', 'not '])}None"
        if kind == 4:
            return rng.choice(["b", "not b", "b == True", "b != False"])
        if kind == 5:
            return f"s {rng.choice(['==', '<', '>='])} '{rng.choice(['a', 'abc', 'b'])}'"
        return f"{rng.choice([-3, 0, 1])} < a < {rng.choice([2, 5, 50])}"
    op = rng.choice(["and", "or"])
    left, right = cond(rng, depth + 1), cond(rng, depth + 1)
    text = f"({left}) {op} ({right})"
    return f"not ({text})" if rng.random() < 0.2 else text


def test_random_filters_agree() -> None:
    rng = random.Random(20241125)
    data = rows(rng, 60)
    for _ in range(250):
        expr = cond(rng)
        chain = build_transforms([{"type": "filter", "expression": expr}], SCHEMA)
        kept_d = [r["id"] for r in chain(dict_batch(data, SCHEMA)).records]
        kept_a = chain(arrow_batch(data, SCHEMA)).to_arrow().column("id").to_pylist()
        assert kept_d == kept_a, expr


def arith(rng: random.Random, depth: int = 0) -> str:
    if depth > 2 or rng.random() < 0.4:
        return str(rng.choice(["a", "x", "id", "2", "-3", "0.5"]))
    return f"({arith(rng, depth + 1)} {rng.choice(['+', '-', '*', '/'])} {arith(rng, depth + 1)})"


def test_random_arithmetic_agrees() -> None:
    rng = random.Random(5)
    data = rows(rng, 40)
    for _ in range(150):
        expr = arith(rng)
        chain = build_transforms([{"type": "add_field", "name": "r", "expression": expr}], SCHEMA)
        results = []
        for make in (dict_batch, arrow_batch):
            try:
                out = chain(make(data, SCHEMA))
            except SchemaError as exc:  # division by zero: both paths must refuse
                assert "division by zero" in str(exc) or "divide by zero" in str(exc), str(exc)
                results.append("error")
                continue
            results.append(
                out.to_arrow(None).column("r").to_pylist()
                if make is arrow_batch
                else [r["r"] for r in out.records]
            )
        left, right = results
        if left != "error" and right != "error":
            assert [None if v is None else pytest.approx(v) for v in left] == right, expr
        else:
            assert left == right, expr
