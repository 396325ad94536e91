"""On PostgreSQL the SQL adapter yields Arrow batches (ADBC) or dict batches (``arrow: false``);
the tap's Arrow-kernel lines and its orjson records path must emit the same values."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from tests.singer_tap.conftest import last_state, records_of


def _norm(rec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    out = dict(rec)
    for k, v in rec.items():
        fmt = schema["properties"][k].get("format")
        if v is None:
            continue
        if fmt == "date-time":
            out[k] = dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
        elif fmt == "decimal":
            out[k] = Decimal(v)
        elif fmt == "time":
            out[k] = dt.time.fromisoformat(v)
    return out


@pytest.mark.postgres
def test_arrow_and_dict_paths_emit_the_same(pg_url: str, pg_schema: str, run_tap) -> None:
    import psycopg

    plain = pg_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(
            f'CREATE TABLE "{pg_schema}".t (id int PRIMARY KEY, n numeric(20,6), f float8, '
            "r real, s text, b bool, ts timestamptz, tn timestamp, d date, tm time, j jsonb, "
            "by bytea, arr int[], updated_at timestamptz NOT NULL)"
        )
        conn.execute(
            f'INSERT INTO "{pg_schema}".t VALUES '
            "(1, 12345678901234.123456, 0.1, 0.5, 'quote \" back \\ nl' || chr(10), true, "
            "'2024-02-29 23:59:59.999999+00', '1999-12-31 12:00:00', '2024-01-01', '12:34:56.5', "
            "'{\"a\": [1, null, \"x\"]}', '\\x00ff', '{1,2}', '2024-01-01 00:00:00+00'), "
            "(2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, "
            "'2024-01-01 00:00:00+00'), "
            "(3, -0.000001, 1e300, 3, '', false, '1970-01-01 00:00:00+00', '2038-01-19 03:14:08', "
            "'0001-01-01', '00:00:00', '\"str\"', '', '{}', '2024-01-02 00:00:00+00')"
        )
    outs = {}
    for arrow in (True, False):
        cfg = {
            "adapter": "sql",
            "url": pg_url,
            "arrow": arrow,
            "streams": [{"name": "t", "table": "t", "schema": pg_schema, "replication_key": "updated_at"}],
        }
        msgs = run_tap(cfg)
        schema = next(m for m in msgs if m["type"] == "SCHEMA")["schema"]
        outs[arrow] = ([_norm(r, schema) for r in records_of(msgs)], last_state(msgs))
    assert outs[True][0] == outs[False][0]
    assert len(outs[True][0]) == 3
    assert (
        outs[True][1]["bookmarks"]["t"]["replication_key_value"]
        == outs[False][1]["bookmarks"]["t"]["replication_key_value"]
    )
    r1 = outs[True][0][0]
    assert r1["n"] == Decimal("12345678901234.123456")
    assert r1["s"] == 'quote " back \\ nl\n'
    assert r1["j"] == {"a": [1, None, "x"]}
