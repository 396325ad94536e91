"""AsyncApiClient over the real local HTTP server: verbs, hooks, auth (OAuth2 shared by concurrent
tasks), retries, pagination, streaming, lifecycle, and adapters without an async side."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from dc_api_x import (
    AdapterError,
    ApiClient,
    AsyncApiClient,
    HTTPStatusError,
    NotSupportedError,
    PaginationError,
    TransportError,
    create_plugin,
)
from tests.http.conftest import cursor_route, make_rows, offset_route
from tests.http.test_auth import SECRET, TokenServer, oauth_cfg
from tests.http.test_client import Recorder


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def echo(req) -> tuple[int, dict[str, str], Any]:
    return (
        200,
        {"x-method": req.method},
        {
            "method": req.method,
            "query": req.query,
            "json": req.json() if req.body else None,
            "trace": req.headers.get("x-trace"),
            "authorization": req.headers.get("authorization"),
        },
    )


def test_is_public_and_lazy() -> None:
    import subprocess
    import sys

    import dc_api_x

    assert "AsyncApiClient" in dc_api_x.__all__
    code = "import dc_api_x.async_client, sys; print('httpx' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"  # importing the client module imports no HTTP library


@pytest.mark.parametrize("verb", ["get", "post", "put", "patch", "delete"])
def test_verbs(server, verb):
    server.route("*", "/thing", echo)

    async def main() -> Any:
        async with AsyncApiClient(server.url, hooks=[]) as api:
            kw = {"json": {"n": 1}} if verb in ("post", "put", "patch") else {}
            return await getattr(api, verb)("/thing", params={"a": "b"}, **kw), kw

    resp, kw = run(main())
    assert resp.status_code == 200 and resp.method == verb.upper()
    assert resp.data["method"] == verb.upper() and resp.data["query"] == {"a": ["b"]}
    assert resp.data["json"] == kw.get("json")
    assert resp.http_version == "HTTP/1.1"


def test_hooks_order_edits_and_errors(server):
    server.route("GET", "/x", echo)
    events: list[str] = []

    async def main() -> Any:
        async with AsyncApiClient(server.url, hooks=[Recorder("a", events), Recorder("b", events)]) as api:
            return await api.get("/x")

    resp = run(main())
    assert events == ["before:a", "before:b", "after:b:200", "after:a:200"]
    assert resp.data["trace"] == "ab"  # headers edited by before_request are sent

    events.clear()

    async def failing() -> None:
        async with AsyncApiClient(
            "http://127.0.0.1:9", hooks=[Recorder("a", events)], retries=1, timeout=2
        ) as api:
            await api.get("/x")

    with pytest.raises(TransportError, match=r"GET http://127\.0\.0\.1:9/x: ConnectError"):
        run(failing())
    assert events == ["before:a", "error:a:TransportError"]


def test_default_hooks_count_requests(server):
    server.route("GET", "/x", lambda req: (200, {}, {"ok": True}))

    async def main() -> dict[str, Any]:
        async with AsyncApiClient(server.url) as api:
            await asyncio.gather(*(api.get("/x") for _ in range(7)))
            return api.hook("metrics").snapshot()  # type: ignore[attr-defined,no-any-return]

    snap = run(main())
    assert snap["requests"] == 7 and snap["status"] == {"2xx": 7}


def test_bearer_and_api_key_query_redacted(server):
    server.route("GET", "/me", echo)

    async def main() -> tuple[Any, Any]:
        async with AsyncApiClient(server.url, hooks=[], auth={"type": "bearer", "token": SECRET}) as api:
            a = await api.get("/me")
        key = {"type": "api_key", "key": SECRET, "name": "token", "location": "query"}
        async with AsyncApiClient(server.url, hooks=[], auth=key) as api:
            b = await api.get("/me")
        return a, b

    a, b = run(main())
    assert a.data["authorization"] == f"Bearer {SECRET}"
    assert b.data["query"] == {"token": [SECRET]} and SECRET not in b.url


def test_oauth2_one_token_for_concurrent_tasks_and_one_refresh_after_401(server):
    ts = TokenServer(server, expires_in=None)
    slow_token = server.routes[("POST", "/oauth/token")]

    def token(req):  # a slow token endpoint: every task is waiting while the token is fetched
        time.sleep(0.3)
        return slow_token(req)

    server.route("POST", "/oauth/token", token)
    provider = create_plugin("auth_providers", oauth_cfg(server))

    async def main() -> tuple[list[Any], list[Any]]:
        async with AsyncApiClient(server.url, hooks=[], auth=provider) as api:
            first = await asyncio.gather(*(api.get("/api") for _ in range(10)))
            with ts.lock:
                ts.issued.append("rotated-elsewhere")  # the server revoked our token
            second = await asyncio.gather(*(api.get("/api") for _ in range(10)))
        return first, second

    first, second = run(main())
    assert {r.data["token"] for r in first} == {"tok-1-abcdef"}
    # ten 401 answers to the same token: one refresh, every task retried with the new token
    assert {(r.status_code, r.data["token"]) for r in second} == {(200, "tok-3-abcdef")}
    assert provider.fetch_count == 2 and len([f for f in ts.forms]) == 2
    # the token was fetched without blocking: both waves were concurrent on the API
    provider.close()


def test_oauth2_provider_shared_by_a_sync_and_an_async_client(server):
    TokenServer(server)
    provider = create_plugin("auth_providers", oauth_cfg(server))
    with ApiClient(server.url, hooks=[], auth=provider) as api:
        assert api.get("/api").data["token"] == "tok-1-abcdef"

    async def main() -> Any:
        async with AsyncApiClient(server.url, hooks=[], auth=provider) as api:
            return await api.get("/api")

    assert run(main()).data["token"] == "tok-1-abcdef"
    assert run(main()).data["token"] == "tok-1-abcdef"  # a second event loop: a new lock, same token
    assert provider.fetch_count == 1
    provider.close()


def test_retries_429_retry_after_and_5xx(server):
    calls = {"n": 0}

    def flaky(req):
        calls["n"] += 1
        if calls["n"] == 1:
            return 429, {"retry-after": "2"}, {"error": "slow down"}
        if calls["n"] == 2:
            return 503, {}, {"error": "busy"}
        return 200, {}, {"ok": True}

    server.route("*", "/flaky", flaky)
    server.route("POST", "/busy", lambda req: (503, {}, {"error": "busy"}))
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    async def main() -> tuple[Any, Any]:
        async with AsyncApiClient(
            server.url, hooks=[], retries={"max_attempts": 4, "backoff_factor": 0.25, "jitter": False}
        ) as api:
            api.session.sleep = sleep
            ok = await api.get("/flaky")
            busy = await api.post("/busy")  # not idempotent: a 503 is not retried
            return ok, busy

    ok, busy = run(main())
    assert ok.status_code == 200 and calls["n"] == 3
    assert slept == [2.0, 0.5]  # Retry-After, then the backoff of attempt 2
    # the retries made before the answer, for the metrics hook (as the sync client reports them)
    assert ok.raw.extensions["dcapix_retries"] == ("429", "5xx")
    assert busy.status_code == 503
    assert len([r for r in server.requests if r.path == "/busy"]) == 1


def test_retries_exhausted_is_one_clear_error(server):
    server.route("GET", "/down", lambda req: (503, {}, {"error": "busy"}))

    async def main() -> None:
        async with AsyncApiClient(server.url + "/", hooks=[], retries={"max_attempts": 3}) as api:
            api.session.sleep = lambda s: asyncio.sleep(0)
            await api.get("down", params={"api_key": "k-hidden-7"})

    with pytest.raises(HTTPStatusError, match=r"GET .*/down\?api_key=\*\*\*: HTTP 503 after 3 attempt") as ei:
        run(main())
    assert "k-hidden-7" not in str(ei.value)
    assert len([r for r in server.requests if r.path == "/down"]) == 3
    assert ei.value.retries == ("5xx", "5xx")  # (the reasons of the retries made before it)


@pytest.mark.parametrize("kind", ["offset", "cursor"])
def test_async_for_records_and_pages(server, kind):
    rows = make_rows(47)
    if kind == "offset":
        server.route("GET", "/items", offset_route(rows))
        paginator: dict[str, Any] = {"type": "offset", "limit": 10, "total_path": "total"}
    else:
        server.route("GET", "/items", cursor_route(rows, size=10))
        paginator = {"type": "cursor", "cursor_path": "next"}

    async def main() -> tuple[list[Any], list[tuple[int, int]]]:
        async with AsyncApiClient(server.url, hooks=[]) as api:
            records = [r async for r in api.paginate("/items", paginator=paginator, records_path="records")]
            pages = [
                (p.number, len(p.records))
                async for p in api.pages("/items", paginator=paginator, records_path="records")
            ]
        return records, pages

    records, pages = run(main())
    assert records == rows
    assert pages == [(1, 10), (2, 10), (3, 10), (4, 10), (5, 7)]


def test_pagination_errors(server):
    served = iter(range(1000))
    server.route("GET", "/loop", lambda req: (200, {}, {"records": [{"id": next(served)}], "next": "same"}))
    server.route("GET", "/broken", lambda req: (500, {}, {"error": "boom"}))

    async def loop() -> list[Any]:
        async with AsyncApiClient(server.url, hooks=[], retries=1) as api:
            return [r async for r in api.paginate("/loop", paginator="cursor", records_path="records")]

    with pytest.raises(PaginationError, match="token 'same' again"):
        run(loop())

    async def broken() -> list[Any]:
        async with AsyncApiClient(server.url, hooks=[], retries=1) as api:
            return [r async for r in api.paginate("/broken", records_path="records")]

    with pytest.raises(HTTPStatusError, match=r"/broken: HTTP 500"):
        run(broken())


def test_same_pages_as_the_sync_client(server):
    server.route("GET", "/c", cursor_route(make_rows(33), size=4))
    paginator = {"type": "cursor", "cursor_path": "next", "max_items": 25}
    with ApiClient(server.url, hooks=[]) as api:
        sync = list(api.paginate("/c", paginator=paginator, records_path="records"))

    async def main() -> list[Any]:
        async with AsyncApiClient(server.url, hooks=[]) as api:
            return [r async for r in api.paginate("/c", paginator=paginator, records_path="records")]

    assert run(main()) == sync and len(sync) == 25


def test_streaming(server):
    blob = bytes(range(256)) * 4096  # 1 MiB
    text = "".join(f"line {i}\n" for i in range(1000))
    server.route("GET", "/blob", lambda req: (200, {"content-type": "application/octet-stream"}, blob))
    server.route("GET", "/lines", lambda req: (200, {"content-type": "text/plain"}, text))
    server.route("GET", "/missing", lambda req: (404, {}, {"error": "no"}))

    async def main() -> tuple[bytes, int, list[str], int]:
        async with AsyncApiClient(server.url, hooks=[], auth={"type": "bearer", "token": SECRET}) as api:
            got = bytearray()
            n = 0
            async with api.stream("GET", "/blob", chunk_size=8192) as r:
                assert r.status_code == 200 and r.url.endswith("/blob")
                async for chunk in r:
                    assert len(chunk) <= 8192
                    got += chunk
                    n += 1
            async with api.stream("GET", "/lines") as r:
                lines = [line async for line in r.aiter_lines()]
            async with api.stream("GET", "/missing", raise_for_status=False) as r:
                status = r.status_code
        return bytes(got), n, lines, status

    got, n, lines, status = run(main())
    assert got == blob and n == len(blob) // 8192
    assert lines == [f"line {i}" for i in range(1000)]
    assert status == 404
    assert server.requests[0].headers["authorization"] == f"Bearer {SECRET}"

    async def missing() -> None:
        async with AsyncApiClient(server.url, hooks=[]) as api, api.stream("GET", "/missing"):
            pass  # pragma: no cover - raises

    with pytest.raises(HTTPStatusError, match=r"adapter 'http': GET .*/missing: HTTP 404"):
        run(missing())


def test_lifecycle_closes_and_refuses_after_close(server):
    server.route("GET", "/x", lambda req: (200, {}, {"ok": True}))

    async def main() -> AsyncApiClient:
        async with AsyncApiClient(server.url, hooks=[]) as api:
            await api.get("/x")
            client = api.session.client
        assert client.is_closed
        return api

    api = run(main())
    with pytest.raises(AdapterError, match="adapter 'http': the adapter is closed"):
        run(api.get("/x"))


class EchoAdapter:
    """A plain-class adapter in the plugin guide's style (no async side): its blocking
    ``request()`` runs in a worker thread."""

    def __init__(self, url: str = "") -> None:
        self.url = url
        self.threads: set[int] = set()
        # each call waits for a second one to be in request() at the same time: run one after the
        # other, the first call would time out (a proof of overlap that a loaded machine cannot fake
        # or break, unlike a wall-clock bound)
        self.overlap = threading.Barrier(2, timeout=60)

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        self.threads.add(threading.get_ident())
        self.overlap.wait()
        return {"method": method, "path": path, "params": kwargs.get("params")}


def test_adapter_without_async_side_runs_in_threads(plugins):
    plugins.adapters.register("echo", EchoAdapter)

    async def main() -> tuple[list[Any], set[int]]:
        async with AsyncApiClient("mem://", adapter="echo", hooks=[]) as api:
            # the blocking calls overlap: every call passes EchoAdapter's two-party barrier
            out = await asyncio.gather(*(api.get(f"/n/{i}", params={"i": i}) for i in range(8)))
            assert not api.adapter.overlap.broken
            with pytest.raises(NotSupportedError, match="adapter 'echo' does not support streaming"):
                api.stream("GET", "/x")
            return out, api.adapter.threads

    out, threads = run(main())
    assert [r.data["path"] for r in out] == [f"/n/{i}" for i in range(8)]
    assert out[3].data["params"] == {"i": 3} and out[3].status_code == 200
    assert threading.main_thread().ident not in threads and len(threads) > 1


def test_concurrent_tasks_share_the_pool_limits(server):
    state = {"now": 0, "peak": 0}
    lock = threading.Lock()

    def slow(req):
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        time.sleep(0.1)
        with lock:
            state["now"] -= 1
        return 200, {}, {"ok": True}

    server.route("GET", "/slow", slow)

    async def main(limit: int) -> list[Any]:
        async with AsyncApiClient(server.url, hooks=[], limits={"max_connections": limit}) as api:
            return await asyncio.gather(*(api.get("/slow") for _ in range(8)))

    assert all(r.status_code == 200 for r in run(main(2)))
    assert state["peak"] == 2  # eight tasks, two pooled connections
    state["peak"] = 0
    run(main(8))
    assert state["peak"] > 2  # the limit, not the client, serialised them


def test_unknown_pagination_option_is_refused(server):
    with ApiClient(server.url, hooks=[]) as api, pytest.raises(TypeError, match=r"\['record_path'\]"):
        list(api.paginate("/x", record_path="data"))  # type: ignore[call-arg]

    async def main() -> None:
        async with AsyncApiClient(server.url, hooks=[]) as api:
            [r async for r in api.paginate("/x", record_path="data")]  # type: ignore[call-arg]

    with pytest.raises(TypeError, match="known: paginator, records_path"):
        run(main())


def test_example_demo_runs():
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "examples" / "async_client_demo.py"
    res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "cursor pagination: 250 records; offset pagination: 250 records" in res.stdout
    assert "page 3: 50 records over HTTP/1.1" in res.stdout
