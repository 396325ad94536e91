"""End to end through the installed console scripts: ``dcapix run`` and ``tap-dcapix | target-dcapix``
with Redis as source and as destination, exact counts and values, incremental second runs."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

BIN = Path(sys.executable).parent


def write_json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data))
    return path


def _sqlite(db: Path, ids: range) -> None:
    con = sqlite3.connect(db)
    con.execute(
        "CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY, name TEXT NOT NULL, "
        "amount NUMERIC(12, 2), note TEXT, updated_at TEXT NOT NULL)"
    )
    con.executemany(
        "INSERT INTO orders VALUES (?, ?, ?, ?, ?)",
        [(i, f"név-{i}", f"{i}.{i % 100:02d}", None if i % 5 == 0 else f"n{i}", _ts(i)) for i in ids],
    )
    con.commit()
    con.close()


def _ts(i: int) -> str:
    return f"2024-01-01T{i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}+00:00"


def _jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    for f in sorted(path.rglob("*.jsonl")):
        rows += [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
    return rows


def _run(cli: Any, tmp: Path, src: dict[str, Any], dst: dict[str, Any], *extra: str) -> dict[str, Any]:
    n = len(list(tmp.glob("src-*.json")))
    s, d = write_json(tmp / f"src-{n}.json", src), write_json(tmp / f"dst-{n}.json", dst)
    res = cli(
        "dcapix",
        "run",
        "--source",
        str(s),
        "--destination",
        str(d),
        "--state-db",
        str(tmp / "state.db"),
        "--json",
        "--no-progress",
        *extra,
        cwd=tmp,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout)  # type: ignore[no-any-return]


def test_dcapix_run_sqlite_to_redis_to_parquet_exact_and_incremental(
    cli: Any, tmp_path: Path, redis_url: str, rclient: Any
) -> None:
    import pyarrow.parquet as pq

    db = tmp_path / "shop.db"
    _sqlite(db, range(1, 1201))
    src = {
        "adapter": "sql",
        "url": f"sqlite:///{db}",
        "streams": [{"table": "orders", "primary_keys": ["id"], "replication_key": "updated_at"}],
    }
    to_redis = {"adapter": "redis", "url": redis_url, "key": "order:{id}", "batch_size": 500}
    m = _run(cli, tmp_path, src, to_redis)
    assert m["status"] == "done" and m["rows"] == 1200
    assert len(rclient.keys("order:*")) == 1200
    h = rclient.hgetall("order:5")
    assert h == {
        b"id": b"5",
        b"name": "név-5".encode(),
        b"amount": b"5.05",
        b"updated_at": b"2024-01-01T00:00:05+00:00",
    }

    # a second run moves only the new source rows
    _sqlite(db, range(1201, 1251))
    m = _run(cli, tmp_path, src, to_redis)
    assert m["rows"] == 50 and len(rclient.keys("order:*")) == 1250

    # Redis -> Parquet: the stream is discovered from the catalog the writer left, values typed back
    out = tmp_path / "lake"
    from_redis = {"adapter": "redis", "url": redis_url}
    m = _run(cli, tmp_path, from_redis, {"adapter": "parquet", "path": str(out)})
    assert m["rows"] == 1250 and [s["stream"] for s in m["streams"]] == ["orders"]
    table = pq.read_table(sorted(out.rglob("*.parquet"))[0].parent).sort_by("id")
    rows = table.to_pylist()
    assert [r["id"] for r in rows] == list(range(1, 1251))
    for r in rows:
        i = r["id"]
        assert (
            r["_key"] == f"order:{i}"
            and r["name"] == f"név-{i}"
            and r["amount"] == Decimal(f"{i}.{i % 100:02d}")
        )
        assert r["note"] == (None if i % 5 == 0 else f"n{i}")
        assert r["updated_at"] == _ts(i)  # a TEXT column in SQLite: a string, as it was
    # incremental by updated_at (recorded in the catalog): only the changed hash moves
    rclient.hset("order:7", mapping={"name": "changed", "updated_at": "2024-01-01T05:00:00+00:00"})
    m = _run(cli, tmp_path, from_redis, {"adapter": "parquet", "path": str(out)})
    assert m["rows"] == 1
    rows = pq.read_table(out / "orders").to_pylist()
    assert len(rows) == 1251 and sorted(r["name"] for r in rows if r["id"] == 7) == ["changed", "név-7"]


def test_dcapix_run_redis_stream_incremental_moves_only_new_entries(
    cli: Any, tmp_path: Path, redis_url: str, rclient: Any
) -> None:
    for i in range(300):
        rclient.xadd("clicks", {"user": f"u{i % 7}", "n": str(i)})
    src = {
        "adapter": "redis",
        "url": redis_url,
        "batch_size": 64,
        "streams": [{"name": "clicks", "type": "stream", "schema": {"n": {"type": "integer"}}}],
    }
    dst = {"adapter": "jsonl", "path": str(tmp_path / "out")}
    m = _run(cli, tmp_path, src, dst)
    assert m["rows"] == 300
    last = m["streams"][0]["bookmark"]["replication_key_value"]
    assert last == rclient.xrevrange("clicks", count=1)[0][0].decode()
    for i in range(300, 320):
        rclient.xadd("clicks", {"user": "new", "n": str(i)})
    m = _run(cli, tmp_path, src, dst)
    assert m["rows"] == 20
    rows = _jsonl(tmp_path / "out")
    assert sorted(r["n"] for r in rows) == list(range(320))  # each entry exactly once
    assert all(r["user"] == ("new" if r["n"] >= 300 else f"u{r['n'] % 7}") for r in rows)
    m = _run(cli, tmp_path, src, dst)
    assert m["rows"] == 0


def test_dcapix_run_pubsub_source_and_sink(cli: Any, tmp_path: Path, redis_url: str, rclient: Any) -> None:
    # sink: JSONL -> PUBLISH, a subscriber receives every record
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "alerts.jsonl").write_text(
        "".join(json.dumps({"id": i, "level": "warn"}) + "\n" for i in range(25))
    )
    sub = rclient.pubsub(ignore_subscribe_messages=True)
    sub.subscribe("alerts")
    sub.get_message(timeout=1)
    m = _run(
        cli,
        tmp_path,
        {"adapter": "jsonl", "path": str(tmp_path / "in" / "alerts.jsonl")},
        {
            "adapter": "redis",
            "url": redis_url,
            "streams": [{"name": "alerts", "type": "pubsub", "channel": "alerts"}],
        },
    )
    assert m["rows"] == 25
    got = []
    deadline = time.monotonic() + 10
    while len(got) < 25 and time.monotonic() < deadline:
        msg = sub.get_message(timeout=0.5)
        if msg:
            got.append(orjson.loads(msg["data"]))
    sub.close()
    assert got == [{"id": i, "level": "warn"} for i in range(25)]

    # source: a bounded subscription (40 messages) -> JSONL
    src = write_json(
        tmp_path / "ps-src.json",
        {
            "adapter": "redis",
            "url": redis_url,
            "streams": [
                {
                    "name": "feed",
                    "type": "pubsub",
                    "channels": ["feed"],
                    "max_messages": 40,
                    "max_seconds": 60,
                    "schema": {"id": {"type": "integer"}},
                }
            ],
        },
    )
    dst = write_json(tmp_path / "ps-dst.json", {"adapter": "jsonl", "path": str(tmp_path / "feed-out")})
    proc = subprocess.Popen(
        [
            str(BIN / "dcapix"),
            "run",
            "--source",
            str(src),
            "--destination",
            str(dst),
            "--no-state",
            "--json",
            "--no-progress",
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )

    def publish() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and dict(rclient.pubsub_numsub("feed")).get(b"feed", 0) < 1:
            time.sleep(0.02)
        for i in range(45):  # more than max_messages: the run stops at 40
            rclient.publish("feed", json.dumps({"id": i}))

    t = threading.Thread(target=publish, daemon=True)
    t.start()
    out, err = proc.communicate(timeout=120)
    t.join(10)
    assert proc.returncode == 0, err[-3000:]
    assert json.loads(out)["rows"] == 40
    rows = _jsonl(tmp_path / "feed-out")
    assert [r["id"] for r in rows] == list(range(40)) and all(r["_channel"] == "feed" for r in rows)


# ------------------------------------------------------------------------------ tap | target
def _pipe(
    tmp: Path, tap: dict[str, Any], target: dict[str, Any], state: dict[str, Any] | None = None
) -> tuple[list[dict[str, Any]], str]:
    n = len(list(tmp.glob("tap-*.json")))
    tap_cfg, tgt_cfg = write_json(tmp / f"tap-{n}.json", tap), write_json(tmp / f"target-{n}.json", target)
    cmd = [str(BIN / "tap-dcapix"), "--config", str(tap_cfg)]
    if state is not None:
        cmd += ["--state", str(write_json(tmp / f"state-{n}.json", state))]
    tap_p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp)
    tgt_p = subprocess.Popen(
        [str(BIN / "target-dcapix"), "--config", str(tgt_cfg)],
        stdin=tap_p.stdout,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp,
    )
    assert tap_p.stdout is not None
    tap_p.stdout.close()
    out, tgt_err = tgt_p.communicate(timeout=180)
    _, tap_err = tap_p.communicate(timeout=60)
    assert tap_p.returncode == 0 and tgt_p.returncode == 0, (
        tap_err.decode()[-2000:],
        tgt_err.decode()[-2000:],
    )
    states = [json.loads(line) for line in out.decode().splitlines() if line.strip()]
    return states, tgt_err.decode()


def test_tap_sqlite_into_target_redis_then_tap_redis_into_target_jsonl(
    tmp_path: Path, redis_url: str, rclient: Any
) -> None:
    db = tmp_path / "shop.db"
    _sqlite(db, range(1, 501))
    tap_sql = {
        "adapter": "sql",
        "url": f"sqlite:///{db}",
        "streams": [
            {"name": "orders", "table": "orders", "primary_keys": ["id"], "replication_key": "updated_at"}
        ],
    }
    target_redis = {"adapter": "redis", "url": redis_url, "key": "o:{id}"}
    states, _ = _pipe(tmp_path, tap_sql, target_redis)
    assert len(rclient.keys("o:*")) == 500
    assert rclient.hgetall("o:10")[b"amount"] == b"10.10"
    _sqlite(db, range(501, 521))
    _pipe(tmp_path, tap_sql, target_redis, state=states[-1])
    assert len(rclient.keys("o:*")) == 520

    # Redis as the Singer source: the catalog stream, incremental by updated_at through Singer state
    tap_redis = {"adapter": "redis", "url": redis_url}
    out = tmp_path / "out"
    states, _ = _pipe(tmp_path, tap_redis, {"adapter": "jsonl", "path": str(out)})
    rows = sorted(_jsonl(out), key=lambda r: r["id"])
    assert [r["id"] for r in rows] == list(range(1, 521))
    assert rows[9] == {
        "_key": "o:10",
        "id": 10,
        "name": "név-10",
        "amount": "10.10",
        "note": None,
        "updated_at": "2024-01-01T00:00:10+00:00",
    }
    assert rows[10]["note"] == "n11" and rows[10]["amount"] == "11.11"
    bookmark = states[-1]["bookmarks"]["orders"]
    assert bookmark["replication_key"] == "updated_at"
    rclient.hset("o:3", mapping={"note": "edited", "updated_at": "2024-01-02T00:00:00+00:00"})
    _pipe(tmp_path, tap_redis, {"adapter": "jsonl", "path": str(out)}, state=states[-1])
    rows = _jsonl(out)
    assert len(rows) == 521 and [r["note"] for r in rows if r["id"] == 3].count("edited") == 1


@pytest.mark.parametrize("typ", ["hash", "stream"])
def test_tap_redis_into_target_redis(
    tmp_path: Path, redis_url: str, redis_server: Any, rclient: Any, typ: str
) -> None:
    """Redis to Redis (db 0 -> db 1) through Singer: same keys / entry ids, same bytes."""
    if typ == "hash":
        for i in range(200):
            rclient.hset(f"user:{i}", mapping={"n": str(i), "bio": f"line\r\nbreak {i}"})
        stream = {"name": "users", "pattern": "user:*", "schema": {"n": {"type": "integer"}}}
    else:
        for i in range(200):
            rclient.xadd("log", {"n": str(i), "bio": f"line\r\nbreak {i}"})
        stream = {"name": "log", "type": "stream", "schema": {"n": {"type": "integer"}}}
    other = redis_server.client(db=1)
    other.flushdb()
    _pipe(
        tmp_path,
        {"adapter": "redis", "url": redis_url, "streams": [stream]},
        {"adapter": "redis", "url": redis_server.url(db=1), "type": typ},
    )
    if typ == "hash":
        assert sorted(other.keys("user:*")) == sorted(rclient.keys("user:*"))
        assert all(other.hgetall(k) == rclient.hgetall(k) for k in rclient.keys("user:*"))
    else:
        assert other.xrange("log") == rclient.xrange("log")
    other.close()
