"""``tap-dcapix | target-dcapix``: PostgreSQL → PostgreSQL (upsert) and a local HTTP API → JSONL."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.postgres


def _pg(url: str) -> Any:
    import psycopg

    return psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://", 1), autocommit=True)


@pytest.fixture
def dst_schema(pg_url: str) -> Iterator[str]:
    name = f"dst_{uuid.uuid4().hex[:10]}"
    yield name
    with _pg(pg_url) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


T0 = dt.datetime(2024, 3, 1, tzinfo=dt.timezone.utc)


def _fill(conn: Any, schema: str, ids: range, *, suffix: str = "", minutes: int = 0) -> None:
    with conn.cursor() as cur:
        cur.executemany(
            f'INSERT INTO "{schema}".items (id, name, amount, note, updated_at) VALUES (%s, %s, %s, %s, %s) '
            "ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, amount = EXCLUDED.amount, "
            "note = EXCLUDED.note, updated_at = EXCLUDED.updated_at",
            [
                (
                    i,
                    f"name-{i}{suffix}",
                    Decimal(f"{i}.{i % 100:02d}"),
                    None if i % 7 == 0 else f"note {i}",
                    T0 + dt.timedelta(seconds=i, minutes=minutes),
                )
                for i in ids
            ],
        )


def _dst_rows(conn: Any, schema: str) -> list[tuple[Any, ...]]:
    sql = f'SELECT id, name, amount, note, updated_at FROM "{schema}".items ORDER BY id'
    return conn.execute(sql).fetchall()  # type: ignore[no-any-return]


def test_postgres_to_postgres_upsert_and_rerun_changes_nothing(
    pipe, pg_url: str, pg_schema: str, dst_schema: str
):
    with _pg(pg_url) as conn:
        conn.execute(
            f'CREATE TABLE "{pg_schema}".items (id integer PRIMARY KEY, name text NOT NULL, '
            "amount numeric(12,2), note text, updated_at timestamptz NOT NULL)"
        )
        _fill(conn, pg_schema, range(1, 301))
    tap = {
        "adapter": "sql",
        "url": pg_url,
        "streams": [
            {
                "name": "items",
                "table": "items",
                "schema": pg_schema,
                "primary_keys": ["id"],
                "replication_key": "updated_at",
            }
        ],
    }
    target = {"adapter": "sql", "url": pg_url, "schema": dst_schema, "load_method": "upsert"}

    first = pipe(tap, target)
    assert first.ok, first.target_stderr[-3000:] + first.tap_stderr[-3000:]
    with _pg(pg_url) as conn:
        rows = _dst_rows(conn, dst_schema)
    assert len(rows) == 300
    for r in rows:
        i = r[0]
        assert r[1] == f"name-{i}" and Decimal(r[2]) == Decimal(f"{i}.{i % 100:02d}")
        assert r[3] == (None if i % 7 == 0 else f"note {i}")
        assert r[4] == T0 + dt.timedelta(seconds=i)

    # changed and new rows: the incremental run updates in place, adds the new ones
    with _pg(pg_url) as conn:
        _fill(conn, pg_schema, range(290, 311), suffix="-v2", minutes=60)
    second = pipe(tap, target, state=first.last_state)
    assert second.ok, second.target_stderr[-3000:]
    with _pg(pg_url) as conn:
        rows = _dst_rows(conn, dst_schema)
    assert [r[0] for r in rows] == list(range(1, 311))
    assert rows[289][1] == "name-290-v2" and rows[288][1] == "name-289"

    # a full re-run (no state) upserts the same rows: nothing changes
    third = pipe(tap, target)
    assert third.ok, third.target_stderr[-3000:]
    with _pg(pg_url) as conn:
        assert _dst_rows(conn, dst_schema) == rows


def test_http_api_to_jsonl_exact_rows(pipe, http_server, tmp_path: Path):
    data = [
        {
            "id": i,
            "name": f"name-{i}",
            "price": i * 1.25,
            "tags": [f"t{i % 3}"],
            "updated_at": f"2024-05-01T00:00:{i % 60:02d}Z",
        }
        for i in range(1, 48)
    ]

    def items(req: Any) -> tuple[int, dict[str, str], Any]:
        offset, limit = int(req.arg("offset", "0") or 0), int(req.arg("limit", "10") or 10)
        return 200, {}, {"items": data[offset : offset + limit], "total": len(data)}

    http_server.route("GET", "/items", items)
    tap = {
        "adapter": "http",
        "base_url": http_server.url,
        "streams": [
            {
                "name": "items",
                "path": "/items",
                "records_path": "items",
                "primary_keys": ["id"],
                "pagination": {
                    "type": "offset",
                    "offset_param": "offset",
                    "limit_param": "limit",
                    "limit": 10,
                    "total_path": "total",
                },
            }
        ],
    }
    out = tmp_path / "jsonl-out"
    first = pipe(tap, {"adapter": "jsonl", "path": str(out)})
    assert first.ok, first.target_stderr[-3000:] + first.tap_stderr[-3000:]
    files = sorted(p for p in out.rglob("*.jsonl*") if "items" in str(p.relative_to(out)))
    assert files
    rows = [json.loads(line) for f in files for line in f.read_text().splitlines() if line.strip()]
    # the same values; the inferred date-time column is written in its normal ISO form (+00:00 for Z)
    expected = [{**d, "updated_at": d["updated_at"].replace("Z", "+00:00")} for d in data]
    assert sorted(rows, key=lambda r: r["id"]) == expected
    by_id = {r["id"]: r for r in rows}
    assert len(rows) == 47 and len(by_id) == 47
    assert by_id[5]["name"] == "name-5" and by_id[5]["price"] == 6.25 and by_id[5]["tags"] == ["t2"]
