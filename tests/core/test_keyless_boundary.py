"""Streams WITHOUT primary keys: no row lost (nor repeated) at the incremental boundary.

A run of equal replication-key values split across batches, resumed from the state after every
batch, on the real engines: SQL (SQLite through adbc and sqlite3, PostgreSQL through ADBC and the
generic SQLAlchemy path), Parquet files and the local HTTP server. The boundary keys of keyless
rows are row hashes (:func:`dc_api_x.bookmarks.row_hash`), listed once per delivered row, so
identical duplicate rows are counted too (a multiset comparison).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sqlite3
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from dc_api_x.plugins import create_adapter
from dc_api_x.types import Batch, StreamSpec


def PG(value: str) -> object:
    """A parameter that needs the PostgreSQL server (marked ``postgres``)."""
    return pytest.param(value, marks=pytest.mark.postgres)


UTC = dt.timezone.utc
T0 = dt.datetime(2024, 1, 1, tzinfo=UTC)
HASH = re.compile(r"^[0-9a-f]{32}$")


def _t(h: int) -> dt.datetime:
    return T0 + dt.timedelta(hours=h)


# (hour, v, n): runs of 2, 7, 4 and 1 rows at equal values; two identical pairs
ROWS: list[tuple[int, str, int]] = [
    (0, "a", 1),
    (0, "b", 2),
    (1, "c", 3),
    (1, "dup", 4),
    (1, "d", 5),
    (1, "dup", 4),
    (1, "e", 6),
    (1, "f", 7),
    (1, "g", 8),
    (2, "h", 9),
    (2, "same", 0),
    (2, "same", 0),
    (2, "i", 10),
    (3, "j", 11),
]


def _norm(rec: dict[str, Any]) -> tuple[str, str, int]:
    at = rec["updated_at"]
    if isinstance(at, str):
        at = dt.datetime.fromisoformat(at.replace("Z", "+00:00"))
    return at.astimezone(UTC).isoformat(), rec["v"], int(rec["n"])


def _expected(rows: list[tuple[int, str, int]] = ROWS) -> Counter[tuple[str, str, int]]:
    return Counter((_t(h).isoformat(), v, n) for h, v, n in rows)


def _records(batches: list[Batch]) -> list[tuple[str, str, int]]:
    return [_norm(r) for b in batches for r in b.records]


def _assert_hash_keys(bookmark: dict[str, Any]) -> None:
    keys = bookmark["keys_at_value"]
    assert keys and all(len(k) == 1 and HASH.match(k[0]) for k in keys), keys


def _check_every_resume(
    read: Callable[..., list[Batch]], expected: Counter[Any], *, min_batches: int = 3
) -> list[Batch]:
    """Read everything; then for the state after each batch: rows up to it + a read resumed from
    it == every row exactly once. A chained resume (one batch per run) delivers it too."""
    batches = read()
    assert len(batches) >= min_batches
    assert Counter(_records(batches)) == expected
    for k, batch in enumerate(batches):
        state = json.loads(json.dumps(batch.bookmark))
        _assert_hash_keys(state)
        got = Counter(_records(batches[: k + 1])) + Counter(_records(read(state=state)))
        assert got == expected, f"resume after batch {k} ({state})"
    # a chain of runs, each killed after its first batch
    delivered: list[Any] = []
    state = None
    for _ in range(sum(expected.values()) + 5):  # bounded: a resume that repeats must fail
        first = read(state=state, first_only=True)
        if not first:
            break
        delivered += _records(first)
        state = json.loads(json.dumps(first[0].bookmark))
    else:
        pytest.fail("the chained resumes never ended")
    assert Counter(delivered) == expected
    return batches


# ----------------------------------------------------------------------------------------- SQL
@pytest.fixture(params=["sqlite-adbc", "sqlite-sqlite3", PG("pg-adbc"), PG("pg-generic")])
def keyless_sql(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> tuple[dict[str, Any], Callable[[list[tuple[int, str, int]]], None]]:
    """``(config, insert(rows))`` of a table ``ev(updated_at, v, n)`` WITHOUT primary key."""
    kind = request.param
    if kind.startswith("pg"):
        import psycopg

        url = request.getfixturevalue("pg_url")
        schema = request.getfixturevalue("pg_schema")
        plain = url.replace("postgresql+psycopg://", "postgresql://", 1)
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f"CREATE TABLE {schema}.ev (updated_at timestamptz, v text, n integer)")

        def insert(rows: list[tuple[int, str, int]]) -> None:
            with psycopg.connect(plain, autocommit=True) as conn, conn.cursor() as cur:
                cur.executemany(
                    f"INSERT INTO {schema}.ev VALUES (%s, %s, %s)", [(_t(h), v, n) for h, v, n in rows]
                )

        cfg = {
            "adapter": "sql",
            "url": url,
            "arrow": kind == "pg-adbc",
            "batch_size": 3,
            "streams": [{"table": "ev", "schema": schema, "replication_key": "updated_at"}],
        }
    else:
        path = tmp_path / "ev.sqlite"
        with sqlite3.connect(path) as con:
            con.execute("CREATE TABLE ev (updated_at TIMESTAMPTZ, v TEXT, n INTEGER)")

        def insert(rows: list[tuple[int, str, int]]) -> None:
            con = sqlite3.connect(path)
            try:
                con.executemany(
                    "INSERT INTO ev VALUES (?, ?, ?)",
                    [(_t(h).isoformat(timespec="microseconds"), v, n) for h, v, n in rows],
                )
                con.commit()
            finally:
                con.close()

        from dc_api_x.adapters.sql import sqlite as sqlite_backend

        if kind == "sqlite-sqlite3":
            monkeypatch.setattr(sqlite_backend, "_adbc_installed", lambda: False)
            monkeypatch.setattr(sqlite_backend, "_adbc_findable", lambda: False)
        else:  # ADBC for every file, however small
            monkeypatch.setattr(sqlite_backend, "ADBC_MIN_BYTES", 0)
        cfg = {
            "adapter": "sql",
            "url": f"sqlite:///{path}",
            "batch_size": 3,
            "streams": [{"table": "ev", "replication_key": "updated_at"}],
        }
    insert(ROWS)
    return cfg, insert


def _reader(adapter: Any, spec: StreamSpec) -> Callable[..., list[Batch]]:
    def read(state: dict[str, Any] | None = None, first_only: bool = False) -> list[Batch]:
        it = iter(adapter.read(spec, state=state))
        if first_only:
            first = next(it, None)
            close = getattr(it, "close", None)
            if close is not None:
                close()
            return [first] if first is not None else []
        return list(it)

    return read


def test_sql_keyless_resume_after_every_batch(keyless_sql, plugins):
    cfg, insert = keyless_sql
    with create_adapter(cfg) as ad:
        (spec,) = ad.discover()
        assert spec.key_properties == () and spec.replication_key == "updated_at"
        batches = _check_every_resume(_reader(ad, spec), _expected(), min_batches=4)
        final = json.loads(json.dumps(batches[-1].bookmark))
        assert len(final["keys_at_value"]) == 1  # one row at the last value: only it is hashed
        # later rows at the final value (one identical to the delivered row) and after it
        insert([(3, "j", 11), (3, "k", 12), (4, "l", 13)])
        again = list(ad.read(spec, state=final))
        assert Counter(_records(again)) == _expected([(3, "j", 11), (3, "k", 12), (4, "l", 13)])
        # a state written before row hashes (keys_at_value [[]]): the rows at the value come again
        legacy = {**final, "keys_at_value": [[]]}
        assert Counter(_records(list(ad.read(spec, state=legacy)))) == _expected(
            [(3, "j", 11), (3, "j", 11), (3, "k", 12), (4, "l", 13)]
        )


# --------------------------------------------------------------------------------------- files
FILE_SPEC = StreamSpec(
    "ev",
    schema={
        "type": "object",
        "properties": {
            "updated_at": {"type": "string", "format": "date-time"},
            "v": {"type": "string"},
            "n": {"type": "integer"},
        },
    },
    replication_key="updated_at",
)


def _write_parquet(root: Any, rows: list[tuple[int, str, int]]) -> None:
    with create_adapter({"adapter": "parquet", "path": str(root)}) as ad:
        ad.start_write(FILE_SPEC, load_method="append")
        ad.write(
            FILE_SPEC,
            Batch.from_records(
                [{"updated_at": _t(h), "v": v, "n": n} for h, v, n in rows], schema=FILE_SPEC.schema
            ),
        )
        ad.finish_write(FILE_SPEC)


def test_parquet_keyless_resume_after_every_batch(tmp_path, plugins):
    _write_parquet(tmp_path, ROWS)  # batch_size 3 cuts the run of 7 rows at hour 1 (and the others)
    with create_adapter(
        {"adapter": "parquet", "path": str(tmp_path), "batch_size": 3, "ordered": True}
    ) as ad:
        spec = ad.get_stream("ev")
        assert spec.key_properties == () and spec.replication_key == "updated_at"
        batches = _check_every_resume(_reader(ad, spec), _expected(), min_batches=4)
        final = batches[-1].bookmark
    # unordered files: the bookmark is only advanced at the end; new rows at its value are read
    _write_parquet(tmp_path, [(3, "j", 11), (3, "k", 12)])
    with create_adapter({"adapter": "parquet", "path": str(tmp_path), "batch_size": 3}) as ad:
        spec = ad.get_stream("ev")
        again = list(ad.read(spec, state=json.loads(json.dumps(final))))
        assert Counter(_records(again)) == _expected([(3, "j", 11), (3, "k", 12)])
        _assert_hash_keys(again[-1].bookmark)
        assert len(again[-1].bookmark["keys_at_value"]) == 3
        legacy = {k: v for k, v in final.items() if k != "keys_at_value"}
        assert Counter(_records(list(ad.read(spec, state=legacy)))) == _expected(
            [(3, "j", 11), (3, "j", 11), (3, "k", 12)]
        )


# ---------------------------------------------------------------------------------------- HTTP
class _KeylessAPI:
    """Records sorted by updated_at only (equal values in no particular order, reversed on each
    request to show that the order among them does not matter); ``?since=V``: updated_at >= V."""

    def __init__(self, server: Any, rows: list[tuple[int, str, int]]) -> None:
        self.rows = [{"updated_at": _t(h).isoformat(), "v": v, "n": n} for h, v, n in rows]
        self.flip = False
        server.route("GET", "/events", self.handle)

    def handle(self, req: Any) -> tuple[int, dict[str, str], Any]:
        since = req.arg("since")
        if req.arg("offset", "0") == "0":
            self.flip = not self.flip
        rows = self.rows[::-1] if self.flip else self.rows
        rows = sorted(rows, key=lambda r: r["updated_at"])
        if since is not None:
            rows = [r for r in rows if r["updated_at"] >= since]
        off, lim = int(req.arg("offset", "0")), int(req.arg("limit", "10"))
        return 200, {}, {"records": rows[off : off + lim], "total": len(rows)}


def _http(server: Any, **stream: Any) -> Any:
    return create_adapter(
        {
            "adapter": "http",
            "base_url": server.url,
            "retries": {"backoff_factor": 0.01},
            "streams": [
                {
                    "name": "events",
                    "path": "/events",
                    "records_path": "records",
                    "replication_key": "updated_at",
                    "replication_param": "since",
                    "pages_per_batch": 1,  # a batch (and its state) per page: every resume point
                    "pagination": {
                        "type": "offset",
                        "offset_param": "offset",
                        "limit_param": "limit",
                        "limit": 3,
                        "total_path": "total",
                    },
                    **stream,
                }
            ],
        }
    )


def test_http_sorted_keyless_resume_after_every_batch(http_server, plugins):
    api = _KeylessAPI(http_server, ROWS)
    with _http(http_server, is_sorted=True) as ad:
        spec = ad.get_stream("events")
        assert spec.key_properties == ()
        batches = _check_every_resume(_reader(ad, spec), _expected(), min_batches=4)
        final = batches[-1].bookmark
        api.rows.append({"updated_at": _t(3).isoformat(), "v": "k", "n": 12})
        again = list(ad.read(spec, state=final))
        assert Counter(_records(again)) == _expected([(3, "k", 12)])
        # a state written before row hashes (no keys_at_value): re-delivered, not dropped
        legacy = {k: v for k, v in final.items() if k != "keys_at_value"}
        assert Counter(_records(list(ad.read(spec, state=legacy)))) == _expected([(3, "j", 11), (3, "k", 12)])


def test_http_unsorted_keyless_final_bookmark(http_server, plugins):
    api = _KeylessAPI(http_server, ROWS)
    with _http(http_server) as ad:
        spec = ad.get_stream("events")
        batches = list(ad.read(spec))
        assert Counter(_records(batches)) == _expected()
        assert [b.bookmark is None for b in batches] == [True] * (len(batches) - 1) + [False]
        final = json.loads(json.dumps(batches[-1].bookmark))
        _assert_hash_keys(final)
        api.rows += [
            {"updated_at": _t(3).isoformat(), "v": "j", "n": 11},  # identical to a delivered row
            {"updated_at": _t(4).isoformat(), "v": "m", "n": 14},
        ]
        again = list(ad.read(spec, state=final))
        assert Counter(_records(again)) == _expected([(3, "j", 11), (4, "m", 14)])
