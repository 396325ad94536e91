"""Truncated and undecodable 200 bodies against the real local server: retried within the attempt
limit and counted; after the last attempt one line saying what happened, with the redacted URL;
through ``dcapix run``: exit 1 and the state not advanced."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import orjson
import pytest

from dc_api_x import ApiClient, ResponseDecodeError, create_adapter
from dc_api_x.types import StreamSpec
from tests.support.process import dcapix

KEY = "k3y-Secret-77"


class FaultyPages:
    """``GET /items?offset=&limit=[&since=]`` over ``rows``. ``faults[offset]`` lists what that
    page's answers are, one per request, the last one repeating: ``short`` (the body cut at 60 %
    under the whole body's Content-Length: the connection closes early), ``cut_json`` (the JSON
    cut, the Content-Length matching), ``html`` (a 200 maintenance page), ``ok`` (the page)."""

    def __init__(self, rows: list[dict[str, Any]], faults: dict[int, list[str]] | None = None) -> None:
        self.rows = rows
        self.faults = faults or {}
        self.sizes: dict[int, int] = {}

    def __call__(self, req: Any) -> tuple[int, dict[str, str], Any]:
        off, lim = int(req.arg("offset", "0")), int(req.arg("limit", "10"))
        since = req.arg("since")
        rows = [r for r in self.rows if since is None or r["id"] >= int(since)]
        body = orjson.dumps({"records": rows[off : off + lim], "total": len(rows)})
        self.sizes[off] = len(body)
        pending = self.faults.get(off)
        kind = (pending.pop(0) if len(pending) > 1 else pending[0]) if pending else None
        if kind == "short":
            return (
                200,
                {"content-type": "application/json", "content-length": str(len(body))},
                body[: len(body) * 6 // 10],
            )
        if kind == "cut_json":
            return 200, {"content-type": "application/json"}, body[: len(body) // 2]
        if kind == "html":
            return 200, {"content-type": "text/html"}, b"<html>maintenance</html>"
        return 200, {"content-type": "application/json"}, body


def rows(n: int, start: int = 1) -> list[dict[str, Any]]:
    return [{"id": i, "name": f"r{i}", "note": "é€" * (i % 3)} for i in range(start, start + n)]


def source(server: Any, **kw: Any) -> dict[str, Any]:
    return {
        "adapter": "http",
        "base_url": server.url,
        "retries": {"max_attempts": 3, "backoff_factor": 0.01},
        "streams": [
            {
                "name": "items",
                "path": "/items",
                "params": {"api_key": KEY},
                "records_path": "records",
                "primary_key": ["id"],
                **kw,
            }
        ],
        "pagination": {"type": "offset", "limit": 10, "total_path": "total"},
    }


def requests_at(server: Any, offset: int) -> int:
    return len([r for r in server.requests if r.path == "/items" and r.arg("offset") == str(offset)])


@pytest.mark.parametrize("kind", ["short", "cut_json", "html"])
def test_a_faulty_page_once_is_retried_and_the_read_succeeds(server, kind):
    # "once" = one faulty answer, then the real page (the last fault of a list repeats forever)
    data = rows(45)
    route = FaultyPages(data, {20: [kind, "ok"]})
    server.route("GET", "/items", route)
    with create_adapter(source(server)) as api:
        got = [r for b in api.read(StreamSpec("items")) for r in b.records]
        counters = api.retry_counters.snapshot()
    assert got == data  # every row once, in order, values unchanged
    assert requests_at(server, 20) == 2
    reason = {"short": "truncated_body", "cut_json": "invalid_json", "html": "invalid_json"}[kind]
    assert counters == {"retries": 1, "retries_by_reason": {reason: 1}, "exhausted": 0}


def test_truncated_body_retries_are_counted_by_the_metrics_hook(server):
    route = FaultyPages(rows(5), {0: ["short", "short", "ok"]})
    server.route("GET", "/items", route)
    with ApiClient(server.url, retries={"max_attempts": 3, "backoff_factor": 0.01}) as api:
        resp = api.get("/items", params={"offset": 0, "limit": 10})
        assert resp.data["records"] == rows(5)
        snap = api.hook("metrics").snapshot()
    assert snap["requests"] == 1 and snap["responses"] == 1
    assert snap["retries"] == 2 and snap["retries_by_reason"] == {"truncated_body": 2}


def test_a_page_truncated_on_every_attempt_says_truncated_with_the_redacted_url(server):
    route = FaultyPages(rows(45), {20: ["short"]})
    server.route("GET", "/items", route)
    with ApiClient(server.url, retries={"max_attempts": 3, "backoff_factor": 0.01}) as client:
        with pytest.raises(ResponseDecodeError) as ei:
            client.get("/items", params={"offset": 20, "limit": 10, "api_key": KEY})
        snap = client.hook("metrics").snapshot()
    size = route.sizes[20]
    msg = str(ei.value)
    assert f"truncated body (got {size * 6 // 10} of {size} bytes)" in msg
    assert "attempt 3 of 3" in msg and "/items" in msg and "\n" not in msg
    assert KEY not in msg and "api_key=***" in msg
    assert snap["errors"] == 1 and snap["retries_by_reason"] == {"truncated_body": 2}
    assert requests_at(server, 20) == 3  # the attempt limit is kept


def test_json_cut_on_every_attempt_says_invalid_json_at_byte(server):
    route = FaultyPages(rows(45), {20: ["cut_json"]})
    server.route("GET", "/items", route)
    with create_adapter(source(server)) as api, pytest.raises(ResponseDecodeError) as ei:
        list(api.read(StreamSpec("items")))
    half = route.sizes[20] // 2
    msg = str(ei.value)
    assert f"invalid JSON at byte {half}: unexpected end of data" in msg
    assert f"the body ends early: {half} bytes" in msg
    assert "stream 'items'" in msg and "/items" in msg and KEY not in msg
    assert "expected JSON, got 'application/json'" not in msg  # the old, self-contradicting message
    assert requests_at(server, 20) == 3


def test_a_post_is_not_retried_on_a_truncated_body(server):
    calls = []

    def handler(req: Any) -> tuple[int, dict[str, str], Any]:
        calls.append(1)
        return 200, {"content-type": "application/json", "content-length": "100"}, b'{"created": '

    server.route("POST", "/orders", handler)
    with create_adapter(source(server)) as api, pytest.raises(ResponseDecodeError, match="truncated body"):
        api.request("POST", "/orders", json={"x": 1})
    assert len(calls) == 1  # the server may have applied it: not sent twice


# ------------------------------------------------------------------------------ dcapix run
def _state_rows(db: Path) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        out: list[tuple[Any, ...]] = []
        for t in sorted(tables):
            if "lock" in t or "run" in t:
                continue
            out += [(t, *r) for r in conn.execute(f'SELECT * FROM "{t}"')]
        return sorted(out, key=repr)
    finally:
        conn.close()


def _jsonl_ids(out: Path) -> list[int]:
    ids = []
    for f in sorted(out.rglob("*.jsonl")):
        ids += [json.loads(line)["id"] for line in f.read_text().splitlines() if line.strip()]
    return sorted(ids)


def test_dcapix_run_fails_with_one_line_and_keeps_the_state(server, tmp_path, monkeypatch, capsys):
    import yaml

    from dc_api_x.cli import main

    monkeypatch.chdir(tmp_path)
    data = rows(25)
    route = FaultyPages(data)
    server.route("GET", "/items", route)
    src = source(server, replication_key="id", replication_param="since", is_sorted=True)
    out = tmp_path / "out"
    cfg = {"pipelines": {"api": {"source": src, "destination": {"adapter": "jsonl", "path": str(out)}}}}
    (tmp_path / "dcapix.yml").write_text(yaml.safe_dump(cfg))
    assert main(["run", "api", "--no-progress"]) == 0
    capsys.readouterr()
    assert _jsonl_ids(out) == list(range(1, 26))
    db = tmp_path / ".dcapix" / "state.db"
    before = _state_rows(db)
    assert before

    # new rows arrive; every answer of the next read's first page is truncated (a real process)
    route.rows = rows(40)
    route.faults = {0: ["short"]}
    proc = dcapix(tmp_path, "run", "api", "--no-progress", "--checkpoint-rows", "5")
    err = proc.stderr
    assert proc.returncode == 1, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("dcapix: error: ") and "truncated body (got " in last and "stream 'items'" in last
    assert "(attempt 3 of 3)" in last and KEY not in err and "api_key=***" in last
    assert "Traceback" not in err
    assert _state_rows(db) == before  # the state did not move
    assert _jsonl_ids(out) == list(range(1, 26))  # nothing of the failed read was written

    # the fault passes after one truncated answer: the run succeeds and its metrics count the retry
    route.faults = {0: ["short", "ok"]}
    assert main(["run", "api", "--no-progress", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    (items,) = metrics["streams"]
    assert items["retries"] == 1 and items["retries_by_reason"] == {"truncated_body": 1}
    assert _jsonl_ids(out) == list(range(1, 41))


# ------------------------------------------------------------------ raw TCP: chunked and stalled
class RawServer:
    """A loopback TCP server answering each connection with the next scripted reply: ``(head,
    body_parts, pause)`` — the head and body parts are sent, then the connection is held ``pause``
    seconds and closed (so a body can end early or stall)."""

    def __init__(self, replies: list[tuple[bytes, list[bytes], float]]) -> None:
        import socket
        import threading

        self.replies = replies
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        import threading

        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            reply = self.replies[min(self.connections, len(self.replies) - 1)]
            self.connections += 1
            threading.Thread(target=self._answer, args=(conn, reply), daemon=True).start()

    @staticmethod
    def _answer(conn: Any, reply: tuple[bytes, list[bytes], float]) -> None:
        import time

        head, parts, pause = reply
        with conn:
            conn.recv(65536)
            conn.sendall(head)
            for p in parts:
                conn.sendall(p)
            time.sleep(pause)

    def close(self) -> None:
        self.sock.close()


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def test_a_chunked_body_cut_short_is_retried_then_named(plugins):
    body = orjson.dumps({"records": rows(30)})
    head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
    whole = (head, [_chunk(body), b"0\r\n\r\n"], 0.0)
    cut = (head, [_chunk(body[:100])], 0.0)  # the connection closes inside the chunked body
    srv = RawServer([cut, whole])
    cfg = {"adapter": "http", "base_url": f"http://127.0.0.1:{srv.port}", "retries": {"backoff_factor": 0.01}}
    try:
        with create_adapter(cfg) as api:
            assert api.request("GET", "/x").data == {"records": rows(30)}
            assert api.retry_counters.snapshot()["retries_by_reason"] == {"truncated_body": 1}
        srv.replies = [cut]
        cfg2 = {**cfg, "retries": {"max_attempts": 2, "backoff_factor": 0.01}}
        with create_adapter(cfg2) as api, pytest.raises(ResponseDecodeError) as ei:
            api.request("GET", "/x", params={"api_key": KEY})
        msg = str(ei.value)
        assert "truncated body (got " in msg and "attempt 2 of 2" in msg and KEY not in msg
    finally:
        srv.close()


def test_a_stalled_body_is_a_truncated_body_with_its_byte_counts(plugins):
    body = orjson.dumps({"records": rows(30)})
    head = (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
        + f"content-length: {len(body)}\r\n\r\n".encode()
    )
    srv = RawServer([(head, [body[:150]], 1.0)])  # 150 bytes, then nothing for 1 s
    cfg = {
        "adapter": "http",
        "base_url": f"http://127.0.0.1:{srv.port}",
        "timeout": {"read": 0.2},
        "retries": {"max_attempts": 2, "backoff_factor": 0.01},
    }
    try:
        with create_adapter(cfg) as api, pytest.raises(ResponseDecodeError) as ei:
            api.request("GET", "/x")
    finally:
        srv.close()
    assert f"truncated body (got 150 of {len(body)} bytes): ReadTimeout (attempt 2 of 2)" in str(ei.value)


def test_a_streamed_body_cut_short_says_truncated(server):
    body = b"x" * 5000
    server.route("GET", "/export", lambda req: (200, {"content-length": "9000"}, body))
    with create_adapter({"adapter": "http", "base_url": server.url}) as api:
        got = bytearray()
        with (
            pytest.raises(ResponseDecodeError) as ei,
            api.stream("GET", "/export", params={"token": KEY}) as r,
        ):
            for chunk in r.iter_bytes(1024):
                got += chunk
    assert len(got) >= 4096 and bytes(got) == body[: len(got)]  # whole chunks handed out; then the error
    msg = str(ei.value)
    assert "truncated body (got 5000 of 9000 bytes)" in msg and "/export" in msg and KEY not in msg
