"""The ``redis_cache`` request hook: an ApiClient's GETs answered from Redis, counted by ``metrics``."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest

from dc_api_x import ApiClient, ConfigError


def _json(body: Any, status: int = 200, **headers: str) -> Any:
    return lambda path: (status, {"Content-Type": "application/json", **headers}, json.dumps(body).encode())


@pytest.fixture
def app(http_app: Any) -> Any:
    http_app.routes["/items"] = lambda path: (
        200,
        {"Content-Type": "application/json", "X-Path": path},
        json.dumps({"path": path, "items": [1, 2, 3], "text": "ünïcode"}).encode(),
    )
    http_app.routes["/private"] = _json({"secret": 1}, **{"Cache-Control": "no-store"})
    http_app.routes["/broken"] = _json({"error": "gone"}, status=410)
    return http_app


def client(base_url: str, redis_url: str, plugins: Any, **hook: Any) -> ApiClient:
    cache = {"type": "redis_cache", "url": redis_url, "ttl": 60, **hook}
    return ApiClient(base_url, hooks=["metrics", cache], plugins=plugins, retries={"max_attempts": 1})


def test_a_repeated_get_is_answered_from_redis(app: Any, redis_url: str, plugins: Any, rclient: Any) -> None:
    with client(app.base_url, redis_url, plugins) as api:
        first = api.get("/items", params={"b": 2, "a": 1})
        second = api.get("/items", params={"a": 1, "b": 2})  # same query, other order: same entry
        assert app.hits == {"/items?b=2&a=1": 1}
        assert (second.status_code, second.content, second.data) == (
            first.status_code,
            first.content,
            first.data,
        )
        assert second.headers["content-type"] == "application/json"
        assert second.headers["x-path"] == "/items?b=2&a=1"
        assert second.url == first.url
        snap = api.hook("metrics").snapshot()
        assert (snap["cache_hits"], snap["cache_misses"], snap["requests"], snap["responses"]) == (1, 1, 2, 2)
        api.get("/items", params={"a": 2})  # another query: a miss
        assert api.hook("metrics").snapshot()["cache_misses"] == 2
    keys = rclient.keys("dcapix:http-cache:*")
    assert len(keys) == 2 and all(50 < rclient.ttl(k) <= 60 for k in keys)


def test_what_is_not_cached(app: Any, redis_url: str, plugins: Any, rclient: Any) -> None:
    with client(app.base_url, redis_url, plugins) as api:
        for _ in range(2):
            api.get("/private")  # the response says no-store
            api.get("/broken")  # 410 is not in statuses
            api.post("/items", json={"x": 1})  # POST is not cached
            api.get("/items", headers={"Cache-Control": "no-store"})
        assert app.hits["/private"] == 2 and app.hits["/broken"] == 2 and app.hits["/items"] == 4
        api.get("/items")
        api.get("/items", headers={"Cache-Control": "no-cache"})  # skips the lookup, refreshes the entry
        assert app.hits["/items"] == 6
        api.get("/items")
        assert app.hits["/items"] == 6
        snap = api.hook("metrics").snapshot()
    assert snap["cache_hits"] == 1
    assert len(rclient.keys("dcapix:http-cache:*")) == 1


def test_two_apis_with_the_same_path_do_not_share_entries(
    http_app: Any, redis_url: str, plugins: Any
) -> None:
    http_app.routes["/me"] = _json({"api": "one"})
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Other(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b'{"api": "two"}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Other)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        with (
            client(http_app.base_url, redis_url, plugins) as one,
            client(f"http://127.0.0.1:{srv.server_address[1]}", redis_url, plugins) as two,
        ):
            assert one.get("/me").data == {"api": "one"}
            assert two.get("/me").data == {"api": "two"}
            assert one.get("/me").data == {"api": "one"} and two.get("/me").data == {"api": "two"}
            assert one.hook("metrics").snapshot()["cache_hits"] == 1
            assert two.hook("metrics").snapshot()["cache_hits"] == 1
    finally:
        srv.shutdown()
        srv.server_close()


def test_redis_down_never_breaks_a_request(app: Any, plugins: Any, caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"redis://:pw-not-logged@127.0.0.1:{s.getsockname()[1]}/0"
    with client(app.base_url, dead, plugins, socket_timeout=1) as api:
        assert api.get("/items").status_code == 200
        assert api.get("/items").status_code == 200
        snap = api.hook("metrics").snapshot()
    assert app.hits["/items"] == 2 and snap["cache_hits"] == 0 and snap["errors"] == 0
    warnings = [r.getMessage() for r in caplog.records if r.name == "dc_api_x_redis.cache"]
    assert len(warnings) == 1 and "pw-not-logged" not in warnings[0]


def test_hook_options_are_validated(plugins: Any) -> None:
    with pytest.raises(ConfigError, match=r"hook 'redis_cache': option 'ttl'"):
        ApiClient("http://127.0.0.1:1", hooks=[{"type": "redis_cache", "ttl": 0}], plugins=plugins)
